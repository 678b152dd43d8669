"""The per-vCPU EL1 virtual timer against Gunyah's hyp/vm/arm_vm_timer.

PPI 27 private to each vCPU and level-triggered (arm_vm_timer_handle_object_activate_thread,
config/platform/qemu.conf), asserted while ENABLE and ISTATUS and not IMASK
(arm_vm_timer_is_irq_pending), re-asked at EOI (arm_vm_timer_handle_virq_check_pending),
a compare value in the past fires at once, a vCPU asleep in WFI is woken by the
hypervisor's own timer (arm_vm_timer_handle_thread_context_switch_pre, _timer_action).
"""

from __future__ import annotations

import pytest

from gunyah_core import Hypervisor, Simulation, load
from gunyah_core.consts import (
    CNT_CTL_ENABLE,
    CNT_CTL_IMASK,
    CNT_CTL_ISTATUS,
    PLATFORM_ARCH_TIMER_FREQ,
    PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ,
    SIM_CONTEXT_SWITCH_NS,
    SIM_SYSREG_ACCESS_NS,
    SIM_VIRQ_DELIVERY_NS,
    U64_MAX,
    Error,
)
from gunyah_core.errors import HypError
from gunyah_core.exporters.jsonl import dumps_event
from gunyah_core.guest.programs import Guest, msr, work
from gunyah_core.vm.vic import EDGE, LEVEL, VirqSource
from gunyah_core.vm.vtimer import (
    CNTV_CTL_EL0,
    CNTV_CVAL_EL0,
    CNTVCT_EL0,
    ns_to_ticks,
    ticks_to_ns,
)
from tests.core.conftest import US, add_vm, project, run_until, set_program, start

TICK_NS = 16  # 62.5 MHz
ARM = CNT_CTL_ENABLE


@pytest.fixture
def vm(hyp: Hypervisor):
    vm = add_vm(hyp, "V", (0, 1))
    hyp.trace.take()
    return vm


def timer_events(events, *fields):
    return project(events, *fields, kinds=("vtimer.fire", "virq.assert", "virq.clear",
                                           "virq.deliver", "virq.eoi"))


def arm(timer, cval: int, ctl: int = ARM) -> None:
    timer.write(CNTV_CVAL_EL0, cval)
    timer.write(CNTV_CTL_EL0, ctl)


def test_the_virtual_timer_is_ppi_27_level_and_private_to_each_vcpu(vm, hyp) -> None:
    assert PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ == 27
    v0, v1 = vm.vcpus
    assert (v0.vtimer.source.virq, v1.vtimer.source.virq) == (27, 27)
    assert v0.ppi.sources == {27: v0.vtimer.source}
    assert v1.ppi.sources == {27: v1.vtimer.source}
    assert v0.ppi.trigger == v1.ppi.trigger == {27: LEVEL}
    assert 27 not in vm.vic.sources  # not a shared vIRQ
    rows = [r for r in vm.vic.snapshot() if r.get("private")]
    assert [(r["virq"], r["vcpu"], r["trigger"], r["source"]) for r in rows] == [
        (27, 0, LEVEL, "vtimer:V.0"), (27, 1, LEVEL, "vtimer:V.1")]
    # vCPU 1's timer fires only vCPU 1's PPI 27.
    arm(v1.vtimer, 0)
    assert (v0.ppi.pending, v1.ppi.pending) == (set(), {27})
    assert vm.vic.has_pending_for(v1) and not vm.vic.has_pending_for(v0)
    assert vm.vic.acknowledge(v0) is None
    assert vm.vic.acknowledge(v1) == 27


def test_a_new_timer_is_disabled_with_compare_value_0(vm) -> None:
    timer = vm.vcpus[0].vtimer
    assert (timer.read(CNTV_CTL_EL0), timer.read(CNTV_CVAL_EL0)) == (0, 0)
    assert timer.snapshot() == {"virq": 27, "enable": False, "imask": False, "cval": 0,
                                "deadline": None, "istatus": False}


def test_a_new_timer_armed_in_the_past_fires_at_once(vm, hyp) -> None:
    vm.vcpus[0].vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE)  # CVAL 0: already reached
    events = hyp.trace.take()
    assert [e["kind"] for e in events] == ["vtimer.write", "vtimer.fire", "virq.assert"]


