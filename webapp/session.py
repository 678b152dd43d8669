"""One viewer's simulation: a gunyah_core Simulation, its reveal buffer and its pacing.

Time travel (links, forks, branches, imports) is in webapp/history.py.
The engine runs ahead of what the viewer has seen by at most what a step produced
(more only after a `sim:step {kind}` search that found nothing); the viewer sees events
only through `sim:trace` batches, so seq numbers arrive contiguous. Play paces simulated
time against the wall clock in a background task with a stop flag.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from gunyah_core import Simulation, load, parse, preset_names
from gunyah_core.core.engine import NoProgressError
from gunyah_core.exporters import open_writer
from gunyah_core.teaching.captions import caption

from .branches import MAX_HISTORY_EVENTS, Branches  # noqa: F401  (handlers read it here)
from .budget import DEFAULT_BUDGET, MemoryBudget
from .eventlog import EventLog, EventQueue
from .history import SEND_CHUNK_EVENTS, HistoryMixin
from .pacer import Pacer, pacer_for
from .protocol import (
    EV_ERROR,
    EV_SNAPSHOT,
    EV_STATUS,
    EV_TRACE,
    MAX_SPEED_NAME,
    MAX_STEP_KIND_SCAN,
    NO_PROGRESS,
    NOT_FOUND,
    REPLAY_ONLY,
    UNKNOWN_SCENARIO,
    ProtocolError,
    error,
)

CAPTIONED_PER_BATCH = 200       # a batch's newest events that carry their caption (a flood's
                                # older ones, too fast to read, get null: the page asks later)
TICK_S = 1 / 60                 # pacing period; one sim:trace emit per tick at most
TICK_BUDGET_EVENTS = 400        # events revealed per tick at most (a browser parses each batch
                                # on its main thread: small batches keep frames smooth); the
                                # time a tick may take is the pacer's share (webapp/pacer.py)
MAX_BACKLOG_PACKETS = 4         # skip a tick while more packets than this wait to be sent
BACKLOG_WAIT_S = 0.002          # how long to wait for the transport to drain them
STATUS_PERIOD_S = 0.5           # sim:status while playing, at most this often
DEFAULT_SPEED = 1e-5            # simulated seconds per wall second: 10 us of model time
EXPORT_FLUSH_EVENTS = 500       # events written per piece of a streamed export
HEAVY_SLICE_S = 0.010           # long work (replay, import, export) yields after this long
MAX_SILENT_STEPS = 100_000      # engine steps without a trace event before giving up
NS_PER_S = 1_000_000_000

ACK_TIMEOUT_S = 5.0             # a trace batch unacked this long no longer holds the window
Emit = Callable[..., None]      # emit(event, data, callback=None)



def captions_of(events: list[dict[str, Any]]) -> list[str | None]:
    """``captions[i]`` for ``events[i]``: the newest CAPTIONED_PER_BATCH, null before them."""
    skip = max(0, len(events) - CAPTIONED_PER_BATCH)
    return [None] * skip + [caption(e) for e in events[skip:]]

class Session(HistoryMixin):
    """State of one connection; every public method is safe to call from any task."""

    def __init__(self, scenario: str, emit: Emit, tasks: Any,
                 backlog: Callable[[], int] = lambda: 0, clock=time.monotonic,
                 budget: MemoryBudget = DEFAULT_BUDGET, pacer: Pacer | None = None) -> None:
        self.token = secrets.token_urlsafe(16)
        self.budget = budget
        self._paused_at = clock()
        self._standbys: list[Any] = []        # see HistoryMixin._want_standby
        self._standby_gen = 0
        self._standby_head = -1
        self._standby_lock = threading.Lock()
        self._emit, self._tasks, self._backlog, self._clock = emit, tasks, backlog, clock
        self._lock = threading.Lock()
        self.playing = False
        self.due = 0.0             # wall time of the next pacing turn (webapp/pacer.py)
        self._pacer = pacer if pacer is not None else pacer_for(tasks)
        self.speed: float | str = DEFAULT_SPEED
        self._rate = (0.0, 0)      # (wall time, revealed count) at the last status
        self.window = 0            # unacked sim:trace batches allowed while playing; 0 = off
        self._batch_id = 0
        self._inflight: dict[int, float] = {}  # batch id -> wall time sent
        self.events_per_s = 0.0
        self.builds = 0  # how many machines this session has built (see _build)
        self._build(load(scenario), None)
        self.fresh = True  # nothing revealed yet: the first sim:hello reveals the boot (greet)

    @property
    def sim(self) -> Simulation:
        return self._sim

    @sim.setter
    def sim(self, sim: Simulation) -> None:
        """Every simulation a session runs (built, forked, a link's) checks the live
        invariants from where it stands; the first violation pauses the run (_tick)."""
        sim.check_invariants()
        self._sim = sim
        self._told_violation = None

    # -- scenario ------------------------------------------------------------------------
    def _build(self, scenario, seed: int | None) -> None:
        self._drop_standby()
        self.sim = Simulation(scenario, seed=seed)
        # Which build a snapshot belongs to: a reset draws the same machine at the same
        # seq, and the page must still tell it from the echo of the previous one.
        self.builds += 1
        # A scenario may say how fast it is best watched (its events' time scale).
        self.speed = scenario.config.get("speed", DEFAULT_SPEED)
        self.pending: list[dict[str, Any]] = []
        self.branches = Branches(self.budget)
        self.imported: EventQueue | None = None  # replay-only: no model
        self.imported_snapshot: dict[str, Any] | None = None
        self.revealed = 0
        self.last_seq = -1
        self._inflight = {}
        self.view_ns = 0
        self.boot_seq = -1  # the boot's last event (Simulation.boot): the log folds it
        self.fresh = False

    def greet(self) -> dict[str, Any] | None:
        """A viewer's first sim:hello to a new session: reveal the boot and send it with
        the machine as built, as a load does (None when the session has already begun)."""
        with self._lock:
            if not self.fresh:
                return None
            self.fresh = False
            if self.revealed == 0 and self.imported is None:
                self._boot()
        return self.resend(-1)

    def _boot(self) -> None:
        """Reveal a new simulation's boot into the history (the caller sends it after its
        snapshot), so the first step shows the first event the scenario is about."""
        boot, rest = self.sim.boot()
        self.pending = boot + rest
        self._reveal(len(boot))
        if boot:
            self.boot_seq = boot[-1]["seq"]
            self.branches.current.mark(self.pending[-1]["seq"] if self.pending
                                       else self.boot_seq, self.sim.engine.processed)

    @property
    def history(self) -> EventLog:
        """The current branch's revealed events (what exports and the scrubber see)."""
        return self.branches.current.events

    def _pause(self) -> None:
        """Let other sessions run in the middle of long work (replays, imports, exports):
        called often, it yields once HEAVY_SLICE_S has passed since the last time."""
        if self._clock() - self._paused_at >= HEAVY_SLICE_S:
            self._tasks.sleep(0)
            self._paused_at = self._clock()

    def load(self, scenario: str | None = None, text: str | None = None,
             filename: str = "upload", seed: int | None = None,
             actions: list[dict[str, Any]] | None = None,
             through_seq: int | None = None) -> dict[str, Any]:
        """Replace the simulation (paused); ScenarioError leaves the old one running.

        With ``actions`` (a shared link), the run is replayed through ``through_seq`` (or
        its last action) and those events are revealed at once.
        """
        if scenario is not None and scenario not in preset_names():  # never a server path
            raise ProtocolError(UNKNOWN_SCENARIO, f"no preset named {scenario!r}; "
                                                  f"presets: {', '.join(preset_names())}")
        parsed = load(scenario) if scenario is not None else parse(text or "", filename)
        if not actions and through_seq is None:
            return self._rebuild(parsed, seed)
        return self._load_link(parsed, seed, actions or [], through_seq)

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        """Rebuild the same scenario, with the same seed unless one is given."""
        return self._rebuild(self.sim.scenario, self.sim.seed if seed is None else seed)

    def _rebuild(self, scenario, seed: int | None) -> dict[str, Any]:
        with self._lock:
            self._stop()
            self._build(scenario, seed)
            snap = {**self.sim.snapshot(), "build": self.builds}  # the machine as built
            self._boot()
            snap["boot_seq"] = self.boot_seq
            self._emit(EV_SNAPSHOT, snap)
            self._send(list(self.history))
            self._emit(EV_STATUS, self._status())
        return {"snapshot": snap, "boot_seq": self.boot_seq, "head_seq": self.last_seq}

    # -- stepping ----------------------------------------------------------------------------
    def _more(self) -> bool:
        """Append the next engine step's events to pending; False once the model is idle."""
        if self.imported is not None:  # replay-only: the next imported events
            chunk = [self.imported.popleft() for _ in range(min(len(self.imported),
                                                                 TICK_BUDGET_EVENTS))]
            self.pending.extend(chunk)
            return bool(chunk)
        sim = self.sim
        for _ in range(MAX_SILENT_STEPS):
            if sim.trace.pending or sim.engine.peek() is None:
                taken = sim.trace.take()  # e.g. an action's user.action while idle
                self.pending.extend(taken)
                return bool(taken)
            events = sim.step()
            if events:
                self.pending.extend(events)
                self.branches.current.mark(events[-1]["seq"], sim.engine.processed)
                return True
        return False

    def _fill(self) -> bool:
        return bool(self.pending) or self._more()

    def _reveal(self, count: int) -> list[dict[str, Any]]:
        out = self.pending[:count]
        del self.pending[:count]
        self.fresh = False  # the run has begun: a first sim:hello now has no boot to send
        if out:
            self.history.extend(out)  # keeps the newest MAX_HISTORY_EVENTS; rewinds stop there
            self.revealed += len(out)
            self.last_seq = out[-1]["seq"]
            self.view_ns = max(self.view_ns, out[-1]["t"])
            self._follow_head()
        return out

    def _reveal_count(self, n: int, deadline: float | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < n and self._fill():
            out.extend(self._reveal(n - len(out)))
            if deadline is not None and self._clock() > deadline:
                break
        return out

    def _reveal_until(self, target_ns: int, deadline: float) -> tuple[list, bool]:
        """Reveal events with t <= target; True if all of them fit the tick budget."""
        out: list[dict[str, Any]] = []
        sim = self.sim
        while len(out) < TICK_BUDGET_EVENTS and self._clock() <= deadline:
            if self.imported is not None and not self.pending and not self._more():
                return out, True
            if not self.pending and sim.trace.pending and self.imported is None:
                self.pending.extend(sim.trace.take())
            if not self.pending and self.imported is None:
                due = sim.engine.peek()
                if due is None or due > target_ns:
                    sim.run(until_ns=target_ns)  # nothing due: only moves the clock on
                    self.view_ns = max(self.view_ns, target_ns)
                    return out, True
                stepped = sim.step()
                if stepped:
                    self.pending.extend(stepped)
                    self.branches.current.mark(stepped[-1]["seq"], sim.engine.processed)
                continue
            ready = len(self.pending)
            while ready and self.pending[ready - 1]["t"] > target_ns:
                ready -= 1
            if not ready:
                self.view_ns = max(self.view_ns, target_ns)
                return out, True
            out.extend(self._reveal(min(ready, TICK_BUDGET_EVENTS - len(out))))
        return out, False

    def _send(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        # Captions ride beside the events: the stored trace stays exactly the model's.
        batch = {"first_seq": events[0]["seq"], "last_seq": events[-1]["seq"],
                 "now_ns": self.view_ns, "events": events, "captions": captions_of(events)}
        if not self.window:
            self._emit(EV_TRACE, batch)
            return
        self._batch_id += 1
        self._inflight[self._batch_id] = self._clock()
        self._emit(EV_TRACE, batch, callback=partial(self._on_batch_ack, self._batch_id))

    def _on_batch_ack(self, batch_id: int, *_reply: Any) -> None:
        with self._lock:
            self._inflight.pop(batch_id, None)

    def set_window(self, window: int) -> None:
        """Opt in to flow control: play waits while `window` batches are unacknowledged."""
        with self._lock:
            self.window = window

    def _window_full(self) -> bool:
        if not self.window:
            return False
        stale = self._clock() - ACK_TIMEOUT_S
        for batch_id in [b for b, sent in self._inflight.items() if sent < stale]:
            del self._inflight[batch_id]
        return len(self._inflight) >= self.window

    def resend(self, after_seq: int) -> dict[str, Any]:
        """Send a resumed viewer what follows the last event it applied, ``after_seq``,
        as sim:trace batches: no gap, no repeat (webapp/store.py; design §7). A viewer
        with nothing (-1, e.g. after a reload) or one this branch cannot continue gets the
        boot snapshot first, then every kept event. Batches sent to the old connection
        will never be acknowledged, so they stop holding the flow-control window."""
        with self._lock:
            self._inflight.clear()
            self.fresh = False
            branch = self.branches.current
            first = next(iter(self.history), None)
            start = first["seq"] if first is not None else self.last_seq + 1
            full = after_seq < 0 or after_seq < start - 1 or after_seq > self.last_seq
            if full:
                self._emit(EV_SNAPSHOT, self.imported_snapshot if self.imported_snapshot
                           is not None else {**self._snapshot_at_start(), "build": self.builds})
            else:
                start = after_seq + 1
            first_sent, sent = start, 0
            while start <= self.last_seq:
                page = branch.window(start, SEND_CHUNK_EVENTS)
                if not page:
                    break
                self._send(page)
                sent, start = sent + len(page), page[-1]["seq"] + 1
            self._emit(EV_STATUS, self._status())
            return {"from_seq": first_sent, "events": sent, "snapshot": full}

    def step(self, count: int | None = None, kind: str | None = None) -> dict[str, Any]:
        """Pause, then reveal `count` events (default 1) or up to the next event of `kind`."""
        with self._lock:
            self._stop()
            if kind is None:
                revealed = self._step_count(count or 1)
            else:
                events = self._reveal_kind(kind)
                self._send(events)
                revealed = len(events)
            self._emit(EV_STATUS, self._status())
            return {"revealed": revealed, "last_seq": self.last_seq,
                    "now_ns": self.view_ns, "finished": self._finished()}

    def _step_count(self, count: int) -> int:
        """Reveal and send ``count`` events in batches of at most SEND_CHUNK_EVENTS,
        pausing between them: a step of MAX_STEP_COUNT held the event loop for 50 ms."""
        revealed = 0
        while revealed < count:
            want = min(count - revealed, SEND_CHUNK_EVENTS)
            events = self._reveal_count(want)
            self._send(events)
            revealed += len(events)
            if len(events) < want:
                break  # the model is idle
            self._pause()
        return revealed

    def _reveal_kind(self, kind: str) -> list[dict[str, Any]]:
        """Reveal up to the next `kind` event; on NOT_FOUND what was scanned stays pending."""
        for scanned in range(MAX_STEP_KIND_SCAN):
            if scanned >= len(self.pending) and not self._more():
                raise ProtocolError(NOT_FOUND, f"no {kind} event: the model has stopped")
            if self.pending[scanned]["kind"] == kind:
                return self._reveal(scanned + 1)
        raise ProtocolError(NOT_FOUND, f"no {kind} event in the next {MAX_STEP_KIND_SCAN} events")

    def _finished(self) -> bool:
        if self.imported is not None:
            return not self.pending and not self.imported
        return not self.pending and self.sim.engine.peek() is None and not self.sim.trace.pending

    # -- actions and views --------------------------------------------------------------------
    def act(self, action: str, args: dict[str, Any],
            at_seq: int | None = None) -> dict[str, Any]:
        """Apply a user action (ActionError on refusal); its events follow in later steps.

        ``at_seq`` is where the viewer is: before the head, the action forks a new branch
        there (the old future stays reachable with sim:branch).
        """
        with self._lock:
            if self.imported is not None:
                raise ProtocolError(REPLAY_ONLY, "an imported timeline replays; it has no model")
            fork = None
            if at_seq is not None and at_seq < self.last_seq:
                self._stop()
                fork = self._fork(at_seq)
            ack = self.sim.act(action, args)
            self.branches.current.actions = list(self.sim.action_log)
            if fork is not None:
                ack["fork"] = fork
            ack["branch"] = self.branches.current.id
            return ack

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            if self.imported_snapshot is not None:
                return self.imported_snapshot
            return self.sim.snapshot()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status()

    def _status(self) -> dict[str, Any]:
        return {"playing": self.playing, "speed": self.speed, "now_ns": self.view_ns,
                "seq": self.last_seq, "boot_seq": self.boot_seq,
                "events_per_s": round(self.events_per_s, 1),
                "scenario": self.sim.scenario.name, "seed": self.sim.seed,
                "finished": self._finished(), "branch": self.branches.current.id,
                "branches": len(self.branches.all), "replay_only": self.imported is not None,
                "invariants": self._invariants()}

    def _invariants(self) -> dict[str, Any] | None:
        checks = self.sim.invariants if self.imported is None else None
        return checks.status() if checks is not None else None

    def _violation_revealed(self) -> bool:
        """True once, when the first invariant violation's event has been revealed."""
        checks = self.sim.invariants if self.imported is None else None
        found = checks.violation if checks is not None else None
        if found is None or found is self._told_violation or found["seq"] > self.last_seq:
            return False
        self._told_violation = found
        return True

    def export(self, fmt: str, fileobj) -> int:
        """Write the revealed trace so far in `fmt`; ValueError for unknown formats."""
        count, pieces = self.export_stream(fmt)
        for piece in pieces:
            fileobj.write(piece)
        return count

    def export_stream(self, fmt: str) -> tuple[int, Iterator[str]]:
        """The revealed trace so far in `fmt`: its event count and its text, in pieces
        written while they are read (a download never holds the whole file).

        The events are the current branch's at the call (sealed chunks are immutable, so
        the lock is held only to take them); a pause after each piece lets other sessions
        run. ValueError for unknown formats, before anything is produced.
        """
        buf = io.StringIO()
        writer = open_writer(fmt, buf)  # ValueError now, not mid-stream
        with self._lock:
            count = len(self.history)
            chunks = self.history.chunks()
            first = next(chunks, None)  # takes the chunk list and the tail, under the lock

        def pieces():
            written = 0
            for chunk in ([first] if first is not None else []), chunks:
                for events in chunk:
                    for event in events:
                        writer.write(event)
                        written += 1
                        if written % EXPORT_FLUSH_EVENTS == 0:
                            yield _drain(buf)
                            self._pause()
            writer.close()
            yield _drain(buf)

        return count, pieces()

    # -- pacing ------------------------------------------------------------------------------
    def set_speed(self, speed: float | str) -> dict[str, Any]:
        with self._lock:
            self.speed = speed
            self._anchor()
            self._emit(EV_STATUS, self._status())
            return {"speed": speed}

    def play(self) -> dict[str, Any]:
        with self._lock:
            if not self.playing:
                self.playing = True
                self._anchor()
                self._rate = (self._clock(), self.revealed)
                self.due = self._clock()
                self._pacer.add(self)
                self._emit(EV_STATUS, self._status())
        return {}

    def pause(self) -> dict[str, Any]:
        with self._lock:
            if self.playing:
                self._stop()
                self._emit(EV_STATUS, self._status())
                self._want_standby()
        return {}

    def close(self) -> None:
        """Stop pacing for good (the connection has gone)."""
        with self._lock:
            self._stop()
            self._drop_standby()

    def _stop(self) -> None:
        self.playing = False  # the pacer drops the session at its next turn
        self.events_per_s = 0.0

    def _anchor(self) -> None:
        self._anchor_wall, self._anchor_ns = self._clock(), self.view_ns

    def turn(self, now: float, deadline: float) -> None:
        """One pacing turn (webapp/pacer.py): reveal until ``deadline`` at most and send
        one batch. It never waits: busy with other work (a fork, an export), the session
        lets this turn go; with the transport or the flow-control window full, it asks
        for the next turn a little later."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if not self.playing:
                return
            if self._backlog() > MAX_BACKLOG_PACKETS or self._window_full():
                self.due = now + BACKLOG_WAIT_S
                return
            try:
                self._tick(now, deadline)
            except NoProgressError as err:  # the model stalled: stop, say why
                self._stop()
                self._emit(EV_ERROR, error(NO_PROGRESS, str(err)))
                self._emit(EV_STATUS, self._status())
                return
            self.due = now if self.speed == MAX_SPEED_NAME else now + TICK_S
        finally:
            self._lock.release()

    def _tick(self, now: float, deadline: float) -> None:
        if self.speed == MAX_SPEED_NAME:
            events = self._reveal_count(TICK_BUDGET_EVENTS, deadline)
        else:
            target = self._anchor_ns + int((now - self._anchor_wall) * self.speed * NS_PER_S)
            events, complete = self._reveal_until(target, deadline)
            if not complete:  # behind the wall clock: carry on from here, don't pile up debt
                self._anchor()
        self._send(events)
        if self._finished() or self._violation_revealed():  # a violation pauses the run
            self._stop()
            self._emit(EV_STATUS, self._status())
        elif now - self._rate[0] >= STATUS_PERIOD_S:
            self.events_per_s = (self.revealed - self._rate[1]) / (now - self._rate[0])
            self._rate = (now, self.revealed)
            self._emit(EV_STATUS, self._status())


def _drain(buf) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text
