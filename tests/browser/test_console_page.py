"""The hypercall console in real Chromium: completion offers call names, argument names
and the VM's own capids; a typed call is made by the VM's vCPU 0 and shows X0 by name
and number, the returned registers and the events it caused; a wrong right gets the
real error, explained; a bad line is refused before it is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT_MS, VIEWPORT

STEPS = 60  # enough for VM_A's vCPU 0 to run a queued call (a few events)


@pytest.fixture
def page(strict_page) -> Iterator[Page]:
    """The page under its own CSP (predicates here are functions): no violation, no
    console error."""
    pg, errors = strict_page
    yield pg
    assert pg.evaluate("() => window.__cspViolations") == [] and errors == []


def options(page: Page) -> list[str]:
    return page.get_by_test_id("hvc-option").all_inner_texts()


def open_console(page: Page) -> None:
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-console").click()
    expect(page.get_by_test_id("hvc-title")).to_contain_text("VM_A")


def step(page: Page, count: int = STEPS) -> None:
    seq = page.evaluate("() => window.__gunyah.seq")
    page.get_by_test_id("step-n").fill(str(count))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq + count)


def test_completion_offers_calls_arguments_and_the_vms_capids(page: Page, shot) -> None:
    open_console(page)
    box = page.get_by_test_id("hvc-input")
    box.fill("msgq")
    assert any(o.startswith("msgqueue_send") for o in options(page))
    assert all(o.startswith("msgq") for o in options(page))
    box.press("Tab")  # the first: msgqueue_configure_receive, alphabetically
    assert box.input_value().startswith("msgqueue_") and box.input_value().endswith(" ")
    box.fill("msgqueue_send ")
    assert [o.split("=")[0] for o in options(page)] == ["capid", "size", "flags", "payload"]
    box.fill("msgqueue_send capid=")
    offered = options(page)
    # VM_A's four queue caps (its RM link both ways, A_to_B and B_to_A), no other object.
    assert len(offered) == 4 and all(o.startswith("0x") for o in offered)
    assert any("msgqueue:A_to_B (SEND)" in o and "lacks" not in o for o in offered)
    assert any("msgqueue:B_to_A (RECEIVE)" in o and "lacks SEND" in o for o in offered)
    assert ["lacks" in o for o in offered] == [False, False, True, True]  # usable ones first
    shot(page, "console-complete")


def test_a_typed_call_shows_x0_registers_and_its_events(page: Page, shot) -> None:
    open_console(page)
    box = page.get_by_test_id("hvc-input")
    box.fill("msgqueue_send capid=")
    page.get_by_test_id("hvc-option").filter(has_text="msgqueue:A_to_B").click()
    box.press("End")
    box.type("size=16 flags=1 payload=typed")
    box.press("Enter")
    entry = page.get_by_test_id("hvc-entry").last
    expect(entry).to_contain_text("hvc> msgqueue_send capid=0x")
    expect(entry).to_contain_text("queued")
    step(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=hvc-x0]')].length > 0")
    expect(entry.get_by_test_id("hvc-x0")).to_have_text("X0 = OK (0) — the call succeeded; "
                                                         "the other registers hold its results")
    expect(entry.get_by_test_id("hvc-ret")).to_contain_text("not_full")
    expect(entry.get_by_test_id("hvc-effects")).to_contain_text("msgq.send msgq=A_to_B")
    expect(entry.get_by_test_id("hvc-effects")).to_contain_text("payload=typed")
    shot(page, "console-result")

    # Receiving on a send-only cap: the real error, by name and number, explained.
    box.fill("msgqueue_receive capid=")
    page.get_by_test_id("hvc-option").filter(has_text="msgqueue:A_to_B").click()
    box.press("Enter")
    step(page)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=hvc-x0]').length > 1")
    x0 = page.get_by_test_id("hvc-entry").last.get_by_test_id("hvc-x0")
    expect(x0).to_contain_text("X0 = CSPACE_INSUFFICIENT_RIGHTS (53)")
    expect(x0).to_contain_text("lacks the right")
    expect(page.get_by_test_id("hvc-entry").last.get_by_test_id("hvc-why")).to_contain_text(
        "is msgqueue:A_to_B (MSGQUEUE, SEND); msgqueue_receive needs a MSGQUEUE cap with RECEIVE")


def test_a_bad_line_is_refused_naming_what_is_wrong(page: Page) -> None:
    open_console(page)
    box = page.get_by_test_id("hvc-input")
    box.fill("msgqueue_sned capid=1")
    box.press("Enter")
    expect(page.get_by_test_id("hvc-error")).to_have_text("no hypercall 'msgqueue_sned'")
    box.fill("doorbell_send capid=1 new_flags=1 push=1")
    box.press("Enter")
    expect(page.get_by_test_id("hvc-error")).to_contain_text("takes no argument 'push'")
    expect(page.get_by_test_id("hvc-entry")).to_have_count(0)


def test_a_shared_link_shows_the_console_history(page: Page, browser: Browser) -> None:
    open_console(page)
    box = page.get_by_test_id("hvc-input")
    box.fill("doorbell_send capid=0x1 new_flags=0x4")  # no such cap in VM_A: a real error
    box.press("Enter")
    expect(page.get_by_test_id("hvc-entry")).to_have_count(1)
    step(page)
    x0 = page.get_by_test_id("hvc-x0")
    expect(x0).to_contain_text("X0 = ")
    shown = x0.inner_text()
    assert "OK" not in shown
    page.get_by_test_id("hvc-close").click()
    page.get_by_test_id("share-link").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=share-link]').dataset.url")
    url = page.get_by_test_id("share-link").get_attribute("data-url")
    context = browser.new_context(viewport=VIEWPORT)
    other = context.new_page()
    other.set_default_timeout(TIMEOUT_MS)
    try:
        other.goto(url)
        other.wait_for_selector("[data-vm='VM_A']")
        open_console(other)
        entry = other.get_by_test_id("hvc-entry")
        expect(entry).to_have_count(1)
        expect(entry).to_contain_text("doorbell_send capid=0x1 new_flags=0x4")
        expect(entry.get_by_test_id("hvc-x0")).to_have_text(shown)
    finally:
        context.close()
