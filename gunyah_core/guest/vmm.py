"""A proxy VMM: the owner's loop around ``vcpu_run``, as Linux's gunyah_vcpu does.

The cap to run with and the wakeup vIRQ come from the RM, as Linux gets them: one
VM_GET_HYP_RESOURCES for the peer VM, whose VIRTUAL_CPU entry with label 0 (vCPU 0)
carries the owner's capid and the proxy-scheduling wakeup vIRQ (facts §5.4; Linux
``vm_mgr.c`` ``gunyah_vm_start``, ``gunyah_vcpu.c`` resource ticket). READY means "my
own slice ended or I have an interrupt: call again"; EXPECTS_WAKEUP and POWERED_OFF mean
"wait for the wakeup vIRQ, then call again" (facts §7.2). The owner's own work (its
vIRQ handlers) runs in between. ADDRSPACE_PAGE_FAULT (7) means "give the page at data0,
then call again with resume action RETRY": the owner donates a page of its own into the
guest's extent and maps it, as Linux vm_mgr_mem.c ``gunyah_vm_provide_folio`` does
(facts §10.2).
"""

from __future__ import annotations

from typing import Any

from ..consts import (
    MAP_ATTR_MEMTYPE_NORMAL_WB,
    MAP_ATTR_MEMTYPE_SHIFT,
    AddrspaceMapFlags,
    Error,
    MemextentDonateType,
    VcpuRunResume,
)
from ..mem.demand_paging import ACCESS, EXTENT_NAMES, LEND
from ..mem.demand_paging import LABEL_GUEST_PRIVATE as G_PRIV
from ..mem.demand_paging import LABEL_GUEST_SHARED as G_SHARED
from ..mem.demand_paging import LABEL_HOST_PRIVATE as H_PRIV
from ..mem.demand_paging import LABEL_HOST_SHARED as H_SHARED
from ..mem.memparcel import PAGE_SIZE
from ..rm.messages import ResourceType, RmError, RmMessageId
from ..rm.payloads import VmidReq, decode_hyp_resources
from .programs import WFI, Guest, hvc

CALL_AGAIN = {"READY", "BLOCKED"}
PAGE_FAULT = "ADDRSPACE_PAGE_FAULT"
# Linux vm_mgr_mem.c gunyah_vm_provide_folio: (donate type, from, to, map flag) per transfer.
PROVIDE = {True: (MemextentDonateType.TO_PROTECTED, H_PRIV, G_PRIV, AddrspaceMapFlags.PRIVATE),
           False: (MemextentDonateType.TO_SIBLING, H_SHARED, G_SHARED, AddrspaceMapFlags.VMMIO)}
VCPU_LABEL = 0  # Linux's vCPU ticket label = vCPU index; this VMM runs vCPU 0


class ProxyVmm(Guest):
    """Runs vCPU 0 of the VM named ``peer`` on its own vCPU's time."""

    program = "vmm"

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.peer = params.get("peer")
        self.target: dict[str, int] | None = None  # capid and wakeup vIRQ, from the RM
        self.wait_wakeup = False
        self.runs: list[str] = []
        self.given: list[tuple[int, int]] = []  # (guest IPA, physical page) served
        # The pages it may still give on demand (its own RAM; builder.py picks them).
        demand = vm.resources.get(f"demand:{self.peer}")
        self.pool: list[int] = list(demand["pool"]) if demand else []

    def _ask_rm(self):
        """VM_GET_HYP_RESOURCES(peer): the VIRTUAL_CPU entry of vCPU 0, if the RM has one.

        A bare machine without a Resource Manager (hypervisor unit tests) has nobody to
        ask: there the VMM uses the proxy cap the hypervisor recorded for its owner."""
        if self.rm is None:
            return next(({"capid": r["capid"], "virq": r["virq"]}
                         for key, r in self.vm.resources.items()
                         if key.startswith("proxy:") and r["partner"] == self.peer), None)
        peer = self.hyp.vms.get(self.peer) if self.peer else None
        if peer is None:
            return None
        error, data = yield from self.rm.call(RmMessageId.VM_GET_HYP_RESOURCES,
                                              VmidReq(vmid=peer.vmid).encode(),
                                              {"vmid": peer.vmid})
        if error is not RmError.OK:
            self.runs.append(error.name)
            return None
        entry = next((e for e in decode_hyp_resources(data)
                      if e.resource_type == ResourceType.VIRTUAL_CPU
                      and e.label == VCPU_LABEL), None)
        return None if entry is None else {"capid": entry.capid, "virq": entry.virq}

    def run(self, vcpu):
        self.target = yield from self._ask_rm()
        if self.target is None:
            yield from self.serve_jobs()
        resume: dict[str, int] = {}
        while True:
            result = yield hvc("vcpu_run", capid=self.target["capid"], **resume)
            resume = {}
            if result.error is not Error.OK:
                self.runs.append(result.error.name)
                yield WFI
                continue
            state = result.ret.get("state", "READY")
            self.runs.append(state)
            if state == PAGE_FAULT:
                action = yield from self.provide(result.ret["data0"])
                resume = {"resume1": int(action)}
            elif state not in CALL_AGAIN:
                self.wait_wakeup = True
                while self.wait_wakeup:
                    yield WFI

    def provide(self, addr: int):
        """Give the guest the page at IPA ``addr``: donate one of this VM's pages into the
        guest's extent, map it there, and return the resume action (RETRY; FAULT when
        there is no page to give or a call fails, so the guest gets an abort)."""
        dp, pool = self.vm.resources.get(f"demand:{self.peer}"), self.pool
        if not dp or not pool or not dp["base"] <= addr < dp["base"] + dp["size"]:
            return VcpuRunResume.FAULT
        lend = dp["transfer"] == LEND
        kind, frm, to, flag = PROVIDE[lend]
        caps, pa, ipa = dp["caps"], pool[0], addr - addr % PAGE_SIZE
        done = yield hvc("memextent_donate", options=int(kind), capid=caps[EXTENT_NAMES[frm]],
                         to=caps[EXTENT_NAMES[to]], offset=pa, size=PAGE_SIZE)
        if done.error is not Error.OK:
            return VcpuRunResume.FAULT
        pool.pop(0)
        access = ACCESS[(dp["transfer"], dp["writable"])]
        done = yield hvc("addrspace_map", capid=caps["addrspace"], memextent=caps[EXTENT_NAMES[to]],
                         base=ipa, map_attrs=int(access)
                         | MAP_ATTR_MEMTYPE_NORMAL_WB << MAP_ATTR_MEMTYPE_SHIFT,
                         map_flags=int(AddrspaceMapFlags.PARTIAL | flag), offset=pa,
                         size=PAGE_SIZE)
        if done.error is not Error.OK:
            return VcpuRunResume.FAULT
        self.given.append((ipa, pa))
        return VcpuRunResume.RETRY

    def handle_virq(self, vcpu, virq: int):
        if self.target is not None and virq == self.target["virq"]:
            self.wait_wakeup = False
        return
        yield
