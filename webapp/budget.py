"""The server's memory budget for kept history, shared by every session.

Each branch's events live in an EventLog (webapp/eventlog.py). The budget adds up what
every live log holds (a sealed chunk shared by a fork and its parent counts once) and
refuses a new session or branch that would take the total past the limit, with the
structured error MEMORY_BUDGET. A branch already admitted keeps growing up to its cap,
so admission reserves room for one full branch.
"""

from __future__ import annotations

import weakref

from .eventlog import EventLog
from .protocol import MEMORY_BUDGET, ProtocolError

MEMORY_BUDGET_BYTES = 2 * 1024**3   # history kept by all sessions together (configurable)
RESERVE_BYTES_PER_EVENT = 40        # compact history per event, with margin (about 14 measured)


class MemoryBudget:
    """Counts the bytes of every live EventLog against ``limit``."""

    def __init__(self, limit: int = MEMORY_BUDGET_BYTES) -> None:
        self.limit = limit
        self._logs: weakref.WeakSet[EventLog] = weakref.WeakSet()

    def track(self, log: EventLog) -> EventLog:
        self._logs.add(log)
        return log

    def used(self) -> int:
        seen: set[int] = set()
        total = 0
        for log in list(self._logs):
            total += log.tail_bytes()
            for blob in log.blobs():
                if id(blob) not in seen:
                    seen.add(id(blob))
                    total += len(blob)
        return total

    def admit(self, what: str, cap_events: int) -> None:
        """ProtocolError MEMORY_BUDGET unless one more full ``what`` fits in the budget."""
        need = cap_events * RESERVE_BYTES_PER_EVENT
        used = self.used()
        if used + need > self.limit:
            raise ProtocolError(
                MEMORY_BUDGET,
                f"the server's history memory is full ({used // 2**20} MiB of "
                f"{self.limit // 2**20} MiB kept): no new {what} now; close other sessions "
                f"or branches, or try later")


DEFAULT_BUDGET = MemoryBudget()
