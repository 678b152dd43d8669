"""Time travel in real Chromium: scrub and step back, fork from the past, go back to the old
branch, download the current branch, share a link that rebuilds the view elsewhere, and
import an exported timeline for a read-only replay (msgq-pingpong preset)."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

VIEWPORT = {"width": 1920, "height": 1080}
TIMEOUT_MS = 10_000
RUN_EVENTS = 300
FORK_AT = 150
QUEUE = "A_to_B"
DIAGRAM_TEXTS = ["[data-msgq='A_to_B'] .cell-count", "[data-msgq='B_to_A'] .cell-count",
                 "[data-testid='pcpu-0'] .lane-cur", "[data-testid='pcpu-1'] .lane-cur",
                 "[data-vcpu='VM_A.0'] .chip-state", "[data-vcpu='VM_B.0'] .chip-state"]


def hooks(page: Page) -> dict:
    return page.evaluate("({...window.__gunyah})")


def step_n(page: Page, count: int) -> int:
    """Reveal `count` more events from the server; returns the new head seq."""
    head = hooks(page)["headSeq"]
    page.get_by_test_id("step-n").fill(str(count))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("h => window.__gunyah.headSeq >= h", arg=head + count)
    return hooks(page)["headSeq"]


def scrub(page: Page, seq: int) -> None:
    """Drag the scrubber to seq (once it spans the events revealed so far)."""
    page.wait_for_function("() => Number(document.querySelector('[data-testid=scrubber]').max)"
                           " === window.__gunyah.headSeq")
    page.get_by_test_id("scrubber").evaluate(
        "(el, s) => { el.value = String(s); el.dispatchEvent(new Event('input')); }", seq)
    page.wait_for_function("s => window.__gunyah.seq === s", arg=seq)


def queue_count(page: Page, name: str = QUEUE) -> int:
    return int(page.get_attribute(f"[data-msgq='{name}']", "data-count"))


def depth_after(events: list[dict], seq: int, name: str = QUEUE) -> int:
    """The queue's fill after event `seq`, from the recorded events themselves."""
    depth = 0
    for e in events:
        if e["seq"] > seq:
            break
        if e.get("msgq") == name and e["kind"] in ("msgq.send", "msgq.recv"):
            depth = e["depth"]
        elif e.get("msgq") == name and e["kind"] == "msgq.flush":
            depth = 0
    return depth


