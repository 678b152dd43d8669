"""Fuzz a real server (app.py on loopback) with random and malformed Socket.IO events and
HTTP requests while a neighbour session plays.

Seeded and bounded: the same SEED sends the same frames and requests, FRAMES + REQUESTS
of them. The invariants: every event sent with an ack id is answered, no answer is an
INTERNAL error, no HTTP answer is a 5xx, the server log has no traceback, and the
neighbour's trace arrives with no seq gap. Raw WebSocket frames are written by hand so
that what no well-behaved client would send (truncated JSON, 5,000-digit integers,
100,000 levels of nesting, packet types a client never uses) is sent too.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from tests.conftest import start_server
from tests.web.test_hostile_input import RawSocket

SEED = 20_240_601
FRAMES = 10_000            # Socket.IO event packets, each with an ack id
REQUESTS = 1_000           # HTTP requests
FUZZ_SOCKETS = 2           # fuzzing sessions, used in turn
BATCH = 40                 # frames sent before their acks are awaited
HTTP_PER_BATCH = REQUESTS * BATCH // FRAMES
CALL_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 10
NEIGHBOUR_SPEED = 2e-4     # simulated s per wall s: a steady stream, not a flood
MIN_NEIGHBOUR_EVENTS = 200

EVENTS = ["sim:hello", "sim:load", "sim:play", "sim:pause", "sim:step", "sim:speed",
          "sim:reset", "sim:action", "sim:snapshot", "sim:branches", "sim:branch",
          "sim:events", "sim:link"]
FIELDS = ["window", "scenario", "text", "filename", "seed", "actions", "through_seq", "count",
          "kind", "speed", "action", "args", "at_seq", "id", "from_seq", "branch", "cuont"]
ACTIONS = ["msgq_send", "msgq_receive", "msgq_flush", "msgq_configure", "doorbell_send",
           "doorbell_receive", "doorbell_mask", "set_priority", "vm_start", "vm_stop",
           "rm_vm_create", "rm_vm_start", "rm_vm_stop", "rm_vm_reset", "rm_vm_destroy", "nope"]
ARG_KEYS = ["vm", "msgq", "doorbell", "capid", "size", "payload", "push", "flags", "clear",
            "enable_mask", "ack_mask", "vcpu", "priority", "image", "start", "force",
            "notempty_thd", "notfull_thd", "junk"]
NAMES = ["VM_A", "VM_B", "HLOS", "RM", "A_to_B", "B_to_A", "VM_A.0", "msgq-pingpong",
         "doorbell", "priority-preemption", "", "\u202e", "../../etc/passwd", "x" * 300]
INTS = [0, 1, 2, -1, 7, 64, 300, 10_000, 10_001, 2**31, 2**63 - 1, 2**63, 2**64, -2**63,
        10**30]
SCENARIOS = [
    "name: ok\nvms:\n  - name: A\n",
    "name: s\nvms:\n  - name: A\n    program: spin\n    params: {work_ns: 0}\n",
    "name: x\nspeed: .nan\nvms:\n  - name: A\n",
    "name: x\nvms:\n  - name: A\ntitle: " + "[" * 5_000 + "]" * 5_000 + "\n",
    "name: x\nvms:\n  - name: A\nseed: " + "9" * 5_000 + "\n",
    "a0: &a0 [l, l, l, l, l, l, l, l, l]\n" + "".join(
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 9)),
    "{{{{", "- just\n- a list\n", "",
]


def value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased to the edges of every limit."""
    roll = rng.random()
    if roll < 0.25:
        return rng.choice(INTS)
    if roll < 0.45:
        return rng.choice(NAMES)
    if roll < 0.55:
        return rng.choice([True, False, None, 0.5, 1e-9, -0.0, 1e308])
    if roll < 0.65 or depth > 2:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(0, 40)))
    if roll < 0.8:
        return [value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(FIELDS + ARG_KEYS): value(rng, depth + 1)
            for _ in range(rng.randrange(0, 4))}


def payload(rng: random.Random, event: str) -> Any:
    if rng.random() < 0.1:
        return value(rng)
    out: dict[str, Any] = {}
    for _ in range(rng.randrange(0, 3)):
        out[rng.choice(FIELDS)] = value(rng)
    if event == "sim:action":
        out["action"] = rng.choice(ACTIONS)
        out["args"] = {rng.choice(ARG_KEYS): value(rng) for _ in range(rng.randrange(0, 5))}
    elif event == "sim:load" and rng.random() < 0.5:
        out.pop("scenario", None)
        out["text"] = rng.choice(SCENARIOS)
    elif event == "sim:step" and "count" in out and not isinstance(out["count"], int):
        out["count"] = rng.choice(INTS)
    return out


def frame(rng: random.Random, ack_id: int) -> str:
    """One Socket.IO packet text with ack id ``ack_id``; often well formed, often not."""
    head = f"42{ack_id}"
    event = rng.choice(EVENTS) if rng.random() < 0.85 else value(rng)
    if event == "sim:play" and rng.random() < 0.7:
        event = "sim:pause"  # play is allowed, but most sessions stay paused
    args = [event, payload(rng, str(event))] + ([value(rng)] if rng.random() < 0.05 else [])
    text = json.dumps(args)
    roll = rng.random()
    if roll < 0.70:
        return head + text
    if roll < 0.78:
        return head + text[:rng.randrange(0, len(text))]           # truncated
    if roll < 0.82:
        return head + text.replace("]", ", NaN]", 1)                # JSON Python accepts
    if roll < 0.85:
        return head + '["sim:step", {"count": ' + "9" * 5_000 + "}]"
    if roll < 0.87:
        depth = rng.choice([100, 1_000, 100_000])
        return head + "[" * depth + "]" * depth
    if roll < 0.90:
        # (never a digit or "-" first: they would read as the ack id or an attachment count)
        return head + rng.choice(["[]", "{}", '"sim:step"', "null", "true", "[null]", "[[]]"])
    if roll < 0.94:  # a packet type a client never sends, with an ack id
        return f"4{rng.choice('456789')}{ack_id}" + text
    return head + "#" + "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(60)))