def test_re_arming_later_moves_the_deadline(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 100)
    v0.vtimer.write(CNTV_CVAL_EL0, 200)  # before the first deadline (1600 ns)
    hyp.trace.take()
    assert run_until(hyp, 3199) == []
    assert [(e["t"], e["kind"]) for e in run_until(hyp, 3200)] == [
        (3200, "vtimer.fire"), (3200, "virq.assert")]


def test_a_write_that_keeps_the_line_up_leaves_the_vIRQ_pending(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 0)
    hyp.trace.take()
    v0.vtimer.write(CNTV_CVAL_EL0, 0)  # still reached, still enabled and unmasked
    assert [e["kind"] for e in hyp.trace.take()] == ["vtimer.write"]
    assert v0.ppi.pending == {27}


def test_the_counter_runs_at_the_platform_frequency(vm, hyp) -> None:
    assert PLATFORM_ARCH_TIMER_FREQ == 62_500_000
    assert [ns_to_ticks(ns) for ns in (0, 15, 16, 31, 32, 1_000_000_000)] == [
        0, 0, 1, 1, 2, PLATFORM_ARCH_TIMER_FREQ]
    assert [ticks_to_ns(t) for t in (0, 1, 3, PLATFORM_ARCH_TIMER_FREQ)] == [
        0, 16, 48, 1_000_000_000]
    timer = vm.vcpus[0].vtimer
    hyp.engine.schedule(100, lambda: None)
    run_until(hyp, 100)
    assert timer.read(CNTVCT_EL0) == 6  # CNTVOFF_EL2 is 0: 100 ns is 6 whole ticks


def test_a_write_is_traced_with_the_register_and_the_timer_after_it(vm, hyp) -> None:
    timer = vm.vcpus[0].vtimer
    arm(timer, 100)
    events = hyp.trace.take()
    assert [(e["kind"], e["vcpu"], e["reg"], e["value"], e["by"], e["enable"], e["imask"],
             e["cval"], e["deadline"], e["istatus"]) for e in events] == [
        ("vtimer.write", "V.0", CNTV_CVAL_EL0, 100, "guest", False, False, 100, None, False),
        ("vtimer.write", "V.0", CNTV_CTL_EL0, 1, "guest", True, False, 100, 1600, False)]
    assert timer.snapshot() == {"virq": 27, "enable": True, "imask": False, "cval": 100,
                                "deadline": 1600, "istatus": False}


def test_it_fires_at_the_deadline_and_asserts_its_level_vIRQ(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 100)
    hyp.trace.take()
    assert run_until(hyp, 1599) == []
    assert v0.vtimer.read(CNTV_CTL_EL0) == CNT_CTL_ENABLE  # ISTATUS still 0
    events = run_until(hyp, 1600)
    assert [(e["t"], e["kind"]) for e in events] == [(1600, "vtimer.fire"),
                                                     (1600, "virq.assert")]
    fire, assert_ = events
    assert (fire["vcpu"], fire["virq"], fire["cval"], fire["masked"]) == ("V.0", 27, 100,
                                                                          False)
    assert (assert_["vm"], assert_["virq"], assert_["source"], assert_["trigger"],
            assert_["vcpu"], assert_["cval"]) == ("V", 27, "vtimer:V.0", LEVEL, "V.0", 100)
    assert v0.vtimer.read(CNTV_CTL_EL0) == CNT_CTL_ENABLE | CNT_CTL_ISTATUS
    assert v0.ppi.pending == {27}


def test_the_level_stays_asserted_after_eoi_until_the_guest_masks_it(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 0)  # CVAL 0 at time 0: fires at once
    assert vm.vic.acknowledge(v0) == 27
    assert v0.ppi.active == {27} and v0.ppi.pending == set()
    hyp.trace.take()
    vm.vic.eoi(v0, 27)  # the guest did not mask it: the level is still there
    assert timer_events(hyp.trace.take(), "virq", "vcpu") == [
        ("virq.eoi", 27, "V.0"), ("virq.assert", 27, "V.0")]
    assert v0.ppi.pending == {27} and v0.ppi.active == set()
    v0.vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE | CNT_CTL_IMASK)  # Linux's timer_handler
    assert timer_events(hyp.trace.take(), "virq", "source") == [
        ("virq.clear", 27, "vtimer:V.0")]
    assert v0.ppi.pending == set() and not v0.vtimer.irq_pending()
    assert vm.vic.acknowledge(v0) is None


