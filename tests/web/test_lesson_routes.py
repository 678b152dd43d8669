"""The lesson routes: the list, a plan without answers, and nothing but listed files."""

from __future__ import annotations

from gunyah_core.teaching.lessons import check
from webapp.http import LESSON_DIR

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
