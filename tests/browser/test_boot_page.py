"""The boot at load: folded into one log row, the first step lands on what the scenario
is about, and the boot stays reachable (its rows, the scrubber, step back)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from gunyah_core import preset_names

BOOT_KINDS = ["vcpu.state", "sched.switch", "virq.bind", "sim.snapshot"]


def hooks(page: Page) -> dict:
    return page.evaluate("({...window.__gunyah})")


def load(page: Page, name: str) -> dict:
    before = page.get_by_test_id("scenario-title").text_content()
    page.get_by_test_id("scenario").select_option(name)
    page.wait_for_function("t => document.getElementById('scenario-title').textContent !== t"
                           " && window.__gunyah.bootSeq > 0"
                           " && window.__gunyah.headSeq === window.__gunyah.bootSeq", arg=before)
    return hooks(page)


@pytest.mark.parametrize("name", preset_names())
def test_the_first_step_after_load_is_a_scenario_event(page: Page, name: str) -> None:
    if name != "msgq-pingpong":
        load(page, name)
    else:  # the page's first scenario: the session's first hello revealed its boot
        page.wait_for_function("() => window.__gunyah.bootSeq > 0"
                               " && window.__gunyah.headSeq === window.__gunyah.bootSeq")
    state = hooks(page)
    boot = state["bootSeq"]
    assert state["seq"] == boot and state["viewKind"] in BOOT_KINDS
    page.get_by_test_id("btn-step").click()
    page.wait_for_function("s => window.__gunyah.seq > s", arg=boot)
    state = hooks(page)
    assert state["seq"] == boot + 1
    assert state["viewKind"] not in BOOT_KINDS  # a send, a doorbell, an RM call, an access


def test_the_boot_is_one_folded_row_that_opens_and_stays_reachable(page: Page, shot) -> None:
    page.wait_for_function("() => window.__gunyah.bootSeq > 0"
                           " && window.__gunyah.headSeq === window.__gunyah.bootSeq")
    boot = hooks(page)["bootSeq"]
    group = page.get_by_test_id("log-boot")
    expect(group).to_have_count(1)
    expect(group).to_contain_text(f"boot: {boot + 1} events")
    expect(group).to_have_attribute("aria-expanded", "false")
    assert hooks(page)["shownSeqs"] == []  # folded: none of its rows listed
    page.get_by_test_id("btn-step").click()
    page.wait_for_function("s => window.__gunyah.seq > s", arg=boot)
    page.wait_for_function("() => window.__gunyah.shownSeqs.length > 0")  # the next frame lists it
    assert hooks(page)["shownSeqs"] == [boot + 1]
    shot(page, "boot-folded")
    group.click()
    expect(group).to_have_attribute("aria-expanded", "true")
    expect(page.locator("[data-testid=log-entry][data-seq='0']")).to_be_visible()
    assert hooks(page)["shownSeqs"] == list(range(boot + 2))
    page.locator(f"[data-testid=log-entry][data-seq='{boot - 1}']").click()
    expect(page.get_by_test_id("event-caption")).not_to_be_empty()  # each still inspectable
    group.click()  # folded again; stepping back into the boot lists it where the view is
    expect(page.locator("[data-testid=log-entry][data-seq='0']")).to_be_hidden()
    page.get_by_test_id("step-back").click()
    page.get_by_test_id("step-back").click()
    page.wait_for_function("s => window.__gunyah.seq === s", arg=boot - 1)
    assert hooks(page)["live"] is False
    expect(page.locator(f"[data-testid=log-entry].at[data-seq='{boot - 1}']")).to_be_visible()
    start = page.evaluate("() => Number(document.getElementById('scrubber').min)")
    assert start < boot  # the scrubber reaches back into the boot
    shot(page, "boot-open")
