"""The live-invariants item of the status line: the count of checks grows as events are
revealed; a violation names the invariant, the event and why, and jumps to that event."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from test_console_page import page, step  # noqa: F401  (the page under its CSP)

VIOLATION = {"invariant": "fifo", "seq": 5, "t": 0, "kind": "msgq.recv",
             "message": "A_to_B gave message 7 before message 6, accepted earlier"}


def checks(page: Page) -> int:  # noqa: F811
    text = page.get_by_test_id("inv-text").inner_text()
    assert text.startswith("✓ ") and text.endswith(" checks"), text
    return int(text[2:-7].replace(",", ""))


def test_checks_are_counted_as_the_run_goes(page: Page) -> None:  # noqa: F811
    step(page, 50)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=inv-text]').textContent.startsWith('✓')")
    first = checks(page)
    step(page, 300)
    page.wait_for_function("n => Number(document.querySelector('[data-testid=inv-text]')"
                           ".textContent.replace(/[^0-9]/g, '')) > n", arg=first)
    assert checks(page) > first
    expect(page.get_by_test_id("inv-goto")).to_be_hidden()


def test_a_violation_is_shown_and_jumps_to_its_event(page: Page) -> None:  # noqa: F811
    step(page, 20)
    shown = page.evaluate("""async (v) => {
      const { InvariantsPanel } = await import('/static/js/invariants.js');
      const box = document.createElement('div');
      const anchor = document.createElement('span');
      box.append(anchor);
      document.body.append(box);
      const seeks = [];
      const panel = new InvariantsPanel(box, anchor, (seq) => seeks.push(seq));
      panel.update({ checks: 10, by_name: {}, violations: 1, violation: v });
      const text = panel.text.textContent;
      panel.go.click();
      return { text, seeks, hidden: panel.go.hidden, bad: panel.root.classList.contains('bad') };
    }""", VIOLATION)
    assert shown == {"text": "✗ fifo broken at #5 (msgq.recv): A_to_B gave message 7 before "
                             "message 6, accepted earlier",
                     "seeks": [5], "hidden": False, "bad": True}
