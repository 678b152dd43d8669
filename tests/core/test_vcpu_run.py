"""Proxy scheduling: the owner runs a proxy vCPU with vcpu_run on its own time slice."""

from __future__ import annotations

import pytest

from gunyah_core import Hypervisor, Simulation, load
from gunyah_core.consts import (
    SCHEDULER_DEFAULT_TIMESLICE_NS,
    SIM_CONTEXT_SWITCH_NS,
    Error,
    ThreadRights,
)
from gunyah_core.guest.programs import PROGRAMS, Guest, work
from gunyah_core.guest.vmm import ProxyVmm
from gunyah_core.vm.vcpu import BLOCK_VCPU_RUN
from tests.core.conftest import MS, US, add_vm, hvc, run_until, start


def runs(events):
    return [(e["t"], e["stage"], e["state"]) for e in events if e["kind"] == "vcpu.run"]


def test_preset_returns_ready_on_slice_end_and_expects_wakeup_on_wfi():
    sim = Simulation(load("proxy-scheduling"))
    events = sim.run(until_ns=6 * MS)
    exits = [(t, state) for t, stage, state in runs(events) if stage == "exit"]
    assert [state for _, state in exits[:4]] == ["READY", "EXPECTS_WAKEUP", "READY",
                                                 "EXPECTS_WAKEUP"]
    # The first run lasts exactly what was left of HLOS's 1 ms slice when it called. (HLOS
    # first waits for the RM's VM_GET_HYP_RESOURCES reply, so read the slice it had left
    # when it was switched back in, from a second run of the same scenario.)
    enter = next(e for e in events if e["kind"] == "vcpu.run" and e["stage"] == "enter")
    hlos_switch_in = max(e["t"] for e in events if e["kind"] == "sched.switch"
                         and e["next"] == "HLOS.0" and e["t"] <= enter["t"])
    again = Simulation(load("proxy-scheduling"))
    again.run(until_ns=hlos_switch_in + 1)
    left = again.hyp.vms["HLOS"].vcpus[0].slice_left
    assert 0 < left <= MS
    assert exits[0][0] == hlos_switch_in + left
    # The guest only ever runs on HLOS's pCPU, and only inside a vcpu_run.
    inside, switches = False, []
    for e in events:
        if e["kind"] == "vcpu.run":
            inside = e["stage"] == "enter"
        elif e["kind"] == "sched.switch" and e["next"] == "Guest.0":
            switches.append((e["pcpu"], inside, e["reason"]))
    assert switches and all(s == (0, True, "vcpu_run") for s in switches)


def test_a_wakeup_virq_reaches_the_owner_when_the_waiting_guest_gets_a_virq():
    sim = Simulation(load("proxy-scheduling"))
    events = sim.run(until_ns=6 * MS)
    wakeups = [e["t"] for e in events if e["kind"] == "virq.assert"
               and e["source"] == "vcpu:Guest.0:wakeup"]
    bells = [e["t"] for e in events if e["kind"] == "virq.assert"
             and e["source"] == "doorbell:tick"]
    waiting = [t for t, stage, state in runs(events) if state == "EXPECTS_WAKEUP"]
    # Raised at power-on, then each time the doorbell hits the guest while it waits.
    assert wakeups[0] == 0
    assert [t for t in bells if t > waiting[0]][0] in wakeups


def machine():
    hyp = Hypervisor(seed=5, pcpus=2)
    owner = add_vm(hyp, "Owner", affinity=(0,))
    guest = add_vm(hyp, "Guest", affinity=(1,))
    other = add_vm(hyp, "Other", affinity=(1,))
    hyp.make_proxy(guest.vcpus[0], owner)
    guest.guest = PROGRAMS["spin"](guest, {"work_ns": 10 * US})
    return hyp, owner, guest, other


