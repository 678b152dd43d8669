"""vCPU threads: priority, timeslice, affinity, block reasons, and what they execute.

A vCPU is runnable iff none of its block reasons is set (facts §7.1: vcpu_off,
vcpu_wfi, vcpu_run, ...). What it executes is a guest program: a generator of
operations (hypercall, WFI, work, a timer register access). One engine event runs
one operation, so a
student can step through a guest hypercall by hypercall. A pending vIRQ is taken
before the next operation; its handler runs to completion, then the vIRQ is EOId.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..consts import (
    SCHEDULER_DEFAULT_PRIORITY,
    SCHEDULER_DEFAULT_TIMESLICE_NS,
    ObjectType,
)
from ..core.kobject import KObject
from .vcpu_run import PAGE_FAULT_BLOCK, VcpuRunState

if TYPE_CHECKING:
    from ..core.scheduler import PcpuScheduler
    from ..core.trace import Trace
    from .vic import PrivateBank, Vic
    from .vtimer import VirtualTimer

# Block reasons (hyp scheduler block flags, by their Gunyah names).
BLOCK_VCPU_OFF = "vcpu_off"
BLOCK_VCPU_WFI = "vcpu_wfi"
BLOCK_VCPU_RUN = "vcpu_run"
BLOCK_VCPU_SUSPEND = "vcpu_suspend"  # PSCI CPU_SUSPEND (hyp/vm/vcpu/vcpu.tc scheduler_block)

# What a student sees for a non-runnable vCPU, by the reason that blocked it.
STATE_OF_BLOCK = {BLOCK_VCPU_OFF: "off", BLOCK_VCPU_WFI: "wfi", BLOCK_VCPU_RUN: "proxy",
                  "vcpu_run_caller": "vcpu_run", "yield_to_caller": "yielding",
                  BLOCK_VCPU_SUSPEND: "suspended", PAGE_FAULT_BLOCK: "page fault"}

# Operations a guest generator yields.
OP_HVC = "hvc"
OP_WFI = "wfi"
OP_WORK = "work"
OP_MEM = "mem"
OP_PSCI = "psci"  # a PSCI call: an SMCCC call of the Standard Secure Service (vm/psci.py)
OP_MSR = "msr"  # a system register write (the virtual timer's CNTV_*), not a hypercall
OP_MRS = "mrs"  # a system register read

GuestGen = Generator[tuple, Any, None]


class Vcpu(KObject):
    """A thread object of a VM, scheduled on its affinity pCPU."""

    obj_type = ObjectType.THREAD

    def __init__(self, oid: int, vm: Any, index: int, trace: Trace,
                 priority: int = SCHEDULER_DEFAULT_PRIORITY,
                 timeslice_ns: int = SCHEDULER_DEFAULT_TIMESLICE_NS, affinity: int = 0) -> None:
        super().__init__(oid, f"{vm.name}.{index}")
        self.vm = vm
        self.index = index
        self.id = self.name
        self.trace = trace
        self.priority = priority
        self.timeslice_ns = timeslice_ns
        self.affinity = affinity
        self.sched: PcpuScheduler | None = None
        self.vic: Vic | None = None
        self.ppi: PrivateBank | None = None  # its private vIRQs (Vic.attach_vcpu)
        self.vtimer: VirtualTimer | None = None  # its EL1 virtual timer (vm/vtimer.py)
        self.blocked: set[str] = {BLOCK_VCPU_OFF}
        self.sched_state = "off"
        self.slice_left = timeslice_ns
        # Execution context: a stack of generators (main program, then handlers).
        self.stack: list[tuple[GuestGen, int | None]] = []
        self.result: Any = None  # sent into the generator on top of the stack
        self.saved_result: Any = None  # the main flow's, while a handler runs
        self.busy_left = 0
        self.exec_entry: list | None = None
        self.exec_due = 0
        self.user_ops: list[tuple] = []
        self.wfi_reason = ""
        self.proxy_owner: Vcpu | None = None  # set for a proxy-scheduled vCPU
        self.wakeup: Any = None  # its VCPU_RUN_WAKEUP vIRQ source, in the owner's VIC
        # The owning VM's cap to this vCPU, in the owner's CSpace (RM vm_config.c
        # vm_config_add_vcpu: vcpu->owner_cap); None for VMs the RM owns.
        self.owner_capid: int | None = None
        # A hypercall that returns when this vCPU runs again (vcpu_run): traced then.
        self.pending_hvc: tuple | None = None
        # A directed yield (vcpu_run, scheduler_yield hint 1) this vCPU made that a
        # higher priority interrupted: it resumes when the vCPU is picked again.
        self.yielding: Any = None
        # PSCI (vm/psci.py; facts §7.2): power as the vPM group sees it, where a CPU_ON or
        # a powerdown CPU_SUSPEND starts it (entry point, context id), the suspend state
        # it asked for, a SYSTEM_RESET(2) it made (reset type word, cookie) and whether
        # its thread has exited (killed by SYSTEM_OFF/RESET: it cannot be powered on).
        self.power = "off"
        self.entry: tuple[int, int] | None = None
        self.suspend_state = 0
        self.system_reset: tuple[int, int] | None = None
        self.exited = False
        self.halt: Any = None  # its HALT vIRQ source, bound in the RM's VIC (vm/psci.py)
        # Demand paging (mem/demand_paging.py): the access (kind, IPA, value) that faulted
        # and is retried when the owner resumes it, and whether it is to be aborted.
        self.page_fault: tuple[str, int, int] | None = None
        self.fault_abort = False

    @property
    def runnable(self) -> bool:
        return not self.blocked

    def set_state(self, state: str, reason: str) -> None:
        if state != self.sched_state:
            self.sched_state = state
            if self.trace.on:
                self.trace.vcpu_state(self.id, self.vm.name, state, reason)

    def block(self, reason: str) -> None:
        """Set a block reason; if it was running, its pCPU picks another thread."""
        was_runnable = not self.blocked
        self.blocked.add(reason)
        if was_runnable and self.sched is not None:
            self.sched.block(self, reason)

    def unblock(self, reason: str) -> None:
        """Lift a block reason; if nothing else blocks it, it becomes runnable."""
        if reason not in self.blocked:
            return
        self.blocked.discard(reason)
        if not self.blocked and self.sched is not None:
            self.sched.wake(self, reason)
        elif self.blocked == {BLOCK_VCPU_RUN} and self.wakeup is not None:
            self.set_state(STATE_OF_BLOCK[BLOCK_VCPU_RUN], reason)
            self.wakeup.assert_()  # it could run again: tell the owner (edge)

    def virq_pending(self) -> None:
        """Called by the VIC: a vIRQ (its timer's too) wakes the vCPU from WFI."""
        if BLOCK_VCPU_WFI in self.blocked:
            self.wfi_reason = "virq"
            self.unblock(BLOCK_VCPU_WFI)
        if BLOCK_VCPU_SUSPEND in self.blocked:  # psci_handle_vcpu_wakeup -> vcpu_resume
            self.vm.vpm.resume(self, "virq")
        sched = self.sched
        if (sched is not None and sched.proxy is not None and sched.proxy.caller is self):
            sched.end_proxy(VcpuRunState.READY)  # interrupted: vcpu_run returns READY
        elif self.yielding is not None:
            sched.cancel_yield(self)  # its suspended yield will not resume

    def snapshot(self) -> dict[str, Any]:
        state = {
            "id": self.id,
            "vm": self.vm.name,
            "index": self.index,
            "priority": self.priority,
            "timeslice_ns": self.timeslice_ns,
            "affinity": self.affinity,
            "state": self.sched_state,
            "blocked": sorted(self.blocked),
            "in_handler": len(self.stack) > 1,
            **({} if self.vtimer is None else {"vtimer": self.vtimer.snapshot()}),
        }
        if getattr(self.vm, "vpm", None) is not None:  # a PSCI VM's vCPUs have a power state
            state["power"] = self.power
        return state
