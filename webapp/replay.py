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
- events a caller wants kept go to ``keep`` as they come, never into one big list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunyah_core import Simulation

SLICE_STEPS = 4_000  # engine steps between pauses (a few ms of model time each)

Keep = Callable[[list[dict[str, Any]]], None]


def _noop() -> None:
    return None


class Replay:
    """One replay of ``actions`` to event ``through`` (None: to the last action)."""

    def __init__(self, scenario: Any, seed: int | None, actions: list[dict[str, Any]],
                 through: int | None, marks: list[tuple[int, int]] | None = None,
                 keep: Keep | None = None, pause: Callable[[], None] = _noop,
                 mark: Callable[[int, int], None] | None = None) -> None:
        self.sim = Simulation(scenario, seed)
        self.actions, self.through = actions, through
        self.marks = marks or []
        self.keep, self.pause, self.mark = keep, pause, mark
        self.pending: list[dict[str, Any]] = []  # events after ``through``: not revealed

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
                if engine.processed == step:
                    trace.seq = seq_after
                else:  # cannot happen for a log this model wrote; fall back to counting
                    raise RuntimeError("replay diverged: the model went idle early")

    def run(self) -> Replay:
        sim = self.sim
        through = self.through
        self._collect(sim.trace.take())
        for entry in self.actions:
            if through is not None and entry["seq"] > through:
                break
            self._run_to(entry["step"], entry["seq"])
            sim.engine.now = max(sim.engine.now, entry["t"])
            sim.act(entry["action"], entry["args"])
            self._collect(sim.trace.take())
        if through is None:
            return self
        mark = None
        for candidate in self.marks:
            if candidate[0] > through:
                break
            mark = candidate
        if mark is not None and mark[1] > sim.engine.processed and sim.trace.seq <= mark[0]:
            self._run_to(mark[1], mark[0] + 1)
        steps = 0
        while sim.trace.seq <= through:
            if sim.engine.peek() is None and not sim.trace.pending:
                break
            self._collect(sim.step())
            steps += 1
            if steps % SLICE_STEPS == 0:
                self.pause()
        self._collect(sim.trace.take())
        return self
