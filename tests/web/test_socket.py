"""The Socket.IO protocol through Flask-SocketIO's test client (threading mode, in process)."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from gunyah_core import load
from gunyah_core.teaching.captions import caption
from webapp import socketio
from webapp.session import CAPTIONED_PER_BATCH

WAIT_S = 5.0


def call(client, event, payload=None):
    """Emit with an ack callback and return the ack."""
    if payload is None:
        return client.emit(event, callback=True)
    return client.emit(event, payload, callback=True)


def received(client, name):
    return [m["args"][0] for m in client.get_received() if m["name"] == name]


def trace_events(client):
    return [e for batch in received(client, "sim:trace") for e in batch["events"]]


def assert_contiguous(events, first=0):
    assert [e["seq"] for e in events] == list(range(first, first + len(events)))


def wait_for_events(client, n, timeout=WAIT_S):
    """Collect streamed trace events until at least n arrived (bounded wait)."""
    events, deadline = [], time.monotonic() + timeout
    while len(events) < n and time.monotonic() < deadline:
        events += trace_events(client)
        socketio.sleep(0.01)
    return events


def test_hello_ack_lists_presets_actions_limits_and_a_token(socketio_client):
    socketio_client.get_received()
    ack = call(socketio_client, "sim:hello", {})
    boot = trace_events(socketio_client)  # the new session's boot, sent before the ack
    assert ack["ok"] is True
    assert_contiguous(boot)
    assert ack["status"]["boot_seq"] == boot[-1]["seq"] and ack["boot"]["snapshot"] is True
    step = call(socketio_client, "sim:step", {"count": 1})
    first = trace_events(socketio_client)
    assert step["last_seq"] == boot[-1]["seq"] + 1 and first[0]["kind"] == "msgq.send"
    assert ack["session"] and ack["session"] != socketio_client.eio_sid
    assert "msgq-pingpong" in {p["name"] for p in ack["presets"]}
    assert "msgq_send" in ack["actions"] and "jsonl" in ack["export_formats"]
    assert ack["limits"]["max_step_count"] == 10_000
    assert ack["status"] == {**ack["status"], "playing": False, "seq": boot[-1]["seq"],
                             "scenario": "msgq-pingpong"}
    assert {vm["name"] for vm in ack["snapshot"]["vms"]} >= {"RM", "HLOS", "VM_A", "VM_B"}


def test_hello_carries_the_hypercall_console_table(socketio_client):
    table = call(socketio_client, "sim:hello", {})["hypercalls"]
    send = table["calls"]["msgqueue_send"]
    assert send["number"] == 0x601B and list(send["args"]) == ["capid", "size", "flags",
                                                                "payload"]
    assert send["args"]["capid"] == {**send["args"]["capid"], "kind": "capid",
                                     "object": "MSGQUEUE", "rights": ["SEND"]}
    rights = table["errors"]["CSPACE_INSUFFICIENT_RIGHTS"]
    assert rights["code"] == 53 and "right" in rights["meaning"]


def test_a_console_call_runs_as_the_vms_hypercall(socketio_client):
    snap = call(socketio_client, "sim:hello", {})["snapshot"]
    vm_a = next(vm for vm in snap["vms"] if vm["name"] == "VM_A")
    capid = next(c["capid"] for c in vm_a["caps"] if c["object"] == "msgqueue:A_to_B")
    ack = call(socketio_client, "sim:action", {"action": "hvc", "args": {
        "vm": "VM_A", "call": "msgqueue_receive", "args": {"capid": hex(capid)}}})
    assert ack["ok"] and ack["hvc"] == "msgqueue_receive"
    call(socketio_client, "sim:step", {"count": 300})
    hvc = hvc_for(trace_events(socketio_client), ack["action_id"])
    assert hvc["result"] == "CSPACE_INSUFFICIENT_RIGHTS" and hvc["args"] == {"capid": capid}
    ack = call(socketio_client, "sim:action", {"action": "hvc", "args": {
        "vm": "VM_A", "call": "msgqueue_receive", "args": {"capid": 1, "flags": 1}}})
    assert ack["error"]["code"] == "UNKNOWN_FIELD" and "'flags'" in ack["error"]["message"]


@pytest.mark.parametrize("count", [1, 7, 250])
def test_step_reveals_exactly_n_contiguous_events(socketio_client, count):
    socketio_client.get_received()
    ack = call(socketio_client, "sim:step", {"count": count})
    events = trace_events(socketio_client)
    assert ack == {"ok": True, "revealed": count, "last_seq": count - 1,
                   "now_ns": events[-1]["t"], "finished": False}
    assert_contiguous(events)
    call(socketio_client, "sim:step", {"count": 3})
    assert_contiguous(trace_events(socketio_client), count)


def test_step_to_kind_stops_on_that_kind(socketio_client):
    call(socketio_client, "sim:step", {"count": 2})
    socketio_client.get_received()
    ack = call(socketio_client, "sim:step", {"kind": "msgq.recv"})
    events = trace_events(socketio_client)
    assert ack["ok"] and ack["revealed"] == len(events) and ack["last_seq"] == events[-1]["seq"]
    assert events[-1]["kind"] == "msgq.recv"
    assert all(e["kind"] != "msgq.recv" for e in events[:-1])
    assert_contiguous(events, 2)


def test_step_to_absent_kind_is_not_found_and_reveals_nothing(socketio_client, monkeypatch):
    monkeypatch.setattr("webapp.session.MAX_STEP_KIND_SCAN", 300)
    ack = call(socketio_client, "sim:step", {"kind": "mem.fault"})
    assert ack["ok"] is False and ack["error"]["code"] == "NOT_FOUND"
    socketio_client.get_received()
    assert call(socketio_client, "sim:step", {"count": 5})["last_seq"] == 4
    assert_contiguous(trace_events(socketio_client))


def test_play_streams_gapless_batches_and_pause_stops_them(socketio_client):
    assert call(socketio_client, "sim:speed", {"speed": "max"}) == {"ok": True, "speed": "max"}
    assert call(socketio_client, "sim:play") == {"ok": True}
    events = wait_for_events(socketio_client, 2_000)
    assert call(socketio_client, "sim:pause") == {"ok": True}
    events += trace_events(socketio_client)
    assert len(events) >= 2_000
    assert_contiguous(events)
    socketio.sleep(0.1)  # a stopped pacing task sends nothing more
    msgs = socketio_client.get_received()
    assert not [m for m in msgs if m["name"] == "sim:trace"]
    status = call(socketio_client, "sim:hello")["status"]
    assert status["playing"] is False and status["seq"] == events[-1]["seq"]


def test_paced_play_reveals_only_events_up_to_the_paced_time(socketio_client):
    first_t0 = [e for e in load_events("msgq-pingpong", 40) if e["t"] == 0]
    call(socketio_client, "sim:speed", {"speed": 1e-7})  # 100 ns of model time per second
    call(socketio_client, "sim:play")
    events = wait_for_events(socketio_client, len(first_t0))
    socketio.sleep(0.1)
    call(socketio_client, "sim:pause")
    events += trace_events(socketio_client)
    assert events == first_t0  # the next event is 2 us away: minutes at this speed


def load_events(name, n):
    from gunyah_core import Simulation

    return Simulation(load(name)).run(max_events=n)


def test_speed_change_is_acked_and_reported_in_status(socketio_client):
    socketio_client.get_received()
    assert call(socketio_client, "sim:speed", {"speed": 0.001}) == {"ok": True, "speed": 0.001}
    statuses = received(socketio_client, "sim:status")
    assert statuses[-1]["speed"] == 0.001


def test_reset_rebuilds_and_restarts_seq(socketio_client):
    call(socketio_client, "sim:step", {"count": 50})
    socketio_client.get_received()
    ack = call(socketio_client, "sim:reset", {"seed": 7})
    assert ack["ok"] and ack["snapshot"]["scenario"]["seed"] == 7
    assert ack["snapshot"]["now_ns"] == 0
    msgs = socketio_client.get_received()
    assert [m for m in msgs if m["name"] == "sim:snapshot"]
    boot = [e for m in msgs if m["name"] == "sim:trace" for e in m["args"][0]["events"]]
    assert boot[-1]["seq"] == ack["boot_seq"] == ack["snapshot"]["boot_seq"]  # revealed again
    call(socketio_client, "sim:step", {"count": 3})
    assert_contiguous(boot + trace_events(socketio_client))


def test_load_preset_and_scenario_text(socketio_client):
    ack = call(socketio_client, "sim:load", {"scenario": "doorbell"})
    assert ack["ok"] and ack["snapshot"]["scenario"]["name"] == "doorbell"
    config = dict(load("msgq-backpressure").config, name="uploaded")
    ack = call(socketio_client, "sim:load", {"text": yaml.safe_dump(config),
                                             "filename": "mine.yaml", "seed": 3})
    assert ack["ok"] and ack["snapshot"]["scenario"] == {**ack["snapshot"]["scenario"],
                                                         "name": "uploaded", "seed": 3}


@pytest.mark.parametrize("payload, code", [
    ({"scenario": "no-such-preset"}, "UNKNOWN_SCENARIO"),
    ({"scenario": "/etc/passwd"}, "UNKNOWN_SCENARIO"),
    ({"text": "name: x\nvms: [\n"}, "SCENARIO_INVALID"),
    ({"text": "name: x\nvms: []\nbogus: 1\n"}, "SCENARIO_INVALID"),
])
def test_bad_scenarios_are_refused_and_the_old_one_stays(socketio_client, payload, code):
    ack = call(socketio_client, "sim:load", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code and ack["error"]["message"]
    assert call(socketio_client, "sim:snapshot")["snapshot"]["scenario"]["name"] == "msgq-pingpong"


def test_scenario_error_names_the_line(socketio_client):
    ack = call(socketio_client, "sim:load", {"text": "name: x\nvms:\n  - {name: A, bad: 1}\n"})
    assert ack["error"]["code"] == "SCENARIO_INVALID" and ack["error"]["line"] == 3


def test_scenario_upload_lists_every_mistake(socketio_client):
    text = "name: x\nvms:\n  - {name: A, bad: 1}\n  - {name: B, vcpus: 0}\n"
    ack = call(socketio_client, "sim:load", {"text": text})
    problems = ack["error"]["problems"]
    assert [(p["path"], p["line"]) for p in problems] == [("vms[0]", 3), ("vms[1].vcpus", 4)]


def hvc_for(events, action_id):
    return next(e for e in events if e["kind"] == "hvc" and e.get("action") == action_id)


def test_action_msgq_send_takes_effect_as_the_vms_hypercall(socketio_client):
    ack = call(socketio_client, "sim:action", {"action": "msgq_send", "args": {
        "vm": "VM_A", "msgq": "A_to_B", "size": 32, "payload": "hello"}})
    assert ack["ok"] and ack["action_id"] >= 1 and ack["hvc"] == "msgqueue_send"
    call(socketio_client, "sim:step", {"count": 300})
    events = trace_events(socketio_client)
    hvc = hvc_for(events, ack["action_id"])
    assert hvc["result"] == "OK" and hvc["vm"] == "VM_A"
    sends = [e for e in events if e["kind"] == "msgq.send" and e.get("payload") == "hello"]
    assert sends and sends[0]["seq"] < hvc["seq"] and sends[0]["size"] == 32


def test_filling_a_queue_gives_msgqueue_full(socketio_client):
    assert call(socketio_client, "sim:action", {"action": "vm_stop", "args": {"vm": "VM_B"}})["ok"]
    ids = [call(socketio_client, "sim:action", {"action": "msgq_send", "args": {
        "vm": "VM_A", "msgq": "A_to_B", "push": True}})["action_id"] for _ in range(9)]
    call(socketio_client, "sim:step", {"count": 500})
    events = trace_events(socketio_client)
    results = [hvc_for(events, i)["result"] for i in ids]
    assert results[:8] == ["OK"] * 8 and results[8] == "MSGQUEUE_FULL"


def test_backpressure_preset_reaches_msgqueue_full(socketio_client):
    call(socketio_client, "sim:load", {"scenario": "msgq-backpressure"})
    for _ in range(20):
        call(socketio_client, "sim:step", {"kind": "hvc"})
        last = trace_events(socketio_client)[-1]
        if last["result"] == "MSGQUEUE_FULL":
            break
    assert last["kind"] == "hvc" and last["result"] == "MSGQUEUE_FULL"
    assert last["name"] == "msgqueue_send"


BIG_TEXT = "#" * (400 * 1024)


@pytest.mark.parametrize("event, payload, code", [
    ("sim:step", "five", "BAD_PAYLOAD"),
    ("sim:step", [1, 2], "BAD_PAYLOAD"),
    ("sim:step", {"count": "5"}, "INVALID_ARGUMENT"),
    ("sim:step", {"count": 0}, "INVALID_ARGUMENT"),
    ("sim:step", {"count": 10_001}, "INVALID_ARGUMENT"),
    ("sim:step", {"count": True}, "INVALID_ARGUMENT"),
    ("sim:step", {"kind": "no.such.kind"}, "INVALID_ARGUMENT"),
    ("sim:step", {"count": 2, "kind": "hvc"}, "INVALID_ARGUMENT"),
    ("sim:step", {"cuont": 2}, "UNKNOWN_FIELD"),
    ("sim:speed", {}, "MISSING_FIELD"),
    ("sim:speed", {"speed": 5}, "INVALID_ARGUMENT"),
    ("sim:speed", {"speed": "fast"}, "INVALID_ARGUMENT"),
    ("sim:load", {}, "MISSING_FIELD"),
    ("sim:load", {"scenario": "doorbell", "text": "x"}, "INVALID_ARGUMENT"),
    ("sim:load", {"text": BIG_TEXT}, "TOO_LARGE"),
    ("sim:reset", {"seed": -1}, "INVALID_ARGUMENT"),
    ("sim:action", {"args": {}}, "MISSING_FIELD"),
    ("sim:action", {"action": "msgq_send", "args": []}, "INVALID_ARGUMENT"),
    ("sim:action", {"action": "fly", "args": {}}, "UNKNOWN_ACTION"),
    ("sim:action", {"action": "msgq_send", "args": {"vm": "VM_Z", "msgq": "A_to_B"}},
     "UNKNOWN_VM"),
    ("sim:action", {"action": "msgq_send", "args": {"vm": "VM_A", "msgq": "nope"}},
     "UNKNOWN_OBJECT"),
    ("sim:action", {"action": "msgq_send", "args": {"vm": "VM_A"}}, "MISSING_FIELD"),
    ("sim:action", {"action": "msgq_send", "args": {"vm": "VM_A", "msgq": "A_to_B",
                                                     "size": "big"}}, "INVALID_ARGUMENT"),
    ("sim:teleport", {}, "UNKNOWN_EVENT"),
])
def test_malformed_requests_get_error_acks_and_the_session_survives(
        socketio_client, event, payload, code):
    ack = call(socketio_client, event, payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == code and isinstance(ack["error"]["message"], str)
    socketio_client.get_received()
    assert call(socketio_client, "sim:step", {"count": 2})["revealed"] == 2
    assert_contiguous(trace_events(socketio_client))


def test_errors_without_ack_arrive_as_server_error(socketio_client):
    socketio_client.get_received()
    socketio_client.emit("sim:step", {"count": "many"})
    socketio_client.emit("sim:nonsense", {})
    errors = received(socketio_client, "server:error")
    assert [e["code"] for e in errors] == ["INVALID_ARGUMENT", "UNKNOWN_EVENT"]


def test_two_clients_have_independent_simulations(app, socketio_client):
    other = socketio.test_client(app)
    try:
        call(socketio_client, "sim:step", {"count": 40})
        call(socketio_client, "sim:load", {"scenario": "doorbell"})
        other.get_received()
        assert call(other, "sim:step", {"count": 1})["last_seq"] == 0
        assert call(other, "sim:snapshot")["snapshot"]["scenario"]["name"] == "msgq-pingpong"
        assert call(other, "sim:hello")["session"] != call(socketio_client, "sim:hello")["session"]
    finally:
        other.disconnect()


def test_http_export_is_the_revealed_trace(app, socketio_client):
    token = call(socketio_client, "sim:hello")["session"]
    call(socketio_client, "sim:step", {"count": 123})
    events = trace_events(socketio_client)
    http = app.test_client()
    resp = http.get(f"/export/{token}.jsonl")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    lines = resp.get_data(as_text=True).splitlines()
    assert [json.loads(line) for line in lines] == events
    for fmt in ("csv", "perfetto", "vcd", "text"):
        resp = http.get(f"/export/{token}.{fmt}")
        assert resp.status_code == 200 and resp.get_data()
    text = http.get(f"/export/{token}.text").get_data(as_text=True).splitlines()
    assert [line.split("\t")[3] for line in text] == [caption(e) for e in events]
    assert http.get(f"/export/{token}.xls").json["error"]["code"] == "UNKNOWN_FORMAT"
    resp = http.get("/export/not-a-token.jsonl")
    assert resp.status_code == 404 and resp.json["error"]["code"] == "UNKNOWN_SESSION"
    socketio_client.disconnect()  # the session waits, paused, to be resumed ...
    assert http.get(f"/export/{token}.jsonl").status_code == 200
    store = app.extensions["gunyah"]  # webapp.EXTENSION_KEY
    store.window_s = 0  # ... until its window has passed
    store.expire()
    assert http.get(f"/export/{token}.jsonl").status_code == 404


def test_http_page_icon_presets_and_schema(app):
    http = app.test_client()
    page = http.get("/")
    assert page.status_code == 200 and b"<html" in page.data.lower()
    assert http.get("/favicon.ico").status_code == 200
    presets = http.get("/api/presets").json
    assert {"name": "msgq-pingpong", "title": load("msgq-pingpong").config["title"]}.items() \
        <= next(p for p in presets if p["name"] == "msgq-pingpong").items()
    assert "properties" in http.get("/api/scenario-schema").json


def test_flow_control_window_holds_play_until_batches_are_acked(socketio_client):
    """The test client never acks server events, so play must stop after `window` batches."""
    assert call(socketio_client, "sim:hello", {"window": 2})["window"] == 2
    call(socketio_client, "sim:speed", {"speed": "max"})
    call(socketio_client, "sim:play")
    deadline = time.monotonic() + WAIT_S
    batches = []
    while len(batches) < 2 and time.monotonic() < deadline:
        batches += received(socketio_client, "sim:trace")
        socketio.sleep(0.01)
    socketio.sleep(0.2)
    batches += received(socketio_client, "sim:trace")
    assert len(batches) == 2
    assert call(socketio_client, "sim:pause") == {"ok": True}


def _session(app):
    store = app.extensions["gunyah"]  # webapp.EXTENSION_KEY
    return store.get(next(iter(store._by_sid)))


def test_status_counts_invariant_checks(app, socketio_client):
    call(socketio_client, "sim:step", {"count": 300})
    status = received(socketio_client, "sim:status")[-1]["invariants"]
    assert status["checks"] > 0 and status["violations"] == 0 and status["violation"] is None


def test_a_violated_invariant_pauses_the_run_at_its_event(app, socketio_client):
    call(socketio_client, "sim:step", {"count": 300})
    queue = _session(app).sim.hyp.msgqs["A_to_B"]
    queue.items.append((10**6, 8, "ghost", 0))  # corrupt: a message the trace never saw
    call(socketio_client, "sim:speed", {"speed": "max"})
    socketio_client.get_received()
    assert call(socketio_client, "sim:play") == {"ok": True}
    deadline, paused = time.monotonic() + WAIT_S, None
    while paused is None and time.monotonic() < deadline:
        socketio.sleep(0.02)
        paused = next((s for s in received(socketio_client, "sim:status")
                       if not s["playing"] and s["invariants"]["violation"]), None)
    assert paused is not None, "the run did not pause"
    found = paused["invariants"]["violation"]
    assert found["invariant"] == "depth" and found["kind"] in {"msgq.send", "msgq.recv"}
    assert found["seq"] <= paused["seq"]  # the event was revealed, then the run paused
def test_trace_batches_and_event_pages_carry_each_events_caption(socketio_client):
    socketio_client.get_received()
    call(socketio_client, "sim:step", {"count": 40})
    batches = received(socketio_client, "sim:trace")
    for batch in batches:
        assert batch["captions"] == [caption(e) for e in batch["events"]]
        assert all("caption" not in e for e in batch["events"])  # the trace stays the model's
    page = call(socketio_client, "sim:events", {"from_seq": 0, "count": 40})
    assert page["captions"] == [caption(e) for e in page["events"]] and len(page["events"]) == 40
    # A flood's batch captions only its newest events; sim:events gives every caption.
    call(socketio_client, "sim:step", {"count": CAPTIONED_PER_BATCH + 50})
    (batch,) = received(socketio_client, "sim:trace")
    assert batch["captions"][:50] == [None] * 50
    assert batch["captions"][50:] == [caption(e) for e in batch["events"][50:]]
    page = call(socketio_client, "sim:events", {"from_seq": 40, "count": 50})
    assert page["captions"] == [caption(e) for e in batch["events"][:50]]


def test_explain_gives_caption_real_line_and_hex_fields(socketio_client):
    call(socketio_client, "sim:step", {"count": 60})
    event = next(e for e in call(socketio_client, "sim:events", {"from_seq": 0, "count": 60})
                 ["events"] if e["kind"] == "hvc")
    ack = call(socketio_client, "sim:explain", {"event": event})
    assert ack["ok"] and ack["caption"] == caption(event)
    shown = dict(ack["fields"])
    assert shown["call"] == f"{event['name']} (0x{event['call']:X})"
    assert "HVC #0x60" in ack["real"]
    weird = call(socketio_client, "sim:explain", {"event": {"kind": [1], "x": {"y": None}}})
    assert weird["ok"] and weird["fields"] == [["x", "y —"]]
    assert call(socketio_client, "sim:explain", {})["ok"] is False
