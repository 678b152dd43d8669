"""Connections over real loopback sockets: reserved event names, resuming a dropped
session, the resume window, and the session limits (docs/limits.md, "Connections")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests
import socketio

from tests.conftest import start_server

WAIT_S = 10.0
CALL_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 10
SHORT_WINDOW_S = 0.5     # resume window of the `short_window` server
EXPIRY_WAIT_S = 2.0      # longest a test waits for that window to pass
SEND = {"vm": "VM_A", "msgq": "A_to_B", "payload": "resume"}
CLIENT_LIMIT = 3         # sessions per client address on the `short_window` server


class Client:
    """A real Socket.IO client that records server events; `auth` resumes a session."""

    def __init__(self, url: str, auth: dict | None = None) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.received: dict[str, list] = {}
        self.refusal: dict | None = None
        for name in ("sim:trace", "sim:status", "sim:snapshot", "server:error"):
            self.sio.on(name, self._recorder(name))
        self.sio.on("connect_error", self._refused)
        self.sio.connect(url, auth=auth, transports=["websocket"],
                         wait_timeout=CALL_TIMEOUT_S)

    def _recorder(self, name):
        def record(data):
            with self.lock:
                self.received.setdefault(name, []).append(data)
                if name == "sim:trace":
                    self.events.extend(data["events"])
        return record

    def _refused(self, data=None):
        self.refusal = data

    def call(self, event, payload=None):
        return self.sio.call(event, {} if payload is None else payload, timeout=CALL_TIMEOUT_S)

    def wait(self, predicate) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return
            time.sleep(0.01)

    def seqs(self, n: int) -> list[int]:
        """Seqs of the first `n` events received, in the server's order: wait for them,
        then order whole batches by first_seq (python-socketio may run two handlers out
        of order; the server sends batches in order on one socket)."""
        self.wait(lambda: len(self.events) >= n)
        with self.lock:
            batches = sorted(self.received.get("sim:trace", []), key=lambda b: b["first_seq"])
        return [e["seq"] for b in batches for e in b["events"]]

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def refusal(url: str, auth: dict | None = None) -> dict:
    """The structured error of a connection the server refuses."""
    sio = socketio.Client(reconnection=False)
    seen: list = []
    sio.on("connect_error", lambda data=None: seen.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)
    assert seen, "no connect_error"
    return seen[0]["data"]


def counts(url: str) -> dict:
    return requests.get(f"{url}/api/sessions", timeout=HTTP_TIMEOUT_S).json()


def wait_counts(url: str, connected: int, detached: int, timeout: float = WAIT_S) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        now = counts(url)
        if (now["connected"], now["detached"]) == (connected, detached) or \
                time.monotonic() > deadline:
            return now
        time.sleep(0.02)


def seqs(events):
    return [e["seq"] for e in events]


BOTH_MODES = pytest.mark.parametrize("live_server", ["eventlet", "threading"], indirect=True)


@pytest.fixture(scope="module")
def short_window() -> Iterator[str]:
    """A server whose detached sessions wait SHORT_WINDOW_S, with CLIENT_LIMIT per client."""
    yield from start_server(extra_args=("--resume-window", str(SHORT_WINDOW_S),
                                        "--max-client-sessions", str(CLIENT_LIMIT)))


# -- reserved event names ------------------------------------------------------------------------
@pytest.mark.parametrize("event", ["connect", "disconnect", "connect_error"])
def test_a_client_cannot_send_lifecycle_events(short_window, event):
    client = Client(short_window)
    try:
        hello = client.call("sim:hello")
        token, boot = hello["session"], hello["status"]["boot_seq"]
        assert client.call("sim:step", {"count": 5})["last_seq"] == boot + 5
        ack = client.call(event, {})
        assert ack["ok"] is False and ack["error"]["code"] == "RESERVED_EVENT"
        client.sio.emit(event, {})  # without an ack: the refusal comes as server:error
        client.wait(lambda: client.received.get("server:error"))
        assert client.received["server:error"][0]["code"] == "RESERVED_EVENT"
        # Still the one session, still working.
        assert counts(short_window)["sessions"] == 1
        assert client.call("sim:hello")["session"] == token
        assert client.call("sim:step", {"count": 1})["last_seq"] == boot + 6
    finally:
        client.close()
    # Once its owner has gone and the window has passed, nothing is left.
    assert wait_counts(short_window, 0, 0, EXPIRY_WAIT_S) == {
        **counts(short_window), "connected": 0, "detached": 0}


def test_repeated_connect_events_create_no_sessions(short_window):
    client = Client(short_window)
    try:
        client.call("sim:speed", {"speed": "max"})
        client.call("sim:play")
        for _ in range(5):
            assert client.call("connect", {})["error"]["code"] == "RESERVED_EVENT"
        assert counts(short_window)["sessions"] == 1
    finally:
        client.close()
    assert wait_counts(short_window, 0, 0, EXPIRY_WAIT_S)["sessions"] == 0


# -- resuming a dropped session ------------------------------------------------------------------
@BOTH_MODES
def test_resume_continues_without_gap_or_repeat(live_server):
    first = Client(live_server)
    hello = first.call("sim:hello")
    key, token = hello["resume"]["key"], hello["session"]
    assert key and key != token and hello["resume"]["resumed"] is False
    assert first.call("sim:load", {"scenario": "msgq-pingpong", "seed": 7})["ok"]
    first.call("sim:step", {"count": 120})
    ack = first.call("sim:action", {"action": "msgq_send", "args": SEND})
    assert ack["ok"], ack
    first.call("sim:step", {"count": 80})
    fork = first.call("sim:action", {"action": "msgq_send", "at_seq": 150, "args": SEND})
    assert fork["ok"] and fork["fork"]["at_seq"] == 150, fork
    first.call("sim:step", {"count": 40})
    before = first.call("sim:hello")["status"]
    link = first.call("sim:link")
    applied = 170  # this client applied events through 170 of the current branch
    first.close()

    second = Client(live_server, auth={"resume": key, "seq": applied})
    try:
        hello = second.call("sim:hello")
        assert hello["resume"]["resumed"] is True and hello["session"] == token
        assert hello["resume"]["sent"] == {"from_seq": applied + 1,
                                           "events": before["seq"] - applied, "snapshot": False}
        # The missed events, each once, and nothing else.
        assert second.seqs(before["seq"] - applied) == list(range(applied + 1, before["seq"] + 1))
        assert "sim:snapshot" not in second.received
        assert hello["status"] == {**before, "playing": False}
        assert second.call("sim:link") == link
        assert len(second.call("sim:branches")["branches"]) == 2
        ack = second.call("sim:step", {"count": 10})
        assert second.seqs(before["seq"] - applied + 10) == \
            list(range(applied + 1, ack["last_seq"] + 1))
    finally:
        second.close()


def test_resume_after_a_reload_resends_snapshot_and_all_events(live_server):
    first = Client(live_server)
    key = first.call("sim:hello")["resume"]["key"]
    first.call("sim:step", {"count": 60})
    first.wait(lambda: len(first.events) == 60)
    sent = sorted(first.events, key=lambda e: e["seq"])
    first.close()
    second = Client(live_server, auth={"resume": key, "seq": -1})
    try:
        hello = second.call("sim:hello")
        assert hello["resume"]["resumed"] and hello["resume"]["sent"]["snapshot"] is True
        assert second.seqs(len(sent)) == seqs(sent)
        assert sorted(second.events, key=lambda e: e["seq"]) == sent
        assert second.received["sim:snapshot"][0]["now_ns"] == 0  # the boot state
    finally:
        second.close()


def test_a_detached_session_is_paused(live_server):
    first = Client(live_server)
    hello = first.call("sim:hello")
    key, token = hello["resume"]["key"], hello["session"]
    first.call("sim:speed", {"speed": "max"})
    first.call("sim:play")
    first.wait(lambda: len(first.events) > 2_000)
    first.close()
    time.sleep(0.1)  # the disconnect has been handled

    def exported() -> int:
        resp = requests.get(f"{live_server}/export/{token}.jsonl", timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 200
        return len(resp.text.splitlines())

    revealed = exported()
    time.sleep(0.3)
    assert exported() == revealed  # nothing more revealed: no pacing task runs
    second = Client(live_server, auth={"resume": key, "seq": revealed - 1})
    try:
        status = second.call("sim:hello")["status"]
        assert status["playing"] is False and status["seq"] == revealed - 1
        assert second.events == []
    finally:
        second.close()


@BOTH_MODES
def test_resuming_a_session_still_held_takes_it_from_the_old_connection(live_server):
    """A dropped socket the server has not noticed yet, or a reload racing its own
    disconnect: the key wins, the old connection is told and closed."""
    first = Client(live_server)
    hello = first.call("sim:hello")
    first.call("sim:speed", {"speed": "max"})
    first.call("sim:play")
    first.wait(lambda: len(first.events) > 1_000)
    applied = first.events[999]["seq"]
    second = Client(live_server, auth={"resume": hello["resume"]["key"], "seq": applied})
    try:
        ack = second.call("sim:hello")
        assert ack["resume"]["resumed"] is True and ack["session"] == hello["session"]
        assert ack["status"]["playing"] is False
        first.wait(lambda: not first.sio.connected)
        assert not first.sio.connected
        assert first.received["server:error"][-1]["code"] == "TAKEN_OVER"
        last = ack["status"]["seq"]
        assert second.seqs(last - applied) == list(range(applied + 1, last + 1))
        assert counts(live_server)["connected"] == 1
    finally:
        second.close()
        first.close()


@pytest.mark.parametrize(("auth", "code", "field"), [
    ({"resume": 5}, "INVALID_ARGUMENT", "auth.resume"),
    ({"resume": "k", "seq": -2}, "INVALID_ARGUMENT", "auth.seq"),
    ({"resume": "k", "sneq": 1}, "UNKNOWN_FIELD", "sneq"),
])
def test_a_malformed_auth_payload_is_refused_naming_the_field(live_server, auth, code, field):
    err = refusal(live_server, auth)
    assert err["code"] == code and field in err["message"]


def test_a_detached_session_is_freed_after_the_window(short_window):
    first = Client(short_window)
    hello = first.call("sim:hello")
    first.call("sim:step", {"count": 3})
    first.close()
    assert wait_counts(short_window, 0, 1)["detached"] == 1
    assert wait_counts(short_window, 0, 0, EXPIRY_WAIT_S)["detached"] == 0
    resp = requests.get(f"{short_window}/export/{hello['session']}.jsonl",
                        timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 404
    late = Client(short_window, auth={"resume": hello["resume"]["key"], "seq": 2})
    try:
        ack = late.call("sim:hello")
        assert ack["resume"]["resumed"] is False
        assert ack["resume"]["error"]["code"] == "RESUME_EXPIRED"
        assert ack["status"]["seq"] == ack["status"]["boot_seq"]  # a new one, just booted
        assert ack["session"] != hello["session"]
    finally:
        late.close()


# -- limits --------------------------------------------------------------------------------------
def test_per_client_limit_refuses_then_frees_its_own_detached_session(short_window):
    clients = [Client(short_window) for _ in range(CLIENT_LIMIT)]
    try:
        err = refusal(short_window)
        assert err["code"] == "TOO_MANY_CONNECTIONS" and str(CLIENT_LIMIT) in err["message"]
        key = clients[0].call("sim:hello")["resume"]["key"]
        clients[0].close()
        assert wait_counts(short_window, CLIENT_LIMIT - 1, 1)["detached"] == 1
        clients[0] = Client(short_window)  # frees the client's own detached session
        assert counts(short_window) == {**counts(short_window), "connected": CLIENT_LIMIT,
                                        "detached": 0}
        assert clients[1].call("sim:step", {"count": 1})["ok"]
        assert refusal(short_window, {"resume": key, "seq": -1})["code"] == \
            "TOO_MANY_CONNECTIONS"
    finally:
        for client in clients:
            client.close()


def test_the_server_wide_limit_refuses_with_server_full():
    for url in start_server(extra_args=("--max-sessions", "2", "--resume-window", "0")):
        clients = [Client(url), Client(url)]
        try:
            err = refusal(url)
            assert err["code"] == "SERVER_FULL" and "limit 2" in err["message"]
        finally:
            for client in clients:
                client.close()
        assert wait_counts(url, 0, 0)["connected"] == 0  # no window: freed at once
        Client(url).close()


def test_a_freed_session_is_garbage(app):
    """Nothing keeps a freed session alive (its simulation and history are released)."""
    import gc
    import weakref

    from webapp import EXTENSION_KEY
    from webapp import socketio as server

    client = server.test_client(app)
    store = app.extensions[EXTENSION_KEY]
    client.emit("sim:step", {"count": 500}, callback=True)
    session = weakref.ref(store.get(next(iter(store._by_sid))))
    client.disconnect()
    assert session() is not None and store.counts()["detached"] == 1  # waiting to resume
    store.window_s = 0
    store.expire()
    gc.collect()
    assert session() is None and store.counts()["sessions"] == 0