def test_eoi_after_masking_does_not_pend_it_again(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 0)
    assert vm.vic.acknowledge(v0) == 27
    v0.vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE | CNT_CTL_IMASK)
    hyp.trace.take()
    vm.vic.eoi(v0, 27)
    assert timer_events(hyp.trace.take(), "virq") == [("virq.eoi", 27)]
    assert v0.ppi.pending == set() and v0.ppi.active == set()


def test_imask_lets_it_expire_without_a_vIRQ_and_unmasking_asserts_at_once(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 10, CNT_CTL_ENABLE | CNT_CTL_IMASK)
    hyp.trace.take()
    events = run_until(hyp, 160)
    assert timer_events(events, "masked") == [("vtimer.fire", True)]
    assert v0.ppi.pending == set()
    assert v0.vtimer.read(CNTV_CTL_EL0) == CNT_CTL_ENABLE | CNT_CTL_IMASK | CNT_CTL_ISTATUS
    v0.vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE)
    assert timer_events(hyp.trace.take(), "virq") == [("virq.assert", 27)]  # no 2nd fire
    assert v0.ppi.pending == {27}


def test_re_arming_in_the_past_fires_at_once(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 100)
    run_until(hyp, 1600)
    v0.vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE | CNT_CTL_IMASK)
    vm.vic.acknowledge(v0)
    vm.vic.eoi(v0, 27)
    hyp.trace.take()
    v0.vtimer.write(CNTV_CVAL_EL0, 50)  # already past: ISTATUS stays 1, still masked
    v0.vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE)
    events = hyp.trace.take()
    assert [(e["t"], e["kind"]) for e in events if e["kind"] != "vtimer.write"] == [
        (1600, "virq.assert")]
    # Disarmed, then armed in the past: ISTATUS rises again, at once.
    v0.vtimer.write(CNTV_CTL_EL0, 0)
    v0.vtimer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE)
    events = hyp.trace.take()
    assert [(e["t"], e["kind"]) for e in events if e["kind"] != "vtimer.write"] == [
        (1600, "virq.clear"), (1600, "vtimer.fire"), (1600, "virq.assert")]
    assert hyp.engine.peek() is None  # nothing left to expire


def test_re_arming_in_the_future_drops_the_line_and_fires_again_later(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 0)
    hyp.trace.take()
    v0.vtimer.write(CNTV_CVAL_EL0, 20)
    events = hyp.trace.take()
    assert events[0]["istatus"] is False and events[0]["deadline"] == 320
    assert timer_events(events, "virq") == [("virq.clear", 27)]
    events = run_until(hyp, 320)
    assert [(e["t"], e["kind"]) for e in events] == [(320, "vtimer.fire"),
                                                     (320, "virq.assert")]


def test_disabling_cancels_the_deadline(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 10)
    v0.vtimer.write(CNTV_CTL_EL0, 0)
    assert hyp.trace.take()[-1]["deadline"] is None
    assert run_until(hyp, 10_000) == []
    assert v0.vtimer.read(CNTV_CTL_EL0) == 0 and not v0.vtimer.istatus()


def test_registers_the_guest_cannot_write(vm) -> None:
    timer = vm.vcpus[0].vtimer
    timer.write(CNTV_CTL_EL0, CNT_CTL_ENABLE | CNT_CTL_IMASK | CNT_CTL_ISTATUS | 0x100)
    assert timer.ctl == CNT_CTL_ENABLE | CNT_CTL_IMASK  # ISTATUS is read-only
    timer.write(CNTV_CVAL_EL0, -1)
    assert timer.read(CNTV_CVAL_EL0) == U64_MAX
    with pytest.raises(ValueError, match="CNTVCT_EL0"):
        timer.write(CNTVCT_EL0, 1)
    with pytest.raises(ValueError, match="CNTP_CTL_EL0"):
        timer.read("CNTP_CTL_EL0")


