"""The page on a classroom projector (1280×720 and 1024×768): every preset's diagram
labels are at least 12 CSS px as rendered, none overlaps another or leaves the picture;
the side panels start folded away; RM links are folded unless the scenario is about them;
presentation mode, zoom and fit. One page for the whole file, presets loaded in a loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from gunyah_core.scenario import load, preset_names
from tests.browser.conftest import ARTIFACTS, TIMEOUT_MS

SIZES = [(1280, 720), (1024, 768)]
MIN_PX = 12.0
OVERLAP_TOLERANCE_PX = 1.0
STEPS = 20
LATER_STEPS = 400  # further on: booted guests, full queues, error badges, faults
LATER_MIN = 100
CAPTION_MIN_PX = 26.0

# Every visible, non-empty <text> of the diagram: its text, class, rendered font size
# (computed size times the SVG's scale) and client rectangle; and the client rectangle
# of the picture at "fit" (the viewBox mapped to the screen). Animations in flight are left out.
MEASURE_JS = """() => {
  const svg = document.getElementById("diagram");
  const vb = svg.viewBox.baseVal, m = svg.getScreenCTM();
  const corner = (x, y) => new DOMPoint(x, y).matrixTransform(m);
  const a = corner(vb.x, vb.y), b = corner(vb.x + vb.width, vb.y + vb.height);
  const texts = [];
  for (const t of svg.querySelectorAll("text")) {
    // .fx holds the animations in flight (a chip gliding to its lane): they cross labels by design
    if (!t.textContent.trim() || t.closest('[visibility="hidden"]') || t.closest(".fx")) continue;
    const cs = getComputedStyle(t);
    if (cs.display === "none" || cs.visibility === "hidden") continue;
    const r = t.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const ctm = t.getScreenCTM();
    texts.push({ text: t.textContent, cls: t.getAttribute("class"),
      px: parseFloat(cs.fontSize) * Math.hypot(ctm.a, ctm.b),
      r: [r.left, r.top, r.right, r.bottom] });
  }
  return { clip: [a.x, a.y, b.x, b.y], texts };
}"""


def problems(page: Page) -> list[str]:
    got = page.evaluate(MEASURE_JS)
    out = []
    x0, y0, x1, y1 = got["clip"]
    texts = got["texts"]
    for t in texts:
        if t["px"] < MIN_PX:
            out.append(f"{t['text']!r} ({t['cls']}) is {t['px']:.1f} px")
        left, top, right, bottom = t["r"]
        tol = OVERLAP_TOLERANCE_PX
        if left < x0 - tol or top < y0 - tol or right > x1 + tol or bottom > y1 + tol:
            out.append(f"{t['text']!r} ({t['cls']}) is clipped: {t['r']} outside {got['clip']}")
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            w = min(a["r"][2], b["r"][2]) - max(a["r"][0], b["r"][0])
            h = min(a["r"][3], b["r"][3]) - max(a["r"][1], b["r"][1])
            if w > OVERLAP_TOLERANCE_PX and h > OVERLAP_TOLERANCE_PX:
                out.append(f"{a['text']!r} ({a['cls']}) overlaps {b['text']!r} ({b['cls']})")
    return out


def rm_link_queues(preset: str) -> bool:
    return load(preset).config.get("focus", {}).get("rm_links") == "unfolded"


@pytest.fixture(scope="module")
def small(browser: Browser, live_server: str) -> Iterator[tuple[Page, list[str]]]:
    """One page at projector size for the whole file, and the console errors it logged."""
    context = browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(live_server + "/")
    pg.wait_for_selector("[data-vm='VM_A']")
    yield pg, errors
    context.close()


def load_preset(page: Page, name: str) -> None:
    if page.get_by_test_id("scenario").input_value() == name:  # the same again: start it afresh
        other = next(p for p in preset_names() if p != name)
        load_preset(page, other)
    page.get_by_test_id("scenario").select_option(name)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(name).config["title"])
    page.wait_for_selector("#diagram [data-vm='HLOS']")


def step(page: Page, count: int) -> None:
    seq = page.evaluate("window.__gunyah.seq")
    page.evaluate("document.activeElement?.blur()")
    for _ in range(count):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq + count)
    page.wait_for_timeout(150)  # a frame or two to draw them


def step_many(page: Page, count: int) -> None:
    """Step N from the toolbar (its group is shown with the panels)."""
    seq = page.evaluate("window.__gunyah.seq")
    page.get_by_test_id("btn-panels").click()
    page.get_by_test_id("step-n").fill(str(count))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq + LATER_MIN)
    page.get_by_test_id("btn-panels").click()
    page.wait_for_timeout(400)


def test_every_preset_is_legible_on_a_projector(small) -> None:
    page, errors = small
    ARTIFACTS.mkdir(exist_ok=True)
    found: list[str] = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        page.wait_for_selector("#diagram [data-vm]")
        folded = page.evaluate("document.body.classList.contains('panels-off')")
        assert folded, "panels open by default"
        expect(page.locator(".side")).to_be_hidden()
        for name in preset_names():
            load_preset(page, name)
            step(page, STEPS)
            where = f"{name} at {width}×{height}"
            found += [f"{where}: {p}" for p in problems(page)]
            page.screenshot(path=str(ARTIFACTS / f"legible-{name}-{width}x{height}.png"))
            step_many(page, LATER_STEPS)
            found += [f"{where}, later: {p}" for p in problems(page)]
            page.screenshot(path=str(ARTIFACTS / f"legible-{name}-{width}x{height}-later.png"))
            queues = page.locator("#diagram [data-msgq^='RM_to_'], #diagram [data-msgq$='_to_RM']")
            if rm_link_queues(name):
                assert queues.count() >= 2, f"{where}: RM link queues not drawn"
                assert page.locator("[data-rmlink]").count() == 0, where
            else:
                assert queues.count() == 0, f"{where}: RM link queues drawn while folded"
                marker = page.locator("[data-rmlink='HLOS']")
                assert marker.count() == 1, f"{where}: no RM link marker"
    assert not found, "\n".join(found)
    assert not errors, errors


def test_the_title_stays_on_one_line_while_playing(small) -> None:
    page, errors = small
    page.set_viewport_size({"width": 1024, "height": 768})
    load_preset(page, "priority-preemption")
    before = page.locator(".topbar").bounding_box()
    title = page.get_by_test_id("scenario-title")
    line = page.evaluate("(s => parseFloat(s.lineHeight) || 1.3 * parseFloat(s.fontSize))"
                         "(getComputedStyle(document.getElementById('scenario-title')))")
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("() => window.__gunyah.seq > 40")
    after = page.locator(".topbar").bounding_box()
    page.get_by_test_id("btn-play").click()
    assert after == before, "the header moved while playing"
    assert title.bounding_box()["height"] <= line * 1.2, "the title wraps"
    assert not errors, errors


def test_an_rm_link_unfolds_on_click_and_a_vm_can_be_hidden(small) -> None:
    page, errors = small
    page.set_viewport_size({"width": 1280, "height": 720})
    load_preset(page, "priority-preemption")
    page.locator("[data-rmlink='Spin_A']").click()
    expect(page.locator("#diagram [data-msgq='RM_to_Spin_A']")).to_have_count(1)
    expect(page.locator("#diagram [data-msgq='Spin_A_to_RM']")).to_have_count(1)
    expect(page.locator("[data-rmlink='Spin_A']")).to_have_count(0)
    assert not problems(page)
    page.locator(".vm-menu summary").click()
    page.locator("[data-vm-toggle='Timer']").uncheck()
    expect(page.locator("#diagram [data-vm='Timer']")).to_have_count(0)
    expect(page.locator("#diagram [data-bell='tick']")).to_have_count(0)  # its doorbell goes too
    step(page, STEPS)
    # Hidden from the picture, not from the run: Timer's events are still in the log.
    assert page.locator("[data-testid=log-entry]", has_text="Timer").count() > 0
    page.locator("[data-vm-toggle='Timer']").check()
    expect(page.locator("#diagram [data-vm='Timer']")).to_have_count(1)
    page.locator("[data-rm-links]").check()  # every RM link drawn, then all folded again
    expect(page.locator("#diagram [data-msgq='RM_to_Urgent']")).to_have_count(1)
    expect(page.locator("[data-rmlink]")).to_have_count(0)
    page.locator("[data-rm-links]").uncheck()
    expect(page.locator("#diagram [data-msgq='RM_to_Spin_A']")).to_have_count(0)
    expect(page.locator("[data-rmlink]")).to_have_count(5)
    page.locator(".vm-menu summary").click()
    assert not errors, errors


def test_presentation_mode_shows_the_event_large(small) -> None:
    page, errors = small
    page.set_viewport_size({"width": 1280, "height": 720})
    load_preset(page, "doorbell")
    page.evaluate("document.activeElement?.blur()")
    page.keyboard.press("p")
    expect(page.locator(".toolbar")).to_be_hidden()
    caption = page.get_by_test_id("present-text")
    expect(caption).to_be_visible()
    step(page, 3)
    seq = page.evaluate("window.__gunyah.seq")
    row = page.get_by_test_id("log-entry").and_(page.locator(f"[data-seq='{seq}']"))
    sentence = row.locator(".l-cap").text_content()
    assert sentence  # the current event's caption, as its log row has it
    expect(caption).to_have_text(sentence)
    px = caption.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert px >= CAPTION_MIN_PX
    svg_box = page.get_by_test_id("diagram").bounding_box()
    assert svg_box["width"] >= 1200 and svg_box["height"] >= 450, svg_box
    assert not problems(page)
    page.keyboard.press("p")
    expect(page.locator(".toolbar")).to_be_visible()
    page.get_by_test_id("btn-present").click()
    expect(caption).to_be_visible()
    page.keyboard.press("Escape")
    expect(caption).to_be_hidden()
    assert not errors, errors


def viewbox(page: Page) -> list[float]:
    return [float(v) for v in page.get_by_test_id("diagram").get_attribute("viewBox").split()]


def test_zoom_pan_and_fit(small) -> None:
    page, errors = small
    page.set_viewport_size({"width": 1280, "height": 720})
    load_preset(page, "msgq-pingpong")
    fit = viewbox(page)
    page.evaluate("document.activeElement?.blur()")
    page.keyboard.press("]")
    zoomed = viewbox(page)
    assert zoomed[2] < fit[2] and zoomed[3] < fit[3]
    box = page.get_by_test_id("diagram").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -300)
    assert viewbox(page)[2] < zoomed[2], "the wheel did not zoom in"
    before = viewbox(page)
    page.mouse.move(box["x"] + 30, box["y"] + 30)  # a spot with no VM or queue
    page.mouse.down()
    page.mouse.move(box["x"] + 130, box["y"] + 90, steps=5)
    page.mouse.up()
    after = viewbox(page)
    assert after[0] < before[0] and after[1] < before[1], "the drag did not pan"
    page.keyboard.press("Shift+ArrowRight")
    assert viewbox(page)[0] > after[0], "shift+→ did not pan"
    page.get_by_test_id("btn-fit").click()
    assert viewbox(page) == fit
    page.keyboard.press("[")
    assert viewbox(page) == fit, "zoomed out past fit"
    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_contain_text("zoom")
    page.keyboard.press("Escape")
    assert not errors, errors


BIG_SCENARIO = Path(__file__).absolute().parents[2] / "benchmarks" / "bench-16vm.yaml"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_sixteen_vms_on_a_projector_keep_labels_legible_and_pan(small, size) -> None:
    """18 VMs, 16 queues and 9 pCPUs cannot all fit a projector at 12 px: the diagram is
    laid out for the stage's width (labels at their size) and pans down to the lanes."""
    page, errors = small
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.set_input_files("[data-testid=scenario-file]", str(BIG_SCENARIO))
    page.wait_for_selector("[data-vm='P0']")
    page.wait_for_function("() => window.__gunyah.headSeq === window.__gunyah.bootSeq")
    # The caption bar's new sentence may change the stage's height: the page re-lays out
    # 100 ms after a resize (stageview.js); measure once that has settled.
    page.wait_for_timeout(400)
    page.get_by_test_id("btn-fit").click()
    got = page.evaluate(MEASURE_JS)
    small = [f"{t['text']!r} ({t['cls']}) {t['px']:.1f} px" for t in got["texts"]
             if t["px"] < MIN_PX]
    assert small == []
    x0, y0, x1, y1 = got["clip"]
    box = page.get_by_test_id("diagram").bounding_box()
    assert abs((x1 - x0) - box["width"]) <= 2  # the picture spans the stage's width
    lane = page.get_by_test_id("pcpu-8")
    assert lane.bounding_box()["y"] > box["y"] + box["height"]  # further down, not shrunk
    for _ in range(30):  # shift + arrows pan (a drag does too)
        page.keyboard.press("Shift+ArrowDown")
    lane_box = lane.bounding_box()
    assert lane_box["y"] + lane_box["height"] <= box["y"] + box["height"] + 1
    page.screenshot(path=str(ARTIFACTS / f"legible-16vm-{size[0]}-lanes.png"))
    # The stage a little shorter (a flag under the diagram while playing): the same
    # picture is laid out again, and the view stays where it was panned to.
    width = page.evaluate("() => document.getElementById('diagram').clientWidth")
    page.set_viewport_size({"width": size[0], "height": size[1] - 20})
    page.wait_for_function("h => document.getElementById('diagram').clientHeight < h",
                           arg=box["height"] - 10)
    # (the same width: a page that now scrolls, with a scrollbar, is another picture)
    assert page.evaluate("() => document.getElementById('diagram').clientWidth") == width
    page.wait_for_timeout(400)  # the relayout waits 100 ms for the resizing to settle
    box = page.get_by_test_id("diagram").bounding_box()
    lane_box = lane.bounding_box()
    assert box["y"] <= lane_box["y"] and lane_box["y"] + lane_box["height"] <= (
        box["y"] + box["height"] + 1), "the relayout sent the view back to the top"
    page.set_viewport_size({"width": size[0], "height": size[1]})
    assert not errors, errors


def test_at_1024_the_header_keeps_room_for_the_title(small) -> None:
    page, _ = small
    page.set_viewport_size({"width": 1024, "height": 768})
    page.get_by_test_id("scenario").select_option("proxy-scheduling")
    title = page.get_by_test_id("scenario-title")
    expect(title).to_have_text(load("proxy-scheduling").config["title"])
    assert title.bounding_box()["width"] >= 320  # "Proxy scheduling: HLOS runs a guest's …"
    assert title.get_attribute("title") == load("proxy-scheduling").config["title"]
    page.screenshot(path=str(ARTIFACTS / "legible-header-1024.png"))
