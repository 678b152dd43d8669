"""RM memparcel requests: MEM_LEND/SHARE/DONATE, ACCEPT, RELEASE, RECLAIM, NOTIFY.

Decodes the request bodies, applies them to the hypervisor's MemoryModel with the
caller's vmid, and turns MEM_NOTIFY into the notifications the RM sends (MEM_SHARED
to borrowers, MEM_ACCEPTED/RELEASED to the owner, MEM_RECALL). MemError carries the
RM error name, which becomes the reply's error word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..mem.memparcel import MemError, TransType
from .manager import ResourceManager, RmFailure
from .mem_payloads import (
    MemAcceptFlags,
    MemAcceptReply,
    MemAcceptReq,
    MemCreateFlags,
    MemHandleFlagsReq,
    MemHandleReply,
    MemLendReq,
    MemNotifyReq,
    MemOwnerNotif,
    MemRecallNotif,
    MemSharedNotif,
)
from .messages import RmError, RmMessageId

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor
    from ..vm.vm import Vm

SANITIZE = 0x1  # bit 0 of MEM_RELEASE / MEM_RECLAIM flags


class MemService:
    """The RM's memparcel policy on top of the hypervisor's memory model."""

    def __init__(self, rm: ResourceManager, hyp: Hypervisor) -> None:
        self.rm = rm
        self.hyp = hyp
        self.memory = hyp.memory

    def handlers(self) -> dict[int, Any]:
        m = RmMessageId
        return {
            m.MEM_LEND: lambda vm, p: self.create(vm, p, TransType.LEND),
            m.MEM_SHARE: lambda vm, p: self.create(vm, p, TransType.SHARE),
            m.MEM_DONATE: lambda vm, p: self.create(vm, p, TransType.DONATE),
            m.MEM_ACCEPT: self.accept,
            m.MEM_RELEASE: self.release,
            m.MEM_RECLAIM: self.reclaim,
            m.MEM_NOTIFY: self.notify,
        }

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MemError as err:
            raise RmFailure(RmError[err.error], err.message) from None

    def create(self, caller: Vm, payload: bytes, trans: TransType) -> bytes:
        req = MemLendReq.decode(payload)
        make = {TransType.LEND: self.memory.lend, TransType.SHARE: self.memory.share,
                TransType.DONATE: self.memory.donate}[trans]
        handle = self._apply(make, caller.vmid, list(req.acl), list(req.sgl), req.label,
                             bool(req.flags & MemCreateFlags.SANITIZE))
        return MemHandleReply(handle=handle).encode()

    def accept(self, caller: Vm, payload: bytes) -> bytes:
        req = MemAcceptReq.decode(payload)
        ipa_base = req.sgl[0][0] if req.sgl else None
        ranges = self._apply(self.memory.accept, caller.vmid, req.handle,
                             sanitize=bool(req.flags & MemAcceptFlags.SANITIZE),
                             ipa_base=ipa_base)
        # An empty SGL lets the RM pick the IPAs, and the reply says where they are.
        return b"" if req.sgl else MemAcceptReply(sgl=ranges).encode()

    def release(self, caller: Vm, payload: bytes) -> None:
        req = MemHandleFlagsReq.decode(payload)
        self._apply(self.memory.release, caller.vmid, req.handle, bool(req.flags & SANITIZE))

    def reclaim(self, caller: Vm, payload: bytes) -> None:
        req = MemHandleFlagsReq.decode(payload)
        self._apply(self.memory.reclaim, caller.vmid, req.handle, bool(req.flags & SANITIZE))

    def notify(self, caller: Vm, payload: bytes) -> None:
        req = MemNotifyReq.decode(payload)
        out = self._apply(self.memory.notify, caller.vmid, req.handle, req.flags,
                          list(req.vmids), req.mem_info_tag)
        for vmid, name, body in out:
            target = self.hyp.vm_by_id(vmid)
            if target is None:
                continue
            if name == "MEM_SHARED":
                data = MemSharedNotif.from_payload(body).encode()
            elif name == "MEM_RECALL":
                data = MemRecallNotif(handle=body["handle"],
                                      mem_info_tag=body["mem_info_tag"]).encode()
            else:
                data = MemOwnerNotif(handle=body["handle"], vmid=body["vmid"],
                                     mem_info_tag=body["mem_info_tag"]).encode()
            self.rm.notify(target.name, RmMessageId[name], data,
                           {"handle": body["handle"], "from": caller.name})
