"""A reload (the socket drops and the page starts over) resumes the same session in real
Chromium: same run, same events, same place in the past, and it carries on from there."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.conftest import start_server

RUN_EVENTS = 120
VIEW_AT = 77


def hooks(page: Page) -> dict:
    return page.evaluate("({...window.__gunyah})")


def step_n(page: Page, count: int) -> int:
    head = hooks(page)["headSeq"]
    page.get_by_test_id("step-n").fill(str(count))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("h => window.__gunyah.headSeq >= h", arg=head + count)
    return hooks(page)["headSeq"]


def scrub(page: Page, seq: int) -> None:
    page.wait_for_function("() => Number(document.querySelector('[data-testid=scrubber]').max)"
                           " === window.__gunyah.headSeq")
    page.get_by_test_id("scrubber").evaluate(
        "(el, s) => { el.value = String(s); el.dispatchEvent(new Event('input')); }", seq)
    page.wait_for_function("s => window.__gunyah.seq === s", arg=seq)


def test_a_reload_resumes_the_session_where_it_was(page: Page) -> None:
    head = step_n(page, RUN_EVENTS)
    scrub(page, VIEW_AT)
    before = hooks(page)

    page.reload()
    page.wait_for_selector("[data-vm='VM_A']")
    page.wait_for_function("h => window.__gunyah.headSeq === h", arg=head)
    page.wait_for_function("s => window.__gunyah.viewSeq === s", arg=VIEW_AT)
    after = hooks(page)
    assert after["session"] == before["session"]  # the same session, not a fresh default one
    assert (after["live"], after["now_ns"], after["branch"]) == \
        (False, before["now_ns"], before["branch"])
    expect(page.get_by_test_id("log-count")).to_contain_text(f"{head + 1} kept")
    expect(page.get_by_test_id("st-conn")).to_have_text("connected")

    # It carries on from the head, without a gap or a repeat.
    scrub(page, head)
    assert step_n(page, 5) == head + 5
    page.wait_for_selector(f"[data-testid=log-entry][data-seq='{head + 5}']", state="attached")
    seqs = page.eval_on_selector_all("[data-testid=log-entry]",
                                     "els => els.map((e) => Number(e.dataset.seq))")
    assert seqs == sorted(set(seqs)) and seqs[-1] == head + 5


# Keeps every WebSocket the page opens, so a test can drop the connection under it.
RECORD_SOCKETS = """
const Native = window.WebSocket;
window.__sockets = [];
window.WebSocket = class extends Native {
  constructor(...args) { super(...args); window.__sockets.push(this); }
};
"""
MAX_SLIDER = 71  # the speed slider's "max" position


def test_a_dropped_socket_reconnects_to_the_same_session_without_gap(
        browser: Browser, live_server: str) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
    context.add_init_script(RECORD_SOCKETS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server + "/")
        page.wait_for_selector("[data-vm='VM_A']")
        session = hooks(page)["session"]
        page.get_by_test_id("speed").evaluate(
            f"el => {{ el.value = {MAX_SLIDER}; el.dispatchEvent(new Event('input')); }}")
        page.get_by_test_id("btn-play").click()
        page.wait_for_function("() => window.__gunyah.headSeq > 3000")
        page.evaluate("() => window.__sockets.at(-1).close()")  # the drop, mid-play
        expect(page.get_by_test_id("st-conn")).to_have_text("offline")
        expect(page.get_by_test_id("st-conn")).to_have_text("connected")
        page.wait_for_function("() => !window.__gunyah.playing")  # a detached session pauses
        page.wait_for_timeout(200)  # nothing more is on its way
        state = hooks(page)
        assert state["session"] == session
        status_seq = page.evaluate("() => Number(document.querySelector('[data-testid=scrubber]')"
                                   ".max)")
        assert state["headSeq"] == status_seq
        # Every event from 0 to the head is kept once: a gap would have made the page
        # resync from a snapshot, which starts its log over.
        expect(page.get_by_test_id("log-count")).to_contain_text(f" {state['headSeq'] + 1} kept")
        assert errors == []
    finally:
        context.close()


def test_reloading_a_link_resumes_instead_of_loading_it_again(page: Page, live_server: str) -> None:
    page.goto(live_server + "/?scenario=rm-boot")
    page.wait_for_selector("[data-vm='HLOS']")
    expect(page.get_by_test_id("scenario-title")).to_have_text(  # not the session's first
        "The Resource Manager boots a VM, step by step")
    page.wait_for_function("() => window.__gunyah.bootSeq > 0"  # the load revealed its boot
                           " && window.__gunyah.headSeq === window.__gunyah.bootSeq")
    head = step_n(page, 40)
    session = hooks(page)["session"]
    page.reload()
    page.wait_for_selector("[data-vm='HLOS']")
    page.wait_for_function("h => window.__gunyah.headSeq === h", arg=head)
    # the resumed events arrive before the hello's ack names the session
    page.wait_for_function("() => window.__gunyah.session !== null")
    assert hooks(page)["session"] == session
    expect(page.get_by_test_id("scenario-title")).not_to_have_text("connecting…")


def test_a_refused_connection_shows_the_limit(browser: Browser) -> None:
    for url in start_server(extra_args=("--max-client-sessions", "1")):
        first = browser.new_context(bypass_csp=True)
        second = browser.new_context(bypass_csp=True)
        try:
            page = first.new_page()
            page.goto(url + "/")
            page.wait_for_selector("[data-vm='VM_A']")
            other = second.new_page()
            other.goto(url + "/")
            expect(other.get_by_test_id("toast")).to_contain_text("TOO_MANY_CONNECTIONS")
            expect(other.get_by_test_id("st-conn")).to_have_text("offline")
        finally:
            first.close()
            second.close()


def test_the_url_carries_the_run_so_a_new_tab_rebuilds_it(page: Page, browser: Browser) -> None:
    """After the resume window (a new tab, or sessionStorage gone) the URL alone rebuilds it."""
    page.get_by_test_id("scenario").select_option("msgq-backpressure")
    page.wait_for_selector("[data-vm='Producer']")
    step_n(page, 30)
    page.locator("[data-vm='Producer']").click()
    page.get_by_test_id("act-send").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    head = step_n(page, RUN_EVENTS)
    scrub(page, VIEW_AT)
    page.wait_for_function("() => location.search.includes('pos=77') && "
                           "location.search.includes('scenario=msgq-backpressure')")
    url = page.url
    assert f"head={head}" in url and "actions=" in url and "seed=" in url
    action = page.locator("[data-testid=log-entry][data-kind='user.action']")
    expect(action).to_have_count(1)
    action_seq = action.get_attribute("data-seq")

    def same_run(p: Page) -> None:
        p.wait_for_function("s => window.__gunyah.seq === s", arg=VIEW_AT)
        state = hooks(p)
        assert state["headSeq"] == head and not state["live"]
        expect(p.get_by_test_id("scenario-title")).to_contain_text("Back-pressure")
        row = p.locator("[data-testid=log-entry][data-kind='user.action']")
        expect(row).to_have_attribute("data-seq", action_seq)

    page.evaluate("() => sessionStorage.clear()")  # the resume key is gone: only the URL is left
    page.reload()
    same_run(page)
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
    try:
        other = context.new_page()
        other.goto(url)
        same_run(other)
    finally:
        context.close()
