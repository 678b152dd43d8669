"""Runs guest operations on the vCPU that holds a pCPU, one operation per event.

Order at each step of a running vCPU: take a pending vIRQ (if no handler is active),
else run a queued user request (what a person asked the VM to do), else honour a
timer sleep, else resume the guest program. Costs of hypercalls, context switches and
vIRQ delivery are SIMULATOR values (consts.SIM_*), not measurements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .consts import SIM_CONTEXT_SWITCH_NS, SIM_HVC_COST_NS, SIM_VIRQ_DELIVERY_NS
from .vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_WFI, OP_HVC, OP_SLEEP, OP_WFI, OP_WORK

if TYPE_CHECKING:
    from .engine import Engine
    from .hypercalls import HypercallTable
    from .vcpu import Vcpu


class Executor:
    """Drives each running vCPU's generator stack through the engine."""

    def __init__(self, engine: Engine, hypercalls: HypercallTable) -> None:
        self.engine = engine
        self.hypercalls = hypercalls

    def resume(self, vcpu: Vcpu) -> None:
        """The vCPU got a pCPU: continue after the switch cost and any unfinished work."""
        delay = SIM_CONTEXT_SWITCH_NS + vcpu.busy_left
        vcpu.busy_left = 0
        self._after(vcpu, delay)

    def suspend(self, vcpu: Vcpu) -> None:
        """The vCPU lost its pCPU: remember how much of the current operation is left."""
        if vcpu.exec_entry is not None:
            self.engine.cancel(vcpu.exec_entry)
            vcpu.exec_entry = None
            vcpu.busy_left = max(0, vcpu.exec_due - self.engine.now)

    def _after(self, vcpu: Vcpu, delay: int) -> None:
        vcpu.exec_due = self.engine.now + delay
        vcpu.exec_entry = self.engine.schedule(delay, self._exec, vcpu)

    def _exec(self, vcpu: Vcpu) -> None:
        vcpu.exec_entry = None
        stack = vcpu.stack
        vic = vcpu.vic
        if len(stack) == 1 and vic.pending:
            virq = vic.acknowledge(vcpu)
            if virq is not None:
                stack.append((vcpu.vm.guest.on_virq(vcpu, virq), virq))
                vcpu.result = None
                self._after(vcpu, SIM_VIRQ_DELIVERY_NS)
                return
        if len(stack) == 1 and vcpu.user_ops:
            name, args, action = vcpu.user_ops.pop(0)
            self.hypercalls.call(vcpu, name, args, action=action)
            self._after(vcpu, SIM_HVC_COST_NS)
            return
        if len(stack) == 1 and vcpu.sleep_until > self.engine.now:
            vcpu.block(BLOCK_VCPU_WFI)
            return
        gen, virq = stack[-1]
        try:
            op = gen.send(vcpu.result)
        except StopIteration:
            stack.pop()
            if virq is not None:
                vic.eoi(vcpu, virq)
                self._after(vcpu, SIM_VIRQ_DELIVERY_NS)
            else:
                vcpu.block(BLOCK_VCPU_OFF)
            return
        self._do(vcpu, op)

    def _do(self, vcpu: Vcpu, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == OP_HVC:
            vcpu.result = self.hypercalls.call(vcpu, op[1], op[2])
            self._after(vcpu, SIM_HVC_COST_NS)
        elif kind == OP_WFI:
            vcpu.result = None
            if vcpu.vic.has_pending(vcpu.index):
                self._after(vcpu, 0)
            else:
                vcpu.wfi_reason = ""
                vcpu.block(BLOCK_VCPU_WFI)
        elif kind == OP_WORK:
            vcpu.result = None
            self._after(vcpu, op[1])
        elif kind == OP_SLEEP:
            vcpu.result = None
            vcpu.sleep_until = self.engine.now + op[1]
            self.engine.schedule(op[1], self._timer, vcpu, vcpu.sleep_until)
            vcpu.block(BLOCK_VCPU_WFI)
        else:
            raise ValueError(f"unknown guest operation {kind!r}")

    @staticmethod
    def _timer(vcpu: Vcpu, deadline: int) -> None:
        # The virtual timer: wake from WFI only if this sleep is still the current one.
        if vcpu.sleep_until == deadline:
            vcpu.sleep_until = 0
            vcpu.wfi_reason = "timer"
            vcpu.unblock(BLOCK_VCPU_WFI)
