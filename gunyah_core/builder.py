"""Builds a Hypervisor from a validated Scenario, the way the RM sets a machine up.

The RM VM (vmid 0xFF) and the primary VM HLOS (vmid 3, owned by the RM) always
exist, joined by the RM link: two queues of depth 8 and 240-byte messages (facts §3.1).
Scenario VMs get dynamic vmids from 0x80, owned by HLOS, as if HLOS had created them;
the rm-boot preset shows that creation step by step.
"""

from __future__ import annotations

from .consts import (
    RM_OWN_FREE_VIRQ_START,
    RM_RPC_MESSAGE_SIZE,
    RM_RPC_QUEUE_DEPTH,
    ROOTVM_PRIORITY,
    SCHEDULER_DEFAULT_PRIORITY,
    SCHEDULER_DEFAULT_TIMESLICE_NS,
    VMID_DYNAMIC_BASE,
    VMID_HLOS,
    VMID_RM,
)
from .guests import PROGRAMS, MissingResource
from .hypervisor import Hypervisor
from .scenario import Scenario, ScenarioError
from .vm import Vm

RM_NAME = "RM"
PRIMARY_NAME = "HLOS"
RESERVED_VMS = {RM_NAME: VMID_RM, PRIMARY_NAME: VMID_HLOS}
RM_LINK_TX = "HLOS_to_RM"
RM_LINK_RX = "RM_to_HLOS"
US = 1_000


def build(scenario: Scenario, seed: int | None = None, trace_on: bool = True) -> Hypervisor:
    """A ready-to-run Hypervisor: objects created, caps handed out, vCPUs powered on."""
    cfg = scenario.config
    hyp = Hypervisor(seed=cfg["seed"] if seed is None else seed, pcpus=cfg["pcpus"],
                     trace_on=trace_on, debug_capids=cfg["debug_capids"])
    described = {vm["name"]: vm for vm in cfg["vms"]}
    rm = hyp.create_vm(RM_NAME, VMID_RM, kind="rm", free_virq_start=RM_OWN_FREE_VIRQ_START)
    _add_vcpus(hyp, rm, {"priority": ROOTVM_PRIORITY})
    primary = hyp.create_vm(PRIMARY_NAME, VMID_HLOS, kind="primary", owner=VMID_RM)
    _add_vcpus(hyp, primary, described.get(PRIMARY_NAME, {"priority": ROOTVM_PRIORITY}))
    hyp.create_msgq(RM_LINK_TX, primary, rm, RM_RPC_QUEUE_DEPTH, RM_RPC_MESSAGE_SIZE,
                    label="rm")
    hyp.create_msgq(RM_LINK_RX, rm, primary, RM_RPC_QUEUE_DEPTH, RM_RPC_MESSAGE_SIZE,
                    label="rm")
    vmid = VMID_DYNAMIC_BASE
    for desc in cfg["vms"]:
        if desc["name"] == PRIMARY_NAME:
            continue
        vm = hyp.create_vm(desc["name"], vmid, owner=VMID_HLOS)
        vmid += 1
        _add_vcpus(hyp, vm, desc)
    for q in cfg["msgqs"]:
        msgq = hyp.create_msgq(q["name"], hyp.vms[q["sender"]], hyp.vms[q["receiver"]],
                               q.get("depth", 8), q.get("max_size", RM_RPC_MESSAGE_SIZE),
                               q.get("trigger", "edge"))
        # Thresholds as the scenario's owner would set them with configure_send/receive.
        if "notempty_thd" in q:
            msgq.notempty_thd = q["notempty_thd"]
        if "notfull_thd" in q:
            msgq.notfull_thd = q["notfull_thd"]
    for b in cfg["doorbells"]:
        bell = hyp.create_doorbell(b["name"], hyp.vms[b["sender"]], hyp.vms[b["receiver"]],
                                   b.get("trigger", "edge"), b.get("source_can_clear", False))
        bell.enable_mask = b.get("enable_mask", bell.enable_mask)
        bell.ack_mask = b.get("ack_mask", bell.ack_mask)
    for vm in hyp.vms.values():
        desc = described.get(vm.name, {})
        try:
            vm.guest = PROGRAMS[desc.get("program", "idle")](vm, desc.get("params", {}))
        except MissingResource as err:
            path = f"vms[{_index_of(cfg, vm.name)}].program" if desc else vm.name
            raise ScenarioError(str(err), path, source=scenario.source) from None
        vm.state = "RUNNING"
        if desc.get("start", True):
            for vcpu in vm.vcpus:
                hyp.power_on(vcpu)
    return hyp


def _index_of(cfg: dict, name: str) -> int:
    return next(i for i, vm in enumerate(cfg["vms"]) if vm["name"] == name)


def _add_vcpus(hyp: Hypervisor, vm: Vm, desc: dict) -> None:
    count = desc.get("vcpus", 1)
    affinity = desc.get("affinity", [])
    for i in range(count):
        pcpu = affinity[i] if i < len(affinity) else i % len(hyp.pcpus)
        hyp.create_vcpu(vm, desc.get("priority", SCHEDULER_DEFAULT_PRIORITY),
                        desc.get("timeslice_us", SCHEDULER_DEFAULT_TIMESLICE_NS // US) * US, pcpu)
