"""RM VM management: the lifecycle requests and who is told what (facts §6).

States are the RM's ``vm_state_t``; transitions follow ``vm_mgnt_state_change_valid``.
Wrong state -> VM_STATE; a caller that does not own the VM -> DENIED; only the primary
VM (vmid 3) may allocate, configure and initialise VMs. Images are the scenario's
``images``: the primary VM writes the image's number into the memparcel it lends
(standing in for the image bytes), and the RM reads it at VM_CONFIG_IMAGE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..consts import (
    PSCI_REQUEST_SYSTEM_RESET,
    PSCI_REQUEST_SYSTEM_RESET2_64,
    RM_PLATFORM_SECONDARY_VMIDS,
    RM_RPC_MESSAGE_SIZE,
    RM_RPC_QUEUE_DEPTH,
    VM_EXIT_FLAG_SMC64,
    VMID_DYNAMIC_BASE,
    VMID_DYNAMIC_LAST,
    VMID_HLOS,
    VMID_RM,
    VMID_SECONDARY_LIMIT,
)
from ..errors import ERROR_OK
from ..guest.programs import hvc, work
from ..mem.memparcel import MemError
from ..vm import psci
from ..vm.vcpu_run import VcpuRunState
from .manager import ResourceManager, RmFailure
from .messages import (
    VM_STOP_FLAG_FORCE,
    ResourceType,
    RmError,
    RmMessageId,
    VmAuthType,
    VmExitCode,
    VmExitType,
    VmState,
)
from .payloads import (
    HypResourceEntry,
    NotifyVmExited,
    NotifyVmShutdown,
    NotifyVmStatus,
    VmConfigImageReq,
    VmExitReq,
    VmGetStateReply,
    VmidReply,
    VmidReq,
    VmStopReq,
    encode_hyp_resources,
)

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor
    from ..vm.vm import Vm

U32_MASK = 0xFFFF_FFFF
RESET_STAGES = ("DESTROY_VDEVICES", "RELEASE_MEMPARCELS", "RELEASE_IRQS", "DESTROY_VM",
                "CLEANUP_VM")
# SIMULATOR: time per reset stage (asynchronous in the RM; no figure in the sources).
RESET_STAGE_NS = 50_000


def link_names(vm_name: str, rm_name: str) -> tuple[str, str]:
    """The RM link queues of a VM: (VM -> RM, RM -> VM)."""
    return f"{vm_name}_to_{rm_name}", f"{rm_name}_to_{vm_name}"


def create_rm_link(hyp: Hypervisor, rm: ResourceManager, vm: Vm) -> None:
    """Two queues of depth 8 and 240-byte messages, one per direction (facts §3.1).

    vIRQs in the RM's order (RM ``vm_config.c`` ``vm_config_add_rm_rpc``): the RM's own
    Tx then Rx, then the VM's Tx then Rx; the VM's queue to the RM is created first
    (``vm_config_hlos_vdevices_setup``; facts §11.2)."""
    to_rm, from_rm = link_names(vm.name, rm.vm.name)
    rm_tx, rm_rx = rm.vm.allocate_virq(), rm.vm.allocate_virq()
    vm_tx, vm_rx = vm.allocate_virq(), vm.allocate_virq()
    hyp.create_msgq(to_rm, vm, rm.vm, RM_RPC_QUEUE_DEPTH, RM_RPC_MESSAGE_SIZE,
                    label="rm", rx_label=f"rm:{vm.name}", tx_virq=vm_tx, rx_virq=rm_rx)
    hyp.create_msgq(from_rm, rm.vm, vm, RM_RPC_QUEUE_DEPTH, RM_RPC_MESSAGE_SIZE,
                    label=f"rm:{vm.name}", rx_label="rm", tx_virq=rm_tx, rx_virq=vm_rx)
    rm.add_link(vm)


def exit_of_run_check(ret: dict[str, Any]) -> tuple[VmExitType, int, VmExitCode, tuple[int, ...]]:
    """(exit type, exit flags, exit code, extra reason words) the RM reports for a halted
    vCPU's run state (RM vm_mgnt.c ``vcpu_halt_callback``; facts §6.3)."""
    state, data0, data1 = ret.get("state"), ret.get("data0", 0), ret.get("data1", 0)
    if state == VcpuRunState.POWERED_OFF.name:
        return VmExitType.PLATFORM_OFF, 0, VmExitCode.NORMAL, ()
    if state == VcpuRunState.PSCI_SYSTEM_RESET.name:
        if data0 & PSCI_REQUEST_SYSTEM_RESET:
            return VmExitType.PLATFORM_RESET, 0, VmExitCode.NORMAL, ()
        flags = VM_EXIT_FLAG_SMC64 if data0 & PSCI_REQUEST_SYSTEM_RESET2_64 else 0
        cookie = data1 if flags else data1 & U32_MASK
        return (VmExitType.PSCI_SYSTEM_RESET2, flags, VmExitCode.NORMAL,
                (data0 & U32_MASK, cookie & U32_MASK, cookie >> 32 & U32_MASK))
    if state == VcpuRunState.FAULT.name:
        return VmExitType.SOFTWARE_ERROR, 0, VmExitCode.NORMAL, ()
    return VmExitType.SOFTWARE_ERROR, 0, VmExitCode.UNKNOWN_ERROR, ()


