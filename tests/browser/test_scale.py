"""The page with many VMs (the 16-guest benchmark scenario, uploaded as a file) and with
prefers-reduced-motion: still drawn, still readable, no travelling dots."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

SCENARIO_16 = Path(__file__).resolve().parents[2] / "benchmarks" / "bench-16vm.yaml"
GUESTS = 16


def test_sixteen_guest_vms_are_drawn_and_play(page: Page, shot) -> None:
    page.get_by_test_id("scenario-file").set_input_files(str(SCENARIO_16))
    expect(page.get_by_test_id("scenario-title")).to_contain_text("16 guest VMs")
    expect(page.locator("#diagram [data-vm]")).to_have_count(GUESTS + 2)
    expect(page.locator("#diagram [data-msgq]")).to_have_count(GUESTS)
    expect(page.locator("[data-testid^='pcpu-']")).to_have_count(9)
    box = page.locator("[data-vm='P7']").bounding_box()
    assert box and box["width"] > 80, "VM boxes too small to read"
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("window.__gunyah.seq > 500")
    page.locator("[data-vm='E3']").click()
    expect(page.get_by_test_id("insp-title")).to_have_text("E3")
    shot(page, "08-sixteen-vms")


def test_reduced_motion_draws_no_travelling_dots(page: Page) -> None:
    page.emulate_media(reduced_motion="reduce")
    page.reload()
    page.wait_for_selector("[data-vm='VM_A']")
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("window.__gunyah.seq > 60")
    page.wait_for_timeout(300)
    visible = page.evaluate("document.querySelectorAll('.msg-dot[visibility=visible]').length")
    assert visible == 0
    expect(page.locator("[data-testid=log-entry][data-kind='msgq.send']").first).to_be_attached()
