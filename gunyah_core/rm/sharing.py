"""Guest programs that share memory through the RM: a lender and a borrower.

The lender lends (or shares) part of its memory with a peer: MEM_LEND/MEM_SHARE,
then MEM_NOTIFY(SHARED) so the RM sends the peer MEM_SHARED. After a lend the lender's
own access faults at once (facts §8.5). The borrower accepts (the RM picks the IPAs),
tells the owner with MEM_NOTIFY(ACCEPTED), reads, and later releases; the lender's
first reclaim while the page is borrowed is refused with MEM_INUSE.
"""

from __future__ import annotations

from typing import Any

from ..consts import Error
from ..guest.programs import WFI, Guest, hvc, mem, work
from ..mem.memparcel import PAGE_SIZE, MemNotifyFlags, PgtableAccess
from .mem_payloads import (
    MemAcceptReply,
    MemAcceptReq,
    MemHandleFlagsReq,
    MemHandleReply,
    MemLendReq,
    MemNotifyReq,
    MemSharedNotif,
)
from .messages import RmError, RmMessageId

MESSAGE_VALUE = 0x600D  # what the lender writes for the borrower to read
DEFAULT_HOLD_NS = 300_000
RW = int(PgtableAccess.R | PgtableAccess.W)


class MemLender(Guest):
    """Lends (or shares) ``pages`` of its memory with ``peer``, then takes them back."""

    program = "mem-lender"

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.peer = params.get("peer")
        self.pages = params.get("pages", 1)
        self.share = params.get("share", False)
        self.bell = self.first("DOORBELL_SRC", params.get("doorbell"))
        self.released = False
        self.accepted = False

    def run(self, vcpu):
        peer = self.hyp.vms[self.peer]
        base = self.hyp.memory.view(self.vm.vmid)[0]["base"]
        yield mem("W", base, MESSAGE_VALUE)
        acl = [(peer.vmid, RW)] + ([(self.vm.vmid, RW)] if self.share else [])
        msg_id = RmMessageId.MEM_SHARE if self.share else RmMessageId.MEM_LEND
        request = MemLendReq(acl=acl, sgl=[(base, self.pages * PAGE_SIZE)])
        error, data = yield from self.rm.call(msg_id, request.encode(),
                                              {"to": peer.name, "base": base})
        if error is not RmError.OK:
            return
        handle = MemHandleReply.decode(data).handle
        notify = MemNotifyReq(handle=handle, flags=MemNotifyFlags.SHARED, vmids=[peer.vmid])
        yield from self.rm.call(RmMessageId.MEM_NOTIFY, notify.encode(), {"flags": "SHARED"})
        yield mem("R", base)  # a lent page faults at once; a shared one does not
        while not self.accepted:
            yield WFI
        if self.bell is not None:  # new data in the shared page, then the doorbell
            yield mem("W", base, MESSAGE_VALUE + 1)
            yield hvc("doorbell_send", capid=self.bell["capid"], new_flags=1)
        reclaim = MemHandleFlagsReq(handle=handle).encode()
        yield from self.rm.call(RmMessageId.MEM_RECLAIM, reclaim, {"handle": handle})  # MEM_INUSE
        while not self.released:
            yield WFI
        yield from self.rm.call(RmMessageId.MEM_RECLAIM, reclaim, {"handle": handle})
        yield mem("R", base)  # ours again

    def on_rm_notification(self, message):
        if message.msg_id == RmMessageId.MEM_ACCEPTED:
            self.accepted = True
        elif message.msg_id == RmMessageId.MEM_RELEASED:
            self.released = True
        yield from super().on_rm_notification(message)


class MemBorrower(Guest):
    """Accepts what is shared with it, reads it, holds it a while, then releases it."""

    program = "mem-borrower"
    uses_timer = True  # it holds the borrowed memory for a while, asleep on its timer

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.hold_ns = params.get("period_ns", DEFAULT_HOLD_NS)
        self.bell = self.first("DOORBELL", params.get("doorbell"))
        self.mapped: list[tuple[int, int]] = []
        self.values: list[int | None] = []

    def run(self, vcpu):
        yield from self.serve_jobs()

    def on_rm_notification(self, message):
        if message.msg_id == RmMessageId.MEM_SHARED:
            self.jobs.append(self.borrow(MemSharedNotif.decode(message.payload)))
        yield from super().on_rm_notification(message)

    def handle_virq(self, vcpu, virq: int):
        if self.bell is not None and virq == self.bell["virq"]:
            result = yield hvc("doorbell_receive", capid=self.bell["capid"], clear_flags=1)
            if result.error is Error.OK and self.mapped:
                self.values.append((yield mem("R", self.mapped[0][0])))

    def borrow(self, shared: MemSharedNotif):
        accept = MemAcceptReq(handle=shared.handle, trans_type=shared.trans_type)
        error, data = yield from self.rm.call(RmMessageId.MEM_ACCEPT, accept.encode(),
                                              {"handle": shared.handle})
        if error is not RmError.OK:
            return
        self.mapped = list(MemAcceptReply.decode(data).sgl or [])
        owner = self.hyp.vm_by_id(shared.owner_vmid)
        tell = MemNotifyReq(handle=shared.handle, flags=MemNotifyFlags.ACCEPTED)
        yield from self.rm.call(RmMessageId.MEM_NOTIFY, tell.encode(),
                                {"flags": "ACCEPTED", "to": owner.name if owner else "?"})
        self.values.append((yield mem("R", self.mapped[0][0])))
        yield mem("X", self.mapped[0][0])  # the ACL gave RW: an instruction fetch faults
        yield work(self.hold_ns // 2)
        yield from self.timer_sleep(self.vm.vcpus[0], self.hold_ns // 2)  # a job: vCPU 0
        release = MemHandleFlagsReq(handle=shared.handle).encode()
        yield from self.rm.call(RmMessageId.MEM_RELEASE, release, {"handle": shared.handle})
        self.mapped = []
        tell = MemNotifyReq(handle=shared.handle, flags=MemNotifyFlags.RELEASED)
        yield from self.rm.call(RmMessageId.MEM_NOTIFY, tell.encode(), {"flags": "RELEASED"})

