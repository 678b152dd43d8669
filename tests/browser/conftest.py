"""Playwright fixtures: Debian's Chromium, one page per test, console errors fail the test.

`playwright install` cannot download browsers on these machines, so Chromium is launched
from its system path. Screenshots go to artifacts/ (gitignored) for people to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1920, "height": 1080}
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Chromium is missing: `make chromium` installs it"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page (one Socket.IO session) on the live server's index, diagram drawn."""
    # Playwright evaluates string predicates (wait_for_function) with eval, which the
    # page's CSP forbids; test_csp.py drives the page with its CSP enforced.
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text}")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.goto(live_server + "/")
    pg.wait_for_selector("[data-vm='VM_A']")
    yield pg
    context.close()
    if errors:
        pytest.fail("browser console errors:\n" + "\n".join(errors))


# Records the page's CSP violations (injected by the browser, not by the page).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI} ${e.sample}`));
"""


@pytest.fixture
def strict_page(browser: Browser, live_server: str) -> Iterator[tuple[Page, list[str]]]:
    """The page under its own CSP (unlike ``page``): the page and its console errors;
    ``window.__cspViolations`` lists any violation."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server + "/")
    page.wait_for_selector("[data-vm='VM_A']")
    yield page, errors
    context.close()


@pytest.fixture
def shot() -> callable:
    """shot(page, name): save a full-viewport PNG under artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)

    def save(pg: Page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        pg.screenshot(path=str(path))
        return path

    return save


def seq(page: Page) -> int:
    """The seq of the event the page shows."""
    return page.evaluate("() => window.__gunyah.seq")


def step_to(page: Page, kind: str) -> int:
    """'Step to next' event of ``kind``; returns the seq it stopped at, once its log row is
    there."""
    before = seq(page)
    page.get_by_test_id("step-kind").select_option(kind)
    page.get_by_test_id("btn-step-kind").click()
    page.wait_for_function("s => window.__gunyah.seq > s", arg=before)
    now = seq(page)
    page.wait_for_selector(f"[data-testid=log-entry][data-seq='{now}']", state="attached")
    return now
