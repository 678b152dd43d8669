"""Hostile-input figures: what a few bytes of bad input used to cost, and cost now.

1. A 9-level YAML alias bomb (about 480 bytes): time to a refusal, in process.
2. A real server (app.py) gets ACTION_CALLS sim:action calls, each with ~290 KB of
   unknown arguments; prints the server's resident memory before and after, and the
   size and time of the sim:link ack that follows (it carries the action log).
3. A spin guest with work_ns 0, loaded over the socket: time to the refusal.

Prints one JSON object. Run: python benchmarks/bench_hostile_input.py [ACTION_CALLS]
(memory a process once used is not all given back: compare two call counts to tell
growth that stays with the calls from an allocator's high-water mark).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import socketio

sys.path.insert(0, str(Path(__file__).absolute().parent.parent))
from bench_socket import start_server  # noqa: E402

from gunyah_core.scenario import ScenarioError, parse  # noqa: E402

ACTION_CALLS = 400
JUNK_CHARS = 290_000
CALL_TIMEOUT_S = 60
KIB = 1024


def alias_bomb(levels: int = 9) -> str:
    lines = ["name: bomb", "vms: [{name: A}]", 'a0: &a0 ["lol","lol","lol","lol","lol","lol",'
             '"lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join([*lines, f"title: *a{levels - 1}"]) + "\n"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else ACTION_CALLS
    bomb = alias_bomb()
    started = time.perf_counter()
    try:
        parse(bomb)
        bomb_result = "accepted"
    except ScenarioError as err:
        bomb_result = err.message
    bomb_s = time.perf_counter() - started

    proc, url = start_server("eventlet", "msgq-pingpong")
    try:
        sio = socketio.Client(reconnection=False)
        sio.connect(url, transports=["websocket"])
        sio.call("sim:hello", {}, timeout=CALL_TIMEOUT_S)
        before = rss_kib(proc.pid)
        args = {"vm": "VM_A", "msgq": "A_to_B", "junk": "x" * JUNK_CHARS}
        codes: dict[str, int] = {}
        for _ in range(calls):
            ack = sio.call("sim:action", {"action": "msgq_send", "args": args},
                           timeout=CALL_TIMEOUT_S)
            code = "ok" if ack["ok"] else ack["error"]["code"]
            codes[code] = codes.get(code, 0) + 1
        after = rss_kib(proc.pid)
        started = time.perf_counter()
        link = sio.call("sim:link", {}, timeout=CALL_TIMEOUT_S)
        link_s = time.perf_counter() - started
        started = time.perf_counter()
        spin = sio.call("sim:load", {"text": "name: s\nvms:\n  - name: A\n    program: spin\n"
                                             "    params: {work_ns: 0}\n"},
                        timeout=CALL_TIMEOUT_S)
        spin_s = time.perf_counter() - started
        sio.disconnect()
    finally:
        proc.terminate()
        proc.wait()
    print(json.dumps({
        "alias_bomb_bytes": len(bomb.encode()),
        "alias_bomb_s": round(bomb_s, 4),
        "alias_bomb_result": bomb_result,
        "action_calls": calls,
        "action_junk_chars": JUNK_CHARS,
        "action_answers": codes,
        "server_rss_before_kib": before,
        "server_rss_after_kib": after,
        "server_rss_growth_kib": after - before,
        "link_ack_bytes": len(json.dumps(link)),
        "link_ack_s": round(link_s, 4),
        "spin_work_0_answer": spin["error"]["code"] if not spin["ok"] else "ok",
        "spin_work_0_s": round(spin_s, 4),
    }))


if __name__ == "__main__":
    main()
