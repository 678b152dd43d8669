"""End-to-end streaming throughput: app.py in a subprocess, one python-socketio client.

Plays a scenario at speed "max" for a few seconds and counts the trace events received,
checks their seq numbers have no gap, samples ack round trips while streaming, and prints
one JSON object. Usage:

    python benchmarks/bench_socket.py [--async-mode eventlet|threading] [--seconds 5]
                                      [--scenario msgq-pingpong] [--window 2]

--window N opts in to flow control (at most N unacknowledged sim:trace batches; the
python client acks each batch when its handler returns); 0 streams without it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import socketio

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 10
ACK_SAMPLE_PERIOD_S = 0.1
DRAIN_TIMEOUT_S = 10.0
TARGET_EVENTS_PER_S = 20_000
PERCENTILE_99 = 0.99


def serving(proc: subprocess.Popen) -> tuple[subprocess.Popen, str]:
    """Wait for a started server's `Serving on URL` line: the process and its URL."""
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("Serving on "):
            return proc, line.split()[-1]
        if not line:
            break
    proc.kill()
    raise SystemExit("server did not start")


def start_server(async_mode: str, scenario: str) -> tuple[subprocess.Popen, str]:
    return serving(subprocess.Popen(
        [sys.executable, "app.py", "--port", "0", "--async-mode", async_mode,
         "--scenario", scenario],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))


class Counter:
    """Counts events as they arrive; remembers seq gaps instead of every event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events = self.batches = self.gaps = 0
        self.next_seq: int | None = None
        self.first_at: float | None = None
        self.last_at = 0.0

    def on_trace(self, batch: dict) -> None:
        now = time.perf_counter()
        with self.lock:
            events = batch["events"]
            if self.next_seq is not None and events[0]["seq"] != self.next_seq:
                self.gaps += 1
            if any(b["seq"] != a["seq"] + 1 for a, b in zip(events, events[1:], strict=False)):
                self.gaps += 1
            self.next_seq = events[-1]["seq"] + 1
            self.events += len(events)
            self.batches += 1
            self.first_at = self.first_at or now
            self.last_at = now


def run(async_mode: str, seconds: float, scenario: str, window: int) -> dict:
    proc, url = start_server(async_mode, scenario)
    counter = Counter()
    client = socketio.Client(reconnection=False)
    client.on("sim:trace", counter.on_trace)
    try:
        client.connect(url, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)
        client.call("sim:hello", {"window": window}, timeout=CALL_TIMEOUT_S)
        client.call("sim:speed", {"speed": "max"}, timeout=CALL_TIMEOUT_S)
        started = time.perf_counter()
        client.call("sim:play", {}, timeout=CALL_TIMEOUT_S)
        rtts = []
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            client.call("sim:speed", {"speed": "max"}, timeout=CALL_TIMEOUT_S)
            rtts.append((time.perf_counter() - t0) * 1000)
            time.sleep(ACK_SAMPLE_PERIOD_S)
        elapsed = time.perf_counter() - started
        status = client.call("sim:pause", {}, timeout=CALL_TIMEOUT_S)
        last_seq = client.call("sim:hello", {}, timeout=CALL_TIMEOUT_S)["status"]["seq"]
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while counter.next_seq != last_seq + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert status["ok"]
    finally:
        client.disconnect()
        proc.terminate()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    rtts.sort()
    rate = counter.events / elapsed
    return {
        "async_mode": async_mode, "scenario": scenario, "window": window,
        "seconds": round(elapsed, 2),
        "events": counter.events, "batches": counter.batches,
        "mean_batch": round(counter.events / max(1, counter.batches), 1),
        "events_per_s": round(rate), "target_events_per_s": TARGET_EVENTS_PER_S,
        "meets_target": rate >= TARGET_EVENTS_PER_S,
        "seq_gaps": counter.gaps, "all_revealed_received": counter.next_seq == last_seq + 1,
        "ack_rtt_ms_median": round(statistics.median(rtts), 2) if rtts else None,
        "ack_rtt_ms_p99": round(rtts[int(PERCENTILE_99 * (len(rtts) - 1))], 2) if rtts else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--async-mode", choices=("eventlet", "threading"), default="eventlet")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scenario", default="msgq-pingpong")
    parser.add_argument("--window", type=int, default=2)
    args = parser.parse_args()
    result = run(args.async_mode, args.seconds, args.scenario, args.window)
    print(json.dumps(result))
    return 0 if result["seq_gaps"] == 0 and result["all_revealed_received"] else 1


if __name__ == "__main__":
    sys.exit(main())
