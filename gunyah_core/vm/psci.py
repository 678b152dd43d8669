"""PSCI: a guest's power calls reach its VM's virtual PM group (hyp/vm/psci).

A VM with a vPM group in PSCI mode powers its vCPUs with PSCI calls, not with the
vcpu_poweron hypercall: its boot vCPU is started by the RM, its secondaries start
powered off and come up with CPU_ON at an entry point; CPU_OFF and CPU_SUSPEND block the
caller with the scheduler's own reasons (``vcpu_off``, ``vcpu_suspend``); SYSTEM_OFF and
SYSTEM_RESET(2) kill the other vCPUs and force the caller off, which raises its HALT
vIRQ in the RM's VIC: the RM reads ``vcpu_run_check`` and reports the exit to the owner
(facts §6.3, §7.2, §9.1). Each call is traced as ``psci.call`` with its function ID and
the PSCI return in X0; each power change of a vCPU as ``vcpu.power``.

Function IDs, return codes and rules: hyp/interfaces/psci/psci.tc and
hyp/vm/psci/src/psci_common.c. SIMULATOR: a vCPU's MPIDR is its index in Aff0 (the
platform's mapping is not modelled), and the platform has as many cores as the machine
has pCPUs; a CPU_SUSPEND may carry ``wake_ns``, the virtual timer the guest armed before
it (the arch timer is not modelled otherwise); suspend states are not validated against
the platform, there is no OS-initiated mode or cluster state, and PSCI_FEATURES,
SYSTEM_SUSPEND, CPU_DEFAULT_SUSPEND and the MIGRATE calls get NOT_SUPPORTED (the real
group answers some of them). Only guest VMs have a vPM group here: the HLOS's own
SYSTEM_OFF/RESET, which Gunyah passes to the firmware, is not modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..consts import (
    PSCI_FID_BASE_SMC32,
    PSCI_FID_BASE_SMC64,
    PSCI_POWERSTATE_TYPE_POWERDOWN,
    PSCI_REQUEST_SYSTEM_RESET,
    PSCI_REQUEST_SYSTEM_RESET2_64,
    PSCI_RESET_TYPE_MASK,
    PSCI_VERSION_1_1,
    PsciAffinityInfo,
    PsciFunction,
    PsciRet,
    ThreadRights,
)
from ..core.trace import EventKind
from .vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_SUSPEND
from .vic import EDGE, VirqSource

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor
    from .vcpu import Vcpu
    from .vm import Vm

POWER_ON = "on"
POWER_OFF = "off"
POWER_SUSPENDED = "suspended"
# psci_mpidr: Aff0 7:0, Aff1 15:8, Aff2 23:16, Aff3 39:32; every other bit must be 0.
MPIDR_AFF0_MASK = 0xFF
MPIDR_AFF_MASK = 0xFF_00FF_FFFF
# The RM's cap to each vCPU, enough for vcpu_run_check (H-SRC vcpu_run.c
# hypercall_vcpu_run_check: BIND_VIRQ | STATE; the RM's master cap has every right).
RM_RUN_CHECK_RIGHTS = ThreadRights.BIND_VIRQ | ThreadRights.STATE
# Calls the vPM group answers; every other PSCI function is NOT_SUPPORTED here.
FUNCTIONS = frozenset({PsciFunction.PSCI_VERSION, PsciFunction.CPU_SUSPEND,
                       PsciFunction.CPU_OFF, PsciFunction.CPU_ON, PsciFunction.AFFINITY_INFO,
                       PsciFunction.SYSTEM_OFF, PsciFunction.SYSTEM_RESET,
                       PsciFunction.SYSTEM_RESET2})


class PsciResult(NamedTuple):
    """X0 after a PSCI call, and its name (a PSCI_RET_*, an AFFINITY_INFO answer or the
    version)."""

    x0: int
    name: str


def function_id(function: PsciFunction, smc64: bool = False) -> int:
    """The SMCCC function ID a guest puts in X0: 0x84000000 + n, or 0xC4000000 + n."""
    return (PSCI_FID_BASE_SMC64 if smc64 else PSCI_FID_BASE_SMC32) | int(function)


def _ret(code: PsciRet) -> PsciResult:
    return PsciResult(int(code), code.name)


def _reg(args: dict[str, Any], key: str) -> int:
    """An argument register; one the caller did not set reads as 0."""
    return args.get(key) or 0


class VpmGroup:
    """A VM's virtual PM group in PSCI mode: its vCPUs, indexed by MPIDR."""

    def __init__(self, hyp: Hypervisor, vm: Vm) -> None:
        self.hyp = hyp
        self.vm = vm
        self.wake_due: dict[str, int] = {}  # vCPU id -> when its suspend timer wakes it

    # -- power as the page and the exports see it ------------------------------------
    def set_power(self, vcpu: Vcpu, power: str, reason: str) -> None:
        """A vCPU's power state changed: trace ``vcpu.power`` once per change."""
        if vcpu.power == power:
            return
        vcpu.power = power
        trace = self.hyp.trace
        if trace.on:
            trace.emit(EventKind.VCPU_POWER, vcpu=vcpu.id, vm=self.vm.name, power=power,
                       reason=reason)

    def online_count(self) -> int:
        """vCPUs not powered off (``psci_online_count``; a suspended vCPU is online)."""
        return sum(1 for v in self.vm.vcpus if BLOCK_VCPU_OFF not in v.blocked)

    def by_mpidr(self, mpidr: int) -> Vcpu | None:
        """``psci_get_thread_by_mpidr``: the vCPU whose MPIDR affinity fields match."""
        if mpidr & ~MPIDR_AFF_MASK or mpidr & MPIDR_AFF_MASK & ~MPIDR_AFF0_MASK:
            return None
        index = mpidr & MPIDR_AFF0_MASK
        return self.vm.vcpus[index] if index < len(self.vm.vcpus) else None

    # -- the calls ------------------------------------------------------------------------
    def call(self, vcpu: Vcpu, name: str, args: dict[str, Any]) -> PsciResult | None:
        """Make PSCI call ``name`` from ``vcpu``; None when the call does not return."""
        function = PsciFunction.__members__.get(name)
        smc64 = bool(args.get("smc64"))
        if function is None or function not in FUNCTIONS:
            outcome: PsciResult | None = _ret(PsciRet.NOT_SUPPORTED)
        else:
            outcome = getattr(self, "_" + function.name.lower())(vcpu, args, smc64)
        fid = function_id(function, smc64) if function is not None else None
        trace = self.hyp.trace
        if trace.on:
            trace.emit(EventKind.PSCI_CALL, vm=self.vm.name, vcpu=vcpu.id, function=name,
                       fid=fid, args=dict(args), ret=outcome.name if outcome else None,
                       x0=outcome.x0 if outcome else None)
        return outcome

    def _psci_version(self, vcpu: Vcpu, args: dict, smc64: bool) -> PsciResult:
        return PsciResult(PSCI_VERSION_1_1, "1.1")

    def _cpu_on(self, vcpu: Vcpu, args: dict, smc64: bool) -> PsciResult:
        """psci_common.c ``psci_cpu_on``: no vCPU with that MPIDR -> INVALID_PARAMETERS
        if the MPIDR is not a platform core, else INTERNAL_FAILURE; a vCPU that is not
        off -> ALREADY_ON (never ON_PENDING: vcpu_poweron is synchronous); an exited one
        -> INTERNAL_FAILURE (``vcpu_poweron``: ERROR_FAILURE); else it is powered on at
        ``entry`` with ``context`` in X0 and SUCCESS is returned."""
        mpidr = _reg(args, "target")
        target = self.by_mpidr(mpidr)
        if target is None:
            core = not mpidr & ~MPIDR_AFF0_MASK and mpidr < len(self.hyp.pcpus)
            return _ret(PsciRet.INTERNAL_FAILURE if core else PsciRet.INVALID_PARAMETERS)
        if BLOCK_VCPU_OFF not in target.blocked:
            return _ret(PsciRet.ALREADY_ON)
        if target.exited:
            return _ret(PsciRet.INTERNAL_FAILURE)
        target.entry = (_reg(args, "entry"), _reg(args, "context"))
        self.hyp.power_on(target, reason=f"CPU_ON from {vcpu.id}")
        return _ret(PsciRet.SUCCESS)

    def _cpu_off(self, vcpu: Vcpu, args: dict, smc64: bool) -> PsciResult | None:
        """``psci_cpu_off`` -> ``vcpu_poweroff(false, false)``: the last online vCPU may
        not (``psci_handle_vcpu_poweroff``: DENIED); otherwise it never returns."""
        if self.online_count() <= 1:
            return _ret(PsciRet.DENIED)
        self.hyp.power_off(vcpu, reason="CPU_OFF")
        return None

    def _cpu_suspend(self, vcpu: Vcpu, args: dict, smc64: bool) -> PsciResult:
        """``psci_suspend`` -> ``vcpu_suspend``: a vIRQ already pending for the vCPU
        (ERROR_BUSY) returns SUCCESS at once; else the vCPU blocks ``vcpu_suspend`` until
        a vIRQ (or its timer) wakes it, then SUCCESS; a powerdown state restarts it at
        ``entry`` (``vcpu_warm_reset``)."""
        vic = vcpu.vic
        if vic.pending and vic.has_pending(vcpu.index):
            return _ret(PsciRet.SUCCESS)
        state = _reg(args, "power_state")
        vcpu.suspend_state = state
        if state & PSCI_POWERSTATE_TYPE_POWERDOWN:
            vcpu.entry = (_reg(args, "entry"), _reg(args, "context"))
        wake_ns = _reg(args, "wake_ns")
        if wake_ns:
            engine = self.hyp.engine
            self.wake_due[vcpu.id] = engine.now + wake_ns
            engine.schedule(wake_ns, self._timer, vcpu)
        self.set_power(vcpu, POWER_SUSPENDED, "CPU_SUSPEND")
        vcpu.block(BLOCK_VCPU_SUSPEND)
        return _ret(PsciRet.SUCCESS)

    def _timer(self, vcpu: Vcpu) -> None:
        """The suspend timer fired: it wakes the vCPU if this is still its deadline (a
        vIRQ may have woken it before, and it may have suspended again since)."""
        if (self.wake_due.get(vcpu.id) == self.hyp.engine.now
                and BLOCK_VCPU_SUSPEND in vcpu.blocked):
            self.resume(vcpu, "timer")

    def resume(self, vcpu: Vcpu, why: str) -> None:
        """``vcpu_resume``: a suspended vCPU woke (a vIRQ, its timer). A powerdown state
        lost its context: it starts again at its entry point (``vcpu_warm_reset``)."""
        self.wake_due.pop(vcpu.id, None)
        self.set_power(vcpu, POWER_ON, f"wake:{why}")
        if vcpu.suspend_state & PSCI_POWERSTATE_TYPE_POWERDOWN:
            vcpu.stack = [(self.vm.guest.main(vcpu), None)]
            vcpu.result = None
        vcpu.unblock(BLOCK_VCPU_SUSPEND)

    def _affinity_info(self, vcpu: Vcpu, args: dict, smc64: bool) -> PsciResult:
        """``psci_affinity_info``: ON or OFF; INVALID_PARAMETERS for an unknown MPIDR or
        a lowest affinity level other than 0."""
        target = self.by_mpidr(_reg(args, "target"))
        if target is None or _reg(args, "level"):
            return _ret(PsciRet.INVALID_PARAMETERS)
        info = (PsciAffinityInfo.OFF if BLOCK_VCPU_OFF in target.blocked
                else PsciAffinityInfo.ON)
        return PsciResult(int(info), info.name)

    def _system_off(self, vcpu: Vcpu, args: dict, smc64: bool) -> None:
        self._stop_all(vcpu, "SYSTEM_OFF")

    def _system_reset(self, vcpu: Vcpu, args: dict, smc64: bool) -> None:
        """``psci_system_reset``: remember the request for the run check (type word
        PSCI_REQUEST_SYSTEM_RESET, bit 63; cookie 0), then stop every vCPU."""
        vcpu.system_reset = (PSCI_REQUEST_SYSTEM_RESET, 0)
        self._stop_all(vcpu, "SYSTEM_RESET")

    def _system_reset2(self, vcpu: Vcpu, args: dict, smc64: bool) -> None:
        """``psci_system_reset2_32/64``: reset type (bit 62 set by the SMC64 call) and
        cookie (32 bits by the SMC32 call) for the run check, then stop every vCPU."""
        reset_type = _reg(args, "reset_type") & PSCI_RESET_TYPE_MASK
        cookie = _reg(args, "cookie")
        if smc64:
            reset_type |= PSCI_REQUEST_SYSTEM_RESET2_64
        else:
            cookie &= PSCI_RESET_TYPE_MASK
        vcpu.system_reset = (reset_type, cookie)
        self._stop_all(vcpu, "SYSTEM_RESET2")

    def _stop_all(self, vcpu: Vcpu, why: str) -> None:
        """``psci_stop_all_vcpus``: every other vCPU is killed (its thread exits), the
        caller is forced off (``vcpu_poweroff(false, true)``) and halts: ``vcpu_halted``
        asserts its HALT vIRQ, bound in the RM's VIC (aarch64_init.c)."""
        for other in self.vm.vcpus:
            if other is not vcpu:
                other.exited = True
                self.hyp.power_off(other, reason=why)
        self.hyp.power_off(vcpu, reason=why)
        if vcpu.halt is not None:
            vcpu.halt.assert_()


