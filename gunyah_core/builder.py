"""Builds a Hypervisor from a validated Scenario, the way the RM sets a machine up.

The RM VM (vmid 0xFF) and the primary VM HLOS (vmid 3, owned by the RM) always
exist. Every VM gets an RM link: two queues of depth 8 and 240-byte messages (facts
§3.1), served by the RM's program. Scenario VMs get dynamic vmids from 0x80, owned by
HLOS, as if HLOS had created them at boot; the rm-boot preset shows that creation step
by step. Memory: each VM owns one small region (SIMULATOR layout, below).
"""

from __future__ import annotations

from typing import Any

from .consts import (
    RM_OWN_FREE_VIRQ_START,
    ROOTVM_PRIORITY,
    SCHEDULER_DEFAULT_PRIORITY,
    SCHEDULER_DEFAULT_TIMESLICE_NS,
    VIRTIO_ID_BLOCK,
    VIRTIO_ID_CONSOLE,
    VMID_DYNAMIC_BASE,
    VMID_HLOS,
    VMID_RM,
    ThreadRights,
)
from .core.hypervisor import Hypervisor
from .guest.programs import PROGRAMS as GUEST_PROGRAMS
from .guest.programs import MissingResource
from .guest.virtio import BLOCK_QUEUES, CONSOLE_QUEUES
from .guest.virtio import PROGRAMS as VIRTIO_PROGRAMS
from .guest.vmm import ProxyVmm
from .mem import demand_paging
from .mem.memparcel import OWNED, PAGE_SIZE, PgtableAccess
from .rm.client import RmClient
from .rm.host import VmManagerProgram
from .rm.manager import ResourceManager
from .rm.mem_service import MemService
from .rm.sharing import MemBorrower, MemLender
from .rm.vm_mgnt import VmManagement, create_rm_link
from .scenario import Scenario, ScenarioError
from .vm import psci
from .vm.virtqueue import Layout
from .vm.vm import Vm

RM_NAME = "RM"
PRIMARY_NAME = "HLOS"
RESERVED_VMS = {RM_NAME: VMID_RM, PRIMARY_NAME: VMID_HLOS}
PROGRAMS: dict[str, type] = {
    **GUEST_PROGRAMS,
    **VIRTIO_PROGRAMS,
    **{cls.program: cls for cls in (VmManagerProgram, MemLender, MemBorrower, ProxyVmm)},
}
US = 1_000

# SIMULATOR memory layout (IPA = PA): small enough to draw page by page.
PRIMARY_MEM_BASE, PRIMARY_MEM_PAGES = 0x8000_0000, 64
GUEST_MEM_BASE, GUEST_MEM_STRIDE, GUEST_MEM_PAGES = 0x4000_0000, 0x10_0000, 16
RM_MEM_BASE, RM_MEM_PAGES = 0xF000_0000, 4


