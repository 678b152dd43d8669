"""A virtual machine: vmid, name, RM state, vCPUs, CSpace and virtual GIC.

The RM state names and numbers are the RM's ``vm_state_t`` (facts §6.2). The guest
program is what the VM's vCPUs execute; it only reaches the hypervisor through
hypercalls with the capids in the VM's own CSpace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..consts import GIC_SPI_LAST, RM_GUEST_FREE_VIRQ_START, Error
from ..errors import HypError

if TYPE_CHECKING:
    from ..core.cspace import CSpace
    from .vcpu import Vcpu
    from .vic import Vic


class Vm:
    """One VM as the hypervisor and the RM see it."""

    def __init__(self, name: str, vmid: int, cspace: CSpace, vic: Vic, kind: str = "guest",
                 owner: int | None = None, free_virq_start: int = RM_GUEST_FREE_VIRQ_START
                 ) -> None:
        self.name = name
        self.vmid = vmid
        self.kind = kind  # "rm", "primary" or "guest"
        self.owner = owner
        self.cspace = cspace
        self.vic = vic
        self.vcpus: list[Vcpu] = []
        self.guest: Any = None
        self.state = "NONE"
        self.image: str | None = None
        self.resources: dict[str, dict[str, Any]] = {}
        self.vpm: Any = None  # its virtual PM group in PSCI mode (vm/psci.py), if it has one
        self._next_virq = free_virq_start

    def allocate_virq(self) -> int:
        """Next free shared vIRQ number, counting up as the RM's irq manager does."""
        while self._next_virq in self.vic.sources:
            self._next_virq += 1
        if self._next_virq > GIC_SPI_LAST:
            raise HypError(Error.NORESOURCES, "no free shared vIRQ")
        virq = self._next_virq
        self._next_virq += 1
        return virq

    def snapshot(self, rights_names: dict) -> dict[str, Any]:
        return {
            "name": self.name,
            "vmid": self.vmid,
            "kind": self.kind,
            "owner": self.owner,
            "state": self.state,
            "program": getattr(self.guest, "program", None),
            # Its program sleeps or ticks on the vCPUs' virtual timers: the page shows them.
            "uses_timer": bool(getattr(self.guest, "uses_timer", False)),
            "image": self.image,
            "vcpus": [v.snapshot() for v in self.vcpus],
            "caps": self.cspace.table(rights_names),
            "virqs": self.vic.snapshot(),
            # Copied: a trace event holding this must not change when the VM gains
            # resources later (sim.snapshot and obj.create events keep it).
            "resources": {label: dict(entry) for label, entry in self.resources.items()},
        }
