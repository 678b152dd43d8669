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
from .pacer import BACKGROUND_TURN
from .protocol import (
    EV_SNAPSHOT,
    EV_STATUS,
    INVALID_LINK,
    INVALID_TIMELINE,
    NOT_FOUND,
    REPLAY_ONLY,
    TOO_MANY_BRANCHES,
    UNKNOWN_BRANCH,
    ProtocolError,
)
from .replay import Replay

SEND_CHUNK_EVENTS = 2_000  # events per sim:trace batch when many are sent at once (a
                           # history, a resumed viewer catching up, a long sim:step)
IMPORT_PAUSE_EVENTS = 250  # imported events stored between two chances to pause
STANDBY_SPACING_EVENTS = MAX_HISTORY_EVENTS // 2  # standbys wait this far apart behind the head
STANDBY_COUNT = 2             # ... so a fork anywhere in the kept history replays at most
                              # about STANDBY_SPACING_EVENTS + STANDBY_LAG_EVENTS events
STANDBY_LAG_EVENTS = 20_000   # standbys move on once the head has moved this far
STANDBY_SLICE_EVENTS = 5_000  # events a standby replays between two yields (dark, ~3 ms)


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

    def fork(self, at_seq: int | None = None) -> dict[str, Any]:
        """A new branch at ``at_seq`` (default: the head) with nothing new in it yet: the
        viewer plays freely from there while the branch it left is kept as it was (a
        lesson's "explore from here"; an action in the past forks the same way)."""
        with self._lock:
            if self.imported is not None:
                raise ProtocolError(REPLAY_ONLY, "an imported timeline replays; it has no model")
            at = self.last_seq if at_seq is None else at_seq
            if at < 0:
                raise ProtocolError(NOT_FOUND, "at_seq: nothing has been revealed to fork from",
                                    "at_seq")
            if at > self.last_seq:
                raise ProtocolError(NOT_FOUND, f"at_seq: event {at} has not been revealed "
                                               f"(the head is {self.last_seq})", "at_seq")
            self._stop()
            fork = self._fork(at)
            self._emit(EV_STATUS, self._status())
            return {"fork": fork, "branch": self.branches.current.id}

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

    # -- standbys: replays that trail the head, so a fork replays a bounded distance ------
    def _replay_from_standby(self, actions: list[dict[str, Any]], through: int) -> Replay:
        """The standby nearest before ``through`` that is on the way there with these
        actions (it is used up), else a replay from event 0."""
        with self._standby_lock:
            best = None
            for standby in self._standbys:
                if standby.seq <= through and (best is None or standby.seq > best.seq) \
                        and standby.follows(actions):
                    best = standby
            if best is not None:
                self._standbys.remove(best)
                self._standby_gen += 1  # a build still running stops
                best.pause = self._pause
                return best
        return Replay(self.sim.scenario, self.sim.seed, self._pause)

    def _drop_standby(self) -> None:
        with self._standby_lock:
            self._standbys = []
            self._standby_gen += 1
        self._standby_head = -1

    def _standby_targets(self) -> list[tuple[int, int]]:
        """Marks the standbys should wait at, nearest the head first: one every
        STANDBY_SPACING_EVENTS behind the head, none before the oldest kept event's mark
        and none so near event 0 that a replay from there is as short."""
        branch = self.branches.current
        targets: list[tuple[int, int]] = []
        for n in range(1, STANDBY_COUNT + 1):
            seq = max(branch.events.first_seq, self.last_seq - n * STANDBY_SPACING_EVENTS)
            if seq <= STANDBY_LAG_EVENTS:
                break
            mark = branch.mark_before(seq)
            if mark is not None and (not targets or mark[0] < targets[-1][0]):
                targets.append(mark)
        return targets

    def _follow_head(self) -> None:
        """Called as events are revealed (lock held): once the head has moved
        STANDBY_LAG_EVENTS since the standbys were last planned, move them on."""
        if self.last_seq - self._standby_head >= STANDBY_LAG_EVENTS:
            self._want_standby()

    def _want_standby(self) -> None:
        """Plan the standbys for the current branch's head and start a background task
        that replays each (dark) to its target. Called with the lock held."""
        self._standby_head = self.last_seq
        if self.imported is not None:
            return
        targets = self._standby_targets()
        branch = self.branches.current
        actions, marks = list(branch.actions), list(branch.marks)
        with self._standby_lock:
            pool = sorted((s for s in self._standbys if s.follows(actions)),
                          key=lambda s: s.seq, reverse=True)
            plan: list[tuple[Replay | None, tuple[int, int]]] = []
            for target in targets:  # the furthest standby not past it; none: a new one
                pick = next((s for s in pool if s.seq <= target[0]), None)
                if pick is not None:
                    pool.remove(pick)
                plan.append((pick, target))
            self._standbys = [s for s, _target in plan if s is not None]
            if all(s is not None and target[0] - s.seq < STANDBY_LAG_EVENTS
                   for s, target in plan):
                return  # each close enough already (or nothing to keep)
            self._standby_gen += 1
            gen = self._standby_gen
        self._tasks.start_background_task(self._build_standby, gen, plan, self.sim.scenario,
                                          self.sim.seed, actions, marks)

    def _build_standby(self, gen: int, plan: list[tuple[Replay | None, tuple[int, int]]],
                       scenario: Any, seed: int | None, actions: list[dict[str, Any]],
                       marks: list[tuple[int, int]]) -> None:
        """Background task: replay each standby dark from mark to mark (about
        STANDBY_SLICE_EVENTS apart), yielding between slices; between slices every
        standby is at a known mark, so a fork can take one at any time (which stops
        this task: a new plan follows the fork)."""
        for standby, target in plan:
            if standby is None:
                with self._standby_lock:
                    if gen != self._standby_gen:
                        return
                    standby = Replay(scenario, seed)
                    standby.pause = _no_pause
                    self._standbys.append(standby)
                self._tasks.sleep(0)
            stops = [m for m in marks if standby.seq < m[0] <= target[0]]
            last = standby.seq
            for index, mark in enumerate(stops):
                if mark[0] - last < STANDBY_SLICE_EVENTS and index + 1 < len(stops):
                    continue
                with BACKGROUND_TURN, self._standby_lock:
                    if gen != self._standby_gen:
                        return
                    standby.pause = _no_pause
                    standby.to_mark(actions, mark)
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
