"""Rebuild a simulation at an event by replaying its action log, in bounded slices.

gunyah_core is deterministic, so a branch's scenario, seed and action log rebuild it
exactly; its guests are generators, which neither ``copy.deepcopy`` nor ``pickle`` can
copy, so a replay is how a past state comes back. What keeps a replay cheap:

- it runs the model with tracing OFF up to the last known point before the target
  (an action, whose seq and engine step are logged, or a branch mark ``(seq, step)``),
  then sets the trace's seq there and turns tracing on: nothing is built for events that
  are already in the log;
- it runs the engine in slices of ``SLICE_STEPS`` and calls ``pause()`` between them,
  so a long replay lets other sessions run (the web layer passes ``socketio.sleep(0)``);
- events a caller wants kept go to ``keep`` as they come, never into one big list;
- it can stop at a mark and carry on later (``to_mark``, then ``run``): a standby
  replayed in the background near the oldest kept event turns a fork at any depth into
  a replay of at most the kept history (webapp/history.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunyah_core import Simulation

SLICE_STEPS = 1_000  # engine steps between chances to pause (about 1 ms of model time)
STEP_PAUSE_EVERY = 256  # the same while stepping one engine event at a time

Keep = Callable[[list[dict[str, Any]]], None]
Mark = tuple[int, int]  # (seq of the last event after an engine step, that step)


def _noop() -> None:
    return None


def _mark_before(marks: list[Mark], seq: int) -> Mark | None:
    best = None
    for mark in marks:
        if mark[0] > seq:
            break
        best = mark
    return best


class Replay:
    """A simulation being replayed; ``run`` takes it to an event, ``to_mark`` to a mark."""

    def __init__(self, scenario: Any, seed: int | None, pause: Callable[[], None] = _noop) -> None:
        self.sim = Simulation(scenario, seed)
        self.pause = pause
        self.applied: list[dict[str, Any]] = []  # the action log entries applied so far
        self.keep: Keep | None = None
        self.mark: Callable[[int, int], None] | None = None
        self.through: int | None = None
        self.pending: list[dict[str, Any]] = []  # events after ``through``: not revealed
        self._boot = self.sim.trace.take()

    @property
    def seq(self) -> int:
        """The last event replayed so far."""
        return self.sim.trace.seq - 1

    def follows(self, actions: list[dict[str, Any]]) -> bool:
        """True if this replay is on the way to a run with ``actions``: what it applied is
        exactly those actions up to where it is."""
        return [a for a in actions if a["seq"] <= self.seq] == self.applied

    def _collect(self, events: list[dict[str, Any]]) -> None:
        through = self.through
        if through is not None and events and events[-1]["seq"] > through:
            cut = sum(1 for e in events if e["seq"] <= through)
            self.pending.extend(events[cut:])
            events = events[:cut]
        if self.keep is not None and events:
            self.keep(events)

    def _run_to(self, step: int, seq_after: int | None) -> None:
        """Run until ``step`` engine events are processed. When ``seq_after`` (the trace's
        seq there) is known and nothing is kept, run with tracing off and set it after."""
        sim = self.sim
        engine, trace = sim.engine, sim.trace
        dark = seq_after is not None and self.keep is None
        if dark:
            trace.on = False
        try:
            while engine.processed < step:
                before = engine.processed
                engine.run(max_steps=min(step, before + SLICE_STEPS))
                if not dark:
                    self._collect(trace.take())
                    if self.mark is not None and trace.seq:
                        self.mark(trace.seq - 1, engine.processed)
                self.pause()
                if engine.processed == before:
                    break  # the model went idle first
        finally:
            if dark:
                trace.on = True
        if dark:
            if engine.processed != step:  # a log this model wrote always replays
                raise RuntimeError("replay diverged: the model went idle early")
            trace.seq = seq_after

    def _apply(self, actions: list[dict[str, Any]], through: int | None) -> None:
        sim = self.sim
        for entry in actions[len(self.applied):]:
            if through is not None and entry["seq"] > through:
                break
            self._run_to(entry["step"], entry["seq"])
            sim.engine.now = max(sim.engine.now, entry["t"])
            sim.act(entry["action"], entry["args"])
            self.applied.append(entry)
            self._collect(sim.trace.take())

    def to_mark(self, actions: list[dict[str, Any]], mark: Mark) -> Replay:
        """Replay (dark) to just after the engine step of ``mark``; nothing is collected."""
        self.keep = self.mark = None
        self.through, self.pending, self._boot = mark[0], [], []
        self._apply(actions, mark[0])
        if mark[1] > self.sim.engine.processed and self.sim.trace.seq <= mark[0]:
            self._run_to(mark[1], mark[0] + 1)
        return self

    def run(self, actions: list[dict[str, Any]], through: int | None,
            marks: list[Mark] | None = None, keep: Keep | None = None,
            mark: Callable[[int, int], None] | None = None) -> Replay:
        """Replay to event ``through`` (None: to the last action); ``pending`` then holds
        the rest of that engine step. ``follows(actions)`` must hold."""
        sim = self.sim
        self.keep, self.mark, self.through, self.pending = keep, mark, through, []
        boot, self._boot = self._boot, []
        self._collect(boot)
        self._apply(actions, through)
        if through is None:
            return self
        best = _mark_before(marks or [], through)
        if best is not None and best[1] > sim.engine.processed and sim.trace.seq <= best[0]:
            self._run_to(best[1], best[0] + 1)
        steps = 0
        while sim.trace.seq <= through:
            if sim.engine.peek() is None and not sim.trace.pending:
                break
            self._collect(sim.step())
            steps += 1
            if steps % STEP_PAUSE_EVERY == 0:
                self.pause()
        self._collect(sim.trace.take())
        return self
