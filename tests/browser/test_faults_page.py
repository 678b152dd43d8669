"""The Faults menu in real Chromium, under the page's own CSP: each fault lists its
targets from the machine on show; injecting one records it as an action and shows the
real answer from the trace with its caption (the RM's cspace_revoke_caps_from, then the
sender's CSPACE_CAP_REVOKED; vcpu_set_priority on a running vCPU: OBJECT_STATE)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

STEPS = 60  # enough for VM_A's vCPU 0 to run its queued calls


@pytest.fixture
def page(strict_page) -> Iterator[Page]:
    """The page under its own CSP (predicates here are functions): no violation, no
    console error."""
    pg, errors = strict_page
    yield pg
    assert pg.evaluate("() => window.__cspViolations") == [] and errors == []


def step(page: Page, count: int = STEPS) -> None:
    """Step `count` events, or fewer when the model stops: the load ran the engine step of
    the scenario's first event (the boot ends just before it), so VM_A's first send went
    out before a revoke, and with its queue revoked the ping-pong can stop early."""
    seq = page.evaluate("() => window.__gunyah.seq")
    page.get_by_test_id("step-n").fill(str(count))
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("s => window.__gunyah.seq > s", arg=seq)


def test_two_faults_show_the_real_errors(page: Page, shot) -> None:
    page.get_by_test_id("btn-faults").click()
    menu = page.get_by_test_id("faults-menu")
    expect(menu).to_be_visible()
    expect(page.get_by_test_id("fault-revoke")).to_contain_text("CSPACE_CAP_REVOKED")
    result = page.get_by_test_id("fault-result")

    page.get_by_test_id("fault-revoke-object").select_option("msgq:A_to_B")
    page.get_by_test_id("fault-revoke-go").click()
    step(page)  # the page is paused: its events come after the boot events, as it steps
    expect(result).to_contain_text("cspace_revoke_caps_from")
    expect(result).to_contain_text("CSPACE_CAP_REVOKED (51)")

    # VM_A keeps sending with the capid it was given: the hypervisor's real answer.
    page.get_by_test_id("fault-flood-msgq").select_option("A_to_B")
    page.get_by_test_id("fault-flood-go").click()
    step(page)
    expect(result).to_contain_text("msgqueue_send → CSPACE_CAP_REVOKED")

    page.get_by_test_id("fault-priority-vcpu").select_option("VM_A.0")
    page.get_by_test_id("fault-priority-priority").fill("40")
    page.get_by_test_id("fault-priority-go").click()
    step(page)
    expect(result).to_contain_text("vcpu_set_priority → OBJECT_STATE")
    expect(page.get_by_test_id("fault-error")).to_have_text("")
    shot(page, "faults-menu")


def test_force_stop_goes_through_the_rms_vm_stop(page: Page) -> None:
    page.get_by_test_id("btn-faults").click()
    page.get_by_test_id("fault-crash-vm").select_option("VM_B")
    page.get_by_test_id("fault-crash-go").click()
    expect(page.get_by_test_id("fault-result")).to_contain_text("Crash a VM: vm_stop")
    page.get_by_test_id("fault-force-stop-vm").select_option("VM_A")
    page.get_by_test_id("fault-force-stop-go").click()
    page.get_by_test_id("step-n").fill("400")  # the RM round trip; the model may idle first
    page.get_by_test_id("btn-step-n").click()
    expect(page.get_by_test_id("fault-result")).to_contain_text("VM_STOP")
    page.get_by_test_id("faults-close").click()
    expect(page.get_by_test_id("faults-menu")).to_be_hidden()
