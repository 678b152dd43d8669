"""What checking the live invariants costs the model: msgq-pingpong for 100 ms of
simulated time with tracing on, unchecked and checked, best of five runs each.

    PYTHONPATH=. python benchmarks/bench_invariants.py
"""

from __future__ import annotations

import json
import time

from gunyah_core import Simulation, load

RUN_NS = 100_000_000
RUNS = 5


def best(check: bool) -> tuple[float, int]:
    rates, events = [], 0
    for _ in range(RUNS):
        sim = Simulation(load("msgq-pingpong"), check_invariants=check)
        start = time.perf_counter()
        sim.run(until_ns=RUN_NS, collect=False)
        rates.append(sim.trace.seq / (time.perf_counter() - start))
        events = sim.trace.seq
    return max(rates), events


if __name__ == "__main__":
    unchecked, events = best(False)
    checked, _ = best(True)
    print(json.dumps({"events": events, "unchecked_events_per_s": round(unchecked),
                      "checked_events_per_s": round(checked),
                      "checked_over_unchecked": round(checked / unchecked, 2)}))
