"""The history half of a Session: shared links, forks, branches and imported timelines.

A mixin over ``Session`` (webapp/session.py), which owns the simulation, the reveal
buffer and the lock; these methods rebuild a simulation by replaying an action log
(gunyah_core is deterministic) or replace it with a recorded timeline.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from gunyah_core import Simulation, preset_names
from gunyah_core.actions import ActionError

from .protocol import (
    EV_SNAPSHOT,
    EV_STATUS,
    INVALID_LINK,
    INVALID_TIMELINE,
    NOT_FOUND,
    TOO_MANY_BRANCHES,
    UNKNOWN_BRANCH,
    ProtocolError,
)

SEND_CHUNK_EVENTS = 5_000  # events per sim:trace batch when a whole history is sent


class HistoryMixin:
    """Methods of Session that travel in time; see Session for the attributes."""

    def _load_link(self, scenario: Any, seed: int | None, actions: list[dict[str, Any]],
                   through_seq: int | None) -> dict[str, Any]:
        """A shared link: replay the action log through ``through_seq`` (or its last
        action) and reveal those events at once."""
        with self._lock:
            self._stop()
            try:
                sim, events = Simulation.replay(scenario, seed, actions, through_seq)
            except (ActionError, KeyError, TypeError) as err:
                raise ProtocolError(INVALID_LINK,
                                    f"the action log does not replay: {err}") from None
            self._build(scenario, seed)
            self._adopt(sim, events, through_seq)
            snap = self._snapshot_at_start()
            self._emit(EV_SNAPSHOT, snap)
            self._send_all(self.history)
            self._emit(EV_STATUS, self._status())
            return {"snapshot": snap, "head_seq": self.last_seq}

    def _adopt(self, sim: Simulation, events: list[dict[str, Any]], through: int | None) -> None:
        """Take a replayed simulation: events up to ``through`` are revealed, the rest of
        that engine step waits in pending, as if the viewer had stepped there."""
        self.sim = sim
        cut = len(events) if through is None else sum(1 for e in events if e["seq"] <= through)
        self.branches.current.events[:] = events[:cut]
        self.branches.current.actions = list(sim.action_log)
        self.pending = events[cut:]
        self.revealed = cut
        self.last_seq = events[cut - 1]["seq"] if cut else -1
        self.view_ns = events[cut - 1]["t"] if cut else 0

    def _snapshot_at_start(self) -> dict[str, Any]:
        """The boot snapshot (what a client folds revealed events onto)."""
        for event in self.history:
            if event["kind"] == "sim.snapshot":
                return {**event["state"], "scenario": event["scenario"]}
        return self.sim.snapshot()

    def _send_all(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), SEND_CHUNK_EVENTS):
            self._send(events[start:start + SEND_CHUNK_EVENTS])

    def _fork(self, at_seq: int) -> dict[str, Any]:
        if at_seq < (self.history[0]["seq"] if self.history else 0) or at_seq < 0:
            raise ProtocolError(NOT_FOUND, f"event {at_seq} is no longer kept")
        old = self.branches.current
        sim, events = Simulation.replay(self.sim.scenario, self.sim.seed, old.actions, at_seq)
        try:
            self.branches.fork(at_seq, [], [])
        except OverflowError as err:
            raise ProtocolError(TOO_MANY_BRANCHES, str(err)) from None
        self._adopt(sim, events, at_seq)
        return {"from_branch": old.id, "at_seq": at_seq, "branch": self.branches.current.id}

    def switch_branch(self, branch_id: int) -> dict[str, Any]:
        """Make another branch current: its simulation is rebuilt at its head."""
        with self._lock:
            branch = self.branches.get(branch_id)
            if branch is None or self.imported is not None:
                raise ProtocolError(UNKNOWN_BRANCH, f"no branch {branch_id}")
            self._stop()
            sim, events = Simulation.replay(self.sim.scenario, self.sim.seed, branch.actions,
                                            branch.head_seq)
            self.branches.current = branch
            self._adopt(sim, events, branch.head_seq)
            self._emit(EV_STATUS, self._status())
            return {"branch": branch.summary()}

    def branch_list(self) -> dict[str, Any]:
        with self._lock:
            return {"current": self.branches.current.id, "branches": self.branches.summaries()}

    def events(self, from_seq: int, count: int, branch_id: int | None = None) -> dict[str, Any]:
        """Revealed events of a branch (for a client that rewinds or was reloaded)."""
        with self._lock:
            branch = self.branches.current if branch_id is None else self.branches.get(branch_id)
            if branch is None:
                raise ProtocolError(UNKNOWN_BRANCH, f"no branch {branch_id}")
            return {"branch": branch.id, "events": branch.window(from_seq, count),
                    "head_seq": branch.head_seq}

    def link(self) -> dict[str, Any]:
        """What a shareable link needs to rebuild this branch: scenario, seed, actions."""
        with self._lock:
            return {"scenario": self.sim.scenario.name, "seed": self.sim.seed,
                    "actions": self.branches.current.actions,
                    "preset": self.sim.scenario.name in preset_names()
                    and self.sim.scenario.source.startswith("preset"),
                    "head_seq": self.last_seq}

    def import_timeline(self, events: list[dict[str, Any]], name: str) -> dict[str, Any]:
        """Replay a recorded timeline on the diagram, without a model (read-only)."""
        snapshot = next((e for e in events if e["kind"] == "sim.snapshot"), None)
        state = snapshot.get("state") if snapshot else None
        if (not isinstance(state, dict) or not isinstance(state.get("vms"), list)
                or not isinstance(snapshot.get("scenario", {}), dict)):
            raise ProtocolError(INVALID_TIMELINE, "the timeline has no valid sim.snapshot event "
                                                  "to draw the machine from")
        with self._lock:
            self._stop()
            self._build(self.sim.scenario, self.sim.seed)
            self.imported = deque(events)
            self.imported_snapshot = {**snapshot["state"],
                                      "scenario": {**snapshot.get("scenario", {}),
                                                   "imported": name}}
            self._emit(EV_SNAPSHOT, self.imported_snapshot)
            self._emit(EV_STATUS, self._status())
            return {"events": len(events), "snapshot": self.imported_snapshot}