def call(hyp: Hypervisor, vcpu: Vcpu, name: str, args: dict[str, Any]) -> PsciResult | None:
    """A PSCI call from ``vcpu``. A VM without a vPM group has no PSCI: the call is not
    handled and the SMCCC dispatcher answers "unknown function", -1, the value of
    NOT_SUPPORTED (psci_common.c: every handler returns false when ``psci_group`` is
    NULL)."""
    group = vcpu.vm.vpm
    if group is not None:
        return group.call(vcpu, name, args)
    outcome = _ret(PsciRet.NOT_SUPPORTED)
    if hyp.trace.on:
        function = PsciFunction.__members__.get(name)
        hyp.trace.emit(EventKind.PSCI_CALL, vm=vcpu.vm.name, vcpu=vcpu.id, function=name,
                       fid=function_id(function, bool(args.get("smc64")))
                       if function is not None else None,
                       args=dict(args), ret=outcome.name, x0=outcome.x0)
    return outcome


def enable(hyp: Hypervisor, vm: Vm, rm: Any) -> VpmGroup:
    """Give ``vm`` a vPM group in PSCI mode, as the RM does for a PSCI VM, and bind each
    vCPU's HALT vIRQ (type 0) edge-triggered in the RM's own VIC with a cap the RM can
    call vcpu_run_check with (RM vm_config.c ``vm_config_add_vcpu``; facts §9.1)."""
    vm.vpm = group = VpmGroup(hyp, vm)
    for vcpu in vm.vcpus:
        vcpu.halt = VirqSource(f"vcpu:{vcpu.id}:halt")
        virq = rm.vm.allocate_virq()
        rm.vm.vic.bind(vcpu.halt, virq, EDGE)
        master = hyp.master_cspace.find(vcpu)
        capid = hyp.master_cspace.copy_to(master, rm.vm.cspace, RM_RUN_CHECK_RIGHTS)
        rm.vm.resources[f"halt:{vcpu.id}"] = {"type": "VCPU_HALT", "capid": capid,
                                              "virq": virq, "vcpu": vcpu.id,
                                              "partner": vm.name}
        rm.watch_halt(virq, vm, capid)
        if hyp.booted and hyp.trace.on:  # a VM the RM creates now: its vCPUs start off
            hyp.trace.emit(EventKind.VCPU_POWER, vcpu=vcpu.id, vm=vm.name, power=POWER_OFF,
                           reason="vPM group")
    return group


def disable(hyp: Hypervisor, vm: Vm, rm: Any) -> None:
    """The RM destroys a PSCI VM's vCPUs (VM reset): it unbinds each HALT vIRQ from its
    own VIC and drops its cap (RM vm_config.c: ``revert_map_virq`` of ``halt_virq`` when
    the vCPUs go)."""
    for vcpu in vm.vcpus:
        entry = rm.vm.resources.pop(f"halt:{vcpu.id}", None)
        if entry is not None:
            rm.vm.vic.unbind(vcpu.halt)
            rm.vm.cspace.delete(entry["capid"])
            del rm.halts[entry["virq"]]
            vcpu.halt = None
