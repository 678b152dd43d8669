"""The virtio presets on the page: the device's cell between its frontend and its
backend, each queue's available and used rings filling and draining as the run goes,
the reasons waiting for the backend in its title (facts §10.1; virtio 1.1 §2.6)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from gunyah_core.scenario import load
from tests.browser.conftest import ARTIFACTS

PRESETS = {"virtio-console": ("console", 2), "virtio-block": ("disk", 1)}
WATCH_STEPS = 900  # through the probe and well into the traffic
STEP = 15
REASONS = {"NEW_BUFFER", "RESET_RQST", "DRIVER_OK", "FAILED"}


def load_preset(page: Page, name: str) -> None:
    page.get_by_test_id("scenario").select_option(name)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(name).config["title"])
    page.wait_for_selector("#diagram [data-vm='HLOS']")


def ring_counts(page: Page, device: str) -> list[tuple[int, int]]:
    """(available, used) chains per drawn queue, as the cell shows them."""
    counts = page.evaluate("""d => [...document.querySelectorAll(
      `[data-virtio='${d}'] .ring-avail`)].map((g, q) => [Number(g.dataset.count),
      Number(document.querySelector(`[data-virtio='${d}'] [data-testid='ring-used-${q}']`)
        .dataset.count)])""", device)
    return [tuple(c) for c in counts]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_rings_fill_and_drain_on_the_page(page: Page, preset: str) -> None:
    device, queues = PRESETS[preset]
    page.set_viewport_size({"width": 1280, "height": 720})
    load_preset(page, preset)
    cell = page.locator(f"#diagram [data-virtio='{device}']")
    expect(cell).to_have_count(1)
    expect(cell.locator(".ring-avail")).to_have_count(queues)
    expect(cell.locator(".ring-used")).to_have_count(queues)
    # Both ends are linked to the cell: the frontend (VM_A) and the backend (HLOS).
    expect(page.locator(f"[data-link='virtio:{device}:tx']")).to_have_count(1)
    expect(page.locator(f"[data-link='virtio:{device}:rx']")).to_have_count(1)
    assert all(c == (0, 0) for c in ring_counts(page, device))
    # Step a few events at a time (Step N) and record what the rings held after each.
    folded = page.evaluate("() => document.body.classList.contains('panels-off')")
    if folded:  # Step N is in the toolbar group shown with the panels
        page.get_by_test_id("btn-panels").click()
    page.get_by_test_id("step-n").fill(str(STEP))
    seen: set[tuple[int, int]] = set()
    filled_slots = 0
    for _ in range(WATCH_STEPS // STEP):
        seq = page.evaluate("window.__gunyah.seq")
        page.get_by_test_id("btn-step-n").click()
        page.wait_for_function("s => window.__gunyah.seq > s", arg=seq)
        page.wait_for_timeout(60)
        seen.update(ring_counts(page, device))
        filled_slots = max(filled_slots, cell.locator(".slot.filled").count())
    if folded:
        page.get_by_test_id("btn-panels").click()
    assert max(a for a, _ in seen) >= 1, seen  # the available ring filled
    assert max(u for _, u in seen) >= 1, seen  # and the used ring
    assert filled_slots >= 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"virtio-{preset}-1280x720.png"))
    # The title names the reasons waiting for the backend, or says it is idle.
    title = cell.locator(".cell-count").text_content()
    assert title == "idle" or set(title.split()) <= REASONS
    assert "Status 0x" in cell.locator(".cell-route").text_content()


def test_the_hypercall_console_makes_the_backends_virtio_calls(page: Page) -> None:
    """HLOS, the backend, types virtio_mmio_backend_get_queue_info with its own cap,
    offered by completion; the call runs on its vCPU 0 and shows what the driver set."""
    page.set_viewport_size({"width": 1280, "height": 720})
    load_preset(page, "virtio-console")
    folded = page.evaluate("() => document.body.classList.contains('panels-off')")
    if folded:
        page.get_by_test_id("btn-panels").click()
    page.get_by_test_id("step-n").fill("120")  # past the probe
    seq = page.evaluate("window.__gunyah.seq")
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq + 120)
    page.locator("[data-vm='HLOS']").click()
    page.get_by_test_id("act-console").click()
    box = page.get_by_test_id("hvc-input")
    box.fill("virtio_mmio_backend_g")
    offered = page.get_by_test_id("hvc-option").all_inner_texts()
    assert {o.split()[0] for o in offered} >= {"virtio_mmio_backend_get_queue_info",
                                               "virtio_mmio_backend_get_notification"}
    box.fill("virtio_mmio_backend_get_queue_info capid=")
    page.get_by_test_id("hvc-option").filter(has_text="virtio_mmio:console").first.click()
    box.press("End")
    box.type("sel=1")
    box.press("Enter")
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=hvc-x0]').length > 0")
    entry = page.get_by_test_id("hvc-entry").last
    expect(entry.get_by_test_id("hvc-x0")).to_contain_text("X0 = OK (0)")
    expect(entry.get_by_test_id("hvc-ret")).to_contain_text("queue_desc")
