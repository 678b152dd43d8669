"""Hostile input at a real server (app.py on loopback, real python-socketio and raw
WebSocket clients): every refusal is a structured error naming what was wrong, never
INTERNAL, an HTML 500, a traceback in the server log, or a lost ack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio
import websocket

from gunyah_core import Simulation, load
from gunyah_core.actions import MAX_NAME_CHARS
from tests.conftest import start_server

CALL_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 10
DEEP = 100_000
HUGE_DIGITS = 5_000


@pytest.fixture(scope="module", params=["eventlet", "threading"])
def server(request, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL, server log) of a real server in each async mode."""
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    for url in start_server(request.param, log_path=log):
        yield url, log
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def client(server) -> Iterator[socketio.Client]:
    """One session for the module (a refusal leaves it as it was; closing costs seconds)."""
    sio = socketio.Client(reconnection=False)
    sio.connect(server[0], transports=["websocket"], wait_timeout=CALL_TIMEOUT_S)
    yield sio
    sio.disconnect()


def call(sio: socketio.Client, event: str, payload=None):
    return sio.call(event, {} if payload is None else payload, timeout=CALL_TIMEOUT_S)


def refused(ack: dict, code: str) -> dict:
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert len(ack["error"]["message"]) < 400
    return ack["error"]


class RawSocket:
    """Engine.IO/Socket.IO spoken by hand over a WebSocket, to send what no client would."""

    def __init__(self, url: str) -> None:
        ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(ws_url, timeout=CALL_TIMEOUT_S)
        assert self.ws.recv().startswith("0")  # Engine.IO open
        self.ws.send("40")
        assert self.ws.recv().startswith("40")  # Socket.IO connect

    def ack(self, ack_id: int, frame: str) -> list:
        """Send ``frame`` and return the arguments of the ack with ``ack_id``."""
        self.ws.send(frame)
        prefix = f"43{ack_id}"
        while True:
            message = self.ws.recv()
            if message == "2":  # Engine.IO ping
                self.ws.send("3")
            elif message.startswith(prefix) and message[len(prefix)] == "[":
                return json.loads(message[len(prefix):])

    def acks(self, ids: list[int]) -> dict[int, list]:
        """Wait for the acks of every id in ``ids`` (other packets are read and dropped)."""
        want, out = set(ids), {}
        while want:
            message = self.ws.recv()
            if message == "2":
                self.ws.send("3")
            elif message.startswith("43"):
                body = message[2:]
                digits = len(body) - len(body.lstrip("0123456789"))
                ack_id = int(body[:digits])
                if ack_id in want:
                    out[ack_id] = json.loads(body[digits:])
                    want.discard(ack_id)
        return out

    def close(self) -> None:
        self.ws.close()


BAD_PACKETS = [
    '421["sim:step", {"count": 2',                              # truncated JSON
    '421["sim:step", {"count": ' + "9" * HUGE_DIGITS + "}]",  # python-engineio's 100 digits
    "421" + "[" * DEEP + "]" * DEEP,                             # RecursionError in json
    "421[]",                                                     # IndexError in the library
    '421"sim:step"',                                             # not a list
    "421{}",
    '421[{"a": 1}, {}]',                                         # unhashable event name
    "421[[1], {}]",
    "421 not json at all",
]


@pytest.mark.parametrize("frame", BAD_PACKETS, ids=range(len(BAD_PACKETS)))
def test_a_packet_that_does_not_decode_gets_an_error_ack(server, frame: str) -> None:
    raw = RawSocket(server[0])
    try:
        (ack,) = raw.ack(1, frame)
        refused(ack, "BAD_PACKET")
        (ack,) = raw.ack(2, '422["sim:step", {"count": 1}]')  # the session carries on
        assert ack["ok"] and ack["last_seq"] == 0
    finally:
        raw.close()


def test_deep_nesting_in_scenario_text_is_scenario_invalid(client) -> None:
    text = "name: x\nvms:\n  - name: A\ntitle: " + "[" * 40_000 + "]" * 40_000 + "\n"
    err = refused(call(client, "sim:load", {"text": text}), "SCENARIO_INVALID")
    assert err["line"] == 4 and "nested deeper" in err["message"]


def test_a_huge_integer_in_scenario_text_is_scenario_invalid(client) -> None:
    text = f"name: x\nvms:\n  - name: A\nseed: {'9' * HUGE_DIGITS}\n"
    err = refused(call(client, "sim:load", {"text": text}), "SCENARIO_INVALID")
    assert err["line"] == 4 and f"{HUGE_DIGITS} digits" in err["message"]


