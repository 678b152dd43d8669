"""The page at every size: 800 px wide (the diagram above, the panels below, nothing wider
than the window), a phone (the diagram and its caption fill the screen, read-only: the
controls that would act are hidden, the zoom buttons remain) and 1920×1080 with the side
panels open (the toolbar on one line). Screenshots go to artifacts/ for people to look at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from gunyah_core.scenario import load
from tests.browser.conftest import ARTIFACTS, TIMEOUT_MS
from tests.browser.test_legible import MEASURE_JS, MIN_PX

PRESETS = ["msgq-pingpong", "mem-share-doorbell"]
NARROW = (800, 900)
PHONE = (390, 844)
WIDE = (1920, 1080)
STEPS = 12
# Controls that change the machine or load another one: none of them shows on a phone.
ACTING = ["btn-reset", "scenario", "scenario-file", "step-n", "step-kind", "btn-step-kind",
          "btn-step-n", "export-jsonl", "btn-lessons", "branches", "share-link", "import",
          "btn-panels", "inspector", "log"]

GEOMETRY_JS = """() => {
  const r = (sel) => { const e = document.querySelector(sel); if (!e) return null;
    const b = e.getBoundingClientRect(); const cs = getComputedStyle(e);
    return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, w: b.width,
            h: b.height, shown: cs.display !== "none" && cs.visibility !== "hidden"
            && b.width > 0 && b.height > 0}; };
  return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth, innerHeight,
          diagram: r("#diagram"), caption: r("#caption-bar"), side: r(".side"), log: r(".timeline"),
          picture: (() => { const svg = document.getElementById("diagram");
            const vb = svg.viewBox.baseVal, m = svg.getScreenCTM();
            const a = new DOMPoint(vb.x, vb.y).matrixTransform(m);
            const b = new DOMPoint(vb.x + vb.width, vb.y + vb.height).matrixTransform(m);
            return {left: a.x, right: b.x, w: b.x - a.x}; })()};
}"""


def open_page(browser: Browser, url: str, size: tuple[int, int]) -> Page:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + "/")
    page.wait_for_selector("[data-vm='VM_A']")
    return page


def load_preset(page: Page, name: str) -> None:
    """Load a preset through the scenario picker (hidden on a phone: set and fire it)."""
    page.evaluate("""(name) => { const s = document.getElementById("scenario");
      s.value = name; s.dispatchEvent(new Event("change")); }""", name)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(name).config["title"])
    page.keyboard.press("Escape")
    for _ in range(STEPS):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => window.__gunyah.seq >= 8")


@pytest.fixture
def sized(browser: Browser, live_server: str) -> Iterator[callable]:
    pages: list[Page] = []

    def make(size: tuple[int, int]) -> Page:
        pages.append(open_page(browser, live_server, size))
        return pages[-1]

    yield make
    for p in pages:
        p.context.close()


def test_800_wide_stacks_the_panels_below_the_diagram(sized) -> None:
    page = sized(NARROW)
    if page.get_by_test_id("btn-panels").get_attribute("aria-pressed") == "false":
        page.get_by_test_id("btn-panels").click()
    for name in PRESETS:
        load_preset(page, name)
        g = page.evaluate(GEOMETRY_JS)
        assert g["scrollWidth"] <= g["innerWidth"], f"{name}: wider than the window: {g}"
        assert g["diagram"]["shown"] and g["diagram"]["h"] > 300, g
        assert g["caption"]["shown"] and g["caption"]["bottom"] <= g["diagram"]["top"] + 1, g
        assert g["diagram"]["top"] < g["innerHeight"], "the diagram starts below the first screen"
        assert g["side"]["shown"] and g["side"]["top"] >= g["diagram"]["bottom"] - 1, g
        assert g["log"]["shown"] and g["log"]["top"] >= g["side"]["bottom"] - 1, g
        assert g["picture"]["left"] >= -1 and g["picture"]["right"] <= g["innerWidth"] + 1, g
        # The toolbar wraps onto rows, but nothing in it is cut off by the window's edge.
        cut = page.evaluate("""() => [...document.querySelectorAll(
            '.toolbar *, .histbar *, .topbar *')]
          .filter(e => e.offsetParent && e.getBoundingClientRect().right > innerWidth + 0.5)
          .map(e => e.id || e.className)""")
        assert cut == [], cut
        page.screenshot(path=str(ARTIFACTS / f"20-800-{name}.png"))


def test_a_phone_shows_the_diagram_and_the_caption_read_only(sized) -> None:
    page = sized(PHONE)
    for name in PRESETS:
        load_preset(page, name)
        g = page.evaluate(GEOMETRY_JS)
        assert g["scrollWidth"] <= g["innerWidth"], f"{name}: the page is wider than the phone: {g}"
        assert g["caption"]["shown"] and g["caption"]["bottom"] <= g["diagram"]["top"] + 1, g
        expect(page.get_by_test_id("caption-bar")).not_to_be_empty()
        # The caption and the diagram fill the screen below the bars; the picture fits its width.
        assert g["diagram"]["bottom"] >= g["innerHeight"] - 10, g
        assert g["diagram"]["h"] > g["innerHeight"] / 2, g
        assert g["picture"]["left"] >= -1 and g["picture"]["right"] <= g["innerWidth"] + 1, g
        for testid in ACTING:
            expect(page.get_by_test_id(testid)).to_be_hidden()
        for testid in ["btn-play", "btn-step", "step-back", "btn-fit", "btn-zoom-in",
                       "btn-zoom-out", "caption-bar"]:
            expect(page.get_by_test_id(testid)).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"21-phone-{name}.png"))
    # Zoom by touch: the + button zooms the diagram in (its viewBox narrows), Fit restores it.
    before = page.evaluate("() => document.getElementById('diagram').viewBox.baseVal.width")
    page.get_by_test_id("btn-zoom-in").click()
    page.get_by_test_id("btn-zoom-in").click()
    after = page.evaluate("() => document.getElementById('diagram').viewBox.baseVal.width")
    assert after < before * 0.7
    page.get_by_test_id("btn-fit").click()
    assert page.evaluate("() => document.getElementById('diagram').viewBox.baseVal.width") == before


def test_1920_with_panels_open_keeps_the_toolbar_on_one_line(sized) -> None:
    page = sized(WIDE)
    if page.get_by_test_id("btn-panels").get_attribute("aria-pressed") == "false":
        page.get_by_test_id("btn-panels").click()
    rows = page.evaluate("""() => { const t = document.querySelector('.toolbar');
      const mids = [...t.children].filter(e => e.offsetParent).map(e => {
        const b = e.getBoundingClientRect(); return Math.round(b.top + b.height / 2); });
      const cut = [...t.querySelectorAll('*')].filter(e => e.offsetParent
        && e.getBoundingClientRect().right > innerWidth + 0.5).length;
      return {rows: new Set(mids).size, cut, lines: [...t.querySelectorAll('button, .file-btn')]
        .filter(e => e.getClientRects().length > 1
          || e.getBoundingClientRect().height > 48).length}; }""")
    assert rows == {"rows": 1, "cut": 0, "lines": 0}, rows


def test_presentation_mode_is_left_by_a_click(sized) -> None:
    """Without a keyboard too; a phone has no presentation mode (its caption bar is the
    caption, and presenting would hide the stepping buttons)."""
    expect(sized(PHONE).get_by_test_id("btn-present")).to_be_hidden()
    page = sized(NARROW)
    page.get_by_test_id("btn-present").click()
    expect(page.get_by_test_id("present-text")).to_be_visible()
    expect(page.get_by_test_id("btn-present")).to_be_hidden()  # the toolbars are gone
    page.get_by_test_id("present-leave").click()
    expect(page.get_by_test_id("present-caption")).to_be_hidden()
    expect(page.get_by_test_id("btn-present")).to_be_visible()
    expect(page.get_by_test_id("caption-bar")).to_be_visible()


PHONES = [(390, 844), (360, 740)]
PHONE_PRESETS = ["msgq-pingpong", "rm-boot", "msgq-thresholds", "priority-preemption"]


def phone_problems(page: Page) -> list[str]:
    """Labels under 12 px anywhere in the picture, and overlaps among those in view."""
    got = page.evaluate(MEASURE_JS)
    x0, y0, x1, y1 = got["clip"]
    small = [f"{t['text']!r} ({t['cls']}) is {t['px']:.1f} px" for t in got["texts"]
             if t["px"] < MIN_PX]
    seen = [t for t in got["texts"] if t["r"][1] >= y0 and t["r"][3] <= y1]
    over = []
    for i, a in enumerate(seen):
        for b in seen[i + 1:]:
            w = min(a["r"][2], b["r"][2]) - max(a["r"][0], b["r"][0])
            h = min(a["r"][3], b["r"][3]) - max(a["r"][1], b["r"][1])
            if w > 1 and h > 1:
                over.append(f"{a['text']!r} ({a['cls']}) overlaps {b['text']!r} ({b['cls']})")
    return small + over


@pytest.mark.parametrize("size", PHONES, ids=[f"{w}x{h}" for w, h in PHONES])
def test_a_phone_draws_the_diagram_full_width_at_label_size_and_pans(sized, size) -> None:
    """On a phone the diagram is laid out for the phone's width (two VMs a row, one column
    of queues and lanes): every label is at least 12 px, none overlaps; it fills the
    width and pans up and down to show the rest (the pCPU lanes at the bottom)."""
    page = sized(size)
    for name in PHONE_PRESETS:
        if name != "msgq-pingpong":
            load_preset(page, name)
        g = page.evaluate(GEOMETRY_JS)
        assert abs(g["picture"]["w"] - g["diagram"]["w"]) <= 2, g  # the picture fills the width
        assert page.evaluate(
            "() => Number(getComputedStyle(document.getElementById('caption-bar')).fontSize)"
            " || parseFloat(getComputedStyle(document.getElementById('caption-bar')).fontSize)"
        ) >= 16
        assert phone_problems(page) == [], name
        lane = page.get_by_test_id("pcpu-0")
        box = page.get_by_test_id("diagram").bounding_box()
        start = lane.bounding_box()["y"]
        if name == "msgq-pingpong":  # four VMs in two rows, two queues: taller than a phone
            assert start > box["y"] + box["height"]
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] - 20
        for _ in range(4):  # a finger (or mouse) drags the picture up
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x, y - box["height"] * 0.8, steps=4)
            page.mouse.up()
        lane_box = lane.bounding_box()
        assert box["y"] <= lane_box["y"] and lane_box["y"] + lane_box["height"] <= (
            box["y"] + box["height"] + 1), f"{name}: the lanes are not reachable"
        assert phone_problems(page) == [], name
        page.screenshot(path=str(ARTIFACTS / f"22-phone-{size[0]}-{name}-lanes.png"))
        page.get_by_test_id("btn-fit").click()  # back to the top
        assert abs(lane.bounding_box()["y"] - start) <= 1
