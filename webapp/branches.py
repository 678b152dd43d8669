"""Branches of one session's history: rewind, fork, and go back to an old future.

A branch is a scenario, a seed and an action log (where each user action happened);
replaying the log rebuilds the branch's simulation exactly (gunyah_core is
deterministic). Forking at event ``seq`` keeps the actions before it, so a new action
there starts a new future while the old branch stays reachable. Events are kept per
branch for the client's scrubber and for exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_BRANCHES = 32


@dataclass
class Branch:
    """One line of history. ``fork_seq``: the last event it shares with its parent."""

    id: int
    parent: int | None
    fork_seq: int
    actions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def head_seq(self) -> int:
        return self.events[-1]["seq"] if self.events else -1

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "parent": self.parent, "fork_seq": self.fork_seq,
                "head_seq": self.head_seq, "actions": len(self.actions),
                "last_action": self.actions[-1]["action"] if self.actions else None}

    def window(self, from_seq: int, count: int) -> list[dict[str, Any]]:
        """Events from ``from_seq`` on (at most ``count``); seqs are list positions."""
        start = max(0, from_seq - (self.events[0]["seq"] if self.events else 0))
        return self.events[start:start + count]


class Branches:
    """All branches of a session and which one is current."""

    def __init__(self) -> None:
        self.all: list[Branch] = [Branch(0, None, -1)]
        self.current = self.all[0]

    def fork(self, at_seq: int, actions: list[dict[str, Any]],
             events: list[dict[str, Any]]) -> Branch:
        """A new branch sharing the current one's events up to ``at_seq``."""
        if len(self.all) >= MAX_BRANCHES:
            raise OverflowError(f"at most {MAX_BRANCHES} branches")
        branch = Branch(len(self.all), self.current.id, at_seq, list(actions), list(events))
        self.all.append(branch)
        self.current = branch
        return branch

    def get(self, branch_id: int) -> Branch | None:
        return self.all[branch_id] if 0 <= branch_id < len(self.all) else None

    def summaries(self) -> list[dict[str, Any]]:
        return [b.summary() for b in self.all]
