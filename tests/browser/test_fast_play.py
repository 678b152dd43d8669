"""Sixteen VMs played at "max" with the log, the lanes and the caption bar on screen: the
page keeps its per-frame work bounded (benchmarks/bench_browser.py measures the frame
rate; these check what makes it): the log lists a refresh of at most 40 rows a few times
a second instead of hundreds of rows a frame, the lanes draw one mark per few pixels
per kind, and label widths are measured once, not on every change of a lane's text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import TIMEOUT_MS, VIEWPORT

SCENARIO = Path(__file__).absolute().parents[2] / "benchmarks" / "bench-16vm.yaml"
MAX_SLIDER = 71  # the speed slider's "max"
ROWS_PER_REFRESH = 40  # timeline.js MAX_ROWS_PER_FLUSH
MARK_MIN_PX = 4  # tracks.js
TRACK_NODES_MAX = 1 + 2 * 8 + 1 + 1 + 4  # box; 8 VM colours, own or donated; many; hatch; marks

# Counts rows added to the log per mutation batch, and text measurements.
PROBE = """
window.__probe = { appends: [], measured: 0 };
const measure = SVGTextContentElement.prototype.getComputedTextLength;
SVGTextContentElement.prototype.getComputedTextLength = function () {
  window.__probe.measured++; return measure.call(this); };
window.addEventListener("DOMContentLoaded", () => {
  new MutationObserver((list) => {
    const rows = list.reduce(
      (n, m) => n + [...m.addedNodes].filter((x) => x.dataset?.seq).length, 0);
    if (rows) window.__probe.appends.push(rows);
  }).observe(document.getElementById("log"), { childList: true });
});
"""


@pytest.fixture
def playing(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    context.add_init_script(PROBE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_server + "/")
    page.wait_for_selector("[data-vm='VM_A']")
    if page.get_by_test_id("btn-panels").get_attribute("aria-pressed") == "false":
        page.get_by_test_id("btn-panels").click()
    page.set_input_files("[data-testid=scenario-file]", str(SCENARIO))
    page.wait_for_selector("[data-vm='P0']")
    page.wait_for_function("() => window.__gunyah.headSeq === window.__gunyah.bootSeq")
    page.evaluate("() => document.activeElement?.blur()")
    page.get_by_test_id("speed").evaluate(
        f"el => {{ el.value = {MAX_SLIDER}; el.dispatchEvent(new Event('input')); }}")
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("() => window.__gunyah.headSeq > 20000", timeout=60_000)
    yield page
    page.get_by_test_id("btn-play").click()
    context.close()


def test_fast_play_keeps_the_pages_work_per_frame_bounded(playing: Page) -> None:
    page = playing
    page.evaluate("() => { window.__probe.appends = []; window.__probe.measured = 0; }")
    f0 = page.evaluate("() => window.__gunyah.framesDrawn")
    page.wait_for_function("f => window.__gunyah.framesDrawn > f + 30", arg=f0, timeout=60_000)
    probe = page.evaluate("() => window.__probe")
    frames = page.evaluate("() => window.__gunyah.framesDrawn") - f0
    assert probe["appends"], "the log stopped listing"
    assert max(probe["appends"]) <= ROWS_PER_REFRESH, probe["appends"]
    assert len(probe["appends"]) < frames  # not a refresh every frame
    # Lane texts come back (the same vCPUs, the same ready lists): measured once each.
    assert probe["measured"] < frames, (probe["measured"], frames)
    gaps = page.evaluate("""() => window.__gunyah.tracks.map((tr) => {
      const by = new Map();
      for (const m of tr.marks) by.set(m.kind, [...(by.get(m.kind) ?? []), m.x]);
      let min = Infinity;
      for (const xs of by.values()) { xs.sort((a, b) => a - b);
        for (let i = 1; i < xs.length; i++) min = Math.min(min, xs[i] - xs[i - 1]); }
      return min; })""")
    assert min(gaps) >= MARK_MIN_PX - 0.5, gaps  # one mark per few pixels per kind
    # However many slices and marks, a track is a few paths (one per colour and per mark
    # kind) and the labels that fit, not a node per slice rewritten every frame.
    nodes = page.evaluate("""() => [...document.querySelectorAll('#diagram .track')]
      .map((g) => g.querySelectorAll('path, rect').length)""")
    marks = sum(len(tr["marks"]) for tr in page.evaluate("window.__gunyah.tracks"))
    assert max(nodes) <= TRACK_NODES_MAX and marks > sum(nodes), (nodes, marks)