def download(page: Page, testid: str, tmp_path: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_test_id(testid).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path


def jsonl_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def diagram_texts(page: Page) -> list[str]:
    return [page.locator(sel).first.text_content() for sel in DIAGRAM_TEXTS]


def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """A page in a fresh browser context; returns it with its list of console errors."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("[data-vm='VM_A']")
    return page, errors


def test_scrubbing_back_redraws_the_earlier_machine(page: Page, tmp_path: Path, shot) -> None:
    head = step_n(page, RUN_EVENTS)
    # A batch this big streams in as a flood: the log lists every row once it has stopped
    page.wait_for_function(
        "h => document.querySelectorAll('[data-testid=log-entry]').length === h + 1", arg=head)
    events = jsonl_events(download(page, "export-jsonl", tmp_path))
    assert events[-1]["seq"] == head
    expect(page.get_by_test_id("live-badge")).to_be_visible()
    # Each send on the queue and the event before it: the fill really differs between them.
    sends = [e["seq"] for e in events if e["kind"] == "msgq.send" and e.get("msgq") == QUEUE]
    targets = [seq for s in sends[-4:] for seq in (s, s - 1)] + list(range(40, head, 37))
    seen = set()
    for seq in targets:
        scrub(page, seq)
        assert queue_count(page) == depth_after(events, seq), seq
        expect(page.locator(f"[data-msgq='{QUEUE}'] .cell-count")).to_have_text(
            f"{depth_after(events, seq)} / 8")
        seen.add(queue_count(page))
    assert len(seen) > 1
    state = hooks(page)
    assert state["headSeq"] == head and not state["live"]
    assert state["now_ns"] == events[state["seq"]]["t"]
    expect(page.get_by_test_id("live-badge")).to_be_hidden()
    expect(page.locator(f"[data-testid=log-entry].at[data-seq='{state['seq']}']")).to_be_visible()
    shot(page, "history-scrub")
    scrub(page, head)  # back at the head: live again
    assert hooks(page)["live"] and queue_count(page) == depth_after(events, head)
    expect(page.get_by_test_id("live-badge")).to_be_visible()


def test_step_back_and_forward_walk_the_recorded_events(page: Page) -> None:
    head = step_n(page, RUN_EVENTS)
    page.get_by_test_id("step-back").click()
    page.wait_for_function("h => window.__gunyah.seq === h - 1", arg=head)
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("h => window.__gunyah.seq === h - 2", arg=head)
    page.keyboard.press("ArrowRight")  # in the past → replays a recorded event, asks no server
    page.wait_for_function("h => window.__gunyah.seq === h - 1", arg=head)
    assert hooks(page)["headSeq"] == head
    page.get_by_test_id("btn-step").click()
    page.wait_for_function("h => window.__gunyah.seq === h && window.__gunyah.live", arg=head)
    assert hooks(page)["headSeq"] == head  # reaching the head did not reveal anything new
    page.get_by_test_id("btn-step").click()  # at the head: a real step again
    page.wait_for_function("h => window.__gunyah.headSeq === h + 1", arg=head)


def test_clicking_a_log_entry_explains_it_and_go_to_jumps_there(page: Page) -> None:
    head = step_n(page, RUN_EVENTS)
    row = page.locator("[data-testid=log-entry][data-seq='120']")
    row.click()
    expect(page.get_by_test_id("log-detail")).to_contain_text("#120")
    expect(page.get_by_test_id("event-caption")).not_to_be_empty()
    page.wait_for_timeout(300)  # a click alone does not rewind the diagram
    state = hooks(page)
    assert state["seq"] == head and state["live"]
    page.get_by_test_id("log-goto").click()
    page.wait_for_function("window.__gunyah.seq === 120")
    assert "sel" in row.get_attribute("class") and "at" in row.get_attribute("class").split()
    expect(page.get_by_test_id("log-detail")).to_contain_text("#120")
    page.get_by_test_id("btn-play").click()
    expect(page.get_by_test_id("toast")).to_contain_text("back to live")
    page.wait_for_function("h => window.__gunyah.live && window.__gunyah.headSeq > h", arg=head)
    page.get_by_test_id("btn-play").click()


def test_acting_in_the_past_forks_and_the_old_branch_comes_back(page: Page, tmp_path, shot) -> None:
    head = step_n(page, RUN_EVENTS)
    scrub(page, FORK_AT)
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option(QUEUE)
    page.get_by_test_id("act-payload").fill("fork-here")
    page.get_by_test_id("act-send").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    page.wait_for_function("window.__gunyah.branch === 1")
    state = hooks(page)
    assert state["headSeq"] == FORK_AT and state["live"]
    picker = page.get_by_test_id("branches")
    expect(picker.locator("option")).to_have_count(2)
    expect(picker.locator("option[value='1']")).to_contain_text(f"fork @ #{FORK_AT}")
    assert page.locator(f"[data-testid=log-entry][data-seq='{FORK_AT + 1}']").count() == 0
    new_head = step_n(page, 60)
    action = page.locator("[data-testid=log-entry][data-kind='user.action']")
    expect(action).to_have_count(1)
    assert int(action.get_attribute("data-seq")) > FORK_AT
    exported = jsonl_events(download(page, "export-jsonl", tmp_path))
    assert exported[-1]["seq"] == new_head
    assert [e for e in exported if e["kind"] == "user.action"][0]["args"]["payload"] == "fork-here"
    shot(page, "history-fork")
    picker.select_option("0")
    page.wait_for_function("h => window.__gunyah.branch === 0 && window.__gunyah.headSeq === h",
                           arg=head)
    expect(page.locator(f"[data-testid=log-entry][data-seq='{head}']")).to_be_visible()
    expect(page.locator("[data-testid=log-entry][data-kind='user.action']")).to_have_count(0)
    old = jsonl_events(download(page, "export-jsonl", tmp_path))
    assert old[-1]["seq"] == head and not any(e["kind"] == "user.action" for e in old)
    scrub(page, FORK_AT + 40)  # the old future is drawn again from its own events
    assert queue_count(page) == depth_after(old, FORK_AT + 40)
    shot(page, "history-branches")


def test_downloads_hold_the_events_shown(page: Page, tmp_path: Path) -> None:
    head = step_n(page, RUN_EVENTS)
    # A batch this big streams in as a flood: the log lists every row once it has stopped
    page.wait_for_function(
        "h => document.querySelectorAll('[data-testid=log-entry]').length === h + 1", arg=head)
    events = jsonl_events(download(page, "export-jsonl", tmp_path))
    rows = page.eval_on_selector_all(
        "[data-testid=log-entry]", "els => els.map(e => [Number(e.dataset.seq), e.dataset.kind])")
    assert [[e["seq"], e["kind"]] for e in events] == rows
    assert rows[-1][0] == head
    csv_lines = download(page, "export-csv", tmp_path).read_text().splitlines()
    assert len(csv_lines) == len(events) + 1  # header + one row per event
    perfetto = json.loads(download(page, "export-perfetto", tmp_path).read_text())
    assert perfetto
    vcd = download(page, "export-vcd", tmp_path).read_text()
    assert "$enddefinitions" in vcd


def test_a_shared_link_rebuilds_the_same_view_elsewhere(page: Page, browser: Browser,
                                                       live_server: str, shot) -> None:
    step_n(page, RUN_EVENTS)
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option(QUEUE)
    page.get_by_test_id("act-payload").fill("shared")
    page.get_by_test_id("act-send").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    head = step_n(page, 100)
    scrub(page, head - 37)
    page.get_by_test_id("share-link").click()
    page.wait_for_function("document.querySelector('[data-testid=share-link]').dataset.url")
    url = page.get_by_test_id("share-link").get_attribute("data-url")
    assert url.startswith(live_server) and "actions=" in url and f"pos={head - 37}" in url
    want = hooks(page)
    texts = diagram_texts(page)
    other, errors = open_page(browser, url)
    try:
        other.wait_for_function("s => window.__gunyah.seq === s", arg=want["seq"])
        got = hooks(other)
        assert (got["seq"], got["now_ns"], got["headSeq"]) == (want["seq"], want["now_ns"], head)
        assert diagram_texts(other) == texts
        assert queue_count(other, "B_to_A") == queue_count(page, "B_to_A")
        expect(other.get_by_test_id("scenario-title")).to_have_text("Message-queue ping-pong")
        shot(other, "history-shared")
        assert errors == []
    finally:
        other.context.close()


def test_an_exported_timeline_imports_as_a_read_only_replay(page: Page, tmp_path: Path,
                                                            shot) -> None:
    head = step_n(page, RUN_EVENTS)
    path = download(page, "export-jsonl", tmp_path)
    recorded = jsonl_events(path)
    page.get_by_test_id("import").set_input_files(str(path))
    page.wait_for_function("h => window.__gunyah.replayOnly && window.__gunyah.headSeq === h",
                           arg=head)
    page.wait_for_function("window.__gunyah.seq < 30")  # the view starts at the beginning
    expect(page.get_by_test_id("replay-badge")).to_contain_text(f"replay of {path.name}")
    expect(page.get_by_test_id("share-link")).to_be_disabled()
    assert jsonl_events(download(page, "export-jsonl", tmp_path)) == recorded
    scrub(page, head - 50)
    assert queue_count(page) == depth_after(recorded, head - 50)
    page.locator("[data-vm='VM_A']").click()
    send = page.get_by_test_id("act-send")
    expect(send).to_be_disabled()
    expect(page.locator("[data-testid=inspector] .actions[inert]").first).to_be_attached()
    send.evaluate("b => { b.closest('[inert]').inert = false; b.disabled = false; b.click(); }")
    expect(page.get_by_test_id("act-result")).to_contain_text("REPLAY_ONLY")
    shot(page, "history-replay")


def test_a_broken_timeline_is_refused_with_its_line(browser: Browser, live_server: str,
                                                    tmp_path: Path, shot) -> None:
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"seq": 0, "t": 0, "kind": "sim.boot"}\n{"seq": 1, "t": oops}\n')
    page, errors = open_page(browser, live_server + "/")
    try:
        page.get_by_test_id("import").set_input_files(str(bad))
        status = page.get_by_test_id("import-status")
        expect(status).to_contain_text("INVALID_TIMELINE")
        expect(status).to_contain_text("line 2")
        assert not hooks(page)["replayOnly"]
        shot(page, "history-import-error")
        # The refused upload is a 400 the browser logs; nothing else went wrong.
        assert all("400" in e for e in errors), errors
    finally:
        page.context.close()


def test_seeking_across_created_objects_rebuilds_the_diagram(page: Page, live_server: str,
                                                             shot) -> None:
    """rm-boot: the RM creates VM_80 (event 23), its vCPU and then its queues at run time."""
    page.goto(live_server + "/?scenario=rm-boot")
    expect(page.locator("[data-vm='VM_A']")).to_have_count(0)
    page.wait_for_selector("[data-vm='HLOS']")
    expect(page.get_by_test_id("scenario-title")).to_have_text(
        "The Resource Manager boots a VM, step by step")
    page.wait_for_function("() => window.__gunyah.bootSeq > 0"  # the load revealed its boot
                           " && window.__gunyah.headSeq === window.__gunyah.bootSeq")
    step_n(page, 200)
    expect(page.locator("[data-msgq='VM_80_to_HLOS']")).to_be_attached()
    scrub(page, 22)  # the boot snapshot: HLOS and the RM only
    expect(page.locator("[data-vm='VM_80']")).to_have_count(0)
    scrub(page, 112)  # the VM and its vCPU exist, its queues do not yet
    expect(page.locator("[data-vm='VM_80']")).to_be_attached()
    expect(page.locator("[data-msgq='VM_80_to_HLOS']")).to_have_count(0)
    shot(page, "history-structure")
    scrub(page, hooks(page)["headSeq"])
    expect(page.locator("[data-msgq='VM_80_to_HLOS']")).to_be_attached()


def test_step_n_and_step_to_kind_from_the_past_go_on_past_the_head(page: Page) -> None:
    head = step_n(page, RUN_EVENTS)
    scrub(page, head - 10)
    page.get_by_test_id("step-n").fill("50")
    page.get_by_test_id("btn-step-n").click()  # 10 stored events, then 40 more from the server
    page.wait_for_function("h => window.__gunyah.live && window.__gunyah.seq === h + 40", arg=head)
    head = hooks(page)["headSeq"]
    kind = next(k for k in ("sched.switch", "msgq.send", "msgq.recv", "hvc")
                if page.locator(f"[data-testid=log-entry][data-seq='{head}']")
                .get_attribute("data-kind") != k)
    scrub(page, head - 1)  # the one stored event ahead is not of `kind`
    page.get_by_test_id("step-kind").select_option(kind)
    page.get_by_test_id("btn-step-kind").click()
    page.wait_for_function("h => window.__gunyah.live && window.__gunyah.seq > h", arg=head)
    seq = hooks(page)["seq"]
    expect(page.locator(f"[data-testid=log-entry][data-seq='{seq}']")).to_have_attribute(
        "data-kind", kind)
