"""Runs guest operations on the vCPU that holds a pCPU, one operation per event.

Order at each step of a running vCPU: take a pending vIRQ (if no handler is active),
else run a queued user request (what a person asked the VM to do), else resume the
guest program. A guest that waits arms its virtual timer and executes WFI
(vm/vtimer.py): there is no other way to sleep. Costs of hypercalls, context switches and
vIRQ delivery are SIMULATOR values (consts.SIM_*), not measurements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..consts import (
    SIM_CONTEXT_SWITCH_NS,
    SIM_HVC_COST_NS,
    SIM_MEM_ACCESS_NS,
    SIM_SYSREG_ACCESS_NS,
    SIM_VIRQ_DELIVERY_NS,
    VIRTIO_MMIO_PAGE_SIZE,
)
from ..mem import demand_paging
from ..vm import psci
from ..vm.vcpu import (
    BLOCK_VCPU_OFF,
    BLOCK_VCPU_WFI,
    OP_HVC,
    OP_MEM,
    OP_MRS,
    OP_MSR,
    OP_PSCI,
    OP_WFI,
    OP_WORK,
)
from ..vm.vcpu_run import PAGE_FAULT_BLOCK
from ..vm.virtio_mmio import reg_name
from .trace import EventKind

if TYPE_CHECKING:
    from ..vm.vcpu import Vcpu
    from .engine import Engine
    from .hypercalls import HypercallTable


_GO_ON = object()  # nothing to do between operations: resume the guest program


class Executor:
    """Drives each running vCPU's generator stack through the engine."""

    def __init__(self, engine: Engine, hypercalls: HypercallTable) -> None:
        self.engine = engine
        self.hypercalls = hypercalls
        self._call = hypercalls.call
        self._exec_action = self._exec  # one bound method for every schedule()

    def resume(self, vcpu: Vcpu) -> None:
        """The vCPU got a pCPU: continue after the switch cost and any unfinished work."""
        delay = SIM_CONTEXT_SWITCH_NS + vcpu.busy_left
        vcpu.busy_left = 0
        vcpu.exec_due = self.engine.now + delay
        action = self._exec_action if vcpu.page_fault is None else self._retry
        vcpu.exec_entry = self.engine.schedule(delay, action, vcpu)

    def _retry(self, vcpu: Vcpu) -> None:
        """The owner resumed a vCPU stopped by a page fault: the access is executed again
        (RETRY) or an abort is injected (FAULT), then the guest program goes on."""
        access, addr, value = vcpu.page_fault
        vcpu.page_fault = None
        if vcpu.fault_abort:
            vcpu.fault_abort = False
            vcpu.result = None if access == "R" else False
            self._trace_access(vcpu, access, addr, value, vcpu.result)
        else:
            vcpu.result = self._memory_access(vcpu, access, addr, value)
            if vcpu.page_fault is not None:  # faulted again: the run has ended
                return
        vcpu.exec_due = self.engine.now + SIM_MEM_ACCESS_NS
        vcpu.exec_entry = self.engine.schedule(SIM_MEM_ACCESS_NS, self._exec_action, vcpu)

    def suspend(self, vcpu: Vcpu) -> None:
        """The vCPU lost its pCPU: remember how much of the current operation is left."""
        if vcpu.exec_entry is not None:
            self.engine.cancel(vcpu.exec_entry)
            vcpu.exec_entry = None
            vcpu.busy_left = max(0, vcpu.exec_due - self.engine.now)

    def _exec(self, vcpu: Vcpu) -> None:
        """Run the vCPU's next operation; then, inline, the ones after it for as long as
        each would be the very next engine event anyway (``Engine.run_ahead``).

        The step is written out here rather than called: this loop is the model's
        inner loop, run about five times per message.
        """
        vcpu.exec_entry = None
        engine = self.engine
        sched = vcpu.sched
        run_ahead = engine.run_ahead
        call = self._call
        while True:
            stack = vcpu.stack
            delay = self._between_ops(vcpu) if len(stack) == 1 else _GO_ON
            if delay is _GO_ON:
                if not stack:
                    return  # powered off
                gen, virq = stack[-1]
                try:
                    op = gen.send(vcpu.result)
                except StopIteration:
                    delay = self._returned(vcpu, virq)
                else:
                    if op[0] == OP_HVC:
                        vcpu.result = call(vcpu, op[1], op[2])
                        delay = SIM_HVC_COST_NS
                    else:
                        vcpu.result = None
                        delay = self._operation(vcpu, op)
            if delay is None:
                return  # blocked, powered off or finished: a wake will resume it
            if sched.current is not vcpu:
                vcpu.busy_left = delay  # preempted by what it just did
                return
            if not run_ahead(delay):
                vcpu.exec_due = engine.now + delay
                vcpu.exec_entry = engine.schedule(delay, self._exec_action, vcpu)
                return

    def _between_ops(self, vcpu: Vcpu) -> int | None | object:
        """In the main flow, before its next operation: take a pending vIRQ, else run a
        user request; ``_GO_ON`` when neither applies."""
        vic = vcpu.vic
        if vic.pending or vcpu.ppi.pending:
            virq = vic.acknowledge(vcpu)
            if virq is not None:
                vcpu.stack.append((vcpu.vm.guest.on_virq(vcpu, virq), virq))
                # The interrupted flow gets its own result back after the handler.
                vcpu.saved_result, vcpu.result = vcpu.result, None
                return SIM_VIRQ_DELIVERY_NS
        if vcpu.user_ops:
            name, args, action = vcpu.user_ops.pop(0)
            self._call(vcpu, name, args, action=action)
            return SIM_HVC_COST_NS
        return _GO_ON

    @staticmethod
    def _returned(vcpu: Vcpu, virq: int | None) -> int | None:
        """The generator on top finished: a handler is EOId, the main program powers off."""
        vcpu.stack.pop()
        if virq is None:
            vcpu.block(BLOCK_VCPU_OFF)
            return None
        vcpu.vic.eoi(vcpu, virq)
        vcpu.result = vcpu.saved_result
        return SIM_VIRQ_DELIVERY_NS

    def _operation(self, vcpu: Vcpu, op: tuple) -> int | None:
        """Every operation but a hypercall: its cost, or None when it blocks the vCPU."""
        kind = op[0]
        if kind == OP_WFI:
            if vcpu.vic.has_pending_for(vcpu):
                return 0
            vcpu.wfi_reason = ""
            vcpu.vtimer.on_wfi()
            vcpu.block(BLOCK_VCPU_WFI)
            return None
        if kind == OP_WORK:
            return op[1]
        if kind == OP_MEM:
            vcpu.result = self._memory_access(vcpu, op[1], op[2], op[3])
            return SIM_MEM_ACCESS_NS if vcpu.page_fault is None else None
        if kind == OP_PSCI:  # an SMC to the vPM group; its cost is a hypercall's
            vcpu.result = psci.call(self.hypercalls.hyp, vcpu, op[1], op[2])
            return SIM_HVC_COST_NS
        if kind == OP_MSR:
            vcpu.vtimer.write(op[1], op[2])
            return SIM_SYSREG_ACCESS_NS
        if kind == OP_MRS:
            vcpu.result = vcpu.vtimer.read(op[1])
            return SIM_SYSREG_ACCESS_NS
        raise ValueError(f"unknown guest operation {kind!r}")

    def _memory_access(self, vcpu: Vcpu, access: str, addr: int, value: int) -> int | bool | None:
        """Through the VM's stage-2: a fault is traced and an abort goes back to the guest,
        except a proxy vCPU's fault in its demand-paging window, which stops it: its
        owner's vcpu_run returns ADDRSPACE_PAGE_FAULT (facts §7.2, §10.2)."""
        hyp = self.hypercalls.hyp
        vmid = vcpu.vm.vmid
        if hyp.vdevices:
            emulated = hyp.vdevice_access(vcpu, addr, access, value)
            if emulated is not None:
                ok, result = emulated
                if access == "R" and hyp.trace.on:  # a write is traced as virtio.write
                    dev = hyp.vdevice_at(vmid, addr)
                    hyp.trace.emit(EventKind.MEM_ACCESS, vm=vcpu.vm.name, vcpu=vcpu.id,
                                   addr=addr, access=access, ok=ok, value=result,
                                   device=dev.name, reg=reg_name(addr % VIRTIO_MMIO_PAGE_SIZE))
                return result
        if hyp.demand and demand_paging.faults_to_owner(hyp, vcpu, addr):
            vcpu.page_fault = (access, addr, value)
            if hyp.trace.on:
                hyp.trace.emit(EventKind.MEM_PAGE_FAULT, vm=vcpu.vm.name, vcpu=vcpu.id,
                               addr=addr, access=access,
                               owner=vcpu.proxy_owner.vm.name)
            vcpu.block(PAGE_FAULT_BLOCK)
            return None
        if access == "R":
            result = hyp.memory.read(vmid, addr)
        elif access == "W":
            result = hyp.memory.write(vmid, addr, value)
        else:
            result = hyp.memory.access(vmid, addr, access)
        self._trace_access(vcpu, access, addr, value, result)
        return result

    def _trace_access(self, vcpu: Vcpu, access: str, addr: int, value: int,
                      result: int | bool | None) -> None:
        trace = self.hypercalls.hyp.trace
        if trace.on:
            ok = result is not None and result is not False
            trace.emit(EventKind.MEM_ACCESS, vm=vcpu.vm.name, vcpu=vcpu.id, addr=addr,
                       access=access, ok=ok,
                       value=result if access == "R" else value if access == "W" else None)
