"""Baseline: a minimal SimPy model of the same msgq ping-pong, for comparison.

Two processes and two depth-8 Stores; one message = one put + one get. It models no
capabilities, vIRQs or scheduling, so it is the floor the Gunyah model is measured
against (issue target: tracing off at least this fast). Prints one JSON object, with the
events SimPy processed: compare ``events_per_s`` with ``python -m gunyah_core bench``'s,
whose events are guest operations (five a message: send, WFI, vIRQ entry, receive, EOI).
Run: .venv/bin/python benchmarks/bench_simpy_baseline.py [--messages N]
"""

from __future__ import annotations

import argparse
import json
import time

import simpy

QUEUE_DEPTH = 8
HOP_NS = 1_000


def ping(env: simpy.Environment, tx: simpy.Store, rx: simpy.Store, rounds: int):
    for i in range(rounds):
        yield tx.put(i)
        yield rx.get()


def echo(env: simpy.Environment, rx: simpy.Store, tx: simpy.Store):
    while True:
        item = yield rx.get()
        yield env.timeout(HOP_NS)
        yield tx.put(item)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    env = simpy.Environment()
    a_to_b = simpy.Store(env, QUEUE_DEPTH)
    b_to_a = simpy.Store(env, QUEUE_DEPTH)
    env.process(ping(env, a_to_b, b_to_a, args.messages // 2))
    env.process(echo(env, a_to_b, b_to_a))
    started, cpu_started = time.perf_counter(), time.process_time()
    env.run()
    seconds = time.perf_counter() - started
    cpu = max(time.process_time() - cpu_started, 1e-9)
    events = next(env._eid)  # SimPy numbers every event it schedules (private, but cheap)
    print(json.dumps({"model": "simpy-minimal", "messages": args.messages, "events": events,
                      "seconds": round(seconds, 4),
                      "messages_per_s": round(args.messages / seconds),
                      "events_per_s": round(events / seconds),
                      "cpu_seconds": round(cpu, 4),
                      "messages_per_cpu_s": round(args.messages / cpu),
                      "events_per_cpu_s": round(events / cpu)}))


if __name__ == "__main__":
    main()
