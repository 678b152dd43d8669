"""Time travel on the server: fork at an old event, switch branches, links, imports."""

from __future__ import annotations

import json

from test_socket import call, received, trace_events

from webapp import socketio

STEPS_BEFORE = 400


def step(client, count):
    ack = call(client, "sim:step", {"count": count})
    assert ack["ok"], ack
    return trace_events(client)


def test_action_at_an_old_seq_forks_and_the_old_branch_stays(socketio_client):
    call(socketio_client, "sim:hello")
    main_events = step(socketio_client, STEPS_BEFORE)
    at = main_events[199]["seq"]
    ack = call(socketio_client, "sim:action", {
        "action": "msgq_send", "args": {"vm": "VM_B", "msgq": "B_to_A", "payload": "fork"},
        "at_seq": at})
    assert ack["ok"], ack
    assert ack["fork"] == {"from_branch": 0, "at_seq": at, "branch": 1}
    after = step(socketio_client, 50)
    # The new future starts right after the fork point (the rest of that engine step first).
    assert after[0]["seq"] > at
    assert any(e["kind"] == "user.action" and e["args"]["payload"] == "fork" for e in after)
    listing = call(socketio_client, "sim:branches")
    assert listing["current"] == 1
    assert [(b["id"], b["parent"], b["fork_seq"]) for b in listing["branches"]] == [
        (0, None, -1), (1, 0, at)]
    assert listing["branches"][0]["head_seq"] == main_events[-1]["seq"]
    # The old branch is intact: its events are the ones seen before the fork.
    old = call(socketio_client, "sim:events", {"from_seq": 0, "count": 20000, "branch": 0})
    assert old["events"] == main_events
    # Switching back rebuilds its simulation at its head; stepping continues that future.
    assert call(socketio_client, "sim:branch", {"id": 0})["ok"]
    more = step(socketio_client, 10)
    assert more[0]["seq"] == main_events[-1]["seq"] + 1
    assert not any(e["kind"] == "user.action" for e in more)


def test_a_shared_link_reproduces_the_same_events(app, socketio_client):
    call(socketio_client, "sim:hello")
    step(socketio_client, 300)
    call(socketio_client, "sim:action", {"action": "vm_stop", "args": {"vm": "VM_B"}})
    step(socketio_client, 100)
    original = call(socketio_client, "sim:events", {"from_seq": 0, "count": 20000})["events"]
    link = call(socketio_client, "sim:link")
    assert link["scenario"] == "msgq-pingpong" and len(link["actions"]) == 1
    fresh = socketio.test_client(app)
    try:
        call(fresh, "sim:hello")
        fresh.get_received()
        ack = call(fresh, "sim:load", {"scenario": link["scenario"], "seed": link["seed"],
                                       "actions": link["actions"],
                                       "through_seq": link["head_seq"]})
        assert ack["ok"], ack
        assert ack["head_seq"] == link["head_seq"]
        replayed = trace_events(fresh)
        assert replayed == original
    finally:
        fresh.disconnect()


def test_a_link_replays_console_calls(app, socketio_client):
    snap = call(socketio_client, "sim:hello")["snapshot"]
    vm_a = next(vm for vm in snap["vms"] if vm["name"] == "VM_A")
    capid = next(c["capid"] for c in vm_a["caps"] if c["object"] == "msgqueue:A_to_B")
    step(socketio_client, 100)
    for args in ({"capid": hex(capid), "size": "8", "flags": 1, "payload": "console"},
                 {"capid": capid, "size": 300}):
        assert call(socketio_client, "sim:action", {"action": "hvc", "args": {
            "vm": "VM_A", "call": "msgqueue_send", "args": args}})["ok"]
        step(socketio_client, 50)
    original = call(socketio_client, "sim:events", {"from_seq": 0, "count": 20000})["events"]
    assert [e["result"] for e in original if e["kind"] == "hvc" and "action" in e] == [
        "OK", "ARGUMENT_SIZE"]
    link = call(socketio_client, "sim:link")
    fresh = socketio.test_client(app)
    try:
        call(fresh, "sim:hello")
        fresh.get_received()
        ack = call(fresh, "sim:load", {"scenario": link["scenario"], "seed": link["seed"],
                                       "actions": link["actions"],
                                       "through_seq": link["head_seq"]})
        assert ack["ok"], ack
        assert trace_events(fresh) == original
    finally:
        fresh.disconnect()


def test_a_broken_link_is_refused(socketio_client):
    call(socketio_client, "sim:hello")
    bad = {"seq": 5, "step": 3, "t": 0, "action": "msgq_send", "args": {"vm": "NOPE"}}
    ack = call(socketio_client, "sim:load", {"scenario": "msgq-pingpong", "actions": [bad]})
    assert ack["error"]["code"] == "INVALID_LINK"
    ack = call(socketio_client, "sim:load", {"scenario": "msgq-pingpong",
                                             "actions": [{"seq": "x"}]})
    assert ack["error"]["code"] in ("INVALID_ARGUMENT", "MISSING_FIELD")
    assert call(socketio_client, "sim:step", {"count": 3})["ok"]  # the session survives


def tokens(client) -> tuple[str, dict[str, str]]:
    """The session's export token, and the header that lets it be written to (import)."""
    hello = call(client, "sim:hello")
    return hello["session"], {"X-Gunyah-Key": hello["resume"]["key"]}


