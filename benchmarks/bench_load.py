"""Load: many viewers at full speed while one does heavy history work; prints one JSON object.

A real server (app.py, eventlet by default) on loopback and real python-socketio clients:

1. the worker reveals --events events of msgq-pingpong (sim:step of 10,000 at a time);
2. --sessions neighbours connect and play at speed "max" (flow control window 2). They
   are light clients (websocket-client, one thread each, acking each batch without
   decoding it), as browsers on other machines would cost this machine nothing;
3. for --seconds, the worker repeats: export (HTTP, JSONL, read as it streams), fork near
   the head, switch back, fork deep (half the kept history back), switch back to that
   fork, import a timeline, and a fresh client loads a shared link; meanwhile a probe
   times acks (sim:branches) of the neighbours, round robin, tagged with what the worker
   was doing;
4. everyone pauses; the server's RSS is read; everyone leaves; RSS again after a wait.

The machine's load average and the server's CPU time over the run come with the
figures: on a shared machine a process that waits for a core waits, whatever its loop.

Usage:
    python benchmarks/bench_load.py [--seconds 60] [--sessions 64] [--events 1000000]
                                    [--async-mode eventlet|threading] [--no-heavy]

Figures: neighbour ack p50/p99 (all, and while each heavy operation ran), where an ack
spent its time (read, handler, the connection's queue, the client's read), where the
event loop stalled longest (load_server.py), the time of each operation, RSS per million
events kept, RSS after everyone left. It stops by itself: every wait is bounded.
"""

from __future__ import annotations

import argparse
import bisect
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import socketio
import websocket
from bench_socket import serving

REPO_ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT_S = 300
PROBE_PERIOD_S = 0.02
PREP_STEP = 10_000                    # the protocol's MAX_STEP_COUNT
LEAVE_WAIT_S = 5.0
WINDOW = 2
SCENARIO = "msgq-pingpong"
ACTION = {"action": "set_priority", "args": {"vcpu": "HLOS.0", "priority": 32}}
NEAR_DEPTH = 1_000
IMPORT_MAX_BYTES = 30 * 1024 * 1024   # under the server's 32 MiB upload limit
LINK_THROUGH = 200_000                # the protocol's MAX_LINK_EVENTS
IMPORT_EVENTS = 220_000               # about 30 MiB of JSONL
KIB = 1024
MIB = 1024 * 1024


def start_server(async_mode: str, sessions: int, prefix: str) -> tuple[subprocess.Popen, str]:
    """app.py instrumented (load_server.py), with room for the neighbours, the worker and
    an importer (MAX_SESSIONS is 64), writing its figures to files named ``prefix.*``."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("load_server.py")), "--port", "0",
         "--async-mode", async_mode, "--scenario", SCENARIO, str(sessions + 2), prefix],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return serving(proc)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB / MIB
    return float("nan")


def connect(url: str, window: int = WINDOW) -> tuple[socketio.Client, str, str]:
    """A connected client, its export token and its write key (for POST /import)."""
    # A browser validates UTF-8 natively; websocket-client does it in Python, at a cost
    # that would make this machine's clients, not the server, the bottleneck.
    client = socketio.Client(reconnection=False,
                             websocket_extra_options={"skip_utf8_validation": True})
    client.on("sim:trace", lambda batch: None)  # the python client acks on return
    client.connect(url, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)
    hello = client.call("sim:hello", {"window": window}, timeout=CALL_TIMEOUT_S)
    return client, hello["session"], hello.get("resume", {}).get("key", "")


def ok(ack: dict) -> dict:
    if not ack.get("ok"):
        raise RuntimeError(f"refused: {ack}")
    return ack


class Probe(threading.Thread):
    """Times one neighbour ack after another, tagged with the worker's current operation."""

    def __init__(self, clients: list[Neighbour]) -> None:
        super().__init__(daemon=True)
        self.clients = clients
        self.phase = "idle"
        self.samples: list[tuple[str, float]] = []
        self.spans: list[tuple[float, float]] = []  # (sent, answered), wall clock
        self.calls: list[tuple[str, str, float, float]] = []  # (sid, id, sent, answered)
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            client = self.clients[index % len(self.clients)]
            index += 1
            phase = self.phase
            try:
                sent = time.time()
                _reply, rtt = client.call("sim:branches", {})
            except Exception:  # a timeout counts as an error, not a sample
                self.errors += 1
                continue
            self.samples.append((phase, rtt))
            call_id, wall = client.last_call
            self.calls.append((client.sid, str(call_id), wall, wall + rtt / 1000))
            self.spans.append((sent, sent + rtt / 1000))
            time.sleep(PROBE_PERIOD_S)


