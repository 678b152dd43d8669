"""The primary VM's VM manager: what Linux's gunyah_vm_mgr asks of the RM.

Start (facts §6.4): VM_ALLOCATE(0) -> lend the image region as a memparcel ->
VM_CONFIG_IMAGE -> VM_INIT -> VM_GET_HYP_RESOURCES -> VM_START. Teardown in Linux's
order (``vm_mgr.c`` ``_gunyah_vm_put``): VM_STOP (forced) if running, wait until it is
not -> MEM_RECLAIM of the lent memory -> VM_RESET, wait for the RESET status ->
VM_DEALLOCATE. Each step is a real RPC over HLOS's RM link, run as a job of HLOS's
vCPU so a student can step through it and read the RM's answer to each.
"""

from __future__ import annotations

from typing import Any

from ..guest.programs import WFI, Guest, mem
from ..mem.memparcel import PAGE_SIZE, PgtableAccess
from .mem_payloads import MemHandleFlagsReq, MemHandleReply, MemLendReq
from .messages import (
    VM_STOP_FLAG_FORCE,
    VM_STOP_REASON_FORCE_STOP,
    ResourceType,
    RmError,
    RmMessageId,
    VmAuthType,
    VmState,
)
from .payloads import (
    HypResourceEntry,
    NotifyVmExited,
    NotifyVmStatus,
    VmConfigImageReq,
    VmGetStateReply,
    VmidReply,
    VmidReq,
    VmStopReq,
    decode_hyp_resources,
)

IMAGE_PAGES = 4
DEFAULT_STEP_NS = 100_000  # a pause between boot steps, so they can be watched
RWX = int(PgtableAccess.RWX)
RESETTABLE = {VmState.EXITED.name, VmState.READY.name, VmState.INIT_FAILED.name}


