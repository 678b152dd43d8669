"""The virtual-timer preset on the page: each timer-using vCPU shows its timer under its
chip (off, armed with its deadline, fired with vIRQ 27, masked by the handler), following
the trace as it is stepped."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from gunyah_core import Simulation, load
from tests.browser.conftest import step_to

PRESET = "virtual-timer"
NS_PER_US = 1_000
NS_PER_MS = 1_000_000


def fmt_time(ns: int) -> str:
    """As static/js/format.js fmtTime writes a simulated time."""
    if ns < NS_PER_MS:
        return f"{ns / NS_PER_US:.3f} µs"
    return f"{ns / NS_PER_MS:.3f} ms"



def timer(page: Page, vcpu: str):
    return page.get_by_test_id(f"vtimer-{vcpu}")


def test_the_page_shows_each_vcpus_timer_armed_fired_and_masked(page: Page, shot) -> None:
    events = Simulation(load(PRESET)).run(until_ns=NS_PER_MS)
    fires = [e for e in events if e["kind"] == "vtimer.fire"]
    sleeper_arm = next(e for e in events if e["kind"] == "vtimer.write"
                       and e["vcpu"] == "Sleeper.0" and e["enable"])
    page.get_by_test_id("scenario").select_option(PRESET)
    page.wait_for_selector("[data-vm='Sleeper']")
    expect(timer(page, "Sleeper.0")).to_have_text("timer off")
    expect(timer(page, "Busy.0")).to_have_text("timer off")
    # Only VMs whose program uses the timer draw it.
    expect(page.locator("[data-testid='vtimer-RM.0']")).to_have_count(0)
    expect(page.locator("[data-testid='vtimer-Listener.0']")).to_have_count(0)

    at = step_to(page, "vtimer.write")
    while at < sleeper_arm["seq"]:
        at = step_to(page, "vtimer.write")
    armed = f"timer at {fmt_time(sleeper_arm['deadline'])}"
    expect(timer(page, "Sleeper.0")).to_have_text(armed)
    expect(timer(page, "Sleeper.0")).to_have_class("chip-timer tm-armed")
    shot(page, "vtimer-armed")

    # The first firing is Busy's, while it runs; the second wakes Sleeper from WFI.
    assert [(e["vcpu"], e["path"]) for e in fires[:2]] == [("Busy.0", "running"),
                                                          ("Sleeper.0", "hyp_timer")]
    step_to(page, "vtimer.fire")
    expect(timer(page, "Busy.0")).to_have_text("timer fired · vIRQ 27")
    expect(timer(page, "Busy.0")).to_have_class("chip-timer tm-fired")
    expect(page.get_by_test_id("caption-text")).to_contain_text(
        "Busy.0's virtual timer reaches")
    step_to(page, "vtimer.fire")
    expect(timer(page, "Sleeper.0")).to_have_text("timer fired · vIRQ 27")
    shot(page, "vtimer-fired")
    # Its handler masks the timer (IMASK) before the EOI, then it re-arms after ringing.
    step_to(page, "vtimer.write")
    expect(timer(page, "Sleeper.0")).to_have_text("timer fired · masked")
    step_to(page, "vtimer.write")
    step_to(page, "vtimer.write")
    expect(timer(page, "Sleeper.0")).to_have_class("chip-timer tm-armed")
