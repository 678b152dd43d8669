"""No lost work, no silent failure: what the page says when an action fails, a field is
malformed, the server goes away or the tab reloads (msgq-pingpong preset)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

SENDS_TO_OVERFILL = 9  # A_to_B is 8 deep


def test_a_queued_send_that_fails_says_it_failed(page: Page) -> None:
    page.locator("[data-vm='VM_B']").click()
    page.get_by_test_id("act-stop").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option("A_to_B")
    for i in range(SENDS_TO_OVERFILL):
        page.get_by_test_id("act-payload").fill(f"m{i}")
        page.get_by_test_id("act-send").click()
        expect(page.get_by_test_id("act-result")).to_contain_text(f"#{i + 2} ")
    page.get_by_test_id("step-n").fill("120")
    page.get_by_test_id("btn-step-n").click()
    result = page.get_by_test_id("act-result")
    expect(result).to_have_attribute("data-outcome", "failed")
    expect(result).to_contain_text(f"action #{SENDS_TO_OVERFILL + 1} failed")
    expect(result).to_contain_text("MSGQUEUE_FULL")
