"""The lesson player in real Chromium: predict, run, reveal, with the headless checker's
answers (the page reads them from its own events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gunyah_core.teaching.captions import caption
from gunyah_core.teaching.lessons import check
from tests.browser.conftest import ARTIFACTS

LESSONS = Path(__file__).resolve().parents[2] / "lessons"
ARTIFACTS_DIR = ARTIFACTS
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


# Every visible diagram label and the queue/VM state the page mirrors: what "the diagram as
# it was" means for a step (animations in flight, .fx, are left out).
DIAGRAM_TEXT = """() => [...document.querySelectorAll('#diagram text')]
  .filter((t) => !t.closest('.fx') && !t.closest('[visibility="hidden"]'))
  .map((t) => t.textContent)"""


def answer(page: Page, value) -> None:
    """Pick ``value`` among the step's choices (or type it)."""
    expect(page.get_by_test_id("lesson-question")).to_be_visible()
    choices = page.get_by_test_id("lesson-question").locator("input[type=radio]")
    if choices.count():
        values = [json.loads(v) for v in choices.evaluate_all("els => els.map(e => e.value)")]
        choices.nth(values.index(value)).check()
    else:
        page.get_by_test_id("lesson-number").fill(str(value))


def run_right(page: Page, result, shows_event: bool = True) -> None:
    """Answer a step as the checker did (``result``), run it, see it marked right and,
    with ``shows_event``, the event that answers it named by its seq."""
    answer(page, result.answer)
    page.get_by_test_id("lesson-run").click()
    expect(page.get_by_test_id("lesson-result")).to_have_text("✓ Right")
    if shows_event:
        expect(page.get_by_test_id("lesson-event")).to_contain_text(f"#{result.event['seq']} ")


def seen(page: Page) -> dict:
    """Everything the student sees of a step: count, view position, verdict, the chosen
    answer, the marked log row, the diagram's labels, and the step's events."""
    page.wait_for_timeout(300)  # the step's animations end
    state = page.evaluate("() => window.__gunyah.lesson")
    lo, hi = state["steps"][state["index"]]
    verdict = page.get_by_test_id("lesson-verdict")
    return {
        "count": page.get_by_test_id("lesson-count").inner_text(),
        "view": page.evaluate("() => window.__gunyah.viewSeq"),
        "verdict": verdict.inner_text() if verdict.count() else None,
        "checked": page.locator("input[name=lesson-answer]:checked").evaluate_all(
            "els => els.map(e => e.value)"),
        "events": page.evaluate("([lo, hi]) => window.__gunyah.eventKinds(lo, hi)", [lo, hi]),
        "diagram": page.evaluate(DIAGRAM_TEXT),
    }


