"""The page against a real server in real Chromium: diagram, play, step, actions, errors,
exports and keys, on the msgq-pingpong preset (VM_A pings VM_B over A_to_B / B_to_A)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urljoin

from playwright.sync_api import Page, expect

STEP_KIND_TRIES = 12
SENDS_TO_OVERFILL = 9  # A_to_B is 8 deep


def hooks(page: Page) -> dict:
    return page.evaluate("({...window.__gunyah})")


def log_rows(page: Page) -> list[tuple[int, str]]:
    return page.eval_on_selector_all(
        "[data-testid=log-entry]", "els => els.map(e => [Number(e.dataset.seq), e.dataset.kind])")


def step_one(page: Page) -> int:
    seq = hooks(page)["seq"]
    page.get_by_test_id("btn-step").click()
    page.wait_for_function("s => window.__gunyah.seq > s", arg=seq)
    now = hooks(page)["seq"]
    page.wait_for_selector(f"[data-testid=log-entry][data-seq='{now}']", state="attached")
    return now


def act_as(page: Page, vm: str, testid: str) -> None:
    page.locator(f"[data-vm='{vm}']").click()
    expect(page.get_by_test_id("insp-title")).to_have_text(vm)
    page.get_by_test_id(testid).click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")


def test_page_draws_the_pingpong_machine(page: Page, shot) -> None:
    for vm in ("RM", "HLOS", "VM_A", "VM_B"):
        expect(page.locator(f"[data-vm='{vm}']")).to_be_visible()
    for q in ("A_to_B", "B_to_A"):
        expect(page.locator(f"[data-msgq='{q}']")).to_be_visible()
    # HLOS's RM link is one marker until clicked, then its two queues.
    expect(page.locator("[data-msgq='HLOS_to_RM']")).to_have_count(0)
    page.locator("[data-rmlink='HLOS']").click()
    for q in ("HLOS_to_RM", "RM_to_HLOS"):
        expect(page.locator(f"[data-msgq='{q}']")).to_be_visible()
    expect(page.locator("[data-msgq='A_to_B']")).to_contain_text("VM_A → VM_B")
    expect(page.locator("[data-msgq='A_to_B'] .slot")).to_have_count(8)
    expect(page.locator("[data-testid^='pcpu-']")).to_have_count(2)
    expect(page.get_by_test_id("scenario-title")).to_have_text("Message-queue ping-pong")
    # What the scenario shows is told before anything is selected.
    expect(page.get_by_test_id("about-text")).to_contain_text("VM_A sends a message with PUSH")
    assert page.locator("link[rel=icon]").count() == 1
    shot(page, "01-load")


def test_play_advances_time_and_animates_messages(page: Page, shot) -> None:
    page.wait_for_function("() => window.__gunyah.bootSeq > 0")
    state = hooks(page)  # the boot is revealed at load: its few microseconds have passed
    assert state["seq"] == state["bootSeq"] and 0 < state["now_ns"] < 10000
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("document.querySelector('.msg-dot[visibility=visible]') !== null")
    page.wait_for_function("window.__gunyah.now_ns > 10000")
    expect(page.get_by_test_id("btn-play")).to_contain_text("Pause")
    frames = hooks(page)["framesDrawn"]
    page.wait_for_function("f => window.__gunyah.framesDrawn > f + 10", arg=frames)
    assert hooks(page)["lastAnim"] is not None
    assert page.locator("[data-testid=log-entry][data-kind='msgq.send']").count() > 0
    shot(page, "02-playing")


def test_step_reveals_exactly_one_event(page: Page) -> None:
    first = step_one(page)
    rows = log_rows(page)
    second = step_one(page)
    assert second == first + 1
    after = log_rows(page)
    assert len(after) == len(rows) + 1
    assert after[-1][0] == second


def test_send_from_inspector_then_step_delivers_to_vm_b(page: Page, shot) -> None:
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option("A_to_B")
    page.get_by_test_id("act-payload").fill("from-the-class")
    page.get_by_test_id("act-send").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    shot(page, "03-inspector-vm")
    page.get_by_test_id("step-kind").select_option("msgq.recv")
    sent = page.locator("[data-testid=log-entry][data-kind='msgq.send']", has_text="from-the-class")
    for _ in range(STEP_KIND_TRIES):
        page.get_by_test_id("btn-step-kind").click()
        page.wait_for_timeout(150)
        if sent.count():
            msg = sent.first.get_attribute("data-msg")
            if page.locator(f"[data-kind='msgq.recv'][data-msg='{msg}']").count():
                break
    msg = sent.first.get_attribute("data-msg")
    send_seq = int(sent.first.get_attribute("data-seq"))
    recv = page.locator(f"[data-kind='msgq.recv'][data-msg='{msg}']")
    expect(recv).to_have_count(1)
    expect(recv).to_contain_text("A_to_B → VM_B")
    recv_seq = int(recv.get_attribute("data-seq"))
    rx = page.locator("[data-testid=log-entry][data-kind='virq.assert']", has_text="A_to_B")
    # The Rx vIRQ VM_B drained the queue on: this send's, or (VM_A's own ping went first
    # into the empty queue) the one that ping raised; a send into a non-empty queue
    # raises none (the count is already past the not-empty threshold).
    virqs = [s for s in map(int, rx.evaluate_all("els => els.map(e => e.dataset.seq)"))
             if s < recv_seq]
    assert virqs, "no A_to_B vIRQ before the receive"
    assert send_seq < recv_seq
    page.locator(f"[data-testid=log-entry][data-seq='{virqs[-1]}']").click()
    expect(page.get_by_test_id("log-detail")).to_contain_text("msgq:A_to_B:rx")
    page.locator("[data-msgq='A_to_B']").click()
    expect(page.get_by_test_id("insp-title")).to_have_text("Message queue A_to_B")
    shot(page, "04-inspector-queue")


def test_filling_a_queue_shows_msgqueue_full(page: Page, shot) -> None:
    act_as(page, "VM_B", "act-stop")
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option("A_to_B")
    for i in range(SENDS_TO_OVERFILL):
        page.get_by_test_id("act-payload").fill(f"m{i}")
        page.get_by_test_id("act-send").click()
        expect(page.get_by_test_id("act-result")).to_contain_text(f"#{i + 2} ")
    page.get_by_test_id("step-n").fill("120")
    page.get_by_test_id("btn-step-n").click()
    err = page.locator("[data-testid=log-entry].err", has_text="MSGQUEUE_FULL")
    expect(err.first).to_be_visible()
    expect(err.first).to_contain_text("not_full=false")  # X1 of the result (facts §3.2)
    for where in ("[data-vm='VM_A']", "[data-msgq='A_to_B']"):
        expect(page.locator(f"{where} [data-testid=error-badge]")).to_contain_text("MSGQUEUE_FULL")
    expect(page.locator("[data-msgq='A_to_B']")).to_have_attribute("data-count", "8")
    expect(page.locator("[data-vcpu='VM_B.0']")).to_contain_text("off")
    page.locator("[data-msgq='A_to_B']").click()
    expect(page.get_by_test_id("insp-count")).to_have_text("8 of 8 slots used")
    expect(page.get_by_test_id("insp-items")).to_contain_text("m0")
    shot(page, "05-queue-full")


def test_jsonl_download_holds_the_events_shown(page: Page) -> None:
    page.wait_for_function("() => window.__gunyah.bootSeq > 0")
    boot = hooks(page)["bootSeq"]
    page.get_by_test_id("step-n").fill("40")
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("b => window.__gunyah.seq >= b + 40", arg=boot)
    page.wait_for_function("() => window.__gunyah.shownSeqs.length >= 40")
    shown = hooks(page)["shownSeqs"]
    with page.expect_download() as info:
        page.get_by_test_id("export-jsonl").click()
    lines = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(boot + 1)) + shown  # the boot is folded in the log, not left out
    kinds = dict(log_rows(page))
    assert all(kinds[e["seq"]] == e["kind"] for e in events)
    for fmt in ("csv", "perfetto", "vcd"):
        href = page.get_by_test_id(f"export-{fmt}").get_attribute("href")
        assert href.endswith(f".{fmt}")
        reply = page.request.get(urljoin(page.url, href))
        assert reply.ok and reply.body(), fmt


def test_keyboard_space_toggles_play_and_help_opens(page: Page, shot) -> None:
    page.locator("body").press(" ")
    page.wait_for_function("window.__gunyah.playing === true")
    page.wait_for_function("window.__gunyah.now_ns > 0")
    page.locator("body").press(" ")
    page.wait_for_function("window.__gunyah.playing === false")
    page.wait_for_timeout(250)  # a batch already on the wire may still land
    now = hooks(page)["now_ns"]
    page.wait_for_timeout(400)
    assert hooks(page)["now_ns"] == now, "time moved while paused"
    seq = hooks(page)["seq"]
    page.locator("body").press("ArrowRight")
    page.wait_for_function("s => window.__gunyah.seq === s + 1", arg=seq)
    before = page.get_by_test_id("speed").input_value()
    page.locator("body").press("+")
    assert int(page.get_by_test_id("speed").input_value()) > int(before)
    page.locator("body").press("?")
    expect(page.get_by_test_id("help")).to_be_visible()
    shot(page, "06-help")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("help")).to_be_hidden()


def test_log_filters_by_area_and_vm(page: Page) -> None:
    page.get_by_test_id("step-n").fill("60")
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("window.__gunyah.seq >= 59")
    expect(page.locator("[data-testid=log-entry][data-kind='sched.switch']")).not_to_have_count(0)
    page.get_by_test_id("filter-sched").uncheck()
    expect(page.locator("[data-testid=log-entry][data-kind='sched.switch']")).to_have_count(0)
    expect(page.locator("[data-testid=log-entry][data-kind='vcpu.state']")).to_have_count(0)
    page.get_by_test_id("log-vm").select_option("VM_B")
    expect(page.locator("[data-testid=log-entry][data-kind='msgq.recv']").first).to_be_attached()
    expect(page.locator("[data-testid=log-entry]", has_text="VM_A.0")).to_have_count(0)
    expect(page.locator("[data-testid=log-entry]", has_text="VM_B")).not_to_have_count(0)


def test_doorbell_scenario_lights_flag_bits(page: Page, shot) -> None:
    page.get_by_test_id("scenario").select_option("doorbell")
    expect(page.locator("[data-bell='bell0']")).to_be_visible()
    page.get_by_test_id("step-kind").select_option("bell.send")
    page.get_by_test_id("btn-step-kind").click()
    expect(page.locator("[data-bell='bell0'] .bit.set")).to_have_count(1)
    expect(page.locator("[data-bell='bell0']")).to_contain_text("flags 0x1")
    shot(page, "07-doorbell")


def test_a_scenario_starts_at_the_speed_it_is_best_watched_at(page: Page,
                                                               live_server: str) -> None:
    """proxy-scheduling moves in milliseconds: the page starts it at 500 µs/s, from a link
    as from the picker, and the default scenario at its own default."""
    expect(page.get_by_test_id("speed-out")).to_have_text("10 µs/s")
    page.get_by_test_id("scenario").select_option("proxy-scheduling")
    expect(page.get_by_test_id("speed-out")).to_have_text("500 µs/s")
    page.goto(live_server + "/?scenario=proxy-scheduling")
    page.wait_for_selector("[data-vm='Guest']")
    expect(page.get_by_test_id("speed-out")).to_have_text("500 µs/s")


def test_reset_right_after_stepping_starts_over(page: Page) -> None:
    """A reset's snapshot shows the machine the load showed, at the same seq: the page
    must draw it anyway, not take it for the echo of the load's own snapshot."""
    start = hooks(page)["headSeq"]
    for _ in range(3):
        step_one(page)
    assert hooks(page)["headSeq"] > start
    page.get_by_test_id("btn-reset").click()
    page.wait_for_function("h => window.__gunyah.headSeq === h", arg=start)
    assert hooks(page)["seq"] <= start  # the view stands in the new run, not the old one
