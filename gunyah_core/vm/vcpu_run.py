"""Proxy scheduling: ``vcpu_run`` (hyp/vm/vcpu_run), how an owner VM runs a guest's vCPU.

A proxy-scheduled vCPU carries a permanent ``vcpu_run`` block: it runs only inside its
owner's ``vcpu_run`` call. The call moves it to the caller's pCPU and donates the rest
of the caller's timeslice to it (a directed yield). The call returns when the target
cannot continue (WFI -> EXPECTS_WAKEUP, powered off -> POWERED_OFF) or when the caller
gets a vIRQ or its slice ends (READY: "call again"). The caller stays the pCPU's
active thread: only a wake of higher priority than the caller preempts it, and even
then the call does not return: the caller waits at the head of its list and, picked
again, runs its target on (H-SRC scheduler_fprr.c keeps ``scheduler_yielding``; H-API
says the call returns when the caller is preempted: the source is followed). A lower
or equal wake waits in the run list (facts §7.1 "wake preemption check"). The time the
target runs is charged to the caller's slice. While the target
waits, a vIRQ for it raises the wakeup vIRQ in the owner's VIC (facts §7.2).
PSCI power calls of the target (vm/psci.py) end a run as the source's run check reports
them: POWERED_OFF (data0 bit 0 = exited), EXPECTS_WAKEUP from CPU_SUSPEND and
PSCI_SYSTEM_RESET (0x100). A stage-2 translation fault in a demand-paged window ends a
run as ADDRSPACE_PAGE_FAULT (7: data0 = IPA, data1 = non-zero for a write), the state
Linux's gunyah_vcpu.c handles with a newer hypervisor (facts §7.2, §10.2; absent from
the open H-SRC, so modelled from Linux: mem/demand_paging.py). Simplified: no VMMIO
exits (states 4-5) and no FAULT (6); the only resume data used is the action in
resume1 after a page fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from ..consts import (
    VCPU_RUN_POWEROFF_EXITED,
    VCPU_RUN_WAKEUP_FROM_PSCI_CPU_SUSPEND,
    VCPU_RUN_WAKEUP_FROM_WFI,
    Error,
)
from ..core.trace import EventKind
from ..errors import HypResult

if TYPE_CHECKING:
    from ..core.scheduler import PcpuScheduler
    from .vcpu import Vcpu

BLOCK_PROXY_CALLER = "vcpu_run_caller"  # the caller, while its slice runs the target
BLOCK_YIELD_CALLER = "yield_to_caller"  # a scheduler_yield hint 1 caller, the same way
KIND_VCPU_RUN = "vcpu_run"
KIND_YIELD_TO = "yield_to"
WFI_WAKEUP_REASON = VCPU_RUN_WAKEUP_FROM_WFI  # data1 of EXPECTS_WAKEUP after a WFI
SUSPEND_BLOCK = "vcpu_suspend"  # vcpu.BLOCK_VCPU_SUSPEND (vcpu.py imports this module)
# SIMULATOR: the block a page-faulting proxy vCPU waits in until its owner's next
# vcpu_run applies a resume action (the newer hypervisor's source is not public).
PAGE_FAULT_BLOCK = "page_fault"


class VcpuRunState(IntEnum):
    """``vcpu_run`` return states (hyp/interfaces/vcpu_run/vcpu_run.tc)."""

    READY = 0x0
    EXPECTS_WAKEUP = 0x1
    POWERED_OFF = 0x2
    BLOCKED = 0x3
    ADDRSPACE_VMMIO_READ = 0x4
    ADDRSPACE_VMMIO_WRITE = 0x5
    FAULT = 0x6
    ADDRSPACE_PAGE_FAULT = 0x7  # Linux gunyah_vcpu.c, newer hypervisor (facts §7.2)
    PSCI_SYSTEM_RESET = 0x100


@dataclass
class ProxyRun:
    """One directed yield in progress on a pCPU: a ``vcpu_run``, or a ``scheduler_yield``
    to a thread (``kind``), whose target keeps ``own_slice`` for when it runs itself."""

    caller: Vcpu
    target: Vcpu
    kind: str = KIND_VCPU_RUN
    own_slice: int = 0

    @property
    def caller_block(self) -> str:
        return BLOCK_PROXY_CALLER if self.kind == KIND_VCPU_RUN else BLOCK_YIELD_CALLER


def result(state: VcpuRunState, data0: int = 0, data1: int = 0) -> HypResult:
    return HypResult(Error.OK, {"state": state.name, "state_value": int(state),
                                "data0": data0, "data1": data1, "data2": 0})


def state_of_stopped(target: Vcpu, off_block: str, wfi_block: str) -> HypResult:
    """Why a target that cannot run now cannot: its run check (H-SRC vcpu_run.c
    ``do_vcpu_run_check`` and the ``vcpu_run_check`` handlers it triggers).

    An exited thread (killed by SYSTEM_OFF/RESET) is POWERED_OFF with data0 bit 0
    ``exited``; else the PSCI handler first (psci_common.c ``psci_handle_vcpu_run_check``):
    a SYSTEM_RESET(2) it made is PSCI_SYSTEM_RESET (data0 = reset type word, data1 =
    cookie), a CPU_SUSPEND is EXPECTS_WAKEUP (data0 = its suspend state, data1 = 2);
    then vcpu_off is POWERED_OFF with data0 0 (aarch64_init.c
    ``vcpu_handle_vcpu_run_check``) and WFI is EXPECTS_WAKEUP (0, 1) (wfi.c).
    """
    if target.exited:
        return result(VcpuRunState.POWERED_OFF, VCPU_RUN_POWEROFF_EXITED)
    if PAGE_FAULT_BLOCK in target.blocked:  # facts §7.2: data0 IPA, data1 non-zero = write
        _access, ipa, _value = target.page_fault
        return result(VcpuRunState.ADDRSPACE_PAGE_FAULT, ipa, int(_access == "W"))
    if target.system_reset is not None:
        return result(VcpuRunState.PSCI_SYSTEM_RESET, *target.system_reset)
    if SUSPEND_BLOCK in target.blocked:
        return result(VcpuRunState.EXPECTS_WAKEUP, target.suspend_state,
                      VCPU_RUN_WAKEUP_FROM_PSCI_CPU_SUSPEND)
    if off_block in target.blocked:
        return result(VcpuRunState.POWERED_OFF)
    if wfi_block in target.blocked:
        return result(VcpuRunState.EXPECTS_WAKEUP, 0, WFI_WAKEUP_REASON)
    return result(VcpuRunState.BLOCKED)


def trace_run(sched: PcpuScheduler, run: ProxyRun, stage: str, state: str) -> None:
    if sched.trace.on:
        sched.trace.emit(EventKind.VCPU_RUN, vm=run.caller.vm.name, caller=run.caller.id,
                         vcpu=run.target.id, target_vm=run.target.vm.name, pcpu=sched.index,
                         stage=stage, state=state)
