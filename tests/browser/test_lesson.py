"""The lesson player in real Chromium: predict, run, reveal, with the headless checker's
answers (the page reads them from its own events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gunyah_core.teaching.captions import caption
from gunyah_core.teaching.lessons import check

LESSONS = Path(__file__).resolve().parents[2] / "lessons"
ALL_WRONG = -1  # play(wrong_step=ALL_WRONG): every question answered wrong


def play(page: Page, file: str, wrong_step: int, snap=None) -> list[str]:
    """Play a whole lesson, answering every question as the checker resolved it except
    the one at ``wrong_step`` (1-based; ALL_WRONG: every one); return each verdict's text."""
    report = check(str(LESSONS / file))
    page.get_by_test_id("btn-lessons").click()
    page.get_by_test_id("lesson-select").select_option(file)
    page.get_by_test_id("lesson-start").click()
    verdicts = []
    for result in report.results:
        expect(page.get_by_test_id("lesson-count")).to_contain_text(f"step {result.index + 1} of")
        if result.event is not None:
            answer = result.answer
            question = page.get_by_test_id("lesson-question")
            choices = question.locator("input[type=radio]")
            if choices.count():
                values = [json.loads(v)
                          for v in choices.evaluate_all("els => els.map(e => e.value)")]
                pick = values.index(answer)
                wrong = wrong_step in (ALL_WRONG, result.index + 1)
                if wrong:
                    pick = (pick + 1) % len(values)
                choices.nth(pick).check()
            else:
                wrong = wrong_step in (ALL_WRONG, result.index + 1)
                page.get_by_test_id("lesson-number").fill(str(answer + 1 if wrong else answer))
        page.get_by_test_id("lesson-run").click()
        if result.event is not None:
            verdict = page.get_by_test_id("lesson-verdict")
            expect(verdict).to_be_visible()
            expect(page.get_by_test_id("lesson-event")).to_contain_text(f"#{result.event['seq']} ")
            expect(page.get_by_test_id("lesson-why")).to_have_text(caption(result.event))
            verdicts.append(verdict.inner_text())
            if snap is not None and result.index + 1 == wrong_step:
                snap(page)
        page.get_by_test_id("lesson-next").click()
    return verdicts


def test_message_queue_lesson_reveals_the_models_answers(page: Page, shot) -> None:
    verdicts = play(page, "02-message-queues.yaml", wrong_step=4,
                    snap=lambda pg: shot(pg, "lesson-verdict"))
    assert [v.split(" —")[0] for v in verdicts] == [
        "✓ Right", "✓ Right", "✗ Not quite", "✓ Right", "✓ Right", "✓ Right", "✓ Right"]
    assert "the model says MSGQUEUE_FULL." in verdicts[2]
    assert "the model says ARGUMENT_SIZE." in verdicts[5]
    assert "the model says CSPACE_CAP_REVOKED." in verdicts[6]  # the revoke fault step
    expect(page.get_by_test_id("lesson")).to_be_hidden()


def test_lessons_open_the_folded_side_panel_on_a_projector(page: Page) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})  # panels fold away by default
    page.reload()
    page.wait_for_selector("[data-vm='VM_A']")
    expect(page.get_by_test_id("inspector")).to_be_hidden()
    page.get_by_test_id("btn-lessons").click()
    expect(page.get_by_test_id("lesson-select")).to_be_visible()
    expect(page.get_by_test_id("btn-panels")).to_have_attribute("aria-pressed", "true")


def test_inline_scenario_lesson_with_a_number_question(page: Page) -> None:
    verdicts = play(page, "03-duplex-and-rm-rpc.yaml", wrong_step=5)
    assert [v.split(" —")[0] for v in verdicts] == [
        "✓ Right", "✓ Right", "✓ Right", "✗ Not quite", "✓ Right"]
    assert "the model says 240." in verdicts[3]


@pytest.mark.parametrize("file", [p.name for p in sorted(LESSONS.glob("*.yaml"))])
def test_every_lesson_plays_on_the_page_as_the_checker_ran_it(page: Page, file: str) -> None:
    """Each deciding event on the page is the checker's (same seq), every answer right."""
    verdicts = play(page, file, wrong_step=0)
    assert verdicts and all(v.startswith("✓ Right") for v in verdicts)


@pytest.mark.parametrize("file", [p.name for p in sorted(LESSONS.glob("*.yaml"))])
def test_every_lesson_marks_every_wrong_answer_wrong(page: Page, file: str) -> None:
    """The same lessons with every question answered wrong: each verdict says so and
    names the model's answer."""
    verdicts = play(page, file, wrong_step=ALL_WRONG)
    assert verdicts and all(v.startswith("✗ Not quite") for v in verdicts)
    assert all("the model says" in v for v in verdicts)
