"""The page under its own Content-Security-Policy (the other browser tests bypass it, since
Playwright's string predicates need eval): no violation while it draws, plays and
inspects. Predicates here are functions, which Playwright runs without eval."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

VIEWPORT = {"width": 1920, "height": 1080}
TIMEOUT_MS = 10_000

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI} ${e.sample}`));
"""


@pytest.fixture
def strict_page(browser: Browser, live_server: str) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(RECORD_VIOLATIONS)  # injected by the browser, not by the page
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server + "/")
    page.wait_for_selector("[data-vm='VM_A']")
    yield page, errors
    context.close()


def test_the_page_works_under_its_csp(strict_page) -> None:
    page, errors = strict_page
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("() => window.__gunyah.now_ns > 10000")
    page.get_by_test_id("btn-play").click()
    page.locator("[data-vm='VM_A']").click()
    expect(page.get_by_test_id("insp-title")).to_have_text("VM_A")
    segments = page.locator("[data-testid=insp-membar] span")
    expect(segments.first).to_be_attached()
    grow = page.evaluate("() => [...document.querySelectorAll('[data-testid=insp-membar] span')]"
                         ".map((s) => getComputedStyle(s).flexGrow)")
    assert grow and all(float(g) > 0 for g in grow)  # sized through CSSOM, not a style attribute
    assert page.evaluate("() => window.__cspViolations") == []
    assert errors == []