def http_request(rng: random.Random, http: requests.Session, base: str, token: str,
                 key: str) -> int:
    tok = token if rng.random() < 0.5 else rng.choice(["nope", "x" * 300, "%00", "..", token[:5]])
    fmt = rng.choice(["jsonl", "csv", "perfetto", "vcd", "exe", "", "jsonl.jsonl"])
    path = rng.choice([
        "/", "/favicon.ico", "/api/presets", "/api/scenario-schema", "/api/rm-names",
        f"/export/{tok}.{fmt}", f"/import/{tok}", f"/import/{tok}?name=" + "n" * 300,
        "/static/js/main.js", "/static/../app.py", "/nope", "/socket.io/?EIO=3",
        "/socket.io/?EIO=4&transport=polling&sid=forged", "/" + "a" * 2_000])
    if path.startswith("/import") or rng.random() < 0.1:
        body = rng.choice([
            b"", b"\xff\xfe not utf-8", b"not json\n", b"[1, 2]\n",
            b'{"seq": 0, "t": 0, "kind": "sched.switch"}\n',
            b'{"seq": 0, "t": 0, "kind": "x.y", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
            b'{"seq": 0, "t": ' + b"9" * 5_000 + b', "kind": "x.y"}\n',
            b'{"seq": 0, "t": 0, "kind": "sim.snapshot", "scenario": {}, "state": {"vms": [1]}}\n',
            json.dumps(value(rng)).encode() + b"\n"])
        headers = {"X-Gunyah-Key": key if rng.random() < 0.7 else "forged"}
        resp = http.post(base + path, data=body, headers=headers, timeout=HTTP_TIMEOUT_S)
    else:
        resp = http.request(rng.choice(["GET", "GET", "HEAD", "DELETE", "PUT"]), base + path,
                            timeout=HTTP_TIMEOUT_S)
    return resp.status_code


class Neighbour:
    """A well-behaved viewer that plays throughout and records every trace batch.

    python-engineio's client hands each message to a thread of its own, so batches may
    be recorded out of order; they are put back in order by ``first_seq``, which is what
    a gap check needs (a lost or repeated event still shows)."""

    def __init__(self, url: str) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.lock = threading.Lock()
        self.batches: list[tuple[int, list[int]]] = []
        self.sio.on("sim:trace", self._trace)
        self.sio.connect(url, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)

    def _trace(self, batch: dict) -> None:
        with self.lock:
            self.batches.append((batch["first_seq"], [e["seq"] for e in batch["events"]]))

    @property
    def seqs(self) -> list[int]:
        with self.lock:
            return [seq for _, seqs in sorted(self.batches) for seq in seqs]

    def call(self, event: str, data: Any = None) -> dict:
        return self.sio.call(event, data or {}, timeout=CALL_TIMEOUT_S)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("fuzz") / "stderr.log"
    yield from ((url, log) for url in start_server(log_path=log))


def test_fuzz_keeps_every_answer_and_the_neighbour_gapless(server) -> None:
    url, log = server
    rng = random.Random(SEED)
    neighbour = Neighbour(url)
    sockets = [RawSocket(url) for _ in range(FUZZ_SOCKETS)]
    http = requests.Session()
    try:
        assert neighbour.call("sim:hello")["ok"]
        assert neighbour.call("sim:speed", {"speed": NEIGHBOUR_SPEED})["ok"]
        assert neighbour.call("sim:play") == {"ok": True}
        hello = sockets[0].ack(1, '421["sim:hello"]')[0]
        token, key = hello["session"], hello["resume"]["key"]
        answers: dict[int, Any] = {}
        statuses: list[int] = []
        started = time.monotonic()
        ack_id = 10
        for batch_no in range(FRAMES // BATCH):
            raw = sockets[batch_no % FUZZ_SOCKETS]
            ids = list(range(ack_id, ack_id + BATCH))
            ack_id += BATCH
            for i in ids:
                raw.ws.send(frame(rng, i))
            answers.update(raw.acks(ids))
            statuses += [http_request(rng, http, url, token, key) for _ in range(HTTP_PER_BATCH)]
        elapsed = time.monotonic() - started
        assert neighbour.call("sim:pause") == {"ok": True}
        status = neighbour.call("sim:hello")["status"]
    finally:
        for raw in sockets:
            raw.close()
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while len(neighbour.seqs) < status["seq"] + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    neighbour.sio.disconnect()

    assert len(answers) == FRAMES and len(statuses) == REQUESTS
    internal = [a for a in answers.values()
                if not isinstance(a, list) or len(a) != 1 or not isinstance(a[0], dict)
                or (not a[0].get("ok") and a[0]["error"]["code"] == "INTERNAL")]
    assert not internal, internal[:3]
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    codes = {a[0]["error"]["code"] for a in answers.values() if not a[0]["ok"]}
    assert {"BAD_PACKET", "UNKNOWN_EVENT", "SCENARIO_INVALID", "UNKNOWN_FIELD"} <= codes
    assert neighbour.seqs == list(range(status["seq"] + 1))
    assert len(neighbour.seqs) >= MIN_NEIGHBOUR_EVENTS
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    print(f"fuzz: {FRAMES} frames, {REQUESTS} requests in {elapsed:.1f} s; "
          f"neighbour revealed {len(neighbour.seqs)} events; error codes {sorted(codes)}")
