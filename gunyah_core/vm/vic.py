"""Virtual interrupt controller: one per VM (hyp/vm/vgic, simplified).

Shared vIRQs (SPIs 32-1019) are bound one source per number. An assert latches
pending; a vCPU acknowledges (``virq.deliver``), runs its handler, then EOIs.
Level-configured vIRQs re-ask their source at EOI (facts §9.1); the assert itself
latches a vIRQ pending, so it is delivered once even if the level has gone.
Simplified: no list registers or GIC priorities (the facts sheet has none); all
shared vIRQs route to one vCPU of the VM (vCPU 0 unless the scenario says
otherwise), and among pending vIRQs the lowest INTID is taken first.

Private vIRQs (PPIs 16-31, facts §9.1) are banked per vCPU, as a GIC redistributor's
are: each vCPU has its own ``PrivateBank`` of sources, pending and active numbers, so
PPI 27 of vCPU 0 and PPI 27 of vCPU 1 are two lines (hyp/interfaces/vic/include/vic.h
``vic_bind_private_vcpu``). A vCPU takes its private vIRQs before shared ones (their
INTIDs are lower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..consts import GIC_PPI_BASE, GIC_PPI_LAST, GIC_SPI_BASE, GIC_SPI_LAST, Error, ObjectType
from ..core.kobject import KObject
from ..core.trace import EventKind
from ..errors import HypError

if TYPE_CHECKING:
    from ..core.trace import Trace
    from .vcpu import Vcpu

EDGE = "edge"
LEVEL = "level"


class VirqSource:
    """Something that can raise a vIRQ: a msgq side, a doorbell, a vCPU wakeup line."""

    __slots__ = ("ref", "vic", "virq", "check_pending", "why", "bank")

    def __init__(self, ref: str, check_pending: Callable[[], bool] | None = None,
                 why: Callable[[], dict[str, Any]] | None = None) -> None:
        self.ref = ref
        self.vic: Vic | None = None
        self.virq = 0
        # Level re-check hook, supplied by the object that owns the source.
        self.check_pending = check_pending
        # Fields a traced assert carries to say why it fired (captions.py reads them).
        self.why = why
        self.bank: PrivateBank | None = None  # a private vIRQ's vCPU bank; None: shared

    def assert_(self, edge_only: bool = False) -> None:
        vic = self.vic
        if vic is not None:
            vic.assert_source(self, edge_only)

    def clear(self) -> None:
        if self.vic is not None:
            self.vic.clear_source(self)


class PrivateBank:
    """One vCPU's private vIRQs (its redistributor): bound sources, triggers, state."""

    __slots__ = ("vcpu", "sources", "trigger", "pending", "active")

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu
        self.sources: dict[int, VirqSource] = {}
        self.trigger: dict[int, str] = {}
        self.pending: set[int] = set()
        self.active: set[int] = set()


