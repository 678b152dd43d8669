"""Every event explained on the page: the caption bar, the log rows and the event
inspector all say what gunyah_core/teaching/captions.py says, at a laptop's 1280×720."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from gunyah_core import Simulation, load
from gunyah_core.teaching.captions import caption
from webapp.session import CAPTIONED_PER_BATCH

LAPTOP = {"width": 1280, "height": 720}
SMALL = {"width": 1024, "height": 768}
STEPS = 40  # the first send, its vIRQ and its hvc (seq 31, 32, 35) are in the log
MIN_CAPTION_PX = 16


def expected_captions(count: int) -> dict[int, str]:
    """The first ``count`` events of the page's default preset, captioned headless."""
    sim = Simulation(load("msgq-pingpong"))
    events = sim.run(max_events=count)
    while len(events) < count:
        events += sim.step()
    return {e["seq"]: caption(e) for e in events[:count]}


def step_to(page: Page, seq: int) -> None:
    page.wait_for_function("() => window.__gunyah.bootSeq > 0")  # the load revealed the boot
    page.get_by_test_id("step-n").fill(str(seq - page.evaluate("window.__gunyah.seq")))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq)


def test_caption_bar_log_rows_and_inspector_explain_events(page: Page, shot) -> None:
    page.set_viewport_size(LAPTOP)
    step_to(page, STEPS - 1)
    want = expected_captions(STEPS + 5)
    seq = page.evaluate("window.__gunyah.seq")
    bar = page.get_by_test_id("caption-bar")
    expect(bar).to_have_text(want[seq])
    assert float(bar.evaluate("el => getComputedStyle(el).fontSize")[:-2]) >= MIN_CAPTION_PX
    box = bar.bounding_box()
    assert box and box["y"] + box["height"] <= LAPTOP["height"] and box["width"] > 400

    page.get_by_test_id("btn-step").click()
    page.wait_for_function("s => window.__gunyah.seq > s", arg=seq)
    seq = page.evaluate("window.__gunyah.seq")
    expect(bar).to_have_text(want[seq])
    shot(page, "captions-1280x720")

    # Each log row reads as its sentence.
    row = page.locator("[data-testid=log-entry][data-kind='hvc']").first
    row_seq = int(row.get_attribute("data-seq"))
    expect(row.locator(".l-cap")).to_have_text(want[row_seq])

    # Clicking it: the inspector says it, in hex, with the real hypercall behind it.
    row.click()
    detail = page.get_by_test_id("log-detail")
    expect(detail.get_by_test_id("event-caption")).to_have_text(want[row_seq])
    expect(detail.get_by_test_id("event-real")).to_contain_text("Real Gunyah: msgqueue_")
    fields = detail.get_by_test_id("event-fields")
    expect(fields).to_contain_text(re.compile(r"msgqueue_(send|receive) \(0x601[BC]\)"))
    expect(fields).to_contain_text(re.compile(r"capid 0x[0-9A-F]+"))
    expect(fields).to_contain_text("OK (0)")
    shot(page, "captions-inspector-1280x720")

    page.set_viewport_size(SMALL)
    expect(bar).to_be_visible()
    shot(page, "captions-1024x768")


def test_a_floods_uncaptioned_events_are_explained_when_looked_at(page: Page) -> None:
    page.set_viewport_size(LAPTOP)
    count = CAPTIONED_PER_BATCH + 100  # one batch after the boot: its oldest come without words
    step_to(page, count - 1)
    want = expected_captions(count)
    early = 40
    row = page.locator(f"[data-testid=log-entry][data-seq='{early}']")
    expect(row.locator(".l-cap")).to_have_text("")  # listed with its fields only
    row.click()
    page.get_by_test_id("log-goto").click()
    page.wait_for_function("s => window.__gunyah.seq === s", arg=early)
    expect(page.get_by_test_id("caption-bar")).to_have_text(want[early])
    expect(page.get_by_test_id("event-caption")).to_have_text(want[early])
