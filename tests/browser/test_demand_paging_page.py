"""demand-paging on the page: the guest's page fault is marked on its box (no abort: its
owner is asked), and each page HLOS gives arrives in the guest's memory strip while it
leaves HLOS's; the page's memory map is the model's at every stop."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from gunyah_core import Simulation, load
from gunyah_core.mem.memparcel import PAGE_SIZE
from tests.browser.conftest import step_to

PRESET = "demand-paging"
PAGES = 4



def model_memory_after(last_seq: int) -> dict:
    sim = Simulation(load(PRESET))
    while sim.trace.seq <= last_seq:
        sim.step()
    return sim.snapshot()["memory"]


def arrived(page: Page) -> list[dict]:
    return [r for r in page.evaluate("() => window.__gunyah.memory")["Guest"]
            if r["state"] == "donated-in"]


def owned(page: Page, vm: str) -> int:
    return sum(r["size"] for r in page.evaluate("() => window.__gunyah.memory")[vm]
               if r["state"] == "owned")


def test_each_page_arrives_in_the_guest_strip_on_demand(page: Page, shot) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.get_by_test_id("scenario").select_option(PRESET)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(PRESET).config["title"])
    page.wait_for_selector("#diagram [data-vm='Guest']")
    strip = page.get_by_test_id("memstrip-Guest")
    expect(strip.locator(".ms-donated-in")).to_have_count(0)
    hlos_at_start = owned(page, "HLOS")
    step_to(page, "mem.page_fault")
    fault = page.get_by_test_id("mem-fault-Guest")
    expect(fault).to_be_visible()
    expect(fault).to_have_attribute("data-kind", "mem.page_fault")
    expect(fault).to_contain_text("page fault")
    assert arrived(page) == []  # nothing given yet: the vCPU waits for its owner
    at = step_to(page, "mem.map")
    expect(strip.locator(".ms-donated-in")).to_have_count(1)
    first = arrived(page)
    assert [(r["size"], r["rights"]) for r in first] == [(PAGE_SIZE, "RWX")]
    assert page.evaluate("() => window.__gunyah.memory") == model_memory_after(at)
    shot(page, "demand-paging-first-page-1280x720")
    for _ in range(PAGES - 1):
        at = step_to(page, "mem.map")
    # Four neighbouring pages from HLOS: one donated-in range of four pages.
    expect(strip.locator(".ms-donated-in")).to_have_attribute("data-size", str(PAGES * PAGE_SIZE))
    memory = page.evaluate("() => window.__gunyah.memory")
    assert memory == model_memory_after(at)
    assert owned(page, "HLOS") == hlos_at_start - PAGES * PAGE_SIZE  # lent: gone from HLOS
    page.locator("#diagram [data-vm='Guest']").click()
    row = page.locator("[data-testid=insp-mem] tr[data-state=donated-in]")
    expect(row).to_contain_text("on demand from HLOS")
    shot(page, "demand-paging-1280x720")