class VmManagerProgram(Guest):
    """HLOS's program: boots the scenario's images, then serves user requests."""

    program = "vm-manager"
    uses_timer = True  # it waits between VM creation steps on its timer

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.step_ns = params.get("step_ns", DEFAULT_STEP_NS)
        self.reap = params.get("reap", False)
        self.status: dict[int, str] = {}
        self.parcels: dict[int, int] = {}  # vmid -> image memparcel handle
        # vmid -> the VM_GET_HYP_RESOURCES entries: HLOS's own capids for that VM
        self.hyp_resources: dict[int, tuple[HypResourceEntry, ...]] = {}
        self.log: list[str] = []
        self._next_page = 0
        for entry in params.get("boot", []):
            self.jobs.append(self.create_vm(entry["image"], start=True))

    def run(self, vcpu):
        yield from self.serve_jobs()

    def submit(self, job) -> None:
        """A user request: it runs on HLOS's vCPU after the jobs already queued."""
        self.jobs.append(job)

    def on_rm_notification(self, message):
        if message.msg_id == RmMessageId.NOTIFY_VM_STATUS:
            note = NotifyVmStatus.decode(message.payload)
            self.status[note.vmid] = VmState(note.vm_status).name
        elif message.msg_id == RmMessageId.NOTIFY_VM_EXITED:
            note = NotifyVmExited.decode(message.payload)
            self.status[note.vmid] = VmState.EXITED.name
            if self.reap:
                self.jobs.append(self.destroy_vm(note.vmid))
        yield from super().on_rm_notification(message)

    def _image_region(self) -> int:
        base = self.hyp.memory.view(self.vm.vmid)[0]["base"] + self._next_page * PAGE_SIZE
        self._next_page += IMAGE_PAGES
        return base

    def _call(self, msg_id: RmMessageId, body: Any, **fields: Any):
        error, data = yield from self.rm.call(msg_id, body.encode(), fields or None)
        if error is not RmError.OK:
            self.log.append(f"{msg_id.name}: {error.name}")
        return error, data

    # -- jobs -------------------------------------------------------------------------------
    def create_vm(self, image_name: str, start: bool):
        images = [image["name"] for image in self.hyp.images]
        if image_name not in images:
            self.log.append(f"no image {image_name!r}")
            return
        error, data = yield from self._call(RmMessageId.VM_ALLOCATE, VmidReq(vmid=0), vmid=0)
        if error is not RmError.OK:
            return
        vmid = VmidReply.decode(data).vmid
        base = self._image_region()
        yield mem("W", base, images.index(image_name) + 1)  # "load" the image
        lend = MemLendReq(acl=[(vmid, RWX)], sgl=[(base, IMAGE_PAGES * PAGE_SIZE)])
        error, data = yield from self._call(RmMessageId.MEM_LEND, lend, vmid=vmid,
                                            base=base, size=IMAGE_PAGES * PAGE_SIZE)
        if error is not RmError.OK:
            return
        handle = MemHandleReply.decode(data).handle
        self.parcels[vmid] = handle
        config = VmConfigImageReq(vmid=vmid, auth_type=VmAuthType.NONE, mem_handle=handle,
                                  image_offset=0, image_size=IMAGE_PAGES * PAGE_SIZE,
                                  dtb_offset=0, dtb_size=0)
        error, _ = yield from self._call(RmMessageId.VM_CONFIG_IMAGE, config, vmid=vmid,
                                         image=image_name, handle=handle)
        if error is not RmError.OK:
            return
        yield from self.timer_sleep(self.vm.vcpus[0], self.step_ns)  # jobs run on vCPU 0
        error, _ = yield from self._call(RmMessageId.VM_INIT, VmidReq(vmid=vmid), vmid=vmid)
        if error is not RmError.OK:
            return
        # Linux learns its capids for the new VM only from this reply (vm_mgr.c
        # gunyah_vm_start -> gunyah_rm_get_hyp_resources -> gunyah_vm_add_resource):
        # its caps to the vCPUs, then its ends of the channels (facts §5.4).
        error, data = yield from self._call(RmMessageId.VM_GET_HYP_RESOURCES,
                                            VmidReq(vmid=vmid), vmid=vmid)
        if error is RmError.OK:
            self.hyp_resources[vmid] = decode_hyp_resources(data)
        if start:
            yield from self.timer_sleep(self.vm.vcpus[0], self.step_ns)
            yield from self.start_vm(vmid)

    def start_vm(self, vmid: int):
        yield from self._call(RmMessageId.VM_START, VmidReq(vmid=vmid), vmid=vmid)

    def stop_vm(self, vmid: int, force: bool):
        stop = VmStopReq(vmid=vmid, flags=VM_STOP_FLAG_FORCE if force else 0,
                         stop_reason=VM_STOP_REASON_FORCE_STOP if force else 0)
        yield from self._call(RmMessageId.VM_STOP, stop, vmid=vmid, force=force)

    def reclaim(self, vmid: int):
        """MEM_RECLAIM of the image parcel lent to ``vmid`` on its own (a fault to try):
        the RM answers MEM_INUSE while the guest has it accepted (facts §8.3)."""
        yield from self._reclaim(vmid)

    def reset_vm(self, vmid: int):
        yield from self._call(RmMessageId.VM_RESET, VmidReq(vmid=vmid), vmid=vmid)

    def destroy_vm(self, vmid: int):
        """Linux's teardown: stop if running, reclaim, reset and wait for RESET, deallocate.

        Linux reclaims before the reset, expecting the RM to let it take back a stopped
        VM's memory (``_gunyah_vm_put``: "RM will let us reclaim all the memory"). The
        public RM refuses MEM_INUSE while the guest still has the parcel accepted, which it
        has from VM_INIT until the reset's RELEASE_MEMPARCELS stage (RM ``memparcel.c``
        ``memparcel_do_reclaim``, ``vm_mgnt.c`` ``vm_reset_callback``). The model follows
        the RM and shows that answer; then, the simulator's choice where Linux would keep
        the pages for good, it asks once more after RESET (facts §6.4, §11)."""
        if vmid not in self.status:  # a VM created before this manager ran: ask the RM
            error, data = yield from self._call(RmMessageId.VM_GET_STATE, VmidReq(vmid=vmid),
                                                vmid=vmid)
            if error is RmError.OK:
                self.status[vmid] = VmState(VmGetStateReply.decode(data).vm_state).name
        if self.status.get(vmid) == VmState.RUNNING.name:
            yield from self.stop_vm(vmid, force=True)
            while self.status.get(vmid) == VmState.RUNNING.name:
                yield WFI
        yield from self._reclaim(vmid)
        if self.status.get(vmid) in RESETTABLE:  # Linux resets only from these
            error, _ = yield from self._call(RmMessageId.VM_RESET, VmidReq(vmid=vmid),
                                             vmid=vmid)
            while error is RmError.OK and self.status.get(vmid) != VmState.RESET.name:
                yield WFI
            yield from self._reclaim(vmid)  # refused before the reset: released now
        yield from self._call(RmMessageId.VM_DEALLOCATE, VmidReq(vmid=vmid), vmid=vmid)

    def capid_for(self, vmid: int, rtype: ResourceType, label: int = 0) -> int | None:
        """HLOS's capid for VM ``vmid``'s resource (type, label), as Linux matches a
        resource ticket (``gunyah_vm_add_resource``); None if the RM did not report one."""
        return next((e.capid for e in self.hyp_resources.get(vmid, ())
                     if e.resource_type == rtype and e.label == label), None)

    def _reclaim(self, vmid: int):
        """MEM_RECLAIM of the image parcel lent to ``vmid``, if it is still lent."""
        handle = self.parcels.get(vmid)
        if handle is None:
            return
        error, _ = yield from self._call(RmMessageId.MEM_RECLAIM,
                                         MemHandleFlagsReq(handle=handle), handle=handle)
        if error is not RmError.MEM_INUSE:  # done, or nothing left to ask for
            self.parcels.pop(vmid, None)
