"""Branches of one session's history: rewind, fork, and go back to an old future.

A branch is a scenario, a seed and an action log (where each user action happened);
replaying the log rebuilds the branch's simulation exactly (gunyah_core is
deterministic). Forking at event ``seq`` keeps the actions before it, so a new action
there starts a new future while the old branch stays reachable. Events are kept per
branch, compactly and capped (webapp/eventlog.py), for the client's scrubber and for
exports. A branch left for another keeps its simulation parked (at most
``MAX_PARKED`` per session), so going back to it needs no replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .eventlog import EventLog

MAX_BRANCHES = 32
MAX_HISTORY_EVENTS = 500_000    # revealed events kept per branch (oldest dropped beyond)
MAX_PARKED = 4                  # branches whose simulation stays alive when left
MARK_EVERY_EVENTS = 2_000       # a (seq, engine step) mark at least this often
MAX_MARKS = 512                 # marks per branch; past it, every other one before the
                                # oldest kept event goes (their spacing doubles)


@dataclass
class Parked:
    """A left branch's live simulation and what it had not revealed yet."""

    sim: Any
    pending: list[dict[str, Any]]
    view_ns: int


@dataclass
class Branch:
    """One line of history. ``fork_seq``: the last event it shares with its parent.

    ``marks`` are ``(seq, step)`` pairs: after engine step ``step`` the trace's last event
    was ``seq``. A replay runs the engine to the mark before its target in one go (where
    to stop is exact) and steps one event at a time only from there.
    """

    id: int
    parent: int | None
    fork_seq: int
    actions: list[dict[str, Any]] = field(default_factory=list)
    events: EventLog = field(default_factory=lambda: EventLog(MAX_HISTORY_EVENTS))
    marks: list[tuple[int, int]] = field(default_factory=list)
    parked: Parked | None = None

    @property
    def head_seq(self) -> int:
        return self.events.head_seq

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "parent": self.parent, "fork_seq": self.fork_seq,
                "head_seq": self.head_seq, "actions": len(self.actions),
                "last_action": self.actions[-1]["action"] if self.actions else None}

    def window(self, from_seq: int, count: int) -> list[dict[str, Any]]:
        """Events from ``from_seq`` on (at most ``count``)."""
        return self.events.window(from_seq, count)

    def mark(self, seq: int, step: int) -> None:
        """Note that engine step ``step`` ended with event ``seq`` (sparse: every
        MARK_EVERY_EVENTS or so). Marks before the oldest kept event are where a standby
        replayed from event 0 stops to yield (webapp/history.py), so they are thinned,
        not dropped: a replay between two of them holds the server that long."""
        marks = self.marks
        if not marks or seq - marks[-1][0] >= MARK_EVERY_EVENTS:
            marks.append((seq, step))
            if len(marks) > MAX_MARKS:
                old = sum(1 for m in marks if m[0] < self.events.first_seq)
                if old > 1:  # every other old one, keeping the last before the oldest kept
                    marks[:old] = marks[old - 1::-2][::-1]

    def mark_before(self, seq: int) -> tuple[int, int] | None:
        """The last mark at or before ``seq``."""
        best = None
        for mark in self.marks:  # a few thousand at most; bisect is not worth a key copy
            if mark[0] > seq:
                break
            best = mark
        return best


class Branches:
    """All branches of a session and which one is current."""

    def __init__(self, budget: Any = None) -> None:
        self.budget = budget
        self.all: list[Branch] = [self._track(Branch(0, None, -1))]
        self.current = self.all[0]
        self._parked: list[Branch] = []  # least recently left first

    def _track(self, branch: Branch) -> Branch:
        if self.budget is not None:
            self.budget.track(branch.events)
        return branch

    def fork(self, at_seq: int, actions: list[dict[str, Any]], events: EventLog) -> Branch:
        """A new branch sharing the current one's events up to ``at_seq``."""
        if len(self.all) >= MAX_BRANCHES:
            raise OverflowError(f"at most {MAX_BRANCHES} branches")
        branch = Branch(len(self.all), self.current.id, at_seq, list(actions), events,
                        [m for m in self.current.marks if m[0] <= at_seq])
        self.all.append(self._track(branch))
        self.current = branch
        return branch

    def park(self, branch: Branch, parked: Parked) -> None:
        """Keep a left branch's simulation; beyond MAX_PARKED, the one left longest ago
        is dropped (going back there replays it)."""
        branch.events.seal()
        self.unpark(branch)
        branch.parked = parked
        self._parked.append(branch)
        while len(self._parked) > MAX_PARKED:
            self._parked.pop(0).parked = None

    def unpark(self, branch: Branch) -> Parked | None:
        """Take a branch's parked simulation (None if it has none)."""
        parked, branch.parked = branch.parked, None
        if branch in self._parked:
            self._parked.remove(branch)
        return parked

    def get(self, branch_id: int) -> Branch | None:
        return self.all[branch_id] if 0 <= branch_id < len(self.all) else None

    def summaries(self) -> list[dict[str, Any]]:
        return [b.summary() for b in self.all]
