"""Fixtures for the core model tests: a seeded Hypervisor and small machines built by hand.

The helpers build what the RM would (VMs, vCPUs, queues, doorbells with minimal-rights
caps) without a scenario file, so a test can drive the hypercall table directly and
read the exact trace each call produced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from gunyah_core import Hypervisor
from gunyah_core.consts import SCHEDULER_DEFAULT_PRIORITY, SCHEDULER_DEFAULT_TIMESLICE_NS
from gunyah_core.errors import HypResult
from gunyah_core.guest.programs import PROGRAMS
from gunyah_core.vm.vcpu import Vcpu
from gunyah_core.vm.vm import Vm

if "MUTANT_UNDER_TEST" in os.environ:  # set by mutmut (`make mutate`, docs/testing.md)
    # A failing example is enough to kill a mutant: no shrinking, no shared database. No
    # deadline or health checks: on a loaded machine (and through mutmut's trampolines)
    # they fail runs the mutant did not slow, counting it killed.
    settings.register_profile("mutate", database=None, deadline=None,
                              suppress_health_check=list(HealthCheck),
                              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    settings.load_profile("mutate")

SEED = 1
PCPUS = 2
VMID_FIRST_GUEST = 0x80
MS = 1_000_000
US = 1_000


def add_vm(hyp: Hypervisor, name: str, affinity: Iterable[int] = (0,),
           priority: int = SCHEDULER_DEFAULT_PRIORITY,
           timeslice_ns: int = SCHEDULER_DEFAULT_TIMESLICE_NS) -> Vm:
    """A guest VM with one vCPU per entry of ``affinity`` (the pCPU it is pinned to)."""
    vm = hyp.create_vm(name, VMID_FIRST_GUEST + len(hyp.vms))
    for pcpu in affinity:
        hyp.create_vcpu(vm, priority, timeslice_ns, pcpu)
    vm.guest = PROGRAMS["idle"](vm, {})
    return vm


def set_program(vm: Vm, program: str, **params: Any) -> None:
    """Give a VM one of the guest programs (after its queues/doorbells exist)."""
    vm.guest = PROGRAMS[program](vm, params)


def start(hyp: Hypervisor, *vms: Vm) -> None:
    """Power on every vCPU of the VMs, as the RM's VM_START does."""
    for vm in vms:
        vm.state = "RUNNING"
        for vcpu in vm.vcpus:
            hyp.power_on(vcpu)


def hvc(hyp: Hypervisor, vcpu: Vcpu, name: str, **args: Any) -> HypResult:
    """Make hypercall ``name`` from ``vcpu`` right now."""
    return hyp.hypercalls.call(vcpu, name, args)


def capid(vm: Vm, key: str) -> int:
    """The capid the RM told ``vm`` about for resource ``key`` (e.g. ``'q:tx'``)."""
    return vm.resources[key]["capid"]


def run_until(hyp: Hypervisor, until_ns: int) -> list[dict[str, Any]]:
    """Run the engine up to and including ``until_ns``; return every new trace event."""
    engine = hyp.engine
    while True:
        due = engine.peek()
        if due is None or due > until_ns:
            break
        engine.step()
    return hyp.trace.take()


def project(events: Iterable[dict[str, Any]], *fields: str,
            kinds: Iterable[str] | None = None) -> list[tuple]:
    """``(kind, *fields)`` of each event (optionally only of ``kinds``), for whole-trace asserts."""
    wanted = set(kinds) if kinds is not None else None
    return [(e["kind"], *(e.get(f) for f in fields)) for e in events
            if wanted is None or e["kind"] in wanted]


@dataclass
class Pair:
    """Two VMs joined by one queue A->B (and optionally one doorbell A->B)."""

    hyp: Hypervisor
    a: Vm
    b: Vm
    va: Vcpu
    vb: Vcpu

    def call_a(self, name: str, **args: Any) -> HypResult:
        return hvc(self.hyp, self.va, name, **args)

    def call_b(self, name: str, **args: Any) -> HypResult:
        return hvc(self.hyp, self.vb, name, **args)

    def take(self) -> list[dict[str, Any]]:
        return self.hyp.trace.take()


def make_pair(depth: int = 8, max_size: int = 240, trigger: str = "edge",
              doorbell: bool = False, bell_trigger: str = "edge",
              source_can_clear: bool = False, seed: int = SEED) -> Pair:
    """VM_A (pCPU 0) and VM_B (pCPU 1) with queue ``q`` A->B; build events are discarded."""
    hyp = Hypervisor(seed=seed, pcpus=PCPUS)
    a = add_vm(hyp, "VM_A", (0,))
    b = add_vm(hyp, "VM_B", (1,))
    hyp.create_msgq("q", a, b, depth, max_size, trigger)
    if doorbell:
        hyp.create_doorbell("bell", a, b, bell_trigger, source_can_clear)
    hyp.trace.take()
    return Pair(hyp, a, b, a.vcpus[0], b.vcpus[0])


@pytest.fixture
def hyp() -> Hypervisor:
    return Hypervisor(seed=SEED, pcpus=PCPUS)


@pytest.fixture
def pair() -> Pair:
    return make_pair()


def capid_names(sim: Any) -> dict[int, str]:
    names = {r["capid"]: f"{vm.name}:{key}" for vm in sim.hyp.vms.values()
             for key, r in vm.resources.items()}
    # Owners' caps to the vCPUs of the VMs they own (what VM_GET_HYP_RESOURCES reports).
    names.update({vcpu.owner_capid: f"owner:{vcpu.id}" for vm in sim.hyp.vms.values()
                  for vcpu in vm.vcpus if vcpu.owner_capid is not None})
    return names


def without_capids(value, names: dict[int, str]):
    """``value`` with every capid (an int, or 8 little-endian bytes in a hex packet)
    replaced by the name of the resource it stands for."""
    if isinstance(value, dict):
        return {k: without_capids(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [without_capids(v, names) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value in names:
        return names[value]
    if isinstance(value, str) and len(value) >= 16:
        for capid, name in names.items():
            value = value.replace(capid.to_bytes(8, "little").hex(), f"<{name}>")
    return value


def seedless(sim: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run's events with the seed taken out: capids named, the snapshot's seed dropped.
    The seed only draws the CSpaces' mult and base (facts §1.1), so two seeds must give
    equal seedless runs."""
    events = without_capids(events, capid_names(sim))
    for event in events:
        if event["kind"] == "sim.snapshot":
            assert event["scenario"].pop("seed") == sim.seed  # the one place it is named
    return events