class VmManagement:
    """Request handlers for VM_ALLOCATE ... VM_DEALLOCATE, plus exit reporting."""

    def __init__(self, rm: ResourceManager, hyp: Hypervisor, images: list[dict[str, Any]]
                 ) -> None:
        self.rm = rm
        self.hyp = hyp
        self.images = images
        self.config: dict[int, dict[str, Any]] = {}  # vmid -> image, parcel handle

    def handlers(self) -> dict[int, Any]:
        m = RmMessageId
        return {
            m.VM_ALLOCATE: self.allocate, m.VM_DEALLOCATE: self.deallocate,
            m.VM_CONFIG_IMAGE: self.config_image, m.VM_INIT: self.init,
            m.VM_START: self.start, m.VM_STOP: self.stop, m.VM_RESET: self.reset,
            m.VM_EXIT: self.exit, m.VM_GET_HYP_RESOURCES: self.get_hyp_resources,
            m.VM_GET_VMID: self.get_vmid, m.VM_GET_STATE: self.get_state,
        }

    # -- helpers ----------------------------------------------------------------------------
    def _owned(self, caller: Vm, vmid: int, *states: VmState,
               not_owner: RmError = RmError.DENIED) -> Vm:
        vm = self.hyp.vm_by_id(vmid)
        if vm is None or vm.kind == "rm":
            raise RmFailure(RmError.VMID_INVALID, f"no VM {vmid:#x}")
        if vm.owner != caller.vmid:
            raise RmFailure(not_owner, f"{caller.name} does not own {vm.name}")
        if states and VmState[vm.state] not in states:
            raise RmFailure(RmError.VM_STATE, f"{vm.name} is {vm.state}")
        return vm

    @staticmethod
    def _primary_only(caller: Vm) -> None:
        if caller.vmid != VMID_HLOS:
            raise RmFailure(RmError.DENIED, "only the primary VM may do this")

    def _status_changed(self, vm: Vm, state: VmState) -> None:
        """New state; NOTIFY_VM_STATUS to every running peer with an RM link (owner included)
        (RM ``vm_mgnt.c`` ``vm_mgnt_update_vm_state`` -> ``vm_mgnt_send_state``). LOAD and
        NONE are set without it: see ``allocate`` and ``deallocate`` (facts §6.2)."""
        self.rm.set_state(vm, state)
        payload = NotifyVmStatus(vmid=vm.vmid, vm_status=int(state)).encode()
        for peer in self.peers(vm):
            if peer.state == VmState.RUNNING.name:
                self.rm.notify(peer.name, RmMessageId.NOTIFY_VM_STATUS, payload,
                               {"vm": vm.name, "vm_status": state.name})

    def peers(self, vm: Vm) -> list[Vm]:
        names = {end for obj in self._objects_of(vm) for end in (obj.sender, obj.receiver)}
        owner = self.hyp.vm_by_id(vm.owner) if vm.owner is not None else None
        if owner is not None:
            names.add(owner.name)
        names.discard(vm.name)
        names.discard(self.rm.vm.name)
        return [self.hyp.vms[n] for n in sorted(names) if n in self.hyp.vms]

    def _objects_of(self, vm: Vm) -> list[Any]:
        objs = [*self.hyp.msgqs.values(), *self.hyp.doorbells.values()]
        return [o for o in objs if vm.name in (o.sender, o.receiver)]

    # -- lifecycle ----------------------------------------------------------------------------
    def allocate(self, caller: Vm, payload: bytes) -> bytes:
        """vmid 0: the RM picks a dynamic one and returns it; otherwise a free static
        secondary vmid of the platform list, no reply data. Anything else (in use, not in
        the list, >= 64: the RM takes no explicit dynamic vmid) is NORESOURCE (RM
        ``vm_mgnt.c`` ``vm_mgnt_handle_allocate``; facts §6.1, §11.2)."""
        self._primary_only(caller)
        vmid = VmidReq.decode(payload).vmid
        used = {vm.vmid for vm in self.hyp.vms.values()}
        if vmid == 0:
            vmid = next((v for v in range(VMID_DYNAMIC_BASE, VMID_DYNAMIC_LAST + 1)
                         if v not in used), 0)
            if not vmid:
                raise RmFailure(RmError.NORESOURCE, "no dynamic vmid left")
            reply = VmidReply(vmid=vmid).encode()
        else:
            secondary = (vmid < VMID_SECONDARY_LIMIT
                         and RM_PLATFORM_SECONDARY_VMIDS >> vmid & 1)
            if not secondary or vmid in used:
                raise RmFailure(RmError.NORESOURCE, f"vmid {vmid:#x} is not a free secondary vmid")
            reply = b""
        vm = self.hyp.create_vm(f"VM_{vmid:02x}", vmid, owner=caller.vmid)
        # A new VM starts in LOAD and nobody is told (RM vm_mgnt.c vm_mgnt_new_vm sets
        # vm_state directly, without vm_mgnt_send_state; facts §6.2).
        self.rm.set_state(vm, VmState.LOAD)
        return reply

    def config_image(self, caller: Vm, payload: bytes) -> None:
        self._primary_only(caller)
        req = VmConfigImageReq.decode(payload)
        vm = self._owned(caller, req.vmid, VmState.LOAD, VmState.RESET)
        # The parcel must exist and be lent to the new VM, else MEM_INVALID (RM
        # second_vm.c vm_creation_config_image: memparcel_lookup_by_target_vmid; facts
        # §5.2, §5.3).
        parcel = next((p for p in self.hyp.memory.parcels() if p["handle"] == req.mem_handle),
                      None)
        if parcel is None or vm.vmid not in {entry["vmid"] for entry in parcel["acl"]}:
            raise RmFailure(RmError.MEM_INVALID, f"no memparcel {req.mem_handle} for {vm.name}")
        image_no = self.hyp.memory.contents(parcel["sgl"][0]["base"] + req.image_offset)
        if not 1 <= image_no <= len(self.images):
            raise RmFailure(RmError.ARGUMENT_INVALID, "no known image in that memparcel")
        if req.auth_type not in (VmAuthType.NONE, VmAuthType.ANDROID):
            raise RmFailure(RmError.UNIMPLEMENTED, "platform authentication is not modelled")
        image = self.images[image_no - 1]
        self.config[vm.vmid] = {"image": image, "handle": req.mem_handle}
        vm.image = image["name"]
        self._status_changed(vm, VmState.INIT)

    def init(self, caller: Vm, payload: bytes) -> None:
        self._primary_only(caller)
        req = VmidReq.decode(payload)
        if req.res0:
            raise RmFailure(RmError.ARGUMENT_INVALID, "res0 must be 0")
        vm = self._owned(caller, req.vmid, VmState.INIT)
        config = self.config[vm.vmid]
        try:
            self.hyp.memory.accept(vm.vmid, config["handle"])  # the RM maps the image
        except MemError as err:
            self._status_changed(vm, VmState.INIT_FAILED)
            raise RmFailure(RmError[err.error], err.message) from None
        self._instantiate(vm, config["image"])
        self._status_changed(vm, VmState.READY)

    def _instantiate(self, vm: Vm, image: dict[str, Any]) -> None:
        """vCPUs, the RM link and the image's channels, then its program (vm_creation)."""
        from ..builder import PROGRAMS, add_vcpus, attach_rm_client  # as for scenario VMs
        add_vcpus(self.hyp, vm, image)
        create_rm_link(self.hyp, self.rm, vm)
        if image.get("psci"):
            psci.enable(self.hyp, vm, self.rm)
        owner = self.hyp.vm_by_id(vm.owner)
        params = dict(image.get("params", {}))
        if image.get("channel", True):
            depth, size = image.get("depth", 8), image.get("max_size", RM_RPC_MESSAGE_SIZE)
            tx = self.hyp.create_msgq(f"{vm.name}_to_{owner.name}", vm, owner, depth, size)
            rx = self.hyp.create_msgq(f"{owner.name}_to_{vm.name}", owner, vm, depth, size)
            params.setdefault("tx", tx.name)
            params.setdefault("rx", rx.name)
        if image.get("doorbell"):
            bell = self.hyp.create_doorbell(f"{owner.name}_bell_{vm.name}", owner, vm)
            params.setdefault("doorbell", bell.name)
        vm.guest = PROGRAMS[image.get("program", "idle")](vm, params)
        attach_rm_client(self.hyp, vm, self.rm.vm.name)

    def start(self, caller: Vm, payload: bytes) -> None:
        vm = self._owned(caller, VmidReq.decode(payload).vmid, VmState.READY)
        self._status_changed(vm, VmState.RUNNING)
        from ..builder import boot_vcpus
        for vcpu in boot_vcpus(vm):
            self.hyp.power_on(vcpu, reason="VM_START")

    def stop(self, caller: Vm, payload: bytes) -> None:
        req = VmStopReq.decode(payload)
        # VM_STOP and VM_RESET answer a non-owner with VMID_INVALID (facts §6.2).
        vm = self._owned(caller, req.vmid, VmState.RUNNING, VmState.PAUSED,
                         not_owner=RmError.VMID_INVALID)
        if req.flags & VM_STOP_FLAG_FORCE:
            self.exited(vm, VmExitType.VM_STOP_FORCED)
        else:  # graceful: only the guest is told; it is expected to exit itself
            self.rm.notify(vm.name, RmMessageId.NOTIFY_VM_SHUTDOWN,
                           NotifyVmShutdown(stop_reason=req.stop_reason).encode(),
                           {"stop_reason": req.stop_reason})

    def exit(self, caller: Vm, payload: bytes) -> None:
        req = VmExitReq.decode(payload)
        if VmState[caller.state] != VmState.RUNNING:
            raise RmFailure(RmError.VM_STATE, f"{caller.name} is {caller.state}")
        self.exited(caller, VmExitType.VM_EXIT, req.exit_flags, req.exit_code)

    def exited(self, vm: Vm, exit_type: VmExitType, flags: int = 0, code: int = 0,
               extra: tuple[int, ...] = ()) -> None:
        """vCPUs stop; state EXITED goes out as NOTIFY_VM_STATUS first, then the owner gets
        NOTIFY_VM_EXITED with the exit type (RM vm_mgnt.c: vm_mgnt_update_vm_state before
        vm_mgnt_send_exited, in vm_mgnt_handle_exit and the forced vm_mgnt_handle_stop
        alike; facts §6.2, §6.3)."""
        for vcpu in vm.vcpus:
            self.hyp.power_off(vcpu)
        self._status_changed(vm, VmState.EXITED)
        owner = self.hyp.vm_by_id(vm.owner)
        notice = NotifyVmExited.make(vm.vmid, exit_type, exit_flags=flags, exit_code=code,
                                     extra=extra)
        if owner is not None:
            self.rm.notify(owner.name, RmMessageId.NOTIFY_VM_EXITED, notice.encode(),
                           {"vm": vm.name, "exit_type": exit_type.name})

    def vcpu_halted(self, vm: Vm, capid: int):
        """A vCPU of ``vm`` raised its HALT vIRQ: read its run state with vcpu_run_check
        and report the exit (RM vm_mgnt.c ``vcpu_halt_callback``): ignored once the VM
        has exited; POWERED_OFF -> PLATFORM_OFF, PSCI_SYSTEM_RESET -> PLATFORM_RESET
        (data0 bit 63) or PSCI_SYSTEM_RESET2 with three more reason words, FAULT ->
        SOFTWARE_ERROR, anything else SOFTWARE_ERROR with UNKNOWN_ERROR (facts §6.3)."""
        if VmState[vm.state].value >= VmState.EXITED.value:
            return
        result = yield hvc("vcpu_run_check", capid=capid)
        if result.error is not ERROR_OK:
            return
        exit_type, flags, code, extra = exit_of_run_check(result.ret)
        self.exited(vm, exit_type, flags, code, extra)

    def reset(self, caller: Vm, payload: bytes) -> None:
        vm = self._owned(caller, VmidReq.decode(payload).vmid, VmState.EXITED, VmState.READY,
                         VmState.INIT_FAILED, not_owner=RmError.VMID_INVALID)
        self._status_changed(vm, VmState.RESETTING)
        self.rm.jobs.append(self._reset_stages(vm))

    def _reset_stages(self, vm: Vm):
        """The RM's asynchronous reset, stage by stage, then RESET (facts §6.2)."""
        for stage in RESET_STAGES:
            yield work(RESET_STAGE_NS)
            if stage == "DESTROY_VDEVICES":
                for obj in self._objects_of(vm):
                    if self.rm.vm.name not in (obj.sender, obj.receiver):
                        self.hyp.destroy_object(obj)
            elif stage == "RELEASE_MEMPARCELS":
                for parcel in self.hyp.memory.parcels():
                    if vm.vmid in parcel.get("accepted", []):
                        self.hyp.memory.release(vm.vmid, parcel["handle"])
            elif stage == "DESTROY_VM":
                for vcpu in vm.vcpus:
                    self.hyp.power_off(vcpu)
                if vm.vpm is not None:
                    psci.disable(self.hyp, vm, self.rm)
        self._status_changed(vm, VmState.RESET)

    def deallocate(self, caller: Vm, payload: bytes) -> None:
        vm = self._owned(caller, VmidReq.decode(payload).vmid, VmState.LOAD, VmState.RESET)
        self.rm.drop_link(vm.name)
        for obj in self._objects_of(vm):
            self.hyp.destroy_object(obj)
        self.config.pop(vm.vmid, None)
        if vm.vpm is not None:  # a VM deallocated before any reset
            psci.disable(self.hyp, vm, self.rm)
        # Deleted without a word to anyone (RM vm_mgnt.c vm_mgnt_delete_vm; facts §6.2).
        self.rm.set_state(vm, VmState.NONE)
        self.hyp.destroy_vm(vm)

    # -- queries ---------------------------------------------------------------------------------
    def get_hyp_resources(self, caller: Vm, payload: bytes) -> bytes:
        """What the *caller* holds for VM ``vmid`` (RM ``vm_config.c``
        ``vm_config_get_resource_descs``; facts §5.4).

        First, if the caller owns the VM, one VIRTUAL_CPU entry per vCPU: the owner's cap
        to it, label = vCPU index, the proxy-scheduling wakeup vIRQ (0 if none);
        partner_vmid stays 0 there, as the RM leaves it. Then the caller's own ends of its
        channels to that VM, partner_vmid = ``vmid``. Every capid is one of the caller's.
        No VM (vmid 0 included) -> ARGUMENT_INVALID; no VM config yet (LOAD) or any more
        (RESET) -> NORESOURCE. A VM the caller neither owns nor talks to gets an empty
        list, not DENIED. The RM link is not listed (a VDEV_RM_RPC, never visible here).
        vmid 0 and the vCPU entries' partner_vmid: facts §11.2.
        """
        vmid = VmidReq.decode(payload).vmid
        vm = self.hyp.vm_by_id(vmid) if vmid else None
        if vm is None:
            raise RmFailure(RmError.ARGUMENT_INVALID, f"no VM {vmid:#x}")
        if VmState[vm.state] in (VmState.LOAD, VmState.RESET):
            raise RmFailure(RmError.NORESOURCE, f"{vm.name} has no configuration")
        entries = []
        # The RM's own vCPU is listed for HLOS too (rm_caps_for_hlos).
        if vm.owner == caller.vmid or (vm.vmid == VMID_RM and caller.vmid == VMID_HLOS):
            entries += [HypResourceEntry(
                resource_type=ResourceType.VIRTUAL_CPU, label=vcpu.index,
                capid=vcpu.owner_capid, virq=vcpu.wakeup.virq if vcpu.wakeup else 0)
                for vcpu in vm.vcpus if vcpu.owner_capid is not None]
        for key, res in caller.resources.items():  # in the order the RM created them
            rtype = ResourceType.__members__.get(res["type"])
            if rtype is None or key.startswith("rm") or res.get("partner") != vm.name:
                continue
            if rtype == ResourceType.VIRTUAL_CPU:
                continue  # already listed above, for the owner
            label = res.get("label")
            entries.append(HypResourceEntry(
                resource_type=rtype, partner_vmid=vm.vmid,
                label=label if isinstance(label, int) else 0,
                capid=res["capid"], virq=res.get("virq", 0) or 0))
        return encode_hyp_resources(entries)

    def get_vmid(self, caller: Vm, payload: bytes) -> bytes:
        return VmidReply(vmid=caller.vmid).encode()

    def get_state(self, caller: Vm, payload: bytes) -> bytes:
        vmid = VmidReq.decode(payload).vmid
        vm = caller if vmid in (0, caller.vmid) else self._owned(caller, vmid)
        return VmGetStateReply(vm_state=int(VmState[vm.state])).encode()

