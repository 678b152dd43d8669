"""History costs in process (no network): memory per million events kept, and the time
of a fork, a branch switch and a link replay at a given depth. Prints one JSON object.

    python benchmarks/bench_history.py [--events 1000000] [--depths 1000,250000,499000]

The viewer is a webapp Session driven directly (as the Socket.IO handlers do), playing
msgq-pingpong. Memory is what tracemalloc sees allocated by the branch's EventLog, and,
for comparison, by the same events kept as a list of dicts (the former storage).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gunyah_core import Simulation, load  # noqa: E402
from webapp.budget import MemoryBudget  # noqa: E402
from webapp.eventlog import EventLog  # noqa: E402
from webapp.session import Session  # noqa: E402

STEP = 10_000
MIB = 1024 * 1024
ACTION = ("set_priority", {"vcpu": "HLOS.0", "priority": 32})
SCENARIO = "msgq-pingpong"


class Tasks:
    """Background work (the standby replays) waits until ``drain()``, which runs and times
    it. The reveal drains after each step, as a server runs background tasks between
    its viewers' turns; the forks are timed with whatever that left in place."""

    def __init__(self) -> None:
        self.background_ms: list[float] = []
        self.queued: list = []

    def sleep(self, _seconds: float) -> None:
        return None

    def start_background_task(self, fn, *args) -> None:
        self.queued.append((fn, args))

    def drain(self) -> None:
        while self.queued:
            fn, args = self.queued.pop(0)
            t0 = time.perf_counter()
            fn(*args)
            self.background_ms.append(round((time.perf_counter() - t0) * 1000, 1))


def memory_per_million(events: int) -> dict:
    """Bytes held per million events: compact log vs list of dicts (tracemalloc)."""
    sim = Simulation(load(SCENARIO))
    out = {}
    for name, make in (("event_log", lambda: EventLog(events)), ("dict_list", list)):
        sim = Simulation(load(SCENARIO))
        gc.collect()
        tracemalloc.start()
        store = make()
        left = events
        while left > 0:
            batch = sim.run(max_events=min(STEP, left))
            store.extend(batch)
            left -= len(batch)
            del batch
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[name] = round(held / MIB / events * 1e6, 1)
        del store
    return {"mib_per_million_events": out}


def timings(events: int, depths: list[int]) -> dict:
    tasks = Tasks()
    session = Session(SCENARIO, lambda *a, **k: None, tasks, budget=MemoryBudget(2**62))
    t0 = time.perf_counter()
    while session.last_seq + 1 < events:
        session.step(count=STEP)
        tasks.drain()  # the standbys follow the head
    reveal_s = time.perf_counter() - t0
    standby_s = sum(tasks.background_ms) / 1000
    tasks.background_ms.clear()
    head = session.last_seq
    out: dict = {"events": head + 1, "reveal_s": round(reveal_s - standby_s, 1),
                 "standbys_during_reveal_s": round(standby_s, 1)}

    def timed(name: str, key: int, fn) -> None:
        """Wall ms in out[name], CPU ms in out[name + '_cpu'] (the wall clock of a shared
        machine counts the waits for a core too)."""
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        out.setdefault(name, {})[key] = round((time.perf_counter() - wall) * 1000, 1)
        out.setdefault(name + "_cpu", {})[key] = round((time.process_time() - cpu) * 1000, 1)

    # Straight after the reveal, with the standbys where following the head left them
    # (the first fork after a pause): how far a fork at each depth would replay, and the
    # depth where that is furthest.
    actions = session.branches.current.actions
    starts = sorted(s.seq for s in session._standbys)
    def replays(at: int) -> int:
        return at - max((s for s in starts if s <= at), default=-1)
    out["first_fork_replays_events"] = {d: replays(head - d) for d in depths}
    worst = max(range(session.history.first_seq, head + 1, 97), key=replays)
    out["worst_depth"], out["worst_replays_events"] = head - worst, replays(worst)
    assert all(s.follows(actions) for s in session._standbys)
    timed("first_fork_ms", head - worst, lambda: session.act(*ACTION, at_seq=worst))
    for depth in depths:
        session.switch_branch(0)
        tasks.drain()
        timed("fork_ms", depth, lambda d=depth: session.act(*ACTION, at_seq=head - d))
        branch = session.branches.current.id
        tasks.drain()
        timed("switch_parked_ms", depth, lambda: session.switch_branch(0))
        session.branches.unpark(session.branches.get(branch))  # force the replay path
        tasks.drain()
        timed("switch_replayed_ms", depth, lambda b=branch: session.switch_branch(b))
    out["standby_build_ms"] = tasks.background_ms
    link = session.link()
    other = Session(SCENARIO, lambda *a, **k: None, Tasks(), budget=MemoryBudget(2**62))
    through = min(head, 200_000)
    timed("link_replay_ms", through, lambda: other.load(
        scenario=SCENARIO, actions=link["actions"], through_seq=through))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--memory-events", type=int, default=1_000_000,
                        help="events for the memory figure (0: leave it out)")
    parser.add_argument("--depths", default="1000,250000,499000")
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    memory = memory_per_million(args.memory_events) if args.memory_events else {}
    result = {"scenario": SCENARIO, **memory, **timings(args.events, depths)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
