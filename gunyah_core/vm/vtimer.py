"""The EL1 virtual timer of one vCPU: CNTV_CTL_EL0 and CNTV_CVAL_EL0, and its PPI 27 (facts §9.3).

Each vCPU thread has a virtual timer (hyp/vm/arm_vm_timer/arm_vm_timer.tc: ``thread
{virtual_timer, virtual_timer_virq_src}``). The guest arms it itself, with system
register writes that Gunyah does not trap (arm_vm_timer.c
``arm_vm_timer_handle_boot_cpu_warm_init`` leaves EL1TVT clear): CNTV_CVAL_EL0 is the
compare value, CNTV_CTL_EL0 holds ENABLE and IMASK, and ISTATUS (read-only) reads 1 once
the virtual counter CNTVCT_EL0 reaches CVAL while ENABLE is set.

The line is level: asserted while ENABLE and ISTATUS and not IMASK
(arm_vm_timer.c ``arm_vm_timer_is_irq_pending``), injected with ``virq_assert(src,
false)`` (arm_vm_timer_irq.c ``arm_vm_timer_inject_timer_virq``), and asked again at
EOI (``arm_vm_timer_handle_virq_check_pending``): a guest that masks, disables or
re-arms it in the future drops it. A compare value already in the past fires at once.

Two paths fire it, as in Gunyah (both traced as ``vtimer.fire`` with ``path``):
- the vCPU is running: the hardware timer raises the physical PPI 27 at EL2 and
  ``arm_vm_timer_handle_irq_received`` injects the vIRQ;
- the vCPU sleeps in WFI: when it was switched out, the hypervisor queued CVAL on its own
  EL2 timer (``arm_vm_timer_handle_thread_context_switch_pre``, ``timer_update``; traced
  as ``vtimer.queue``), whose expiry injects the vIRQ
  (``arm_vm_timer_handle_timer_action``) and so wakes the vCPU from WFI.
Simplified: a vCPU that is ready but not running gets the vIRQ at the deadline too (in
Gunyah the hardware timer raises it once the vCPU is switched back in; it cannot take it
sooner in either case). CNTVOFF_EL2 is 0 (``arm_vm_timer_handle_boot_cpu_warm_init``),
so CNTVCT_EL0 counts from simulated time 0 at PLATFORM_ARCH_TIMER_FREQ (QEMU's
platform file). A stopped vCPU's timer is disabled (``arm_vm_timer_handle_vcpu_stopped``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..consts import (
    CNT_CTL_ENABLE,
    CNT_CTL_IMASK,
    CNT_CTL_ISTATUS,
    NS_PER_S,
    PLATFORM_ARCH_TIMER_FREQ,
    PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ,
    U64_MAX,
)
from ..core.trace import EventKind
from .vcpu import BLOCK_VCPU_WFI
from .vic import LEVEL, VirqSource

if TYPE_CHECKING:
    from ..core.engine import Engine
    from .vcpu import Vcpu

CNTV_CTL_EL0 = "CNTV_CTL_EL0"
CNTV_CVAL_EL0 = "CNTV_CVAL_EL0"
CNTVCT_EL0 = "CNTVCT_EL0"
WRITABLE = (CNTV_CTL_EL0, CNTV_CVAL_EL0)
CTL_WRITABLE = CNT_CTL_ENABLE | CNT_CTL_IMASK  # ISTATUS is the timer's, not the guest's

# How a firing reached the vCPU (the ``path`` of vtimer.fire).
PATH_RUNNING = "running"   # the hardware timer's PPI, taken at EL2 while the vCPU runs
PATH_WFI = "hyp_timer"     # the hypervisor's EL2 timer queued for a vCPU in WFI
PATH_READY = "ready"       # the vCPU waits for its pCPU: it takes the vIRQ when it runs

# Who wrote a register (the ``by`` of vtimer.write).
BY_GUEST = "guest"             # an MSR the guest executes
BY_HYPERVISOR = "vcpu_stopped"  # Gunyah disables the timer of a vCPU it stops


def ticks_to_ns(ticks: int) -> int:
    """The first simulated nanosecond at which CNTVCT_EL0 reads at least ``ticks``."""
    return -(-ticks * NS_PER_S // PLATFORM_ARCH_TIMER_FREQ)


def ns_to_ticks(ns: int) -> int:
    """CNTVCT_EL0 at simulated time ``ns``."""
    return ns * PLATFORM_ARCH_TIMER_FREQ // NS_PER_S


class VirtualTimer:
    """CNTV_CTL_EL0 / CNTV_CVAL_EL0 of one vCPU and the level of its PPI."""

    __slots__ = ("vcpu", "engine", "trace", "ctl", "cval", "source", "expiry", "expired",
                 "asserted")

    def __init__(self, vcpu: Vcpu, engine: Engine) -> None:
        self.vcpu = vcpu
        self.engine = engine
        self.trace = vcpu.trace
        # The thread's saved registers start zeroed: disabled, unmasked, CVAL 0.
        self.ctl = 0
        self.cval = 0
        self.source = VirqSource(f"vtimer:{vcpu.id}", check_pending=self.irq_pending,
                                 why=self.why)
        self.expiry: list | None = None  # the engine entry of the coming deadline
        self.expired = False   # ISTATUS as last seen: vtimer.fire marks its rising edge
        self.asserted = False  # the line to the VIC

    def bind(self) -> None:
        """Bind the timer's PPI in the vCPU's bank, level-triggered, as the thread is
        activated (arm_vm_timer_thread.c ``arm_vm_timer_handle_object_activate_thread``)."""
        self.vcpu.vic.bind_private(self.source, self.vcpu, PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ,
                                   LEVEL)

    # -- the registers ------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.ctl & CNT_CTL_ENABLE)

    @property
    def masked(self) -> bool:
        return bool(self.ctl & CNT_CTL_IMASK)

    def istatus(self) -> bool:
        """ISTATUS: enabled and the counter has reached the compare value."""
        return self.enabled and ns_to_ticks(self.engine.now) >= self.cval

    def irq_pending(self) -> bool:
        """The line's level (``arm_vm_timer_is_irq_pending``): ENABLE, !IMASK, ISTATUS."""
        return self.enabled and not self.masked and self.istatus()

    def read(self, reg: str) -> int:
        """An MRS: CNTVCT_EL0, CNTV_CVAL_EL0, or CNTV_CTL_EL0 with ISTATUS."""
        if reg == CNTVCT_EL0:
            return ns_to_ticks(self.engine.now)
        if reg == CNTV_CVAL_EL0:
            return self.cval
        if reg == CNTV_CTL_EL0:
            return self.ctl | (CNT_CTL_ISTATUS if self.istatus() else 0)
        raise ValueError(f"register {reg!r} is not a virtual timer register")

    def deadline_ns(self) -> int | None:
        """When ISTATUS becomes (or became) 1; None while disabled."""
        return ticks_to_ns(self.cval) if self.enabled else None

    def write(self, reg: str, value: int, by: str = BY_GUEST) -> None:
        """An MSR to CNTV_CVAL_EL0 or CNTV_CTL_EL0; the line follows at once."""
        if reg == CNTV_CVAL_EL0:
            self.cval = value & U64_MAX
        elif reg == CNTV_CTL_EL0:
            self.ctl = value & CTL_WRITABLE
        else:
            raise ValueError(f"register {reg!r} is not a writable virtual timer register")
        if self.trace.on:
            vcpu = self.vcpu
            self.trace.emit(EventKind.VTIMER_WRITE, vm=vcpu.vm.name, vcpu=vcpu.id, reg=reg,
                            value=value & U64_MAX, by=by, enable=self.enabled,
                            imask=self.masked, cval=self.cval,
                            deadline=self.deadline_ns(), istatus=self.istatus())
        self._update()

    def stop(self) -> None:
        """The vCPU stopped: Gunyah disables its timer (``arm_vm_timer_cancel_timeout``)."""
        if self.enabled:
            self.write(CNTV_CTL_EL0, 0, by=BY_HYPERVISOR)

    # -- the hypervisor's side ----------------------------------------------------------
    def _update(self) -> None:
        """After a write: re-plan the deadline, fire if it is already past, set the line."""
        self.engine.cancel(self.expiry)
        self.expiry = None
        now_expired = self.istatus()
        if now_expired and not self.expired:
            self.expired = True
            self._fired()
        else:
            self.expired = now_expired
            if self.enabled and not now_expired:
                delay = ticks_to_ns(self.cval) - self.engine.now
                self.expiry = self.engine.schedule(delay, self._expire)
        self._set_line()

    def _expire(self) -> None:
        """The deadline: ISTATUS rises (the hardware timer or the EL2 timer queue). Any
        write since would have cancelled it, so the timer is still enabled for this CVAL."""
        self.expiry = None
        self.expired = True
        self._fired()
        self._set_line()

    def _fired(self) -> None:
        if self.trace.on:
            vcpu = self.vcpu
            sched = vcpu.sched
            if sched is not None and sched.current is vcpu:
                path = PATH_RUNNING
            elif BLOCK_VCPU_WFI in vcpu.blocked:  # in WFI, a proxy-scheduled one too
                path = PATH_WFI
            else:
                path = PATH_READY
            self.trace.emit(EventKind.VTIMER_FIRE, vm=vcpu.vm.name, vcpu=vcpu.id,
                            virq=PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ, cval=self.cval,
                            masked=self.masked, path=path)

    def _set_line(self) -> None:
        level = self.irq_pending()
        if level and not self.asserted:
            self.asserted = True
            self.source.assert_()
        elif not level and self.asserted:
            self.asserted = False
            self.source.clear()

    def on_wfi(self) -> None:
        """The vCPU blocks in WFI: a timer that can wake it goes on the hypervisor's own
        timer queue (``arm_vm_timer_handle_thread_context_switch_pre``: only when the
        vCPU expects a wakeup and ENABLE is set and IMASK clear)."""
        if (self.trace.on and self.expiry is not None and not self.masked):
            vcpu = self.vcpu
            self.trace.emit(EventKind.VTIMER_QUEUE, vm=vcpu.vm.name, vcpu=vcpu.id,
                            cval=self.cval, deadline=ticks_to_ns(self.cval))

    def why(self) -> dict[str, Any]:
        """What a traced assert of the timer's vIRQ carries (captions.py reads it)."""
        return {"vcpu": self.vcpu.id, "cval": self.cval}

    def snapshot(self) -> dict[str, Any]:
        return {"virq": PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ, "enable": self.enabled,
                "imask": self.masked, "cval": self.cval, "deadline": self.deadline_ns(),
                "istatus": self.istatus()}