def test_back_shows_the_previous_step_exactly_and_forward_again_the_same(page: Page) -> None:
    """Back walks the session's history (no new events are made), showing each step as
    it was left: position, diagram, verdict and answer; Next comes back to the same."""
    report = check(str(LESSONS / "02-message-queues.yaml"))
    page.get_by_test_id("btn-lessons").click()
    page.get_by_test_id("lesson-select").select_option("02-message-queues.yaml")
    page.get_by_test_id("lesson-start").click()
    shown_at = {}
    for result in report.results[:3]:
        expect(page.get_by_test_id("lesson-count")).to_contain_text(f"step {result.index + 1} of")
        if result.event is not None:
            answer(page, result.answer)
        page.get_by_test_id("lesson-run").click()
        expect(page.get_by_test_id("lesson-next")).to_be_visible()
        shown_at[result.index] = seen(page)
        page.get_by_test_id("lesson-next").click()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 4 of 8")
    head = page.evaluate("() => window.__gunyah.headSeq")
    assert head == report.results[2].events[-1]["seq"]
    # Step 3 and step 2, as they were left; nothing new is revealed.
    for index in (2, 1):
        page.get_by_test_id("lesson-back").click()
        expect(page.get_by_test_id("lesson-count")).to_have_text(f"step {index + 1} of 8")
        assert seen(page) == shown_at[index]
        # Step 3 ended at the head; step 2 is in the past (the scrubber's view).
        assert page.evaluate("() => window.__gunyah.live") is (index == 2)
        assert page.evaluate("() => window.__gunyah.headSeq") == head
    # In the past, the log marks the step's last event (the scrubber's mark).
    marked = page.locator("[data-testid=log] li.at")
    expect(marked).to_have_attribute("data-seq", str(report.results[1].events[-1]["seq"]))
    assert shown_at[2]["view"] == report.results[2].events[-1]["seq"]
    assert shown_at[1]["checked"] == [json.dumps(report.results[1].answer)] or \
        report.results[1].event is None
    # The events each step showed are the checker's, by seq and kind.
    for index, got in shown_at.items():
        assert got["events"] == [[e["seq"], e["kind"]] for e in report.results[index].events]
    # Forward again: the same steps, then the step not run yet at the head.
    page.get_by_test_id("lesson-next").click()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 3 of 8")
    assert seen(page) == shown_at[2]
    page.get_by_test_id("lesson-next").click()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 4 of 8")
    expect(page.get_by_test_id("lesson-run")).to_be_visible()
    assert page.evaluate("() => window.__gunyah.live") is True
    # ... and running it reveals the checker's events for step 4.
    run_right(page, report.results[3], shows_event=False)
    got = seen(page)
    assert got["events"] == [[e["seq"], e["kind"]] for e in report.results[3].events]


def test_a_link_opens_a_lesson_at_a_step_with_the_run_there(page: Page) -> None:
    """?lesson=NAME&step=K: the run is where step K starts (earlier steps' actions taken,
    their answers resolved), the address bar follows the step shown, and the player's
    link control gives that address."""
    report = check(str(LESSONS / "02-message-queues.yaml"))
    base = page.url.split("?")[0]
    page.goto(f"{base}?lesson=02-message-queues.yaml&step=8")
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 8 of 8")
    assert page.evaluate("() => window.__gunyah.headSeq") == report.results[6].events[-1]["seq"]
    # Step 7 (an action and its answer) was taken on the way: Back shows it resolved.
    page.get_by_test_id("lesson-back").click()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 7 of 8")
    expect(page.get_by_test_id("lesson-verdict")).to_contain_text(
        "Not answered here — the model says ARGUMENT_SIZE.")
    expect(page.get_by_test_id("lesson-event")).to_contain_text(
        f"#{report.results[6].event['seq']} ")
    page.wait_for_function("() => location.search.endsWith('step=7')")
    page.get_by_test_id("lesson-link").click()
    assert page.get_by_test_id("lesson-link").get_attribute("data-url") == \
        f"{base}?lesson=02-message-queues.yaml&step=7"
    page.get_by_test_id("lesson-next").click()
    page.wait_for_function("() => location.search.endsWith('step=8')")
    # Step 8 runs from there exactly as the checker ran it.
    run_right(page, report.results[7])
    assert seen(page)["events"] == [[e["seq"], e["kind"]] for e in report.results[7].events]
    # A reload of that address opens the same step again.
    page.reload()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 8 of 8")
    expect(page.get_by_test_id("lesson-run")).to_be_visible()


@pytest.mark.parametrize(("query", "said"), [
    ("lesson=nope.yaml", "lesson: no lesson named 'nope.yaml'"),
    ("lesson=02-message-queues.yaml&step=12", "step: 'Message queues: depth, thresholds, "
                                             "PUSH and a full queue' has steps 1 to 8, not 12"),
    ("lesson=02-message-queues.yaml&step=two", "step: 'two' is not of type 'integer'"),
])
def test_a_bad_lesson_link_says_why_and_offers_the_lessons(page: Page, query, said) -> None:
    page.goto(f"{page.url.split('?')[0]}?{query}")
    expect(page.get_by_test_id("lesson-error")).to_contain_text(said)
    expect(page.get_by_test_id("lesson-select")).to_be_visible()
    expect(page.get_by_test_id("lesson-start")).to_be_visible()


