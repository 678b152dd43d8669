"""A branch's revealed events, stored compactly.

A trace event as a Python dict costs about 430 bytes; the same event as compact JSON is
about 135 bytes, and a run of a thousand of them compresses to about 14 bytes each
(events repeat the same keys and names). So the newest events wait as compact JSON text
in a short tail, and every ``CHUNK_EVENTS`` of them are sealed into one zlib-compressed
JSON array. Text, not dicts: strings are not tracked by Python's cyclic garbage
collector, whereas a tail of dicts that lives for seconds in every session was promoted to
the oldest generation and made a full collection (tens of ms holding the event loop)
every few seconds under load.
Dicts are rebuilt on demand (``window``, ``chunks``); JSON keeps the model's key order,
so an export from the log is byte for byte the export of the original events.

Seqs in a log are contiguous (events are revealed in order), so ``seq - first_seq`` is a
position. Sealed chunks are immutable bytes: a fork's log shares its parent's chunks
(``prefix``) instead of copying them.
"""

from __future__ import annotations

import json
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

CHUNK_EVENTS = 1024          # events per sealed chunk
ZLIB_LEVEL = 1               # fastest level: ~14 B/event on msgq-pingpong, level 6 gives ~9
_COMPACT = (",", ":")
_STR_OVERHEAD_BYTES = 49     # what a str object costs beyond its characters
_dumps = json.JSONEncoder(separators=_COMPACT, allow_nan=False).encode


def _seal(lines: list[str]) -> bytes:
    """Events as JSON text -> one compressed JSON array (the same bytes as dumping the
    list of events: a compact array is its items joined by commas)."""
    return zlib.compress(("[" + ",".join(lines) + "]").encode(), ZLIB_LEVEL)


def _unseal(blob: bytes) -> list[dict[str, Any]]:
    return json.loads(zlib.decompress(blob))


class EventLog:
    """The newest ``cap`` events of a branch (older ones are dropped), compactly.

    ``_chunks`` holds ``[first_seq, count, blob]`` oldest first; ``_skip`` events of the
    first chunk are already dropped; ``_tail`` holds the newest events as JSON text.
    """

    __slots__ = ("cap", "chunk_events", "_chunks", "_skip", "_tail", "_tail_seq", "_len",
                 "__weakref__")

    def __init__(self, cap: int, events: Iterable[dict[str, Any]] = (),
                 chunk_events: int = CHUNK_EVENTS) -> None:
        self.cap = cap
        self.chunk_events = chunk_events
        self._chunks: list[list[Any]] = []
        self._skip = 0
        self._tail: list[str] = []
        self._tail_seq = 0
        self._len = 0
        self.extend(events)

    # -- size ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    @property
    def first_seq(self) -> int:
        """Seq of the oldest kept event (meaningless when empty)."""
        if self._chunks:
            return self._chunks[0][0] + self._skip
        return self._tail_seq

    @property
    def head_seq(self) -> int:
        """Seq of the newest event, -1 when empty."""
        return self.first_seq + self._len - 1 if self._len else -1

    def blobs(self) -> list[bytes]:
        """The sealed chunks (for memory accounting that counts shared chunks once)."""
        return [chunk[2] for chunk in self._chunks]

    def tail_bytes(self) -> int:
        return sum(map(len, self._tail)) + len(self._tail) * _STR_OVERHEAD_BYTES

    # -- writing -----------------------------------------------------------------------------
    def extend(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events (contiguous seqs), sealing full chunks and dropping beyond the cap."""
        tail, dumps = self._tail, _dumps
        for event in events:
            if not tail:
                self._tail_seq = event["seq"]
                if not self._chunks:
                    self._skip = 0
            tail.append(dumps(event))
            self._len += 1
            if len(tail) >= self.chunk_events:
                self.seal()
                tail = self._tail
        self._trim()

    def seal(self) -> None:
        """Compress the tail into a chunk now (a branch that stops growing keeps no text)."""
        if self._tail:
            self._chunks.append([self._tail_seq, len(self._tail), _seal(self._tail)])
            self._tail = []

    def _trim(self) -> None:
        excess = self._len - self.cap
        while excess > 0 and self._chunks:
            first = self._chunks[0]
            left = first[1] - self._skip
            if left <= excess:
                self._chunks.pop(0)
                self._skip = 0
                self._len -= left
                excess -= left
            else:
                self._skip += excess
                self._len -= excess
                excess = 0
        if excess > 0:  # everything sealed is gone: drop from the tail
            del self._tail[:excess]
            self._tail_seq += excess
            self._len -= excess

    def clear(self) -> None:
        self._chunks, self._skip, self._tail, self._len = [], 0, [], 0

    def prefix(self, through_seq: int) -> EventLog:
        """A new log of this one's events up to ``through_seq``, sharing sealed chunks."""
        out = EventLog(self.cap, chunk_events=self.chunk_events)
        for index, (first, count, blob) in enumerate(self._chunks):
            skip = self._skip if index == 0 else 0
            if first + count - 1 <= through_seq and not out._tail:
                if not out._chunks:
                    out._skip = skip
                out._chunks.append([first, count, blob])
                out._len += count - skip
            elif first + skip <= through_seq:
                out.extend(_unseal(blob)[skip:through_seq - first + 1])
        out.extend(self._tail_events(0, through_seq - self._tail_seq + 1))
        return out

    def _tail_events(self, start: int, end: int) -> list[dict[str, Any]]:
        """Tail events ``start:end`` (positions in the tail) as dicts."""
        return [json.loads(line) for line in self._tail[max(0, start):max(0, end)]]

    # -- reading -----------------------------------------------------------------------------
    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        """Every kept event, oldest first, one decoded chunk (a list) at a time."""
        skip, chunks, tail = self._skip, list(self._chunks), list(self._tail)
        for _first, _count, blob in chunks:  # what the log held at the first next()
            events = _unseal(blob)
            yield events[skip:] if skip else events
            skip = 0
        if tail:
            yield [json.loads(line) for line in tail]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks():
            yield from chunk

    def first(self) -> dict[str, Any] | None:
        return next(iter(self), None)

    def window(self, from_seq: int, count: int) -> list[dict[str, Any]]:
        """At most ``count`` events from ``from_seq`` on (from the oldest kept if older)."""
        out: list[dict[str, Any]] = []
        if not self._len or count <= 0:
            return out
        start = max(from_seq, self.first_seq)
        end = min(start + count, self.head_seq + 1)  # exclusive
        for first, chunk_count, blob in self._chunks:
            if first + chunk_count <= start:
                continue
            if first >= end:
                return out
            events = _unseal(blob)
            out.extend(events[max(0, start - first):end - first])
        if self._tail and end > self._tail_seq:
            out.extend(self._tail_events(start - self._tail_seq, end - self._tail_seq))
        return out

    def last(self) -> dict[str, Any] | None:
        if self._tail:
            return json.loads(self._tail[-1])
        return self.window(self.head_seq, 1)[0] if self._len else None


class EventQueue:
    """A log's events to hand out oldest first (an imported timeline waiting to be
    revealed); only one decoded chunk is held as dicts at a time."""

    def __init__(self, log: EventLog) -> None:
        self._chunks = log.chunks()
        self._left = len(log)
        self._buf: deque[dict[str, Any]] = deque()

    def __len__(self) -> int:
        return self._left

    def __bool__(self) -> bool:
        return self._left > 0

    def popleft(self) -> dict[str, Any]:
        if not self._buf:
            self._buf.extend(next(self._chunks))
        self._left -= 1
        return self._buf.popleft()
