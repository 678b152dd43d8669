"""Helpers shared by the RM tests: build a scenario from text and run it for a while."""

from __future__ import annotations

from typing import Any

from gunyah_core import Simulation, parse

MS = 1_000_000


def sim_of(text: str) -> Simulation:
    """A simulation of ``text`` that has booted (10 us in)."""
    sim = Simulation(parse(text))
    sim.run(until_ns=MS // 100)
    return sim


def run_for(sim: Simulation, ns: int) -> list[dict[str, Any]]:
    return sim.run(until_ns=sim.now + ns)
