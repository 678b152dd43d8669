"""Load a JSONL timeline back, validating it line by line.

A timeline file comes from outside (an upload, a saved run), so nothing is trusted:
each line must be a JSON object with an integer `seq` and `t` and a string `kind`;
`seq` must count up by one from the first line and `t` must never go back. Size and
event count are capped so a hostile file cannot exhaust memory.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

#: Largest timeline accepted, in bytes of UTF-8 text.
MAX_TIMELINE_BYTES = 64 * 1024 * 1024
#: Most events accepted from one file.
MAX_TIMELINE_EVENTS = 1_000_000


class TimelineError(ValueError):
    """A timeline that cannot be loaded; `line_no` is 1-based (0 = the file as a whole)."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_text(source: str | bytes | TextIO | BinaryIO) -> TextIO:
    if isinstance(source, str):
        return io.StringIO(source)
    if isinstance(source, bytes):
        try:
            return io.StringIO(source.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise TimelineError(0, f"not UTF-8 text (byte {err.start})") from None
    if isinstance(source, io.TextIOBase):
        return source
    return io.TextIOWrapper(source, encoding="utf-8")  # type: ignore[arg-type]


def parse_event(line: str, line_no: int) -> dict[str, Any]:
    """One line -> one event dict with its required fields checked."""
    try:
        event = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:
        raise TimelineError(line_no, f"not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        raise TimelineError(line_no, f"expected a JSON object, got {type(event).__name__}")
    for field in ("seq", "t"):
        if field not in event:
            raise TimelineError(line_no, f"missing required field {field!r}")
        if not _is_int(event[field]) or event[field] < 0:
            raise TimelineError(line_no, f"{field!r} must be a non-negative integer")
    kind = event.get("kind")
    if not isinstance(kind, str) or not kind:
        raise TimelineError(line_no, "'kind' must be a non-empty string")
    return event


def load_jsonl(
    source: str | bytes | TextIO | BinaryIO,
    max_bytes: int = MAX_TIMELINE_BYTES,
    max_events: int = MAX_TIMELINE_EVENTS,
) -> list[dict[str, Any]]:
    """Read a JSONL timeline (text, bytes or an open file) into a list of events.

    Blank lines are ignored. Raises TimelineError naming the first bad line: invalid JSON,
    a missing or mistyped seq/t/kind, a seq gap, time going backwards, or a file over
    `max_bytes` / `max_events`.
    """
    return list(iter_jsonl(source, max_bytes, max_events))


def iter_jsonl(
    source: str | bytes | TextIO | BinaryIO,
    max_bytes: int = MAX_TIMELINE_BYTES,
    max_events: int = MAX_TIMELINE_EVENTS,
) -> Iterator[dict[str, Any]]:
    """``load_jsonl`` one event at a time, so a caller can store events as they are read
    (and pause between them); the same checks, raised when the bad line is reached."""
    text = _as_text(source)
    prev: dict[str, Any] | None = None
    count = 0
    used = 0
    line_no = 0
    while True:
        # A character is at least one byte, so this never reads far past the limit,
        # even when the file is one enormous line.
        try:
            line = text.readline(max_bytes - used + 1)
        except UnicodeDecodeError as err:
            raise TimelineError(line_no + 1, f"not UTF-8 text ({err.reason})") from None
        if not line:
            break
        line_no += 1
        used += len(line.encode("utf-8"))
        if used > max_bytes:
            raise TimelineError(line_no, f"timeline is larger than {max_bytes} bytes")
        if not line.strip():
            continue
        event = parse_event(line, line_no)
        if prev is not None:
            if event["seq"] != prev["seq"] + 1:
                raise TimelineError(
                    line_no, f"seq {event['seq']} does not follow {prev['seq']} (gap or repeat)"
                )
            if event["t"] < prev["t"]:
                raise TimelineError(
                    line_no, f"t {event['t']} is earlier than the previous event's {prev['t']}"
                )
        if count >= max_events:
            raise TimelineError(line_no, f"more than {max_events} events")
        count += 1
        prev = event
        yield event
