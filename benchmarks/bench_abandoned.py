"""What clients leave behind: server CPU and memory once every client has gone.

Starts app.py, connects N python-socketio clients that each play at speed "max" and send
a client event named `connect` (which must not create a session), disconnects them all,
waits for the resume window to pass, then samples the server process's CPU use and
resident memory from /proc. Prints one JSON object. Usage:

    python benchmarks/bench_abandoned.py [--clients 20] [--resume-window 1] [--sample 3]
                                         [--root DIR]

--root runs the app.py of another checkout (e.g. an older commit unpacked with
`git archive`), for a before/after figure; its app.py may not take --resume-window
(then pass --resume-window -1 to leave the option out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import socketio
from bench_socket import serving

REPO_ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT_S = 10
PLAY_S = 0.5                # each client plays this long before it leaves
SETTLE_S = 0.5              # after the resume window, before sampling
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def start_server(root: Path, window: float) -> tuple[subprocess.Popen[str], str]:
    extra = [] if window < 0 else ["--resume-window", str(window)]
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", "0",
                             *extra], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    return serving(proc)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--resume-window", type=float, default=1.0)
    parser.add_argument("--sample", type=float, default=3.0, help="seconds of CPU sampling")
    parser.add_argument("--root", type=Path, default=REPO_ROOT)
    args = parser.parse_args()
    proc, url = start_server(args.root, args.resume_window)
    try:
        clients, refused = [], 0
        for _ in range(args.clients):
            client = socketio.Client(reconnection=False)
            try:
                client.connect(url, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)
            except socketio.exceptions.ConnectionError:  # a session limit (docs/limits.md)
                refused += 1
                continue
            client.call("sim:speed", {"speed": "max"}, timeout=CALL_TIMEOUT_S)
            client.call("sim:play", {}, timeout=CALL_TIMEOUT_S)
            client.call("connect", {}, timeout=CALL_TIMEOUT_S)
            clients.append(client)
        time.sleep(PLAY_S)
        for client in clients:
            client.disconnect()
        time.sleep(max(args.resume_window, 0) + SETTLE_S)
        before, started = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.sample)
        busy = (cpu_seconds(proc.pid) - before) / (time.monotonic() - started)
        print(json.dumps({"clients": args.clients, "refused": refused,
                          "resume_window_s": args.resume_window,
                          "cpu_percent_after_all_left": round(100 * busy, 1),
                          "rss_mib_after_all_left": round(rss_mib(proc.pid), 1)}))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