def read_rounds(rounds_file: str) -> list[tuple[float, float, float]]:
    """(end, wall ms, CPU ms) of each event-loop round the server logged."""
    try:
        lines = Path(rounds_file).read_text().splitlines()
    except OSError:
        return []
    return [tuple(float(x) for x in line.split()) for line in lines]


def cpu_while_waiting(rounds: list[tuple[float, float, float]],
                      spans: list[tuple[float, float]]) -> list[float]:
    """For each ack, the server's CPU ms in the rounds that ended while it was awaited:
    about what it would have waited with a core of its own (one thread runs the server)."""
    ends = [r[0] for r in rounds]
    out = []
    for sent, answered in spans:
        lo, hi = bisect.bisect_left(ends, sent), bisect.bisect_right(ends, answered)
        out.append(sum(r[2] for r in rounds[lo:hi]))
    return out


ACK_STAGES = (("sent", "read", "to the server's read"),
              ("read", "queued", "read to ack queued (handler)"),
              ("queued", "write", "queued to written (the connection's queue)"),
              ("write", "written", "writing"),
              ("written", "answered", "written to the client's read"))


def ack_stages(acks_file: str, calls: list[tuple[str, str, float, float]]) -> dict:
    """Where each probe ack spent its time, from the server's stamps (same wall clock)."""
    stamps: dict[tuple[str, str], dict[str, float]] = {}
    try:
        lines = Path(acks_file).read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        sid, call_id, stage, when = line.split()
        stamps.setdefault((sid, call_id), {})[stage] = float(when)
    spans: dict[str, list[float]] = {label: [] for _a, _b, label in ACK_STAGES}
    for sid, call_id, sent, answered in calls:
        times = {**stamps.get((sid, call_id), {}), "sent": sent, "answered": answered}
        if all(stage in times for stage, _b, _l in ACK_STAGES):
            for start, end, label in ACK_STAGES:
                spans[label].append((times[end] - times[start]) * 1000)
    return {label: percentiles(values) for label, values in spans.items()}


def stalls(stalls_file: str, top: int = 5) -> list[str]:
    """The places the event loop stood longest without turning (load_server.py)."""
    try:
        return Path(stalls_file).read_text().splitlines()[:top]
    except OSError:
        return []


def loop_rounds(rounds_file: str, since: float, until: float) -> dict:
    """The event loop's rounds between two wall times, in wall and in CPU ms. A request
    lands in a round with a chance in proportion to its length, so the percentiles are
    of time spent (weighted by length), not of the count of rounds (most are empty)."""
    walls, cpus = [], []
    for stamp, wall, cpu in read_rounds(rounds_file):
        if since <= stamp <= until:
            walls.append(wall)
            cpus.append(cpu)
    return {"rounds": len(walls), "wall": weighted(walls), "cpu": weighted(cpus)}