def test_an_alias_bomb_is_scenario_invalid(client) -> None:
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    text = "name: x\nvms:\n  - name: A\n" + "\n".join(levels) + "\ntitle: *a9\n"
    assert "aliases" in refused(call(client, "sim:load", {"text": text}),
                                "SCENARIO_INVALID")["message"]


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_a_speed_that_is_not_finite_is_scenario_invalid(client, value: str) -> None:
    text = f"name: x\nspeed: {value}\nvms:\n  - name: A\n"
    err = refused(call(client, "sim:load", {"text": text}), "SCENARIO_INVALID")
    assert err["path"] == "speed" and err["line"] == 2
    status = call(client, "sim:hello")["status"]
    assert status["speed"] == status["speed"]  # not NaN: the old scenario still runs


def test_a_spin_without_work_is_scenario_invalid(client) -> None:
    text = "name: s\nvms:\n  - name: A\n    program: spin\n    params: {work_ns: 0}\n"
    err = refused(call(client, "sim:load", {"text": text}), "SCENARIO_INVALID")
    assert err["path"] == "vms[0].params.work_ns"


def test_action_arguments_are_bounded(client) -> None:
    send = {"vm": "VM_A", "msgq": "A_to_B"}
    assert call(client, "sim:load", {"scenario": "msgq-pingpong"})["ok"]
    err = refused(call(client, "sim:action", {"action": "msgq_send",
                                              "args": {**send, "junk": "x" * 200_000}}),
                  "UNKNOWN_FIELD")
    assert "'junk'" in err["message"]
    refused(call(client, "sim:action", {"action": "msgq_send",
                                        "args": {**send, "vm": "V" * (MAX_NAME_CHARS + 1)}}),
            "TOO_LARGE")
    assert call(client, "sim:action", {"action": "msgq_send", "args": send})["ok"]
    link = call(client, "sim:link")
    assert [a["args"] for a in link["actions"]] == [send]  # nothing refused was kept


def test_a_forged_link_is_refused(client) -> None:
    entry = {"seq": 0, "step": 0, "t": 0, "action": "msgq_send",
             "args": {"vm": "VM_A", "msgq": "A_to_B", "junk": 1}}
    err = refused(call(client, "sim:load", {"scenario": "msgq-pingpong", "actions": [entry]}),
                  "INVALID_LINK")
    assert "'junk'" in err["message"]


def test_a_link_from_beyond_time_is_refused(client) -> None:
    """A forged action time would set the model's clock to a 100-digit number."""
    entry = {"seq": 0, "step": 0, "t": 10**99, "action": "vm_start", "args": {"vm": "VM_A"}}
    err = refused(call(client, "sim:load", {"scenario": "msgq-pingpong", "actions": [entry]}),
                  "INVALID_ARGUMENT")
    assert err["message"].startswith("actions.0.t:")


def write_key(hello: dict) -> dict[str, str]:
    """The header that lets a client write to its session (POST /import)."""
    return {"X-Gunyah-Key": hello["resume"]["key"]}


def _snapshot_event() -> dict:
    sim = Simulation(load("msgq-pingpong"))
    return next(e for e in sim.trace.take() if e["kind"] == "sim.snapshot")


@pytest.mark.parametrize("forge", [
    lambda e: e["state"].__setitem__("vms", [1, 2]),
    lambda e: e["state"]["vms"][0].__setitem__("vcpus", "RM.0"),
    lambda e: e["state"]["vms"][0].pop("name"),
    lambda e: e["state"].__setitem__("vms", None),
], ids=["vms-of-numbers", "vcpus-a-string", "vm-without-name", "vms-null"])
def test_an_import_with_a_malformed_vm_list_is_refused(client, server, forge) -> None:
    hello = call(client, "sim:hello")
    event = _snapshot_event()
    forge(event)
    resp = requests.post(f"{server[0]}/import/{hello['session']}",
                         data=json.dumps(event) + "\n", headers=write_key(hello),
                         timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "INVALID_TIMELINE"
    assert "line 1: sim.snapshot state.vms" in resp.json()["error"]["message"]


@pytest.mark.parametrize("line", [
    '{"seq": 0, "t": 0, "kind": "x.y", "a": ' + "[" * DEEP + "]" * DEEP + "}",
    '{"seq": 0, "t": ' + "9" * HUGE_DIGITS + ', "kind": "x.y"}',
    '{"seq": 0, "t": 0, "kind": "sched.switch", "prev": null}',
    '{"seq": 0, "t": 0, "kind": "' + "<b>" * 1000 + '"}',
], ids=["deep", "huge-integer", "missing-field", "forged-kind"])
def test_a_forged_import_is_invalid_timeline(client, server, line: str) -> None:
    hello = call(client, "sim:hello")
    resp = requests.post(f"{server[0]}/import/{hello['session']}", data=line + "\n",
                         headers=write_key(hello), timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 400, resp.text[:300]
    error = resp.json()["error"]
    assert error["code"] == "INVALID_TIMELINE" and error["message"].startswith("line 1:")
    assert len(error["message"]) < 400
