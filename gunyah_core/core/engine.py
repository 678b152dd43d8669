"""The discrete-event kernel: an integer-nanosecond clock and an event heap.

Like SimPy's core, it is only a clock and a heap of ``(time_ns, prio, seq, action)``;
``seq`` comes from a counter so that events due at the same time and priority run in
the order they were scheduled, and every run of the same scenario replays identically.
Pacing against wall-clock time is the web layer's job, never the engine's.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

# Entry layout (a list so that cancel() can blank the action in place).
_T, _PRIO, _SEQ, _ACTION, _ARGS = range(5)

NO_LIMIT = 1 << 62
PRIO_URGENT = 0
PRIO_NORMAL = 1
# A model whose clock stops while events keep coming (a guest loop that takes no time)
# would run forever; this many events at one simulated instant means it has stopped
# making progress. Booting a full machine takes a few hundred. The simulator's choice.
MAX_EVENTS_AT_ONE_TIME = 100_000


class NoProgressError(RuntimeError):
    """The clock stopped while events kept coming: the run cannot finish."""

    def __init__(self, now: int, events: int) -> None:
        super().__init__(f"no progress: {events} events at {now} ns without simulated time "
                         f"passing (a program that does no work, e.g. work_ns 0?)")
        self.now = now


class Engine:
    """Simulated clock plus a heap of pending actions; O(log n) per event."""

    __slots__ = ("now", "_heap", "_seq", "processed", "horizon", "step_limit",
                 "_still_since")

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[list[Any]] = []
        self._seq = 0
        self.processed = 0
        # While run() loops, an action may carry on inline up to (not including) the next
        # queued event and not past this time; step() sets it to -1 so nothing runs ahead.
        self.horizon = -1
        self.step_limit = NO_LIMIT  # run() stops once ``processed`` reaches it
        self._still_since = 0       # ``processed`` when the clock last moved (step())

    def schedule(
        self, delay_ns: int, action: Callable[..., None], *args: Any, prio: int = PRIO_NORMAL
    ) -> list[Any]:
        """Run ``action(*args)`` ``delay_ns`` from now; return a handle for ``cancel``."""
        if delay_ns < 0:
            raise ValueError("cannot schedule in the past")
        self._seq += 1
        entry = [self.now + delay_ns, prio, self._seq, action, args]
        heapq.heappush(self._heap, entry)
        return entry

    @staticmethod
    def cancel(entry: list[Any] | None) -> None:
        """Forget a scheduled action (lazy: the entry is skipped when popped)."""
        if entry is not None:
            entry[_ACTION] = None

    def _drop_cancelled(self) -> None:
        heap = self._heap
        while heap and heap[0][_ACTION] is None:
            heapq.heappop(heap)

    def peek(self) -> int | None:
        """Time of the next live event, or None when nothing is scheduled."""
        self._drop_cancelled()
        return self._heap[0][_T] if self._heap else None

    def step(self) -> bool:
        """Advance the clock to the next live event and run it; False if none is left."""
        heap = self._heap
        while heap:
            entry = heapq.heappop(heap)
            action = entry[_ACTION]
            if action is None:
                continue
            if entry[_T] != self.now:
                self._still_since = self.processed
            elif self.processed - self._still_since >= MAX_EVENTS_AT_ONE_TIME:
                heapq.heappush(heap, entry)  # left as it was: the error is the answer
                raise NoProgressError(self.now, MAX_EVENTS_AT_ONE_TIME)
            self.now = entry[_T]
            self.processed += 1
            action(*entry[_ARGS])
            return True
        return False

    def run(self, until_ns: int | None = None, max_steps: int | None = None) -> None:
        """Run every event due at or before ``until_ns`` (all of them when None), stopping
        once ``processed`` reaches ``max_steps``: replays stop at an exact step this way.

        NoProgressError once MAX_EVENTS_AT_ONE_TIME events ran without the clock moving;
        checked between chunks of that many events, so the loop itself pays nothing.
        """
        last = max_steps if max_steps is not None else NO_LIMIT
        limit = until_ns if until_ns is not None else NO_LIMIT
        while True:
            started_at, started = self.now, self.processed
            self._run_chunk(limit, min(last, started + MAX_EVENTS_AT_ONE_TIME))
            if self.processed - started < MAX_EVENTS_AT_ONE_TIME or self.processed >= last:
                return
            if self.now == started_at:  # the clock never goes back: all ran at one time
                raise NoProgressError(self.now, self.processed - started)

    def _run_chunk(self, limit: int, step_limit: int) -> None:
        heap = self._heap
        pop = heapq.heappop
        self.horizon = limit
        self.step_limit = step_limit
        try:
            # ``while True`` with breaks, not ``while heap and ...``: CPython 3.11
            # specialises bytecode only after enough calls or unconditional backward
            # jumps; run() is entered once and its ``continue`` rarely runs, so a
            # conditional loop would stay unspecialised for the whole run.
            while True:
                if not heap or self.processed >= self.step_limit:
                    break
                entry = heap[0]
                action = entry[_ACTION]
                if action is None:
                    pop(heap)
                    continue
                if entry[_T] > limit:
                    break
                pop(heap)
                self.now = entry[_T]
                self.processed += 1
                action(*entry[_ARGS])
        finally:
            self.horizon = -1
            self.step_limit = NO_LIMIT
            self._still_since = self.processed  # step() counts afresh from here

    def run_ahead(self, delay_ns: int) -> bool:
        """Advance the clock by ``delay_ns`` as one processed event, if that event would
        be the very next one run() pops; False (nothing changed) otherwise.

        Running it inline then is exactly what the heap would do, minus the heap work;
        ties go to the heap, whose entry was scheduled first.
        """
        due = self.now + delay_ns
        if due > self.horizon or self.processed + 1 >= self.step_limit:
            return False
        heap = self._heap
        while heap and heap[0][_ACTION] is None:
            heapq.heappop(heap)
        if heap and heap[0][_T] <= due:
            return False
        self.now = due
        self.processed += 1
        return True

    def __len__(self) -> int:
        self._drop_cancelled()
        return sum(1 for e in self._heap if e[_ACTION] is not None)
