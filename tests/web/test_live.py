"""The protocol over real loopback sockets: app.py in a subprocess, a python-socketio client,
in both async modes (eventlet, the default, and threading, the fallback)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import socketio

from webapp.history import SEND_CHUNK_EVENTS

WAIT_S = 10.0
CALL_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 10

pytestmark = pytest.mark.parametrize("live_server", ["eventlet", "threading"], indirect=True)


class Viewer:
    """A real Socket.IO client that records every server event it receives."""

    def __init__(self, url: str) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.received: dict[str, list] = {}
        for name in ("sim:trace", "sim:status", "sim:snapshot", "server:error"):
            self.sio.on(name, self._recorder(name))
        self.sio.connect(url, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)

    def _recorder(self, name):
        def record(data):
            with self.lock:
                self.received.setdefault(name, []).append(data)
                if name == "sim:trace":
                    self.events.extend(data["events"])
        return record

    def call(self, event, payload=None):
        return self.sio.call(event, {} if payload is None else payload, timeout=CALL_TIMEOUT_S)

    def wait_events(self, n: int) -> list[dict]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= n:
                    return list(self.events)
            time.sleep(0.01)
        with self.lock:
            return list(self.events)

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def viewer(live_server):
    v = Viewer(live_server)
    yield v
    v.close()


def seqs(events):
    return [e["seq"] for e in events]


def arrived(events):
    """The seqs received, in order: python-engineio's client hands each message to a
    handler thread of its own, so two batches sent back to back may be recorded in
    either order (the server writes them in order)."""
    return sorted(seqs(events))


def test_hello_then_step_reveals_exactly_n(viewer):
    hello = viewer.call("sim:hello")
    boot = hello["status"]["boot_seq"]  # a new session's first hello reveals its boot
    assert hello["ok"] and hello["session"] and hello["status"]["seq"] == boot > 0
    ack = viewer.call("sim:step", {"count": 25})
    assert ack["ok"] and ack["revealed"] == 25 and ack["last_seq"] == boot + 25
    assert seqs(viewer.wait_events(boot + 26)) == list(range(boot + 26))  # before the ack
    ack = viewer.call("sim:step", {"kind": "msgq.send"})
    events = viewer.wait_events(boot + 26 + ack["revealed"])
    assert events[-1]["kind"] == "msgq.send" and seqs(events) == list(range(len(events)))


def test_a_big_step_arrives_in_bounded_contiguous_batches(viewer):
    boot = viewer.call("sim:hello")["status"]["seq"]
    before = len(viewer.received["sim:trace"])
    ack = viewer.call("sim:step", {"count": 10_000})
    assert ack["ok"] and ack["revealed"] == 10_000 and ack["last_seq"] == boot + 10_000
    assert arrived(viewer.wait_events(boot + 10_001)) == list(range(boot + 10_001))
    sizes = sorted(len(b["events"]) for b in viewer.received["sim:trace"][before:])
    assert sizes == [SEND_CHUNK_EVENTS] * (10_000 // SEND_CHUNK_EVENTS)


def test_play_max_then_pause_leaves_no_gap(viewer):
    assert viewer.call("sim:speed", {"speed": "max"}) == {"ok": True, "speed": "max"}
    assert viewer.call("sim:play") == {"ok": True}
    viewer.wait_events(5_000)
    assert viewer.call("sim:pause") == {"ok": True}
    status = viewer.call("sim:hello")["status"]
    events = viewer.wait_events(status["seq"] + 1)
    assert arrived(events) == list(range(status["seq"] + 1))
    batches = viewer.received["sim:trace"]
    assert all(b["first_seq"] == b["events"][0]["seq"] and b["last_seq"] == b["events"][-1]["seq"]
               for b in batches)
    time.sleep(0.1)  # paused: nothing more arrives
    assert len(viewer.events) == len(events)
    assert viewer.received["sim:status"][-1]["playing"] is False


def test_action_then_errors_then_still_working(viewer):
    ack = viewer.call("sim:action", {"action": "msgq_send",
                                     "args": {"vm": "VM_A", "msgq": "A_to_B", "payload": "live"}})
    assert ack["ok"]
    viewer.call("sim:step", {"count": 300})
    events = viewer.wait_events(300)
    hvc = next(e for e in events if e["kind"] == "hvc" and e.get("action") == ack["action_id"])
    assert hvc["result"] == "OK"
    assert any(e["kind"] == "msgq.send" and e.get("payload") == "live" for e in events)
    for event, payload, code in [("sim:step", "x", "BAD_PAYLOAD"),
                                 ("sim:speed", {"speed": 9}, "INVALID_ARGUMENT"),
                                 ("sim:load", {"text": "#" * 300_000}, "TOO_LARGE"),
                                 ("sim:unknown", {}, "UNKNOWN_EVENT")]:
        assert viewer.sio.call(event, payload, timeout=CALL_TIMEOUT_S)["error"]["code"] == code
    viewer.sio.emit("sim:step", {"count": -1})  # no ack: the error comes as server:error
    deadline = time.monotonic() + WAIT_S
    while not viewer.received.get("server:error") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert viewer.received["server:error"][0]["code"] == "INVALID_ARGUMENT"
    assert viewer.call("sim:step", {"count": 1})["last_seq"] == 300


def test_two_viewers_are_independent_and_export_over_http(live_server, viewer):
    other = Viewer(live_server)
    try:
        viewer.call("sim:step", {"count": 77})
        assert other.call("sim:step", {"count": 3})["last_seq"] == 2
        token = viewer.call("sim:hello")["session"]
        events = viewer.wait_events(77)
        resp = requests.get(f"{live_server}/export/{token}.jsonl", timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 200
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert [json.loads(line) for line in resp.text.splitlines()] == events
        resp = requests.get(f"{live_server}/export/nobody.csv", timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "UNKNOWN_SESSION"
    finally:
        other.close()


def test_reset_and_load_over_the_wire(viewer):
    viewer.call("sim:step", {"count": 10})
    ack = viewer.call("sim:reset", {"seed": 5})
    assert ack["ok"] and ack["snapshot"]["scenario"]["seed"] == 5
    ack = viewer.call("sim:load", {"scenario": "priority-preemption"})
    assert ack["ok"] and ack["snapshot"]["scenario"]["name"] == "priority-preemption"
    assert ack["head_seq"] == ack["boot_seq"] > 0  # the load revealed the boot
    assert viewer.call("sim:step", {"count": 4})["last_seq"] == ack["boot_seq"] + 4


def test_flow_control_window_streams_gapless_with_client_acks(live_server):
    v = Viewer(live_server)
    try:
        assert v.call("sim:hello", {"window": 1})["window"] == 1
        v.call("sim:speed", {"speed": "max"})
        v.call("sim:play")
        v.wait_events(10_000)
        v.call("sim:pause")
        last = v.call("sim:hello")["status"]["seq"]
        assert seqs(v.wait_events(last + 1)) == list(range(last + 1))
    finally:
        v.close()
