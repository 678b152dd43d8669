"""Lessons: shipped ones check clean, answers come from the model, broken ones are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gunyah_core.actions import ActionError
from gunyah_core.scenario import load
from gunyah_core.simulation import Simulation
from gunyah_core.teaching.captions import caption
from gunyah_core.teaching.lessons import (
    LessonError,
    LessonRun,
    check,
    event_caption,
    grade,
    lesson_index,
    load_lesson,
    page_plan,
    parse_lesson,
)
from tests.core.conftest import US

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "lessons").glob("*.yaml"))
MIN_LESSONS = 13
MIN_QUESTIONS = 3

FULL_QUEUE = """
title: A full queue
scenario: msgq-backpressure
steps:
  - caption: Fill it up to three.
    run: {until: {kind: hvc, where: {name: msgqueue_send, vm: Producer}, count: 4}}
  - caption: The send that fills it.
    question:
      ask: not_full?
      choices: [true, false]
      answer: {kind: hvc, where: {name: msgqueue_send, vm: Producer}, field: ret.not_full}
  - caption: One more.
    question:
      ask: Which result?
      choices: [OK, MSGQUEUE_FULL]
      answer: {kind: hvc, where: {name: msgqueue_send, vm: Producer}, field: result}
"""


def run_all(text: str) -> LessonRun:
    run = LessonRun(parse_lesson(text))
    while not run.done:
        run.run_step()
    return run


# -- the shipped lessons -----------------------------------------------------------------------
def test_there_is_a_lesson_per_chapter():
    assert len(SHIPPED) >= MIN_LESSONS


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_lesson_checks_clean(path: Path):
    report = check(str(path))
    assert report.problems == []
    questions = [r for r in report.results if r.event is not None]
    assert len(questions) >= MIN_QUESTIONS
    for result in questions:  # the deciding event is one of the step's own events
        assert result.event in result.events


def test_message_queue_lesson_answers_are_the_models():
    report = check(str(REPO / "lessons" / "02-message-queues.yaml"))
    answers = [r.answer for r in report.results if r.event is not None]
    assert answers == ["msgq:P_to_C:rx", False, "MSGQUEUE_FULL", 3, "Producer", "ARGUMENT_SIZE",
                       "CSPACE_CAP_REVOKED"]  # the fault step: the RM revoked P_to_C's caps
    # The same run without the lesson: the first MSGQUEUE_FULL is the deciding event of
    # the fifth-send question (step 4), and the send just before it said not_full=false.
    sim = Simulation(load("msgq-backpressure"))
    events = sim.run(until_ns=report.results[3].event["t"])
    sends = [e for e in events if e["kind"] == "hvc" and e["name"] == "msgqueue_send"]
    full = next(i for i, e in enumerate(sends) if e["result"] == "MSGQUEUE_FULL")
    assert sends[full] == report.results[3].event
    assert sends[full - 1] == report.results[2].event
    assert sends[full - 1]["ret"]["not_full"] is False


def test_fragmentation_and_scheduling_answers():
    rpc = check(str(REPO / "lessons" / "03-duplex-and-rm-rpc.yaml"))
    assert [r.answer for r in rpc.results if r.event is not None] == [
        "RM_to_HLOS", False, 1, 240, 316]
    fprr = check(str(REPO / "lessons" / "06-fprr-scheduling.yaml"))
    assert [r.answer for r in fprr.results if r.event is not None] == [
        "Spin_B.0", "preempt", "Spin_A.0", 607904, "Spin_B.0"]


def test_foreign_capid_in_the_capabilities_lesson_is_vm_as():
    """The lesson names VM_A's capid for A_to_B as a number (and in hex in its caption):
    it must be the one the model gives VM_A, or the lesson would teach the wrong thing."""
    lesson = load_lesson(str(REPO / "lessons" / "01-capabilities-and-hypercalls.yaml"))
    step = lesson.steps[1]
    capid = step["action"]["args"]["capid"]
    sim = Simulation(lesson.scenario)
    vm_a = sim.hyp.vms["VM_A"]
    assert vm_a.cspace.find(sim.hyp.msgqs["A_to_B"]) == capid
    assert f"{capid} ({capid:#X}".replace("0X", "0x") in " ".join(step["caption"].split())
    report = check(str(REPO / "lessons" / "01-capabilities-and-hypercalls.yaml"))
    assert report.results[1].answer == "ARGUMENT_INVALID"


def test_proxy_scheduling_answers_are_the_ones_the_lesson_teaches():
    """Each answer pinned, with the event it comes from (not one run against another):
    pCPU 0, what is left of HLOS's 1 ms slice after its 4 us, READY when the slice ends
    mid-handler, EXPECTS_WAKEUP once the guest waits, and the wakeup vIRQ goes to HLOS
    (when the guest's virtual timer fires: on a whole 16 ns tick, counted from the
    accesses that armed it)."""
    report = check(str(REPO / "lessons" / "07-proxy-scheduling.yaml"))
    assert [(r.answer, r.event["kind"], r.event["t"]) for r in report.results] == [
        (0, "vcpu.run", 35 * US), (996 * US, "sched.switch", 35 * US),
        ("READY", "hvc", 1031 * US), ("EXPECTS_WAKEUP", "hvc", 1544 * US),
        ("HLOS", "virq.assert", 4_006_048)]


def test_timer_virtio_and_paging_answers_are_the_ones_the_lessons_explain():
    """The explanations of lessons 11-13 name their answers (the lessons' files never do):
    pin them to the model, each with the kind of event it is read from."""
    def answers(name: str) -> list[tuple[object, str]]:
        report = check(str(REPO / "lessons" / name))
        return [(r.answer, r.event["kind"]) for r in report.results if r.event is not None]

    assert answers("11-virtual-timer.yaml") == [
        (19188, "vtimer.write"), (27, "virq.assert"), ("hyp_timer", "vtimer.fire"),
        ("level", "virq.assert"), (True, "vtimer.write")]
    assert answers("12-virtio-mmio.yaml") == [
        (0x8, "virtio.write"), ("HLOS", "virq.assert"), (0x9, "virtio.write"), (0x3, "hvc"),
        (12, "virtq.used"), ("VM_A", "virq.assert"), (0x3, "virtio.write"),
        (0x4F, "mem.access")]
    assert answers("13-demand-paging.yaml") == [
        ("ADDRSPACE_PAGE_FAULT", "hvc"), (3, "hvc"), ("RWX", "mem.map"), (3, "hvc"),
        (True, "mem.access"), (1, "hvc"), (0x40012000, "hvc"), ("EXPECTS_WAKEUP", "hvc")]


# -- running a lesson --------------------------------------------------------------------------
def test_a_step_ends_at_its_until_event():
    run = LessonRun(parse_lesson(FULL_QUEUE))
    first = run.run_step()
    last = first.events[-1]
    assert (last["kind"], last["name"], last["vm"]) == ("hvc", "msgqueue_send", "Producer")
    assert [e for e in first.events if e["kind"] == "hvc" and e["vm"] == "Producer"
            and e["name"] == "msgqueue_send"][-1] is last
    # Whatever the same engine step produced after it belongs to the next step.
    second = run.run_step()
    assert second.events[0]["seq"] == last["seq"] + 1


def test_time_and_event_count_runs():
    text = """
title: t
scenario: priority-preemption
steps:
  - {caption: to 2 ms, run: {time: 2ms}}
  - {caption: five events, run: {events: 5}}
"""
    run = run_all(text)
    to_time, five = run.results
    assert to_time.events and max(e["t"] for e in to_time.events) <= 2_000_000
    assert five.events[0]["t"] > 2_000_000 and len(five.events) == 5
    assert five.events[0]["seq"] == to_time.events[-1]["seq"] + 1


def test_grading_right_and_wrong_names_the_deciding_event():
    run = run_all(FULL_QUEUE)
    fills, fifth = run.results[1], run.results[2]
    right = grade(fills, False)
    assert right.right and right.answer is False
    assert right.event["ret"]["not_full"] is False and right.event["result"] == "OK"
    wrong = grade(fifth, "OK")
    assert not wrong.right and wrong.answer == "MSGQUEUE_FULL" and wrong.given == "OK"
    assert wrong.event["result"] == "MSGQUEUE_FULL"
    assert wrong.caption == caption(wrong.event) == event_caption(wrong.event)
    assert "MSGQUEUE_FULL" in wrong.caption  # captions.py's sentence for that hvc
    # True is not 1, and a number typed as 3.0 is 3.
    assert not grade(fills, 0).right
    numbers = check(str(REPO / "lessons" / "02-message-queues.yaml")).results[4]
    assert numbers.answer == 3 and grade(numbers, 3.0).right and not grade(numbers, 4).right


def test_verdict_and_index_are_json_ready(tmp_path: Path):
    run = run_all(FULL_QUEUE)
    shown = json.loads(json.dumps(grade(run.results[2], "MSGQUEUE_FULL").as_dict()))
    assert shown["right"] is True and shown["event"]["result"] == "MSGQUEUE_FULL"
    index = lesson_index(REPO / "lessons")
    assert [entry["file"] for entry in index] == [p.name for p in SHIPPED]
    assert all(entry["questions"] >= MIN_QUESTIONS for entry in index)
    (tmp_path / "a.yaml").write_text(FULL_QUEUE)
    (tmp_path / "b.yaml").write_text("title: [not, a, string]\n")
    assert [e["file"] for e in lesson_index(tmp_path)] == ["a.yaml"]


def test_prompt_never_carries_the_answer():
    run = LessonRun(parse_lesson(FULL_QUEUE))
    run.run_step()
    prompt = run.prompt()
    assert prompt["question"] == {"ask": "not_full?", "choices": [True, False],
                                  "number": False}
    assert "answer" not in str(prompt)


def test_student_action_must_be_the_lessons():
    text = """
title: t
scenario: msgq-pingpong
steps:
  - caption: send
    action: {name: msgq_send, args: {vm: VM_B, msgq: A_to_B}}
    question:
      ask: result?
      choices: [OK, CSPACE_INSUFFICIENT_RIGHTS]
      answer: {kind: hvc, where: {action: 1}, field: result}
"""
    run = LessonRun(parse_lesson(text))
    with pytest.raises(ActionError) as err:
        run.take_action("msgq_send", {"vm": "VM_A", "msgq": "A_to_B"})
    assert err.value.code == "WRONG_ACTION" and "step 1" in err.value.message
    run.take_action("msgq_send", {"vm": "VM_B", "msgq": "A_to_B", "size": 8})
    result = run.run_step()
    assert result.answer == "CSPACE_INSUFFICIENT_RIGHTS" and result.problems == []
    assert result.event["args"]["size"] == 8  # the student's own arguments were used


# -- broken lessons ----------------------------------------------------------------------------
def broken(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    report = check(str(path))
    assert not report.ok
    return report.problems


def test_wrong_field_is_refused_naming_step_and_field(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace("field: ret.not_full", "field: ret.notfull"))
    assert len(problems) == 1
    assert "step 2" in problems[0] and "'ret.notfull'" in problems[0]
    assert "question.answer.field" in problems[0] and "ret.not_full" in problems[0]


def test_wrong_filter_field_is_refused_naming_it(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace(
        "where: {name: msgqueue_send, vm: Producer}, field: result",
        "where: {name: msgqueue_send, cpu: Producer}, field: result"))
    assert problems == [f"{tmp_path / 'broken.yaml'}: step 3: question.answer.where: hvc "
                        "events have no field 'cpu' (fields: vm, vcpu, name, call, args.capid, "
                        "args.size, args.flags, args.payload, "
                        "result, ret.not_full)"]


def test_wrong_kind_is_refused_at_load_with_its_line(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace("answer: {kind: hvc", "answer: {kind: hcv", 1))
    assert len(problems) == 1
    assert "steps[1].question.answer.kind" in problems[0]
    assert "no event kind 'hcv'" in problems[0] and ":11:" in problems[0]


def test_answer_outside_the_choices_is_refused(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace("choices: [OK, MSGQUEUE_FULL]",
                                                   "choices: [OK, MSGQUEUE_EMPTY]"))
    assert problems == [f"{tmp_path / 'broken.yaml'}: step 3: question.choices: the model's "
                        "answer \"MSGQUEUE_FULL\" is not among [\"OK\", \"MSGQUEUE_EMPTY\"]"]


def test_number_question_needs_a_number(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace("      choices: [OK, MSGQUEUE_FULL]\n", ""))
    assert "step 3" in problems[0] and "not a number" in problems[0]


def test_until_that_never_comes_is_reported(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace(
        "count: 4}}", "count: 4, }}").replace("vm: Producer}, count", "vm: Nobody}, count"))
    assert any("step 1: run.until: no hvc" in p for p in problems)


@pytest.mark.parametrize("text, where", [
    ("title: t\nscenario: msgq-pingpong\nsteps: []\n", "steps"),
    ("title: t\nscenario: msgq-pingpong\nsteps:\n  - {caption: c, colour: red}\n", "steps[0]"),
    ("title: t\nscenario: no-such-preset\nsteps:\n  - {caption: c}\n", "scenario"),
    ("title: t\nscenario: msgq-pingpong\nsteps:\n  - caption: c\n"
     "    action: {name: msgq_sned}\n    run: {events: 1}\n", "steps[0].action.name"),
    ("title: t\nscenario: msgq-pingpong\nsteps:\n  - caption: c\n"
     "    action: {name: msgq_send, args: {vm: VM_A, colour: 1}}\n    run: {events: 1}\n",
     "steps[0].action.args"),
    ("title: t\nscenario: {name: x}\nsteps:\n  - {caption: c}\n", "scenario"),
    ("title: t\nscenario: {name: x, vms: [], when: 2020-01-01}\nsteps:\n  - {caption: c}\n",
     "scenario"),
    ("title: t\nscenario: ../presets/doorbell.yaml\nsteps:\n  - {caption: c}\n", "scenario"),
    ("title: t\nscenario: /etc/hostname\nsteps:\n  - {caption: c}\n", "scenario"),
])
def test_schema_and_reference_errors_name_the_field(text: str, where: str):
    with pytest.raises(LessonError) as err:
        parse_lesson(text, "l.yaml")
    assert err.value.path == where and str(err.value).startswith("l.yaml:")


def test_alias_bomb_is_refused_by_the_bounded_loader():
    text = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12))
    with pytest.raises(LessonError, match="aliases"):
        parse_lesson(text)


def test_highlight_names_must_exist(tmp_path: Path):
    problems = broken(tmp_path, FULL_QUEUE.replace("  - caption: One more.\n",
                                                   "  - caption: One more.\n"
                                                   "    highlight: [P_to_C, P_to_D]\n"))
    assert problems == [f"{tmp_path / 'broken.yaml'}: step 3: highlight: no object named "
                        "'P_to_D'"]


def test_scenario_file_is_found_next_to_the_lesson(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text((REPO / "gunyah_core" / "presets" /
                                         "msgq-backpressure.yaml").read_text())
    (tmp_path / "lesson.yaml").write_text(FULL_QUEUE.replace("scenario: msgq-backpressure",
                                                             "scenario: mine.yaml"))
    assert load_lesson(str(tmp_path / "lesson.yaml")).scenario.name == "msgq-backpressure"


def test_oversized_lesson_file_is_refused(tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_text(FULL_QUEUE + "#" * (64 * 1024))
    problems = check(str(path)).problems
    assert problems == [f"{path}: file larger than 65536 bytes"]


def test_a_shipped_lesson_with_a_wrong_answer_field_refuses_to_load(tmp_path: Path):
    """The fault step of lesson 2 edited to name a field hvc events do not have: the page's
    plan (what /api/lessons/<file> serves) is refused, naming the step and the field."""
    text = (REPO / "lessons" / "02-message-queues.yaml").read_text()
    edited = text.replace("vm: Consumer}, field: result}", "vm: Consumer}, field: ret.result}")
    assert edited != text
    path = tmp_path / "02-message-queues.yaml"
    path.write_text(edited)
    with pytest.raises(LessonError) as err:
        page_plan(str(path))
    assert "step 8" in str(err.value) and "'ret.result'" in str(err.value)