def weighted(values: list[float]) -> dict:
    """p50/p99 of values weighted by themselves (of the time spent in them)."""
    total = sum(values)
    if not total:
        return {}
    out, spent, values = {}, 0.0, sorted(values)
    marks = iter((("p50_ms", 0.5), ("p99_ms", 0.99)))
    name, share = next(marks)
    for value in values:
        spent += value
        while spent >= share * total:
            out[name] = round(value, 1)
            try:
                name, share = next(marks)
            except StopIteration:
                return {**out, "max_ms": round(values[-1], 1)}
    return {**out, "max_ms": round(values[-1], 1)}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)
    return {"n": len(values), "p50_ms": round(statistics.median(values), 1),
            "p99_ms": round(values[min(len(values) - 1, int(0.99 * len(values)))], 1),
            "max_ms": round(values[-1], 1)}


def timed(probe: Probe, name: str, times: dict, fn, failures: dict | None = None):
    """Run and time one operation; a failure (e.g. a timeout) is counted, not raised."""
    probe.phase = name
    t0 = time.perf_counter()
    try:
        return fn()
    except Exception as err:  # noqa: BLE001  (a benchmark reports, it does not stop)
        FAILURES.setdefault(name, []).append(f"{type(err).__name__}: {err}"[:200])
        return None
    finally:
        times.setdefault(name, []).append(round((time.perf_counter() - t0) * 1000, 1))
        probe.phase = "idle"


FAILURES: dict[str, list[str]] = {}


def prepare(worker: socketio.Client, events: int) -> int:
    """Reveal events up to ``events`` with sim:step (no pacing: as fast as the model)."""
    seq = worker.call("sim:hello", {}, timeout=CALL_TIMEOUT_S)["status"]["seq"]
    while seq + 1 < events:
        ack = ok(worker.call("sim:step", {"count": min(PREP_STEP, events - seq - 1)},
                             timeout=CALL_TIMEOUT_S))
        seq = ack["last_seq"]
    return seq