def build(scenario: Scenario, seed: int | None = None, trace_on: bool = True) -> Hypervisor:
    """A ready-to-run Hypervisor: objects created, caps handed out, vCPUs powered on."""
    cfg = scenario.config
    hyp = Hypervisor(seed=cfg["seed"] if seed is None else seed, pcpus=cfg["pcpus"],
                     trace_on=trace_on, debug_capids=cfg["debug_capids"])
    described = {vm["name"]: vm for vm in cfg["vms"]}
    hyp.images = cfg.get("images", [])
    rm_vm = hyp.create_vm(RM_NAME, VMID_RM, kind="rm", free_virq_start=RM_OWN_FREE_VIRQ_START)
    add_vcpus(hyp, rm_vm, {"priority": ROOTVM_PRIORITY})
    rm = ResourceManager(rm_vm, {})
    rm_vm.guest = rm
    rm.attach(hyp, [VmManagement(rm, hyp, cfg.get("images", [])), MemService(rm, hyp)])
    hyp.memory.add_region(VMID_RM, RM_MEM_BASE, RM_MEM_PAGES * PAGE_SIZE)
    primary = hyp.create_vm(PRIMARY_NAME, VMID_HLOS, kind="primary", owner=VMID_RM)
    add_vcpus(hyp, primary, described.get(PRIMARY_NAME, {"priority": ROOTVM_PRIORITY}))
    # HLOS holds an AFFINITY-only cap to the RM's vCPU (RM hlos_vm.c), which the RM
    # reports to HLOS in VM_GET_HYP_RESOURCES of VMID_RM (facts §5.4).
    hyp.give_vcpu_cap(rm_vm.vcpus[0], primary, ThreadRights.AFFINITY)
    hyp.memory.add_region(VMID_HLOS, PRIMARY_MEM_BASE, PRIMARY_MEM_PAGES * PAGE_SIZE)
    guests = [desc for desc in cfg["vms"] if desc["name"] != PRIMARY_NAME]
    for index, desc in enumerate(guests):
        vm = hyp.create_vm(desc["name"], VMID_DYNAMIC_BASE + index, owner=VMID_HLOS)
        add_vcpus(hyp, vm, desc)
        hyp.memory.add_region(vm.vmid, GUEST_MEM_BASE + index * GUEST_MEM_STRIDE,
                              GUEST_MEM_PAGES * PAGE_SIZE)
    for vm in list(hyp.vms.values()):
        if vm is not rm_vm:
            create_rm_link(hyp, rm, vm)
        if described.get(vm.name, {}).get("proxy"):  # its owner, HLOS, runs it
            for vcpu in vm.vcpus:
                hyp.make_proxy(vcpu, primary)
            if "demand_paging" in described[vm.name]:
                _demand_paging(hyp, vm, primary, described[vm.name]["demand_paging"])
        if described.get(vm.name, {}).get("psci"):  # a vPM group; HALT vIRQs to the RM
            psci.enable(hyp, vm, rm)
    try:
        _create_objects(hyp, cfg)
    except RingsDoNotFit as err:
        raise ScenarioError(err.message, err.path, source=scenario.source) from None
    for vm in hyp.vms.values():
        if vm is rm_vm:
            continue
        desc = described.get(vm.name, {})
        default = VmManagerProgram.program if vm.name == PRIMARY_NAME else "idle"
        try:
            vm.guest = PROGRAMS[desc.get("program", default)](vm, desc.get("params", {}))
        except MissingResource as err:
            path = f"vms[{_index_of(cfg, vm.name)}].program" if desc else vm.name
            raise ScenarioError(str(err), path, source=scenario.source) from None
        attach_rm_client(hyp, vm, rm_vm.name)
    for vm in hyp.vms.values():
        vm.state = "RUNNING"
        if described.get(vm.name, {}).get("start", True):
            for vcpu in boot_vcpus(vm):
                hyp.power_on(vcpu)
    hyp.booted = True
    return hyp


def _demand_paging(hyp: Hypervisor, vm: Vm, host: Vm, desc: dict) -> None:
    """The window right after the guest's own memory, served from the top of HLOS's RAM
    (SIMULATOR layout; facts §10.2 for the objects and caps, mem/demand_paging.py)."""
    pages = desc["pages"]
    base = vm.vmid - VMID_DYNAMIC_BASE
    window = GUEST_MEM_BASE + base * GUEST_MEM_STRIDE + GUEST_MEM_PAGES * PAGE_SIZE
    entry = demand_paging.setup(hyp, vm, host, window, pages, desc.get("transfer", "lend"),
                                desc.get("writable", True))
    entry["pool"] = tuple(PRIMARY_MEM_BASE + (PRIMARY_MEM_PAGES - pages + i) * PAGE_SIZE
                          for i in range(pages))


def boot_vcpus(vm: Vm) -> list:
    """The vCPUs a VM start powers on: a PSCI VM's boot vCPU only, its secondaries wait
    for CPU_ON (RM vm_firmware.c ``vm_firmware_vm_start_default`` powers on the boot
    vCPU); the model starts every vCPU of a VM without PSCI."""
    return vm.vcpus[:1] if vm.vpm is not None else vm.vcpus


def attach_rm_client(hyp: Hypervisor, vm: Vm, rm_name: str) -> None:
    """The guest's side of its RM link (Linux's rsc_mgr driver)."""
    vm.guest.rm = RmClient(vm.name, rm_name, vm.resources["rm:tx"], vm.resources["rm:rx"],
                           hyp.trace)
    vm.guest.hyp = hyp


