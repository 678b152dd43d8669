"""The lesson routes: the list, a plan without answers, and nothing but listed files."""

from __future__ import annotations

import pytest
from test_socket import call, trace_events

from gunyah_core.teaching.lessons import LessonRun, check, load_lesson
from webapp.http import LESSON_DIR, lesson_plan

HTTP_OK = 200
HTTP_NOT_FOUND = 404


def test_lesson_list_names_every_shipped_lesson(app):
    reply = app.test_client().get("/api/lessons")
    assert reply.status_code == HTTP_OK
    assert [e["file"] for e in reply.get_json()] == sorted(
        p.name for p in LESSON_DIR.glob("*.yaml"))


def test_plan_gives_where_the_answer_is_never_what_it_is(app):
    reply = app.test_client().get("/api/lessons/02-message-queues.yaml")
    assert reply.status_code == HTTP_OK
    plan = reply.get_json()
    report = check(str(LESSON_DIR / "02-message-queues.yaml"))
    assert plan["scenario"] == "msgq-backpressure" and len(plan["steps"]) == 8
    for step, result in zip(plan["steps"], report.results, strict=True):
        assert step["last_seq"] == result.events[-1]["seq"]
        assert step["first_seq"] == result.events[0]["seq"]
    fifth = plan["steps"][3]["question"]
    assert fifth["answer"] == {"kind": "hvc", "where": {"name": "msgqueue_send",
                                                         "vm": "Producer"}, "field": "result"}
    assert "MSGQUEUE_FULL" in fifth["choices"] and "MSGQUEUE_FULL" not in fifth["answer"].values()
    assert plan["steps"][0]["highlight_keys"] == ["msgq:P_to_C", "vm:Producer", "vm:Consumer"]


def test_only_listed_lessons_are_served(app):
    client = app.test_client()
    for name in ("../README.md", "..%2Fapp.py", "nope.yaml", "02-message-queues"):
        reply = client.get(f"/api/lessons/{name}")
        assert reply.status_code == HTTP_NOT_FOUND


# -- sim:lesson: a lesson opened at any step (a deep link) ---------------------------------
def _open(client, payload):
    client.get_received()
    ack = call(client, "sim:lesson", payload)
    return ack, trace_events(client)


def _checked_run(name):
    """The checker's run of a lesson: every event, and each step's result."""
    run = LessonRun(load_lesson(str(LESSON_DIR / name)))
    while not run.done:
        run.run_step()
    return run


@pytest.mark.parametrize("name", ["02-message-queues.yaml", "03-duplex-and-rm-rpc.yaml"])
def test_a_lesson_opens_at_any_step_exactly_where_it_starts(socketio_client, name):
    """At step K the run holds exactly the checker's events before step K (byte for byte,
    actions of earlier steps included), and running step K from there gives its events."""
    call(socketio_client, "sim:hello")
    run = _checked_run(name)
    plan = lesson_plan(name)
    for k, (step, result) in enumerate(zip(plan["steps"], run.results, strict=True), 1):
        ack, events = _open(socketio_client, {"lesson": name, "step": k})
        assert ack["ok"], ack
        assert ack["step"] == k and ack["plan"]["title"] == plan["title"]
        if k == 1:  # the load revealed the boot (folded): the first step runs on from it
            assert events and events == run.events[:len(events)]
            assert ack["head_seq"] == events[-1]["seq"] < step["last_seq"]
        else:
            assert events == run.events[:step["first_seq"]]
            assert ack["head_seq"] == step["first_seq"] - 1
        if step["action"] is not None:
            assert call(socketio_client, "sim:action", {"action": step["action"]["name"],
                                                        "args": step["action"]["args"]})["ok"]
        want = step["last_seq"] - (events[-1]["seq"] if events else -1)
        got = []
        while len(got) < want:
            assert call(socketio_client, "sim:step", {"count": want - len(got)})["ok"]
            got += trace_events(socketio_client)
        assert [e for e in got if e["seq"] >= step["first_seq"]] == result.events


def test_bad_lessons_and_steps_are_refused_naming_the_field(socketio_client):
    call(socketio_client, "sim:hello")
    cases = [({"lesson": "nope.yaml"}, "UNKNOWN_LESSON", "lesson"),
             ({"lesson": "../app.py", "step": 1}, "UNKNOWN_LESSON", "lesson"),
             ({"lesson": "02-message-queues.yaml", "step": 9}, "INVALID_ARGUMENT", "step"),
             ({"lesson": "02-message-queues.yaml", "step": 0}, "INVALID_ARGUMENT", "step"),
             ({"lesson": "02-message-queues.yaml", "step": "2"}, "INVALID_ARGUMENT", "step"),
             ({"step": 2}, "MISSING_FIELD", "lesson"),
             ({"lesson": "02-message-queues.yaml", "at": 2}, "UNKNOWN_FIELD", "at")]
    for payload, code, field in cases:
        ack = call(socketio_client, "sim:lesson", payload)
        assert not ack["ok"] and ack["error"]["code"] == code, (payload, ack)
        assert ack["error"].get("field") == field, (payload, ack)
        assert field in ack["error"]["message"], ack
    # The session still works.
    assert call(socketio_client, "sim:lesson", {"lesson": "02-message-queues.yaml"})["ok"]
