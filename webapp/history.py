"""The history half of a Session: shared links, forks, branches and imported timelines.

A mixin over ``Session`` (webapp/session.py), which owns the simulation, the reveal
buffer and the lock; these methods rebuild a simulation by replaying an action log
(gunyah_core is deterministic) or replace it with a recorded timeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gunyah_core import Simulation, preset_names
from gunyah_core.actions import ActionError
from gunyah_core.exporters import MAX_TIMELINE_EVENTS
from gunyah_core.simulation import BOOT_SETTLED, BootEnd

from .branches import MARK_EVERY_EVENTS, MAX_BRANCHES, MAX_HISTORY_EVENTS, Parked
from .eventlog import EventLog, EventQueue
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
from .replay import Replay

SEND_CHUNK_EVENTS = 2_000  # events per sim:trace batch when a whole history is sent
IMPORT_PAUSE_EVENTS = 1_000  # imported events stored between two chances to pause
STANDBY_MIN_SEQ = MAX_HISTORY_EVENTS // 2  # keep a standby once this much is dropped
STANDBY_SLICE_EVENTS = 20_000  # events a standby replays between two yields (dark)


def _no_pause() -> None:
    return None


def boot_seq_of(log: EventLog, until: str) -> int:
    """The seq of a kept run's last boot event (gunyah_core.simulation.BootEnd), -1 when
    its start is no longer kept; all of it when it ends inside the boot."""
    rule = BootEnd(until)
    last = -1
    for chunk in log.chunks():
        for event in chunk:
            if last < 0 and event["seq"] != 0:
                return -1  # the run's first events were dropped
            found = rule.feed(event)
            if found is not None:
                return found - 1  # seqs count from 0, one per event
            last = event["seq"]
    return last


class HistoryMixin:
    """Methods of Session that travel in time; see Session for the attributes."""

    def _load_link(self, scenario: Any, seed: int | None, actions: list[dict[str, Any]],
                   through_seq: int | None) -> dict[str, Any]:
        """A shared link: replay the action log through ``through_seq`` (or its last
        action) and reveal those events at once (the newest MAX_HISTORY_EVENTS kept)."""
        with self._lock:
            self._stop()
            log = EventLog(MAX_HISTORY_EVENTS)
            marks: list[tuple[int, int]] = []

            def mark(seq: int, step: int) -> None:
                if not marks or seq - marks[-1][0] >= MARK_EVERY_EVENTS:
                    marks.append((seq, step))

            try:
                replay = Replay(scenario, seed, self._pause).run(
                    actions, through_seq, keep=log.extend, mark=mark)
            except (ActionError, KeyError, TypeError, RuntimeError) as err:
                raise ProtocolError(INVALID_LINK,
                                    f"the action log does not replay: {err}") from None
            self._build(scenario, seed)
            self.branches.current.marks = marks
            self._adopt(replay.sim, log, replay.pending)
            self.boot_seq = boot_seq_of(log, scenario.config.get("boot_until", BOOT_SETTLED))
            snap = {**self._snapshot_at_start(), "build": self.builds}
            self._emit(EV_SNAPSHOT, snap)
            self._send_log(self.history)
            self._emit(EV_STATUS, self._status())
            self._want_standby()
            return {"snapshot": snap, "head_seq": self.last_seq}

    def _adopt(self, sim: Simulation, log: EventLog, pending: list[dict[str, Any]]) -> None:
        """Take a replayed simulation whose revealed events are ``log``; the rest of the
        engine step at its head waits in pending, as if the viewer had stepped there."""
        branch = self.branches.current
        self.budget.track(log)
        branch.events = log
        branch.actions = list(sim.action_log)
        self.sim = sim
        self.pending = pending
        self.revealed = len(log)
        last = log.last()
        self.last_seq = last["seq"] if last else -1
        self.view_ns = last["t"] if last else 0

    def _snapshot_at_start(self) -> dict[str, Any]:
        """The boot snapshot (what a client folds revealed events onto): the sim.snapshot
        event among the boot events, which all come in the log's first chunk."""
        for events in self.history.chunks():
            for event in events:
                if event["kind"] == "sim.snapshot":
                    return {**event["state"], "scenario": event["scenario"],
                            "boot_seq": self.boot_seq}
            break
        return {**self.sim.snapshot(), "boot_seq": self.boot_seq}

    def _send_log(self, log: EventLog) -> None:
        """Send a whole history in sim:trace batches, pausing between them."""
        batch: list[dict[str, Any]] = []
        for chunk in log.chunks():
            batch.extend(chunk)
            if len(batch) >= SEND_CHUNK_EVENTS:
                self._send(batch)
                batch = []
                self._pause()
        self._send(batch)

    def _park_current(self) -> None:
        self.branches.park(self.branches.current, Parked(self.sim, self.pending, self.view_ns))

    def _fork(self, at_seq: int) -> dict[str, Any]:
        old = self.branches.current
        if at_seq < 0 or not old.events or at_seq < old.events.first_seq:
            raise ProtocolError(NOT_FOUND, f"event {at_seq} is no longer kept")
        if len(self.branches.all) >= MAX_BRANCHES:
            raise ProtocolError(TOO_MANY_BRANCHES, f"at most {MAX_BRANCHES} branches")
        self.budget.admit("branch", MAX_HISTORY_EVENTS)
        replay = self._replay_from_standby(old.actions, at_seq).run(
            old.actions, at_seq, marks=old.marks)
        self._park_current()
        self.branches.fork(at_seq, [], old.events.prefix(at_seq))
        self._adopt(replay.sim, self.branches.current.events, replay.pending)
        self._want_standby()
        return {"from_branch": old.id, "at_seq": at_seq, "branch": self.branches.current.id}

    def switch_branch(self, branch_id: int) -> dict[str, Any]:
        """Make another branch current: its parked simulation, or one rebuilt at its head."""
        with self._lock:
            branch = self.branches.get(branch_id)
            if branch is None or self.imported is not None:
                raise ProtocolError(UNKNOWN_BRANCH, f"no branch {branch_id}")
            self._stop()
            if branch is self.branches.current:
                return {"branch": branch.summary()}
            parked = self.branches.unpark(branch)
            if parked is None:
                replay = self._replay_from_standby(branch.actions, branch.head_seq).run(
                    branch.actions, branch.head_seq, marks=branch.marks)
                parked = Parked(replay.sim, replay.pending, 0)
            self._park_current()
            self.branches.current = branch
            self._adopt(parked.sim, branch.events, parked.pending)
            self.view_ns = max(self.view_ns, parked.view_ns)
            self._emit(EV_STATUS, self._status())
            self._want_standby()
            return {"branch": branch.summary()}

    # -- the standby: a replay kept near the oldest kept event ------------------------------
    def _replay_from_standby(self, actions: list[dict[str, Any]], through: int) -> Replay:
        """The standby if it is on the way to ``through`` with these actions (it is used
        up), else a replay from event 0."""
        with self._standby_lock:
            standby = self._standby
            if standby is not None and standby.seq <= through and standby.follows(actions):
                self._standby = None
                self._standby_gen += 1  # a build still running stops
                standby.pause = self._pause
                return standby
        return Replay(self.sim.scenario, self.sim.seed, self._pause)

    def _drop_standby(self) -> None:
        with self._standby_lock:
            self._standby = None
            self._standby_gen += 1

    def _want_standby(self) -> None:
        """Start (or move on) a background replay to the mark at or before the oldest kept
        event, once that is far enough from event 0 to matter. Called with the lock held."""
        branch = self.branches.current
        if self.imported is not None or branch.events.first_seq < STANDBY_MIN_SEQ:
            return
        target = branch.mark_before(branch.events.first_seq)
        if target is None:
            return
        actions, marks = list(branch.actions), list(branch.marks)
        with self._standby_lock:
            standby = self._standby
            if standby is not None and not (standby.seq <= target[0]
                                             and standby.follows(actions)):
                standby = None
            if standby is not None and target[0] - standby.seq < STANDBY_SLICE_EVENTS:
                return  # close enough already
            self._standby = standby
            self._standby_gen += 1
            gen = self._standby_gen
        self._tasks.start_background_task(self._build_standby, gen, standby, self.sim.scenario,
                                          self.sim.seed, actions, marks, target)

    def _build_standby(self, gen: int, standby: Replay | None, scenario: Any, seed: int | None,
                       actions: list[dict[str, Any]], marks: list[tuple[int, int]],
                       target: tuple[int, int]) -> None:
        """Background task: replay dark from mark to mark (about STANDBY_SLICE_EVENTS
        apart), yielding between them; between slices the standby is at a known mark,
        so a fork can take it at any time (which stops this task)."""
        if standby is None:
            standby = Replay(scenario, seed)
        stops = [m for m in marks if standby.seq < m[0] <= target[0]]
        last = standby.seq
        for index, mark in enumerate(stops):
            if mark[0] - last < STANDBY_SLICE_EVENTS and index + 1 < len(stops):
                continue
            with self._standby_lock:
                if gen != self._standby_gen:
                    return
                standby.pause = _no_pause
                standby.to_mark(actions, mark)
                self._standby = standby
            last = mark[0]
            self._tasks.sleep(0)

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

    def import_timeline(self, events: Iterable[dict[str, Any]], name: str) -> dict[str, Any]:
        """Replay a recorded timeline on the diagram, without a model (read-only).

        ``events`` may be a lazy parser (``iter_jsonl``): they are stored compactly as they
        come, pausing every IMPORT_PAUSE_EVENTS so other sessions keep running.
        """
        self.budget.admit("timeline", MAX_TIMELINE_EVENTS)
        log = self.budget.track(EventLog(MAX_TIMELINE_EVENTS))
        snapshot = None
        batch: list[dict[str, Any]] = []
        for event in events:
            if snapshot is None and event["kind"] == "sim.snapshot":
                snapshot = event
            batch.append(event)
            if len(batch) >= IMPORT_PAUSE_EVENTS:
                log.extend(batch)
                batch = []
                self._pause()
        log.extend(batch)
        log.seal()
        state = snapshot.get("state") if snapshot else None
        if (not isinstance(state, dict) or not isinstance(state.get("vms"), list)
                or not isinstance(snapshot.get("scenario", {}), dict)):
            raise ProtocolError(INVALID_TIMELINE, "the timeline has no valid sim.snapshot event "
                                                  "to draw the machine from")
        with self._lock:
            self._stop()
            self._build(self.sim.scenario, self.sim.seed)
            self.imported = EventQueue(log)
            until = snapshot.get("scenario", {}).get("boot_until", BOOT_SETTLED)
            self.boot_seq = boot_seq_of(log, until if isinstance(until, str) else BOOT_SETTLED)
            self.imported_snapshot = {**snapshot["state"],
                                      "scenario": {**snapshot.get("scenario", {}),
                                                   "imported": name},
                                      "boot_seq": self.boot_seq, "build": self.builds}
            self._emit(EV_SNAPSHOT, self.imported_snapshot)
            self._emit(EV_STATUS, self._status())
            return {"events": len(log), "snapshot": self.imported_snapshot}