def _create_objects(hyp: Hypervisor, cfg: dict[str, Any]) -> None:
    for q in cfg["msgqs"]:
        msgq = hyp.create_msgq(q["name"], hyp.vms[q["sender"]], hyp.vms[q["receiver"]],
                               q.get("depth", 8), q.get("max_size", 240), q.get("trigger", "edge"))
        # Thresholds as the queue's users would set them with configure_send/receive.
        msgq.notempty_thd = q.get("notempty_thd", msgq.notempty_thd)
        msgq.notfull_thd = q.get("notfull_thd", msgq.notfull_thd)
    for b in cfg["doorbells"]:
        bell = hyp.create_doorbell(b["name"], hyp.vms[b["sender"]], hyp.vms[b["receiver"]],
                                   b.get("trigger", "edge"), b.get("source_can_clear", False))
        bell.enable_mask = b.get("enable_mask", bell.enable_mask)
        bell.ack_mask = b.get("ack_mask", bell.ack_mask)
    for label, v in enumerate(cfg.get("virtio_mmios", [])):
        _create_virtio(hyp, v, label)


class RingsDoNotFit(ScenarioError):
    """A virtio device's rings need more memory than its frontend has free."""


# The toy devices (guest/virtio.py): their queues, and their ring and buffer sizes
# when the scenario leaves them out (the simulator's choices).
VIRTIO_DEVICES = {"console": (VIRTIO_ID_CONSOLE, CONSOLE_QUEUES),
                  "block": (VIRTIO_ID_BLOCK, BLOCK_QUEUES)}
DEFAULT_QUEUE_SIZE, DEFAULT_BUF_SIZE = 8, 128


def _create_virtio(hyp: Hypervisor, v: dict[str, Any], label: int) -> None:
    """The device (the RM's work, Hypervisor.create_virtio_mmio) and the memory its
    rings live in: the frontend shares the top pages of its region with the backend
    (MEM_SHARE, both RW) and the backend accepts them, as the RM's DT node names a
    memory region by label for the device's DMA (dto_create_virtio_mmio). The sharing
    is done at build, not by RM RPC: the simulator's shortcut."""
    frontend, backend = hyp.vms[v["frontend"]], hyp.vms[v.get("backend", PRIMARY_NAME)]
    device_id, default_queues = VIRTIO_DEVICES[v["device"]]
    queues = v.get("queues", default_queues)
    queue_size = v.get("queue_size", DEFAULT_QUEUE_SIZE)
    buf_size = v.get("buf_size", DEFAULT_BUF_SIZE)
    stride = -(-Layout.at(0, queue_size, buf_size).end // PAGE_SIZE) * PAGE_SIZE
    free = [r for r in hyp.memory.view(frontend.vmid)
            if r["state"] == OWNED and r["size"] >= stride * queues]
    if not free:
        raise RingsDoNotFit(f"the rings of {queues} queues need {stride * queues // PAGE_SIZE} "
                            f"pages of {frontend.name}'s memory, which has no such free range "
                            "(fewer queues, a smaller queue_size or buf_size)",
                            f"virtio_mmios[{label}]")
    dev = hyp.create_virtio_mmio(v["name"], frontend, backend, device_id, queues, label)
    dev.ring_size = queue_size
    base = free[0]["base"] + free[0]["size"] - stride * queues
    rw = int(PgtableAccess.RW)
    handle = hyp.memory.share(frontend.vmid, [(frontend.vmid, rw), (backend.vmid, rw)],
                              [(base, stride * queues)], label=label)
    hyp.memory.accept(backend.vmid, handle)
    frontend.resources[f"{dev.name}:frontend"].update(
        ring_base=base, ring_stride=stride, queue_size=queue_size, buf_size=buf_size)
    backend.resources[f"{dev.name}:backend"]["queue_size"] = queue_size


def _index_of(cfg: dict, name: str) -> int:
    return next(i for i, vm in enumerate(cfg["vms"]) if vm["name"] == name)


def add_vcpus(hyp: Hypervisor, vm: Vm, desc: dict) -> None:
    """vCPUs as a scenario or image describes them (count, priority, slice, affinity)."""
    affinity = desc.get("affinity", [])
    for i in range(desc.get("vcpus", 1)):
        pcpu = affinity[i] if i < len(affinity) else i % len(hyp.pcpus)
        hyp.create_vcpu(vm, desc.get("priority", SCHEDULER_DEFAULT_PRIORITY),
                        desc.get("timeslice_us", SCHEDULER_DEFAULT_TIMESLICE_NS // US) * US,
                        pcpu)
