"""Proxy scheduling: the owner runs a proxy vCPU with vcpu_run on its own time slice."""

from __future__ import annotations

from gunyah_core import Hypervisor, Simulation, load
from gunyah_core.consts import Error
from gunyah_core.guests import PROGRAMS
from gunyah_core.vcpu import BLOCK_VCPU_RUN
from tests.core.conftest import MS, US, add_vm, hvc, start


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