def test_vcpu_run_rights_and_refusals():
    hyp, owner, guest, other = machine()
    start(hyp, owner, guest, other)
    hyp.engine.run(until_ns=50 * US)
    cap = owner.resources["proxy:Guest.0"]["capid"]
    owner_vcpu = owner.vcpus[0]
    # Not a proxy vCPU -> BUSY; a cap without YIELD_TO -> CSPACE_INSUFFICIENT_RIGHTS.
    own_cap = owner.resources["vcpu0"]["capid"]
    assert hvc(hyp, owner_vcpu, "vcpu_run", capid=own_cap).error is Error.BUSY
    weak = hyp.master_cspace.copy_to(hyp.master_cspace.find(guest.vcpus[0]), other.cspace,
                                     0x2)  # AFFINITY only
    result = hvc(hyp, other.vcpus[0], "vcpu_run", capid=weak)
    assert result.error is Error.CSPACE_INSUFFICIENT_RIGHTS
    # The proxy vCPU stays parked: it never ran on its own pCPU.
    assert BLOCK_VCPU_RUN in guest.vcpus[0].blocked
    assert guest.vcpus[0].sched_state == "proxy"
    # The owner's cap works: the guest runs in the owner's place on pCPU 0.
    assert hvc(hyp, owner_vcpu, "vcpu_run", capid=cap).error is Error.OK
    assert hyp.pcpus[0].current is guest.vcpus[0]
    # A second vcpu_run (by another holder of a good cap) while it is being run -> BUSY.
    strong = hyp.master_cspace.copy_to(hyp.master_cspace.find(guest.vcpus[0]), other.cspace,
                                       0x12)  # AFFINITY | YIELD_TO
    assert hvc(hyp, other.vcpus[0], "vcpu_run", capid=strong).error is Error.BUSY


class Burst(Guest):
    """Works once for ``BURST_NS`` then waits in WFI."""

    program = "burst"

    def run(self, vcpu):
        yield work(BURST_NS)


BURST_NS = 100 * US
OWNER_SLICE = 1 * MS


def owner_machine():
    """Owner (priority 32, 1 ms slices) runs Guest with vcpu_run on pCPU 0, where Low (10),
    Mid (32) and High (40) live too, each powered on later by the test."""
    hyp = Hypervisor(seed=5, pcpus=2)
    owner = add_vm(hyp, "Owner", (0,), timeslice_ns=OWNER_SLICE)
    guest = add_vm(hyp, "Guest", (1,))
    hyp.make_proxy(guest.vcpus[0], owner)
    guest.guest = PROGRAMS["spin"](guest, {"work_ns": 10 * US})
    owner.guest = ProxyVmm(owner, {"peer": "Guest"})
    low = add_vm(hyp, "Low", (0,), priority=10, timeslice_ns=OWNER_SLICE)
    low.guest = PROGRAMS["spin"](low, {"work_ns": 50 * US})
    mid = add_vm(hyp, "Mid", (0,), priority=32, timeslice_ns=OWNER_SLICE)
    mid.guest = PROGRAMS["spin"](mid, {"work_ns": 50 * US})
    high = add_vm(hyp, "High", (0,), priority=40)
    high.guest = Burst(high, {})
    start(hyp, owner, guest)
    return hyp, low.vcpus[0], mid.vcpus[0], high.vcpus[0]


def test_a_lower_priority_wake_does_not_end_the_owners_vcpu_run():
    """facts §7.1: a wake is compared with the active thread, the caller (scheduler_fprr.c
    add_thread_to_scheduler / get_next_target), not with the priority-0 proxied vCPU."""
    hyp, low, mid, high = owner_machine()
    hyp.engine.schedule(300 * US, hyp.power_on, low)
    events = run_until(hyp, 900 * US)
    # Low (10 < Owner's 32) is queued while Guest keeps running on Owner's slice.
    assert [e["kind"] for e in events if e["kind"] == "vcpu.run"] == ["vcpu.run"]
    assert [(e["t"], e["state"]) for e in events if e["kind"] == "vcpu.state"
            and e["vcpu"] == "Low.0"] == [(300 * US, "ready")]
    assert hyp.pcpus[0].current.id == "Guest.0"
    # The call ends only when Owner's slice does; Low never ran.
    events = run_until(hyp, 3 * MS)
    exits = [(e["t"], e["state"]) for e in events if e["kind"] == "vcpu.run"
             and e["stage"] == "exit"]
    assert exits[0] == (OWNER_SLICE, "READY")
    assert "Low.0" not in [e["next"] for e in events if e["kind"] == "sched.switch"]