def test_a_stopped_vcpu_has_its_timer_disabled(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    start(hyp, vm)
    arm(v0.vtimer, 1000)
    hyp.trace.take()
    hyp.power_off(v0)
    writes = [e for e in hyp.trace.take() if e["kind"] == "vtimer.write"]
    assert [(e["reg"], e["value"], e["by"], e["enable"]) for e in writes] == [
        (CNTV_CTL_EL0, 0, "vcpu_stopped", False)]
    assert timer_events(run_until(hyp, 20_000)) == []
    hyp.power_off(v0)  # already disabled: nothing more to write
    assert [e for e in hyp.trace.take() if e["kind"] == "vtimer.write"] == []


def test_private_binding_rules(vm) -> None:
    v0, v1 = vm.vcpus
    for virq in (15, 32):
        with pytest.raises(HypError) as info:
            vm.vic.bind_private(VirqSource("s"), v0, virq, LEVEL)
        assert info.value.error is Error.ARGUMENT_INVALID
    with pytest.raises(HypError) as info:
        vm.vic.bind_private(VirqSource("s"), v0, 27, LEVEL)
    assert info.value.error is Error.BUSY
    with pytest.raises(HypError) as info:
        vm.vic.bind_private(v0.vtimer.source, v1, 26, LEVEL)
    assert info.value.error is Error.VIRQ_BOUND
    for virq in (16, 31):  # the range's two ends
        vm.vic.bind_private(VirqSource(f"p{virq}"), v0, virq, EDGE)
    assert sorted(v0.ppi.sources) == [16, 27, 31] and v0.ppi.trigger[16] == EDGE
    source = v0.vtimer.source
    arm(v0.vtimer, 0)
    vm.vic.unbind(source)
    assert (source.vic, source.virq, source.bank) == (None, 0, None)
    assert 27 not in v0.ppi.sources and 27 not in v0.ppi.trigger
    assert v0.ppi.pending == set() and v1.ppi.sources == {27: v1.vtimer.source}
    vm.vic.unbind(source)  # unbinding an unbound source is fine
    vm.vic.bind_private(source, v0, 27, LEVEL)
    assert v0.ppi.sources[27] is source and source.bank is v0.ppi


def test_an_active_private_vIRQ_unbound_is_forgotten(vm) -> None:
    v0 = vm.vcpus[0]
    arm(v0.vtimer, 0)
    assert vm.vic.acknowledge(v0) == 27
    vm.vic.unbind(v0.vtimer.source)
    assert v0.ppi.active == set()


def test_private_vIRQs_are_taken_before_shared_ones(vm, hyp) -> None:
    v0 = vm.vcpus[0]
    shared = VirqSource("s")
    vm.vic.bind(shared, 40)
    shared.assert_()
    arm(v0.vtimer, 0)
    assert [vm.vic.acknowledge(v0), vm.vic.acknowledge(v0), vm.vic.acknowledge(v0)] == [
        27, 40, None]


def test_an_edge_only_assert_leaves_the_level_timer_line_alone(vm) -> None:
    v0 = vm.vcpus[0]
    v0.vtimer.source.assert_(edge_only=True)
    assert v0.ppi.pending == set()


class Sleeper(Guest):
    """Sleeps 100 us on its timer, then notes when it woke."""

    program = "test-sleeper"

    def run(self, vcpu):
        self.woke = None
        yield from self.timer_sleep(vcpu, 100 * US)
        self.woke = vcpu.vm.vic.trace.clock.now


def test_a_guest_sleeps_in_wfi_until_its_timer_wakes_it(hyp) -> None:
    vm = add_vm(hyp, "S", (0,))
    vm.guest = Sleeper(vm, {})
    start(hyp, vm)
    events = run_until(hyp, 200 * US)
    v0 = vm.vcpus[0]
    kinds = [e["kind"] for e in events if e["kind"] in (
        "vtimer.write", "vtimer.queue", "vtimer.fire", "virq.assert", "virq.deliver",
        "virq.eoi") or (e["kind"] == "vcpu.state" and e["vcpu"] == "S.0")]
    assert kinds == ["vcpu.state", "vtimer.write", "vtimer.write", "vtimer.queue",
                     "vcpu.state", "vtimer.fire", "virq.assert", "vcpu.state",
                     "virq.deliver", "vtimer.write", "virq.eoi", "vcpu.state"]
    by_kind = {e["kind"]: e for e in events}
    queue, fire = by_kind["vtimer.queue"], by_kind["vtimer.fire"]
    armed_at = [e for e in events if e["kind"] == "vtimer.write"][0]["t"]
    cval = ns_to_ticks(armed_at - SIM_SYSREG_ACCESS_NS) + ns_to_ticks(100 * US)
    assert (queue["vcpu"], queue["cval"], queue["deadline"]) == ("S.0", cval, cval * TICK_NS)
    assert (fire["t"], fire["path"]) == (cval * TICK_NS, "hyp_timer")
    states = [(e["t"], e["state"]) for e in events
              if e["kind"] == "vcpu.state" and e["vcpu"] == "S.0"]
    assert states[1:] == [(queue["t"], "wfi"), (fire["t"], "running"),
                          (vm.guest.woke, "wfi")]  # its program is done: WFI for good
    # The handler masked it (IMASK) before the EOI: the level is gone, no second assert.
    masked = [e for e in events if e["kind"] == "vtimer.write"][-1]
    assert (masked["reg"], masked["imask"], masked["istatus"]) == (CNTV_CTL_EL0, True, True)
    assert v0.ppi.pending == set() and v0.ppi.active == set()
    assert vm.guest.woke == (fire["t"] + SIM_CONTEXT_SWITCH_NS + 2 * SIM_VIRQ_DELIVERY_NS
                             + 2 * SIM_SYSREG_ACCESS_NS)
    assert vm.guest.timer_waiting == set()


class Worker(Guest):
    """Arms its timer 10 us ahead, then computes: the timer interrupts it running."""

    program = "test-worker"

    def run(self, vcpu):
        yield msr(CNTV_CVAL_EL0, ns_to_ticks(10 * US))
        yield msr(CNTV_CTL_EL0, CNT_CTL_ENABLE)
        while True:
            yield work(3 * US)


def test_a_running_vcpu_takes_its_timer_between_operations(hyp) -> None:
    vm = add_vm(hyp, "W", (0,))
    vm.guest = Worker(vm, {})
    start(hyp, vm)
    events = run_until(hyp, 30 * US)
    fires = [e for e in events if e["kind"] == "vtimer.fire"]
    assert [(e["t"], e["path"]) for e in fires] == [(10 * US, "running")]
    delivered = [e for e in events if e["kind"] == "virq.deliver"]
    assert [e["virq"] for e in delivered] == [27]
    assert delivered[0]["t"] > 10 * US  # after the work it was doing: between operations
    assert not [e for e in events if e["kind"] == "vtimer.queue"]  # it never waited


def test_a_ready_vcpu_gets_its_timer_vIRQ_pending_until_it_runs(hyp) -> None:
    high = add_vm(hyp, "H", (0,), priority=40)
    set_program(high, "spin", work_ns=10 * US)
    low = add_vm(hyp, "L", (0,))
    start(hyp, high, low)
    run_until(hyp, 10 * US)
    v0 = low.vcpus[0]
    assert v0.sched_state == "ready"
    arm(v0.vtimer, ns_to_ticks(20 * US))
    events = run_until(hyp, 40 * US)
    assert [e["path"] for e in events if e["kind"] == "vtimer.fire"] == ["ready"]
    assert v0.ppi.pending == {27}  # it cannot take it before it runs
    assert not [e for e in events if e["kind"] == "virq.deliver"]


def test_the_ticker_takes_a_tick_every_period_while_it_runs(hyp) -> None:
    vm = add_vm(hyp, "T", (0,))
    set_program(vm, "ticker", period_ns=50 * US, work_ns=5 * US)
    start(hyp, vm)
    events = run_until(hyp, 230 * US)
    fires = [e for e in events if e["kind"] == "vtimer.fire"]
    assert [e["path"] for e in fires] == ["running"] * 4
    assert vm.guest.ticks == 4
    writes = [e for e in events if e["kind"] == "vtimer.write"
              and e["reg"] == CNTV_CVAL_EL0]
    # Each tick re-arms the timer 50 us past the counter its handler read.
    assert [ticks_to_ns(w["value"]) - w["t"] for w in writes] == [
        50 * US - SIM_SYSREG_ACCESS_NS - (w["t"] - SIM_SYSREG_ACCESS_NS) % TICK_NS
        for w in writes]
    assert [e["t"] for e in fires] == [ticks_to_ns(w["value"]) for w in writes[:4]]


def test_same_seed_same_trace_bytes() -> None:
    def trace() -> list[str]:
        return [dumps_event(e) for e in Simulation(load("virtual-timer")).run(
            until_ns=3_000_000)]
    first = trace()
    assert any('"vtimer.fire"' in line for line in first)
    assert first == trace()


def test_a_proxy_scheduled_vcpu_asleep_in_wfi_is_woken_by_the_hypervisors_timer() -> None:
    events = Simulation(load("proxy-scheduling")).run(until_ns=20_000_000)
    fires = [e for e in events if e["kind"] == "vtimer.fire" and e["vcpu"] == "Ticker.0"]
    assert fires and {e["path"] for e in fires} == {"hyp_timer"}
    first = events.index(fires[0])
    assert (events[first + 1]["kind"], events[first + 1]["virq"]) == ("virq.assert", 27)