def test_explore_forks_a_free_branch_and_the_lesson_waits_on_its_own(page: Page) -> None:
    """Explore from here: a new branch at the view to play freely (the address bar is
    its link); the page names the lesson's branch; back to the lesson, it is at the same
    step with its run untouched, and the step runs as the checker ran it."""
    report = check(str(LESSONS / "02-message-queues.yaml"))
    page.get_by_test_id("btn-lessons").click()
    page.get_by_test_id("lesson-select").select_option("02-message-queues.yaml")
    page.get_by_test_id("lesson-start").click()
    for result in report.results[:2]:
        expect(page.get_by_test_id("lesson-count")).to_contain_text(f"step {result.index + 1} of")
        if result.event is not None:
            answer(page, result.answer)
        page.get_by_test_id("lesson-run").click()
        page.get_by_test_id("lesson-next").click()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 3 of 8")
    head = page.evaluate("() => window.__gunyah.headSeq")
    page.get_by_test_id("lesson-explore").click()
    expect(page.get_by_test_id("lesson-branch")).to_contain_text("Exploring freely on branch #1")
    expect(page.get_by_test_id("lesson-branch")).to_contain_text("The lesson is on branch #0")
    assert page.evaluate("() => window.__gunyah.branch") == 1
    expect(page.get_by_test_id("branches").locator("option[value='0']")).to_contain_text("lesson")
    page.wait_for_function("() => new URLSearchParams(location.search).has('scenario')")
    # Play freely: step on and act on the free branch.
    page.evaluate("document.activeElement?.blur()")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("h => window.__gunyah.headSeq >= h + 5", arg=head)
    free = page.evaluate("([lo, hi]) => window.__gunyah.eventKinds(lo, hi)", [head + 1, head + 5])
    checked = [[e["seq"], e["kind"]] for r in report.results for e in r.events]
    assert free == [e for e in checked if head < e[0] <= head + 5]  # the same model, on
    page.get_by_test_id("lesson-return").click()
    expect(page.get_by_test_id("lesson-count")).to_have_text("step 3 of 8")
    assert page.evaluate("() => window.__gunyah.branch") == 0
    assert page.evaluate("() => window.__gunyah.headSeq") == head  # the lesson's run, untouched
    page.wait_for_function("() => location.search.includes('lesson=')")
    run_right(page, report.results[2])
    # The free branch is still there to go back to.
    expect(page.get_by_test_id("branches").locator("option")).to_have_count(2)


