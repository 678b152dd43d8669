"""A trace event never changes after it is emitted: a kept history, an export made later
and a client that reloads must all see the machine as it was at that event."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load, preset_names
from gunyah_core.exporters.jsonl import dumps_event

RUN_EVENTS = 30_000


@pytest.mark.parametrize("preset", preset_names())
def test_events_read_later_are_the_events_emitted(preset):
    sim = Simulation(load(preset))
    at_emit: dict[int, str] = {e["seq"]: dumps_event(e) for e in sim.trace.pending}
    sim.trace.subscribe(lambda e: at_emit.__setitem__(e["seq"], dumps_event(e)))
    events = sim.trace.take() + sim.run(max_events=RUN_EVENTS)
    changed = [e["kind"] for e in events if dumps_event(e) != at_emit[e["seq"]]]
    assert changed == []
