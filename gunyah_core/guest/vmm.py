"""A proxy VMM: the owner's loop around ``vcpu_run``, as Linux's gunyah_vcpu does.

The cap to run with and the wakeup vIRQ come from the RM, as Linux gets them: one
VM_GET_HYP_RESOURCES for the peer VM, whose VIRTUAL_CPU entry with label 0 (vCPU 0)
carries the owner's capid and the proxy-scheduling wakeup vIRQ (facts §5.4; Linux
``vm_mgr.c`` ``gunyah_vm_start``, ``gunyah_vcpu.c`` resource ticket). READY means "my
own slice ended or I have an interrupt: call again"; EXPECTS_WAKEUP and POWERED_OFF mean
"wait for the wakeup vIRQ, then call again" (facts §7.2). The owner's own work (its
vIRQ handlers) runs in between.
"""

from __future__ import annotations

from typing import Any

from ..consts import Error
from ..rm.messages import ResourceType, RmError, RmMessageId
from ..rm.payloads import VmidReq, decode_hyp_resources
from .programs import WFI, Guest, hvc

CALL_AGAIN = {"READY", "BLOCKED"}
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
        while True:
            result = yield hvc("vcpu_run", capid=self.target["capid"])
            if result.error is not Error.OK:
                self.runs.append(result.error.name)
                yield WFI
                continue
            state = result.ret.get("state", "READY")
            self.runs.append(state)
            if state not in CALL_AGAIN:
                self.wait_wakeup = True
                while self.wait_wakeup:
                    yield WFI

    def handle_virq(self, vcpu, virq: int):
        if self.target is not None and virq == self.target["virq"]:
            self.wait_wakeup = False
        return
        yield