# Every text of the player: its font size in CSS px and whether it lies inside the window.
PLAYER_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.getElementById("lesson"), NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    out.push({ text: n.textContent.trim().slice(0, 40),
      px: parseFloat(getComputedStyle(el).fontSize),
      inside: r.left >= 0 && r.right <= innerWidth + 1 });
  }
  return out;
}"""


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1024, 768)])
def test_a_lesson_in_presentation_mode_stays_there_legible_and_keyboard_driven(
        browser, live_server: str, width: int, height: int) -> None:
    """Presentation mode with a lesson: the caption, the question and the controls under
    the diagram in large type, n / b / 1-9 from the keyboard; the diagram's labels keep
    test_legible.py's rules (12 px, no overlaps) and nothing of the player covers it."""
    from tests.browser.test_legible import MIN_PX, problems

    report = check(str(LESSONS / "02-message-queues.yaml"))
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server + "/")
        page.wait_for_selector("[data-vm='VM_A']")
        page.keyboard.press("p")
        page.get_by_test_id("present-lessons").click()
        page.get_by_test_id("lesson-select").select_option("02-message-queues.yaml")
        page.get_by_test_id("lesson-start").click()
        expect(page.get_by_test_id("lesson-count")).to_have_text("step 1 of 8")
        assert page.evaluate("() => window.__gunyah.presenting") is True
        expect(page.locator(".toolbar")).to_be_hidden()
        expect(page.locator(".stage [data-testid=lesson-caption]")).to_be_visible()
        expect(page.get_by_test_id("lesson-keys")).to_contain_text("n run / next")
        expect(page.get_by_test_id("lesson-leave-present")).to_be_visible()
        # Keyboard: 1-9 answer, n runs then goes on, b goes back.
        page.evaluate("document.activeElement?.blur()")
        choice = report.results[0].answer
        values = [json.loads(v) for v in page.get_by_test_id("lesson-question").locator(
            "input[type=radio]").evaluate_all("els => els.map(e => e.value)")]
        page.keyboard.press(str(values.index(choice) + 1))
        page.keyboard.press("n")
        expect(page.get_by_test_id("lesson-result")).to_have_text("✓ Right")
        page.wait_for_timeout(400)  # the re-layout for the stage's new height
        page.screenshot(path=str(ARTIFACTS_DIR / f"lesson-present-{width}x{height}.png"))
        check_legible(page, problems, MIN_PX, f"{width}x{height} step 1 revealed")
        page.keyboard.press("PageDown")
        expect(page.get_by_test_id("lesson-count")).to_have_text("step 2 of 8")
        page.keyboard.press("n")
        expect(page.get_by_test_id("lesson-next")).to_be_visible()
        page.keyboard.press("n")
        expect(page.get_by_test_id("lesson-count")).to_have_text("step 3 of 8")
        page.wait_for_timeout(400)
        page.screenshot(path=str(ARTIFACTS_DIR / f"lesson-present-{width}x{height}-step3.png"))
        check_legible(page, problems, MIN_PX, f"{width}x{height} step 3")
        page.keyboard.press("b")
        page.keyboard.press("PageUp")
        expect(page.get_by_test_id("lesson-count")).to_have_text("step 1 of 8")
        expect(page.get_by_test_id("lesson-result")).to_have_text("✓ Right")
        assert page.evaluate("() => window.__gunyah.presenting") is True
        # Leaving presentation puts the player back in the side panel.
        page.keyboard.press("p")
        expect(page.locator(".side [data-testid=lesson-count]")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS_DIR / f"lesson-normal-{width}x{height}.png"))
    finally:
        context.close()
    assert not errors, errors


def check_legible(page: Page, problems, min_px: float, where: str) -> None:
    found = problems(page)
    assert not found, f"{where}: " + "\n".join(found)
    small = [t for t in page.evaluate(PLAYER_TEXT) if t["px"] < min_px or not t["inside"]]
    assert not small, f"{where}: {small}"
    svg = page.get_by_test_id("diagram").bounding_box()
    player = page.get_by_test_id("lesson").bounding_box()
    beside = player["x"] >= svg["x"] + svg["width"] - 1
    under = player["y"] >= svg["y"] + svg["height"] - 1
    assert beside or under, f"{where}: the player covers the diagram"
    assert player["y"] + player["height"] <= page.viewport_size["height"] + 1, where
    for testid in ("lesson-back", "lesson-link", "lesson-leave-present"):
        box = page.get_by_test_id(testid).bounding_box()
        assert box and box["y"] + box["height"] <= page.viewport_size["height"] + 1, \
            f"{where}: {testid} is off screen"


def test_running_a_step_from_a_scrubbed_view_takes_its_action_at_the_head(page: Page) -> None:
    """The scrubber moved into the past before a step with an action: Run goes back to the
    head first, so the action continues the lesson's run instead of forking it."""
    report = check(str(LESSONS / "02-message-queues.yaml"))
    page.goto(f"{page.url.split('?')[0]}?lesson=02-message-queues.yaml&step=7")
    expect(page.get_by_test_id("lesson-action")).to_be_visible()
    page.evaluate("document.activeElement?.blur()")
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => !window.__gunyah.live")
    run_right(page, report.results[6])
    assert page.evaluate("() => window.__gunyah.branch") == 0