def test_an_equal_priority_wake_waits_for_the_callers_slice_and_a_higher_one_preempts():
    """Equal: queued at the tail; at the end of the caller's slice vcpu_run returns READY,
    the caller goes to the tail with a fresh slice and Mid runs. Higher: it preempts the
    caller, whose directed yield is only suspended: when High blocks, Guest runs again on
    the rest of Owner's slice and the call goes on (H-SRC scheduler_fprr.c: the caller's
    scheduler_yielding stays set; select_yield_target resumes it)."""
    hyp, low, mid, high = owner_machine()
    hyp.engine.schedule(400 * US, hyp.power_on, mid)
    hyp.engine.schedule(2500 * US, hyp.power_on, high)
    events = run_until(hyp, 4 * MS)
    runs = [(e["t"], e["stage"], e["state"]) for e in events if e["kind"] == "vcpu.run"]
    seq = [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
           if e["kind"] == "sched.switch"]
    assert seq[:6] == [
        (0, None, "Owner.0", "wake:vcpu_off", OWNER_SLICE),
        (seq[1][0], "Owner.0", "Guest.0", "vcpu_run", OWNER_SLICE - seq[1][0]),
        (OWNER_SLICE, "Guest.0", "Mid.0", "timeslice", OWNER_SLICE),
        (2 * OWNER_SLICE, "Mid.0", "Owner.0", "timeslice", OWNER_SLICE),
        (seq[4][0], "Owner.0", "Guest.0", "vcpu_run", 3 * OWNER_SLICE - seq[4][0]),
        (2500 * US, "Guest.0", "High.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS),
    ]
    t_back = seq[6][0]
    assert t_back == 2500 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS  # switched in, its burst
    left = 3 * OWNER_SLICE - 2500 * US  # what Owner had left: not a new slice
    assert seq[6:8] == [(t_back, "High.0", "Guest.0", "vcpu_run", left),
                        (t_back + left, "Guest.0", "Mid.0", "timeslice", OWNER_SLICE)]
    assert runs[:6] == [(seq[1][0], "enter", "running"), (OWNER_SLICE, "exit", "READY"),
                        (seq[4][0], "enter", "running"), (2500 * US, "preempted", "running"),
                        (t_back, "resume", "running"), (t_back + left, "exit", "READY")]
    # What the outgoing thread keeps (prev_left_ns): the guest is charged as its caller,
    # so it leaves with the caller's rest: 0 when that slice ran out, 500 us when High
    # preempted it (H-SRC scheduler_fprr.c update_timeslice on the active thread).
    assert [e["prev_left_ns"] for e in events if e["kind"] == "sched.switch"][:8] == [
        None, OWNER_SLICE - seq[1][0], 0, OWNER_SLICE, 3 * OWNER_SLICE - seq[4][0], left,
        SCHEDULER_DEFAULT_TIMESLICE_NS - SIM_CONTEXT_SWITCH_NS - BURST_NS, 0]
    # Mid, woken during the call, waits "ready" (woken from off); Owner, its slice used
    # up with Mid waiting, goes "ready" by timeslice (to the tail); preempted by High, by
    # preemption; picked again, it is back in its vcpu_run.
    assert [(e["t"], e["vcpu"], e["state"], e["reason"]) for e in events
            if e["kind"] == "vcpu.state" and e["vcpu"] in ("Mid.0", "Owner.0")][:10] == [
        (0, "Owner.0", "running", "wake:vcpu_off"),
        (seq[1][0], "Owner.0", "vcpu_run", "vcpu_run_caller"),
        (400 * US, "Mid.0", "ready", "vcpu_off"),
        (OWNER_SLICE, "Owner.0", "ready", "timeslice"),
        (OWNER_SLICE, "Mid.0", "running", "timeslice"),
        (2 * OWNER_SLICE, "Mid.0", "ready", "timeslice"),
        (2 * OWNER_SLICE, "Owner.0", "running", "timeslice"),
        (seq[4][0], "Owner.0", "vcpu_run", "vcpu_run_caller"),
        (2500 * US, "Owner.0", "ready", "preempt"),
        (t_back, "Owner.0", "vcpu_run", "vcpu_run:resume")]


def test_a_virq_for_the_preempted_caller_ends_its_suspended_vcpu_run():
    """The caller gets a vIRQ while it waits preempted: its yield is over
    (scheduler_fprr_handle_vcpu_wakeup clears scheduler_yielding), so when it runs
    again the call returns READY and the guest waits, parked."""
    hyp, low, mid, high = owner_machine()
    hyp.engine.schedule(500 * US, hyp.power_on, high)
    owner = hyp.vms["Owner"]
    bell = hyp.create_doorbell("kick", hyp.vms["Low"], owner)
    hyp.engine.schedule(550 * US, bell.send, 1)
    events = run_until(hyp, 2 * MS)
    runs = [(e["t"], e["stage"], e["state"]) for e in events if e["kind"] == "vcpu.run"]
    assert runs[1:3] == [(500 * US, "preempted", "running"), (550 * US, "exit", "READY")]
    back = next(e for e in events if e["kind"] == "sched.switch" and e["prev"] == "High.0")
    assert (back["next"], back["reason"]) == ("Owner.0", "block:vcpu_wfi")
    call = next(e for e in events if e["kind"] == "hvc" and e["name"] == "vcpu_run")
    assert (call["t"], call["ret"]["state"]) == (back["t"], "READY")


@pytest.mark.parametrize("hint", [0, 1])
def test_a_yield_by_the_proxied_vcpu_ends_the_vcpu_run_with_ready(hint: int):
    """scheduler_yield from the target of a directed yield ends it (H-SRC scheduler_fprr.c
    scheduler_yield: end_directed_yield(yielded_from); hint 1 back to the thread that
    yielded to it: scheduler_yield_to, yielded_from == target, the same). The target is
    still runnable, so vcpu_run returns READY (vcpu_run.c hypercall_vcpu_run), and the
    caller runs on with the rest of its slice (not discarded: it did not yield)."""
    hyp, *_ = owner_machine()
    run_until(hyp, 200 * US)
    guest = hyp.vms["Guest"].vcpus[0]
    owner = hyp.vms["Owner"].vcpus[0]
    assert hyp.pcpus[0].current is guest
    now = hyp.engine.now
    args = {"control": hint}
    if hint == 1:
        args["arg1"] = hyp.vms["Guest"].cspace.create(owner, ThreadRights.YIELD_TO)
        hyp.trace.take()
    assert hvc(hyp, guest, "scheduler_yield", **args).ok
    events = hyp.trace.take()
    assert [(e["t"], e["stage"], e["state"]) for e in events if e["kind"] == "vcpu.run"] == [
        (now, "exit", "READY")]
    assert [(e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
            if e["kind"] == "sched.switch"] == [
        ("Guest.0", "Owner.0", "vcpu_run:return", OWNER_SLICE - now)]


def test_the_hvc_event_of_vcpu_run_comes_when_the_call_returns_with_its_result():
    """facts §7.2: vcpu_run returns state, data0..2 once the target stops and the caller
    runs again; its hvc event is traced then, not when the call was made."""
    sim = Simulation(load("proxy-scheduling"))
    events = sim.run(until_ns=6 * MS)
    calls = [e for e in events if e["kind"] == "hvc" and e["name"] == "vcpu_run"]
    returns = [e for e in events if e["kind"] == "sched.switch"
               and e["reason"] == "vcpu_run:return"]
    exits = [e for e in events if e["kind"] == "vcpu.run" and e["stage"] == "exit"]
    assert len(calls) == len(returns) == len(exits) == 4
    for call, back, exit_ in zip(calls, returns, exits, strict=True):
        assert call["t"] == back["t"] and call["seq"] == back["seq"] + 1
        assert call["ret"]["state"] == exit_["state"]
        assert set(call["ret"]) == {"state", "state_value", "data0", "data1", "data2"}
    # The slice ends mid-handler (READY), the guest then waits (EXPECTS_WAKEUP); again
    # after the next doorbell, which the ringer sends when its virtual timer fires (on a
    # whole 16 ns tick counted from the accesses that armed it: 1,048 ns past 5,005 us).
    timer_late = 1_048
    assert [(c["t"], c["ret"]["state"]) for c in calls] == [
        (1031 * US, "READY"), (1544 * US, "EXPECTS_WAKEUP"),
        (5005 * US + timer_late, "READY"), (5517 * US + timer_late, "EXPECTS_WAKEUP")]
    assert (calls[1]["ret"]["data0"], calls[1]["ret"]["data1"]) == (0, 1)  # WFI, H-SRC


def test_a_target_stopped_while_its_caller_waits_preempted_ends_the_call():
    """Picked again, the caller cannot yield to a target that was powered off meanwhile
    (can_yield_to: not runnable): the yield ends and vcpu_run says why (POWERED_OFF)."""
    hyp, low, mid, high = owner_machine()
    guest = hyp.vms["Guest"].vcpus[0]
    hyp.engine.schedule(500 * US, hyp.power_on, high)
    hyp.engine.schedule(550 * US, hyp.power_off, guest)
    events = run_until(hyp, 1 * MS)
    back = next(e for e in events if e["kind"] == "sched.switch" and e["prev"] == "High.0")
    assert (back["next"], back["reason"]) == ("Owner.0", "vcpu_run:return")
    runs = [(e["t"], e["stage"], e["state"]) for e in events if e["kind"] == "vcpu.run"]
    assert runs[1:] == [(500 * US, "preempted", "running"), (back["t"], "exit", "POWERED_OFF")]
    call = next(e for e in events if e["kind"] == "hvc" and e["name"] == "vcpu_run")
    assert (call["t"], call["ret"]["state"]) == (back["t"], "POWERED_OFF")
    assert guest.blocked == {"vcpu_off", "vcpu_run"}  # parked again, off
