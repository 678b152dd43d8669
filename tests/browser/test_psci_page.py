"""psci-power on the page: each vCPU of the PSCI guest shows its power state (ON, OFF,
SUS) in its chip, following the run's vcpu.power events."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from gunyah_core import Simulation
from gunyah_core.scenario import load

PRESET = "psci-power"


def power_seqs() -> dict[tuple[str, str], int]:
    """Where each vCPU first reaches each power state, from the same run headless."""
    seqs: dict[tuple[str, str], int] = {}
    for e in Simulation(load(PRESET)).run(max_events=2000):
        if e["kind"] == "vcpu.power":
            seqs.setdefault((e["vcpu"], e["power"]), e["seq"])
    return seqs


def run_to(page: Page, seq: int) -> None:
    """Step N from the toolbar until the page has seen event ``seq``."""
    have = page.evaluate("() => window.__gunyah.seq")
    folded = not page.get_by_test_id("step-n").is_visible()
    if folded:  # the step-N group is shown with the panels
        page.get_by_test_id("btn-panels").click()
    page.get_by_test_id("step-n").fill(str(seq - have))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq)
    if folded:
        page.get_by_test_id("btn-panels").click()


def chip(page: Page, vcpu: str):
    return page.locator(f"#diagram [data-vcpu='{vcpu}']")


def test_psci_power_shows_each_vcpus_power_state(page: Page, shot) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.get_by_test_id("scenario").select_option(PRESET)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(PRESET).config["title"])
    seqs = power_seqs()
    run_to(page, seqs[("VM_80.1", "off")] + 1)  # the RM has made VM_80: both vCPUs off
    expect(chip(page, "VM_80.1")).to_have_attribute("data-power", "off")
    expect(chip(page, "VM_80.1").locator(".chip-prio")).to_have_text("OFF")
    run_to(page, seqs[("VM_80.1", "on")] + 1)  # VM_START, then CPU_ON
    expect(chip(page, "VM_80.0")).to_have_attribute("data-power", "on")
    expect(chip(page, "VM_80.1")).to_have_attribute("data-power", "on")
    expect(chip(page, "VM_80.1").locator(".chip-prio")).to_have_text("ON")
    run_to(page, seqs[("VM_80.1", "suspended")] + 1)
    expect(chip(page, "VM_80.1")).to_have_attribute("data-power", "suspended")
    expect(chip(page, "VM_80.1").locator(".chip-prio")).to_have_text("SUS")
    expect(chip(page, "VM_80.1").locator(".chip-state")).to_have_text("susp")
    shot(page, "psci-power-1280x720")
    # Other presets' vCPUs keep their priority in that slot.
    page.get_by_test_id("scenario").select_option("priority-preemption")
    page.wait_for_selector("#diagram [data-vcpu='HLOS.0']")
    expect(chip(page, "HLOS.0").locator(".chip-prio")).to_have_text("p32")
    assert chip(page, "HLOS.0").get_attribute("data-power") is None
