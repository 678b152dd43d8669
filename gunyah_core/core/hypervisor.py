"""The hypervisor: owns the objects, the pCPU schedulers and the hypercall door.

It creates objects the way the RM asks it to at VM creation (caps copied into each
VM's CSpace with minimal rights, vIRQs bound into the receiver's VIC, facts §1.4 and
§9.1) and routes every guest call through ``HypercallTable``. It knows nothing of
message-queue or scheduling details: those live in their own modules.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from ..consts import (
    CPU_INDEX_INVALID,
    PROXY_VCPU_PRIORITY,
    PROXY_VCPU_TIMESLICE_NS,
    RIGHTS_BY_TYPE,
    RM_GUEST_FREE_VIRQ_START,
    VIRTIO_MMIO_IPA_BASE,
    VIRTIO_MMIO_PAGE_SIZE,
    DoorbellRights,
    MsgqueueRights,
    ThreadRights,
    VirtioMmioRights,
)
from ..ipc.doorbell import Doorbell
from ..ipc.msgq import Msgq
from ..mem.memory import MemoryModel
from ..vm.vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_RUN, Vcpu
from ..vm.vic import EDGE, Vic, VirqSource
from ..vm.virtio_mmio import VirtioMmio
from ..vm.virtqueue import SharedBytes
from ..vm.vm import Vm
from ..vm.vtimer import VirtualTimer
from .cspace import CSpace
from .engine import Engine
from .executor import Executor
from .hypercalls import HypercallTable
from .scheduler import PcpuScheduler
from .trace import EventKind, Trace

MSGQ_MASTER_RIGHTS = (MsgqueueRights.SEND | MsgqueueRights.RECEIVE | MsgqueueRights.BIND_SEND
                      | MsgqueueRights.BIND_RECEIVE | MsgqueueRights.OBJECT_ACTIVATE)
BELL_MASTER_RIGHTS = (DoorbellRights.SEND | DoorbellRights.RECEIVE | DoorbellRights.BIND
                      | DoorbellRights.OBJECT_ACTIVATE)
THREAD_MASTER_RIGHTS = sum(ThreadRights)
# The owner's cap to each vCPU of a VM it owns: exactly what vcpu_run needs (RM vm_config.c
# vm_config_add_vcpu copies CAP_RIGHTS_THREAD_AFFINITY | CAP_RIGHTS_THREAD_YIELD_TO).
OWNER_VCPU_RIGHTS = ThreadRights.AFFINITY | ThreadRights.YIELD_TO
VIRTIO_MASTER_RIGHTS = sum(VirtioMmioRights)
# The backend's cap (RM vm_config.c vm_config_add_virtio_mmio): CONFIG | ASSERT_VIRQ.
VIRTIO_BACKEND_RIGHTS = VirtioMmioRights.CONFIG | VirtioMmioRights.ASSERT_VIRQ


class Hypervisor:
    """Objects, VMs and pCPUs of one simulated machine."""

    def __init__(self, seed: int = 0, pcpus: int = 2, trace_on: bool = True,
                 debug_capids: bool = False) -> None:
        self.engine = Engine()
        self.trace = Trace(self.engine, enabled=trace_on)
        self.rng = random.Random(seed)
        self.debug_capids = debug_capids
        self.hypercalls = HypercallTable(self)
        self.executor = Executor(self.engine, self.hypercalls)
        self.pcpus = [PcpuScheduler(i, self.engine, self.trace, self.executor)
                      for i in range(pcpus)]
        self.vms: dict[str, Vm] = {}
        self.msgqs: dict[str, Msgq] = {}
        self.doorbells: dict[str, Doorbell] = {}
        self.virtio_mmios: dict[str, VirtioMmio] = {}
        # (vmid, IPA page) -> the device whose register page a VM maps there (vdevice).
        self.vdevices: dict[tuple[int, int], VirtioMmio] = {}
        self._oid = 0
        # Message ids, 1, 2, ...: a view follows a message by its id from send to receive.
        self.next_msg_id = itertools.count(1).__next__
        self.memory = MemoryModel(self._emit_mem)
        self.demand: dict[int, Any] = {}  # guest vmid -> its demand-paging Window
        self.shared_bytes = SharedBytes(self.memory)  # the bytes of pages two VMs share
        self.booted = False  # after the scenario is built, creations are traced
        self.images: list[dict[str, Any]] = []  # what VM_CONFIG_IMAGE can load
        # The RM's own CSpace holds every master cap; guests get minimal-rights copies.
        self.master_cspace = CSpace("rm-masters", self.rng, debug_capids)

    def _next_oid(self) -> int:
        self._oid += 1
        return self._oid

    def _emit_mem(self, kind: str, **fields: Any) -> None:
        """Memory events name VMs like every other event (the memory model uses vmids)."""
        if not self.trace.on:
            return
        for key in ("vm", "owner", "donor"):
            if isinstance(fields.get(key), int):
                fields[f"{key}_vmid"] = fields[key]
                fields[key] = self.vm_name(fields[key])
        if "vms" in fields:
            fields["vms"] = [self.vm_name(v) for v in fields["vms"]]
        self.trace.emit(kind, **fields)

    def vm_name(self, vmid: int) -> str:
        return next((vm.name for vm in self.vms.values() if vm.vmid == vmid), f"vmid:{vmid:#x}")

    def vm_by_id(self, vmid: int) -> Vm | None:
        return next((vm for vm in self.vms.values() if vm.vmid == vmid), None)

    def _created(self, obj_type: str, name: str, state: dict[str, Any], **fields: Any) -> None:
        """After boot, creations are traced with the object's state, so that a timeline
        alone (an imported JSONL) is enough to draw the machine at any point."""
        if self.booted and self.trace.on:
            self.trace.emit(EventKind.OBJ_CREATE, type=obj_type, name=name, **fields,
                            object=state)

    def _copied_caps(self, *vms: Vm) -> None:
        """After boot, the caps the RM copies into VMs are traced too (cap.create)."""
        if self.booted and self.trace.on:
            for vm in vms:
                self.trace.emit(EventKind.CAP_CREATE, vm=vm.name,
                                caps=vm.cspace.table(RIGHTS_BY_TYPE))

    def _destroyed(self, obj_type: str, name: str, **fields: Any) -> None:
        if self.trace.on:
            self.trace.emit(EventKind.OBJ_DESTROY, type=obj_type, name=name, **fields)

    # -- VMs and vCPUs -------------------------------------------------------------------
    def create_vm(self, name: str, vmid: int, kind: str = "guest", owner: int | None = None,
                  free_virq_start: int = RM_GUEST_FREE_VIRQ_START) -> Vm:
        cspace = CSpace(name, self.rng, self.debug_capids)
        vic = Vic(self._next_oid(), name, self.trace)
        vic.activate()
        vm = Vm(name, vmid, cspace, vic, kind, owner, free_virq_start)
        self.vms[name] = vm
        self._created("vm", name, vm.snapshot(RIGHTS_BY_TYPE), vmid=vmid, owner=owner)
        return vm

    def destroy_vm(self, vm: Vm) -> None:
        """Remove a VM whose vCPUs are off and whose objects are gone (VM_DEALLOCATE)."""
        for vcpu in vm.vcpus:
            self.power_off(vcpu)
        del self.vms[vm.name]
        self._destroyed("vm", vm.name, vmid=vm.vmid)

    def create_vcpu(self, vm: Vm, priority: int, timeslice_ns: int, affinity: int) -> Vcpu:
        vcpu = Vcpu(self._next_oid(), vm, len(vm.vcpus), self.trace, priority, timeslice_ns,
                    affinity)
        vcpu.vic = vm.vic
        vcpu.sched = self.pcpus[affinity]
        vm.vcpus.append(vcpu)
        vm.vic.attach_vcpu(vcpu)
        vcpu.vtimer = VirtualTimer(vcpu, self.engine)
        vcpu.vtimer.bind()
        master = self.master_cspace.create(vcpu, THREAD_MASTER_RIGHTS)
        vm.resources[f"vcpu{vcpu.index}"] = {
            "type": "VIRTUAL_CPU", "label": vcpu.index,
            "capid": self.master_cspace.copy_to(master, vm.cspace, THREAD_MASTER_RIGHTS),
        }
        # A VM owned by another VM (not by the RM): the owner gets a cap to every vCPU,
        # proxy-scheduled or not, which VM_GET_HYP_RESOURCES later reports (facts §5.4).
        owner = self.vm_by_id(vm.owner) if vm.owner is not None else None
        vcpu.activate()
        self._created("vcpu", vcpu.id, vcpu.snapshot(), vm=vm.name, pcpu=affinity)
        if owner is not None and owner.kind != "rm":
            self.give_vcpu_cap(vcpu, owner, OWNER_VCPU_RIGHTS)
        return vcpu

    def give_vcpu_cap(self, vcpu: Vcpu, holder: Vm, rights: int) -> int:
        """Copy a cap to ``vcpu`` into ``holder``'s CSpace as the RM's ``owner_cap`` (the
        one VM_GET_HYP_RESOURCES reports, facts §5.4) and trace the copy."""
        vcpu.owner_capid = self.master_cspace.copy_to(self.master_cspace.find(vcpu),
                                                      holder.cspace, rights)
        self._copied_caps(holder)
        return vcpu.owner_capid

    def make_proxy(self, vcpu: Vcpu, owner: Vm) -> None:
        """Proxy-schedule ``vcpu`` for ``owner`` as the RM does (facts §7.1, §7.2): priority
        0, a 100 us slice, no pCPU, a permanent vcpu_run block, its wakeup vIRQ bound
        (edge) in the owner's VIC, and a thread cap the owner can vcpu_run with."""
        vcpu.block(BLOCK_VCPU_RUN)
        vcpu.priority, vcpu.timeslice_ns = PROXY_VCPU_PRIORITY, PROXY_VCPU_TIMESLICE_NS
        vcpu.slice_left = vcpu.timeslice_ns
        vcpu.affinity, vcpu.sched = CPU_INDEX_INVALID, None
        vcpu.proxy_owner = owner.vcpus[0]
        vcpu.wakeup = VirqSource(f"vcpu:{vcpu.id}:wakeup")
        virq = owner.allocate_virq()
        owner.vic.bind(vcpu.wakeup, virq, EDGE)
        if vcpu.owner_capid is None:  # a VM made without an owner (unit tests): copy it now
            self.give_vcpu_cap(vcpu, owner, OWNER_VCPU_RIGHTS)
        capid = vcpu.owner_capid
        owner.resources[f"proxy:{vcpu.id}"] = {"type": "VIRTUAL_CPU", "capid": capid,
                                               "virq": virq, "vcpu": vcpu.id,
                                               "partner": vcpu.vm.name}

    def power_on(self, vcpu: Vcpu, reason: str = "boot") -> None:
        """Start the vCPU at its guest program's entry (vcpu_poweron by the RM, or a PSCI
        CPU_ON with the entry point the caller gave, kept in ``vcpu.entry``)."""
        if BLOCK_VCPU_OFF not in vcpu.blocked:
            return
        vcpu.stack = [(vcpu.vm.guest.main(vcpu), None)]
        vcpu.result = None
        vcpu.busy_left = 0
        if vcpu.vm.vpm is not None:
            vcpu.vm.vpm.set_power(vcpu, "on", reason)
        vcpu.unblock(BLOCK_VCPU_OFF)

    def power_off(self, vcpu: Vcpu, reason: str = "poweroff") -> None:
        """Stop the vCPU wherever it is (vcpu_kill / VM stop, or PSCI CPU_OFF)."""
        if vcpu.vm.vpm is not None:
            vcpu.vm.vpm.set_power(vcpu, "off", reason)
        vcpu.block(BLOCK_VCPU_OFF)
        # A powered-off vCPU waits for nothing else (a proxy one stays proxy-scheduled).
        vcpu.blocked = {BLOCK_VCPU_OFF} | ({BLOCK_VCPU_RUN} if vcpu.proxy_owner else set())
        vcpu.vtimer.stop()
        vcpu.stack = []
        vcpu.user_ops.clear()
        vcpu.pending_hvc = None  # a vcpu_run in progress never returns
        vcpu.set_state("off", "poweroff")

    # -- IPC objects ------------------------------------------------------------------------
    def create_msgq(self, name: str, sender: Vm, receiver: Vm, depth: int, max_size: int,
                    trigger: str = EDGE, label: str | None = None,
                    rx_label: str | None = None, tx_virq: int | None = None,
                    rx_virq: int | None = None) -> Msgq:
        """Create, activate and hand out a queue as the RM does: SEND-only and RECEIVE-only caps.

        ``tx_virq``/``rx_virq``: numbers the caller already allocated (the RM link takes
        its vIRQs in the RM's own order); otherwise each VM's next free one."""
        msgq = Msgq(self._next_oid(), name, depth, max_size, self.trace, sender.name,
                    receiver.name)
        msgq.activate()
        self.msgqs[name] = msgq
        master = self.master_cspace.create(msgq, MSGQ_MASTER_RIGHTS)
        tx_cap = self.master_cspace.copy_to(master, sender.cspace, MsgqueueRights.SEND)
        rx_cap = self.master_cspace.copy_to(master, receiver.cspace, MsgqueueRights.RECEIVE)
        tx_virq = sender.allocate_virq() if tx_virq is None else tx_virq
        sender.vic.bind(msgq.tx_source, tx_virq, trigger)
        rx_virq = receiver.allocate_virq() if rx_virq is None else rx_virq
        receiver.vic.bind(msgq.rx_source, rx_virq, trigger)
        label = label or name
        rx_label = rx_label or label
        sender.resources[f"{label}:tx"] = {"type": "MSG_QUEUE_SEND", "msgq": name,
                                           "capid": tx_cap, "virq": tx_virq,
                                           "partner": receiver.name}
        receiver.resources[f"{rx_label}:rx"] = {"type": "MSG_QUEUE_RECV", "msgq": name,
                                             "capid": rx_cap, "virq": rx_virq,
                                             "partner": sender.name}
        self._handed_out("msgq", msgq, master, sender, receiver)
        return msgq

    def create_doorbell(self, name: str, sender: Vm, receiver: Vm, trigger: str = EDGE,
                        source_can_clear: bool = False) -> Doorbell:
        """Create a doorbell: sender gets SEND (+RECEIVE if it may clear), receiver RECEIVE."""
        bell = Doorbell(self._next_oid(), name, self.trace, sender.name, receiver.name)
        bell.activate()
        self.doorbells[name] = bell
        master = self.master_cspace.create(bell, BELL_MASTER_RIGHTS)
        src_rights = DoorbellRights.SEND | (DoorbellRights.RECEIVE if source_can_clear else 0)
        tx_cap = self.master_cspace.copy_to(master, sender.cspace, src_rights)
        rx_cap = self.master_cspace.copy_to(master, receiver.cspace, DoorbellRights.RECEIVE)
        virq = receiver.allocate_virq()
        receiver.vic.bind(bell.source, virq, trigger)
        sender.resources[f"{name}:src"] = {"type": "DOORBELL_SRC", "doorbell": name,
                                           "capid": tx_cap, "partner": receiver.name}
        receiver.resources[f"{name}:rx"] = {"type": "DOORBELL", "doorbell": name,
                                            "capid": rx_cap, "virq": virq,
                                            "partner": sender.name}
        self._handed_out("doorbell", bell, master, sender, receiver)
        return bell

    def create_virtio_mmio(self, name: str, frontend: Vm, backend: Vm, device_id: int,
                           vqs_num: int, label: int = 0) -> VirtioMmio:
        """Create a virtio-MMIO device as the RM does (vm_config.c create_virtio_mmio,
        vm_config_add_virtio_mmio, add_virtio_mmio): configure and activate it, map its
        register page read-only at an IPA of the frontend's, give the backend a cap with
        CONFIG | ASSERT_VIRQ, bind each side's vIRQ (edge, as the RM's DT says) into its
        VIC; the backend's VM_GET_HYP_RESOURCES lists it as VIRTIO_MMIO (facts §5.4)."""
        dev = VirtioMmio(self._next_oid(), name, self.trace, frontend.name, backend.name,
                         vqs_num, device_id)
        dev.activate()
        ipa = VIRTIO_MMIO_IPA_BASE + len(self.virtio_mmios) * VIRTIO_MMIO_PAGE_SIZE
        self.virtio_mmios[name] = dev
        self.vdevices[(frontend.vmid, ipa // VIRTIO_MMIO_PAGE_SIZE)] = dev
        master = self.master_cspace.create(dev, VIRTIO_MASTER_RIGHTS)
        cap = self.master_cspace.copy_to(master, backend.cspace, VIRTIO_BACKEND_RIGHTS)
        fe_virq = frontend.allocate_virq()
        frontend.vic.bind(dev.to_frontend, fe_virq, EDGE)  # H-SRC: backend_source
        be_virq = backend.allocate_virq()
        backend.vic.bind(dev.to_backend, be_virq, EDGE)  # H-SRC: frontend_source
        frontend.resources[f"{name}:frontend"] = {
            "type": "VIRTIO_MMIO_NODE", "virtio": name, "base": ipa,
            "size": VIRTIO_MMIO_PAGE_SIZE, "virq": fe_virq, "peer": backend.vmid,
            "label": label, "partner": backend.name}
        backend.resources[f"{name}:backend"] = {
            "type": "VIRTIO_MMIO", "virtio": name, "capid": cap, "virq": be_virq,
            "label": label, "partner": frontend.name}
        dev.master_capid = master
        self._created("virtio_mmio", name, dev.snapshot(), src=frontend.name,
                      dst=backend.name)
        self._copied_caps(backend)
        return dev

    def vdevice_at(self, vmid: int, addr: int) -> VirtioMmio | None:
        """The device whose register page VM ``vmid`` maps at IPA ``addr``, if any."""
        return self.vdevices.get((vmid, addr // VIRTIO_MMIO_PAGE_SIZE))

    def vdevice_access(self, vcpu: Vcpu, addr: int, access: str,
                       value: int) -> tuple[bool, int | bool] | None:
        """A guest access to a virtio register page it maps (None: not a vdevice).
        Reads are plain reads of the read-only page; writes fault into the hypervisor,
        which emulates them (vdevice.c ``virtio_mmio_handle_vdevice_access``)."""
        dev = self.vdevice_at(vcpu.vm.vmid, addr)
        if dev is None:
            return None
        offset = addr % VIRTIO_MMIO_PAGE_SIZE
        if access == "R":
            return True, dev.frontend_read(offset)
        if access == "W":
            ok = dev.frontend_write(vcpu.vm.name, vcpu.id, offset, value)
            return ok, ok
        return False, False  # no instruction fetch from a device page

    def _handed_out(self, kind: str, obj: Msgq | Doorbell, master: int, sender: Vm,
                    receiver: Vm) -> None:
        """An IPC object is in both VMs' CSpaces: remember its master cap (destroy_object
        revokes through it) and trace the creation and the copied caps."""
        obj.master_capid = master
        self._created(kind, obj.name, obj.snapshot(), src=sender.name, dst=receiver.name)
        self._copied_caps(sender, receiver)

    def destroy_object(self, obj: Msgq | Doorbell) -> None:
        """Revoke every cap to an IPC object, unbind its vIRQs and forget it (VM reset)."""
        revoked = self.master_cspace.revoke_children(obj.master_capid)
        if self.trace.on:
            self.trace.emit(EventKind.CAP_REVOKE, object=obj.ref, count=revoked)
        sources = [obj.tx_source, obj.rx_source] if isinstance(obj, Msgq) else [obj.source]
        for source in sources:
            if source.vic is not None:
                source.vic.unbind(source)
        table = self.msgqs if isinstance(obj, Msgq) else self.doorbells
        del table[obj.name]
        for vm in self.vms.values():
            for label in [k for k, r in vm.resources.items()
                          if r.get("msgq") == obj.name or r.get("doorbell") == obj.name]:
                del vm.resources[label]
        kind = "msgq" if isinstance(obj, Msgq) else "doorbell"
        self._destroyed(kind, obj.name, src=obj.sender, dst=obj.receiver)

    # -- views ---------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain-JSON state of the machine, by ids only."""
        rights_names = RIGHTS_BY_TYPE
        return {
            "now_ns": self.engine.now,
            "trace_seq": self.trace.seq,
            "pcpus": [p.snapshot() for p in self.pcpus],
            "vms": [vm.snapshot(rights_names) for vm in self.vms.values()],
            "msgqs": [q.snapshot() for q in self.msgqs.values()],
            "doorbells": [b.snapshot() for b in self.doorbells.values()],
            **({"virtio_mmios": [d.snapshot() for d in self.virtio_mmios.values()]}
               if self.virtio_mmios else {}),
            "memory": {vm.name: self.memory.view(vm.vmid) for vm in self.vms.values()},
            "memparcels": self.memory.parcels(),
        }