class Neighbour:
    """A light Socket.IO client over websocket-client: one reader thread that answers
    Engine.IO pings and acks each sim:trace batch by its id, without decoding it; calls
    are timed where their ack arrives."""

    def __init__(self, url: str, window: int = WINDOW) -> None:
        ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(ws_url, timeout=CALL_TIMEOUT_S,
                                              enable_multithread=True,
                                              skip_utf8_validation=True)  # as in connect()
        self.sid = json.loads(self.ws.recv()[1:])["sid"]  # Engine.IO open
        self.last_call = (0, 0.0)  # id and wall time of the last call sent
        self.ws.send("40")       # Socket.IO connect (no auth: a new session)
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.call("sim:hello", {"window": window})

    def _read(self) -> None:
        ws = self.ws
        while True:
            try:
                frame = ws.recv()
            except Exception:  # closed
                return
            if frame == "2":
                ws.send("3")
            elif frame.startswith("42"):  # an event; with an id when it wants an ack
                digits = len(frame) - len(frame[2:].lstrip("0123456789")) - 2
                if digits:
                    try:
                        ws.send("43" + frame[2:2 + digits] + "[]")
                    except Exception:  # closed meanwhile
                        return
            elif frame.startswith("43"):
                rest = frame[2:]
                body = rest.lstrip("0123456789")
                waiter = self._waiting.pop(int(rest[:len(rest) - len(body)]), None)
                if waiter is not None:
                    waiter[1].extend((time.perf_counter(), body))
                    waiter[0].set()

    def call(self, event: str, payload: dict, timeout: float = CALL_TIMEOUT_S
             ) -> tuple[dict, float]:
        """The ack's data and the round trip in ms."""
        call_id = next(self._ids)
        done, reply = threading.Event(), []
        self._waiting[call_id] = (done, reply)
        t0 = time.perf_counter()
        self.last_call = (call_id, time.time())
        self.ws.send(f"42{call_id}" + json.dumps([event, payload]))
        if not done.wait(timeout):
            self._waiting.pop(call_id, None)
            raise TimeoutError(f"{event}: no ack in {timeout} s")
        return json.loads(reply[1])[0], (reply[0] - t0) * 1000

    def disconnect(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export_bytes(url: str, token: str, limit: int | None = None) -> bytes:
    """A JSONL export as it streams in (whole lines, at most about ``limit`` bytes)."""
    out = io.BytesIO()
    with requests.get(f"{url}/export/{token}.jsonl", stream=True,
                      timeout=CALL_TIMEOUT_S) as resp:
        resp.raise_for_status()
        for piece in resp.iter_content(64 * KIB):
            if limit is None or out.tell() < limit:
                out.write(piece)
    data = out.getvalue()
    return data[:data.rfind(b"\n") + 1]


def heavy_round(url: str, worker: socketio.Client, token: str, probe: Probe,
                times: dict, kept: int, timeline: bytes) -> None:
    """One round of the worker's heavy operations (each ends on branch 0, paused)."""
    head = worker.call("sim:hello", {}, timeout=CALL_TIMEOUT_S)["status"]["seq"]

    timed(probe, "export", times, lambda: export_bytes(url, token))
    branches = worker.call("sim:branches", {}, timeout=CALL_TIMEOUT_S)["branches"]
    if len(branches) + 2 <= 32:
        near = timed(probe, "fork_near", times, lambda: ok(worker.call(
            "sim:action", {**ACTION, "at_seq": head - NEAR_DEPTH}, timeout=CALL_TIMEOUT_S)))
        if near is None:
            return
        timed(probe, "switch_parked", times, lambda: ok(worker.call(
            "sim:branch", {"id": 0}, timeout=CALL_TIMEOUT_S)))
        timed(probe, "fork_deep", times, lambda: ok(worker.call(
            "sim:action", {**ACTION, "at_seq": head - kept // 2}, timeout=CALL_TIMEOUT_S)))
        timed(probe, "switch_parked", times, lambda: ok(worker.call(
            "sim:branch", {"id": near["fork"]["branch"]}, timeout=CALL_TIMEOUT_S)))
        timed(probe, "switch_parked", times, lambda: ok(worker.call(
            "sim:branch", {"id": 0}, timeout=CALL_TIMEOUT_S)))
    importer, import_token, import_key = connect(url, 0)
    try:
        timed(probe, "import", times, lambda: requests.post(
            f"{url}/import/{import_token}", data=timeline, headers={"X-Gunyah-Key": import_key},
            timeout=CALL_TIMEOUT_S).raise_for_status())
        link = worker.call("sim:link", {}, timeout=CALL_TIMEOUT_S)
        timed(probe, "link_replay", times, lambda: ok(importer.call("sim:load", {
            "scenario": link["scenario"], "seed": link["seed"], "actions": link["actions"],
            "through_seq": min(LINK_THROUGH, head)}, timeout=CALL_TIMEOUT_S)))
    finally:
        importer.disconnect()


def run(args: argparse.Namespace) -> dict:
    prefix = f"/tmp/bench_load.{os.getpid()}"
    rounds_file, acks_file, stalls_file = (f"{prefix}.{x}" for x in ("rounds", "acks", "stalls"))
    for name in (rounds_file, acks_file, stalls_file):
        Path(name).unlink(missing_ok=True)
    proc, url = start_server(args.async_mode, args.sessions, prefix)
    clients: list = []
    result: dict = {"async_mode": args.async_mode, "sessions": args.sessions,
                    "seconds": args.seconds, "scenario": SCENARIO}
    try:
        rss_start = rss_mib(proc.pid)
        worker, token, _key = connect(url, 0)
        clients.append(worker)
        t0 = time.perf_counter()
        # An importable timeline starts at event 0 (its sim.snapshot): export it early.
        prepare(worker, IMPORT_EVENTS)
        timeline = export_bytes(url, token, IMPORT_MAX_BYTES)
        result["import_events"] = timeline.count(b"\n")
        head = prepare(worker, args.events)
        result["worker_events"] = head + 1
        result["worker_prepare_s"] = round(time.perf_counter() - t0, 1)
        neighbours = []
        for _ in range(args.sessions):
            client = Neighbour(url)
            neighbours.append(client)
            clients.append(client)
        rss_base = rss_mib(proc.pid)
        for client in neighbours:
            ok(client.call("sim:speed", {"speed": "max"})[0])
            ok(client.call("sim:play", {})[0])
        load_before, cpu_before = os.getloadavg()[0], cpu_s(proc.pid)
        own_before = cpu_s(os.getpid())
        load_since = time.time()
        probe = Probe(neighbours)
        probe.start()
        times: dict[str, list[float]] = {}
        kept = min(head + 1, args.history_cap)
        started = time.monotonic()
        rounds = 0
        while time.monotonic() - started < args.seconds:
            if args.heavy:
                heavy_round(url, worker, token, probe, times, kept, timeline)
            else:
                time.sleep(1)
            rounds += 1
        probe.stop.set()
        probe.join(CALL_TIMEOUT_S)
        load_after, cpu_during = os.getloadavg()[0], cpu_s(proc.pid) - cpu_before
        own_during = cpu_s(os.getpid()) - own_before
        load_until = time.time()
        wall = time.monotonic() - started
        seqs = []
        for client in neighbours:
            ok(client.call("sim:pause", {})[0])
            seqs.append(client.call("sim:hello", {})[0]["status"]["seq"])
        rss_load = rss_mib(proc.pid)
        neighbour_kept = sum(min(s + 1, args.history_cap) for s in seqs)
        for client in clients:
            client.disconnect()
        clients.clear()
        time.sleep(LEAVE_WAIT_S)
        by_phase: dict[str, list[float]] = {}
        for phase, rtt in probe.samples:
            by_phase.setdefault(phase, []).append(rtt)
        result.update({
            "load_average_1min": {"before": round(load_before, 1),
                                  "after": round(load_after, 1), "cores": os.cpu_count()},
            "server_cpu_share": round(cpu_during / wall, 2),
            "clients_cpu_share": round(own_during / wall, 2),
            "loop_round_ms": loop_rounds(rounds_file, load_since, load_until),
            "rounds": rounds,
            "neighbour_events_total": sum(s + 1 for s in seqs),
            "neighbour_events_per_s": round(sum(s + 1 for s in seqs) / wall),
            "ack_all": percentiles([rtt for _phase, rtt in probe.samples]),
            "ack_server_cpu_ms": percentiles(cpu_while_waiting(read_rounds(rounds_file),
                                                               probe.spans)),
            "ack_stages": ack_stages(acks_file, probe.calls),
            "loop_stalls": stalls(stalls_file),
            "ack_by_phase": {phase: percentiles(v) for phase, v in sorted(by_phase.items())},
            "ack_errors": probe.errors,
            "op_failures": FAILURES,
            "op_ms": {name: {"median": statistics.median(v), "max": max(v), "n": len(v)}
                      for name, v in times.items()},
            "rss_mib": {"start": round(rss_start, 1), "worker_ready": round(rss_base, 1),
                        "under_load": round(rss_load, 1),
                        "after_all_left": round(rss_mib(proc.pid), 1)},
            "neighbour_events_kept": neighbour_kept,
            "rss_mib_per_million_kept": round((rss_load - rss_base) / neighbour_kept * 1e6, 1)
            if neighbour_kept else None,
        })
    finally:
        for client in clients:
            try:
                client.disconnect()
            except Exception:
                pass
        proc.terminate()
        for name in (rounds_file, acks_file, stalls_file):
            Path(name).unlink(missing_ok=True)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--async-mode", choices=("eventlet", "threading"), default="eventlet")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events the worker reveals before the load starts")
    parser.add_argument("--no-heavy", dest="heavy", action="store_false",
                        help="only the neighbours play (no export, fork, import, link)")
    parser.add_argument("--history-cap", type=int, default=500_000,
                        help="the server's MAX_HISTORY_EVENTS (for events-kept figures)")
    args = parser.parse_args()
    print(json.dumps(run(args), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
