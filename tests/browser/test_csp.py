"""The page under its own Content-Security-Policy (the other browser tests bypass it, since
Playwright's string predicates need eval): no violation while it draws, plays and
inspects. Predicates here are functions, which Playwright runs without eval."""

from __future__ import annotations

from playwright.sync_api import expect


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