class Vic(KObject):
    """A VM's virtual GIC distributor: bindings, pending and active vIRQs."""

    obj_type = ObjectType.VIC

    def __init__(self, oid: int, vm_name: str, trace: Trace) -> None:
        super().__init__(oid, vm_name)
        self.vm_name = vm_name
        self.trace = trace
        self.sources: dict[int, VirqSource] = {}
        self.trigger: dict[int, str] = {}
        self.route: dict[int, int] = {}
        self.pending: set[int] = set()
        self.active: set[int] = set()
        self.vcpus: list[Vcpu] = []

    def attach_vcpu(self, vcpu: Vcpu) -> PrivateBank:
        """Give a new vCPU of this VM its bank of private vIRQs (and shared routing)."""
        self.vcpus.append(vcpu)
        vcpu.ppi = PrivateBank(vcpu)
        return vcpu.ppi

    def has_pending_for(self, vcpu: Vcpu) -> bool:
        """A vIRQ the vCPU could take now: one of its own, or a shared one routed to it."""
        return bool(vcpu.ppi.pending) or (bool(self.pending) and self.has_pending(vcpu.index))

    # -- binding -----------------------------------------------------------------
    def bind(self, source: VirqSource, virq: int, trigger: str = EDGE, vcpu_index: int = 0) -> None:
        """Bind a source to a shared vIRQ; BUSY if taken, VIRQ_BOUND if the source is bound."""
        if not GIC_SPI_BASE <= virq <= GIC_SPI_LAST:
            raise HypError(Error.ARGUMENT_INVALID, f"vIRQ {virq} is not a shared vIRQ")
        if source.vic is not None:
            raise HypError(Error.VIRQ_BOUND)
        if virq in self.sources:
            raise HypError(Error.BUSY, f"vIRQ {virq} already bound")
        source.vic, source.virq = self, virq
        self.sources[virq] = source
        self.trigger[virq] = trigger
        self.route[virq] = vcpu_index
        if self.trace.on:
            self.trace.emit(EventKind.VIRQ_BIND, vm=self.vm_name, virq=virq,
                            source=source.ref, trigger=trigger)

    def bind_private(self, source: VirqSource, vcpu: Vcpu, virq: int, trigger: str) -> None:
        """Bind a source to one vCPU's private vIRQ (``vic_bind_private_vcpu``, used by
        arm_vm_timer_handle_object_activate_thread for the timer's PPI).

        Not traced on its own: it happens as the vCPU is created, and the vCPU's
        ``obj.create`` snapshot names its timer's vIRQ."""
        if not GIC_PPI_BASE <= virq <= GIC_PPI_LAST:
            raise HypError(Error.ARGUMENT_INVALID, f"vIRQ {virq} is not a private vIRQ")
        if source.vic is not None:
            raise HypError(Error.VIRQ_BOUND)
        bank = vcpu.ppi
        if virq in bank.sources:
            raise HypError(Error.BUSY, f"vIRQ {virq} of {vcpu.id} already bound")
        source.vic, source.virq, source.bank = self, virq, bank
        bank.sources[virq] = source
        bank.trigger[virq] = trigger

    def unbind(self, source: VirqSource) -> None:
        """Unbind; unbinding an unbound source is OK (facts §9.1)."""
        if source.vic is not self:
            return
        virq, bank = source.virq, source.bank
        if bank is not None:
            for table in (bank.sources, bank.trigger):
                table.pop(virq, None)
            bank.pending.discard(virq)
            bank.active.discard(virq)
            source.vic, source.virq, source.bank = None, 0, None
            return
        for table in (self.sources, self.trigger, self.route):
            table.pop(virq, None)
        self.pending.discard(virq)
        self.active.discard(virq)
        source.vic, source.virq = None, 0
        if self.trace.on:
            self.trace.emit(EventKind.VIRQ_UNBIND, vm=self.vm_name, virq=virq, source=source.ref)

    # -- assert / clear ------------------------------------------------------------
    def assert_source(self, source: VirqSource, edge_only: bool) -> None:
        virq = source.virq
        if source.bank is not None:
            self._assert_private(source, source.bank, edge_only)
            return
        if edge_only and self.trigger[virq] == LEVEL:
            return  # an edge-only assert has no effect on a level-configured vIRQ
        pending = self.pending
        if virq in pending:
            return  # already pending: asserts merge, as on a GIC
        pending.add(virq)
        if self.trace.on:
            why = source.why
            self.trace.virq_assert(self.vm_name, virq, source.ref, self.trigger[virq],
                                   None if why is None else why())
        if self.vcpus:
            self.vcpus[self.route[virq]].virq_pending()

    def _assert_private(self, source: VirqSource, bank: PrivateBank, edge_only: bool) -> None:
        virq = source.virq
        if edge_only and bank.trigger[virq] == LEVEL:
            return
        if virq in bank.pending:
            return
        bank.pending.add(virq)
        if self.trace.on:
            why = source.why
            self.trace.virq_assert(self.vm_name, virq, source.ref, bank.trigger[virq],
                                   None if why is None else why())
        bank.vcpu.virq_pending()

    def clear_source(self, source: VirqSource) -> None:
        virq = source.virq
        bank = source.bank
        pending = self.pending if bank is None else bank.pending
        if virq in pending:
            pending.discard(virq)
            if self.trace.on:
                if bank is None:
                    self.trace.emit(EventKind.VIRQ_CLEAR, vm=self.vm_name, virq=virq,
                                    source=source.ref)
                else:  # a private vIRQ is one vCPU's: say whose
                    self.trace.emit(EventKind.VIRQ_CLEAR, vm=self.vm_name, virq=virq,
                                    source=source.ref, vcpu=bank.vcpu.id)

    # -- the vCPU side -------------------------------------------------------------
    def has_pending(self, vcpu_index: int) -> bool:
        route = self.route
        return any(route[v] == vcpu_index for v in self.pending)

    def acknowledge(self, vcpu: Vcpu) -> int | None:
        """Take the lowest pending vIRQ routed to ``vcpu``: pending -> active."""
        bank = vcpu.ppi
        if bank.pending:
            virq = min(bank.pending)
            bank.pending.discard(virq)
            bank.active.add(virq)
            if self.trace.on:
                self.trace.virq_vcpu(EventKind.VIRQ_DELIVER, self.vm_name, virq,
                                     bank.sources[virq].ref, vcpu.id)
            return virq
        pending, route, index = self.pending, self.route, vcpu.index
        if not pending:
            return None
        if len(pending) == 1:
            virq = next(iter(pending))
            if route[virq] != index:
                return None
        else:
            virq = min((v for v in pending if route[v] == index), default=None)
            if virq is None:
                return None
        # Every assert latched the vIRQ pending, so it is delivered even if a level
        # source has gone quiet since (e.g. a doorbell's ack-mask auto-clear); the
        # level is re-checked at EOI (facts §9.1).
        pending.discard(virq)
        self.active.add(virq)
        if self.trace.on:
            self.trace.virq_vcpu(EventKind.VIRQ_DELIVER, self.vm_name, virq,
                                 self.sources[virq].ref, vcpu.id)
        return virq

    def eoi(self, vcpu: Vcpu, virq: int) -> None:
        """End of interrupt: active -> inactive; a level source still asserted re-pends."""
        table = self if virq >= GIC_SPI_BASE else vcpu.ppi
        table.active.discard(virq)
        source = table.sources.get(virq)
        if self.trace.on:
            self.trace.virq_vcpu(EventKind.VIRQ_EOI, self.vm_name, virq,
                                 source.ref if source else "unbound", vcpu.id)
        if (source is not None and table.trigger[virq] == LEVEL and source.check_pending
                and source.check_pending()):
            self.assert_source(source, edge_only=False)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every bound vIRQ: each vCPU's private ones (``private``: true), then shared."""
        private = [
            {
                "virq": virq,
                "source": src.ref,
                "trigger": vcpu.ppi.trigger[virq],
                "vcpu": vcpu.index,
                "pending": virq in vcpu.ppi.pending,
                "active": virq in vcpu.ppi.active,
                "private": True,
            }
            for vcpu in self.vcpus
            for virq, src in sorted(vcpu.ppi.sources.items())
        ]
        return private + [
            {
                "virq": virq,
                "source": src.ref,
                "trigger": self.trigger[virq],
                "vcpu": self.route[virq],
                "pending": virq in self.pending,
                "active": virq in self.active,
            }
            for virq, src in sorted(self.sources.items())
        ]