def test_an_imported_timeline_replays_without_a_model(app, socketio_client):
    token, key = tokens(socketio_client)
    recorded = step(socketio_client, 250)
    body = "\n".join(json.dumps(e) for e in recorded)
    http = app.test_client()
    resp = http.post(f"/import/{token}?name=run.jsonl", data=body, headers=key)
    assert resp.status_code == 200 and resp.json == {"ok": True, "events": len(recorded)}
    snap = received(socketio_client, "sim:snapshot")[-1]
    assert snap["scenario"]["imported"] == "run.jsonl"
    assert {vm["name"] for vm in snap["vms"]} >= {"RM", "HLOS", "VM_A", "VM_B"}
    assert step(socketio_client, len(recorded)) == recorded
    ack = call(socketio_client, "sim:action", {"action": "vm_stop", "args": {"vm": "VM_B"}})
    assert ack["error"]["code"] == "REPLAY_ONLY"
    assert call(socketio_client, "sim:snapshot")["snapshot"] == snap


def test_a_bad_timeline_upload_is_refused_with_its_line(app, socketio_client):
    token, key = tokens(socketio_client)
    http = app.test_client()
    resp = http.post(f"/import/{token}", data='{"seq": 0, "t": 0, "kind": "x"}\nnot json\n',
                     headers=key)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "INVALID_TIMELINE"
    assert "line 2" in resp.json["error"]["message"]
    resp = http.post(f"/import/{token}", data='{"seq": 0, "t": 0, "kind": "hvc"}\n',
                     headers=key)
    assert resp.json["error"]["code"] == "INVALID_TIMELINE"  # no sim.snapshot to draw from
    assert http.post("/import/nope", data="").status_code == 404
    assert call(socketio_client, "sim:step", {"count": 2})["ok"]


def test_numbers_that_only_look_right_are_refused(socketio_client):
    call(socketio_client, "sim:hello")
    for event, payload in [("sim:step", {"count": 5.0}), ("sim:branch", {"id": 0.0}),
                           ("sim:events", {"from_seq": 0, "count": 2.0}),
                           ("sim:speed", {"speed": float("nan")}),
                           ("sim:reset", {"seed": 3.0}),
                           ("sim:load", {"scenario": "msgq-pingpong", "through_seq": 10**7})]:
        ack = call(socketio_client, event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "INVALID_ARGUMENT", (event, ack)
    assert call(socketio_client, "sim:step", {"count": 2})["ok"]


def test_imports_that_cannot_be_drawn_or_read_leave_the_session_as_it_was(app,
                                                                         socketio_client):
    token, key = tokens(socketio_client)
    http = app.test_client()
    bad_snapshot = json.dumps({"seq": 0, "t": 0, "kind": "sim.snapshot", "scenario": "x",
                               "state": {"vms": []}})
    no_vms = json.dumps({"seq": 0, "t": 0, "kind": "sim.snapshot", "state": {}})
    for body in (bad_snapshot, no_vms, b"\xff\xfe\x00"):
        resp = http.post(f"/import/{token}", data=body, headers=key)
        assert resp.status_code == 400 and resp.json["error"]["code"] == "INVALID_TIMELINE"
    status = call(socketio_client, "sim:step", {"count": 3})
    assert status["ok"] and status["revealed"] == 3
    ack = call(socketio_client, "sim:action", {"action": "vm_stop", "args": {"vm": "VM_B"}})
    assert ack["ok"]  # still the live model, not a replay


def test_fork_at_the_head_keeps_the_branch_left_as_it_was(socketio_client):
    """sim:fork (a lesson's "explore from here"): a new branch at the head or at an older
    event, nothing added to it yet; the branch left keeps its events and its future."""
    call(socketio_client, "sim:hello")
    main_events = step(socketio_client, 200)
    head = main_events[-1]["seq"]
    ack = call(socketio_client, "sim:fork", {})
    assert ack["ok"], ack
    assert ack["fork"] == {"from_branch": 0, "at_seq": head, "branch": 1}
    assert call(socketio_client, "sim:events", {"from_seq": 0, "count": 20000})["events"] \
        == main_events
    free = step(socketio_client, 30)  # the free branch plays on from the head
    assert free[0]["seq"] == head + 1
    assert call(socketio_client, "sim:action", {"action": "vm_stop", "args": {"vm": "VM_B"}})["ok"]
    step(socketio_client, 20)
    # Back on branch 0 the run goes on exactly as the free branch first did (no action).
    assert call(socketio_client, "sim:branch", {"id": 0})["ok"]
    assert call(socketio_client, "sim:events", {"from_seq": 0, "count": 20000, "branch": 0}
                )["events"] == main_events
    assert step(socketio_client, 30) == free
    older = main_events[100]["seq"]
    ack = call(socketio_client, "sim:fork", {"at_seq": older})
    assert ack["ok"] and ack["fork"] == {"from_branch": 0, "at_seq": older, "branch": 2}


def test_fork_refuses_an_event_not_revealed_naming_the_field(socketio_client):
    call(socketio_client, "sim:hello")
    step(socketio_client, 10)
    for payload, code in (({"at_seq": 10_000}, "NOT_FOUND"), ({"at_seq": -1}, "INVALID_ARGUMENT"),
                          ({"at": 3}, "UNKNOWN_FIELD")):
        ack = call(socketio_client, "sim:fork", payload)
        assert not ack["ok"] and ack["error"]["code"] == code, ack
        assert ack["error"]["field"] == next(iter(payload)), ack
    assert call(socketio_client, "sim:branches")["branches"][0]["head_seq"] >= 9
