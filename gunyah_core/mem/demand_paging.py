"""Demand paging: a proxy-scheduled guest gets its memory page by page, when it touches it.

Linux (v17, with a newer hypervisor and RM) declares a guest's lent memory with
VM_SET_DEMAND_PAGING; the RM hands the host the guest's address-space cap and four
memextent caps (facts §10.2): label 0 guest-private, 1 host-shared, 2 host-private,
3 guest-shared. A guest access to a page not yet given stops the vCPU with vcpu_run
state ADDRSPACE_PAGE_FAULT (7, facts §7.2); the host donates a page of its own
(``memextent_donate`` TO_PROTECTED for lent memory, TO_SIBLING for shared), maps it
(``addrspace_map`` PARTIAL|PRIVATE) and runs the vCPU again with resume action RETRY.

SIMULATOR: the open RM has no VM_SET_DEMAND_PAGING handler and the open hypervisor no
state 7 (facts §11, §12), so the caps are handed out when the scenario is built, the
extents span all of physical memory (``offset`` = physical address, as Linux passes it)
and a page is one ``PAGE_SIZE`` page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..consts import AddrspaceRights, MemextentRights, ObjectType
from ..core.kobject import KObject
from .memparcel import PAGE_SIZE, PgtableAccess

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor
    from ..vm.vm import Vm

# Memextent labels the RM gives the host (facts §10.2; Linux vm_mgr_mem.c).
LABEL_GUEST_PRIVATE, LABEL_HOST_SHARED, LABEL_HOST_PRIVATE, LABEL_GUEST_SHARED = 0, 1, 2, 3
EXTENT_NAMES = {LABEL_GUEST_PRIVATE: "guest-private", LABEL_HOST_SHARED: "host-shared",
                LABEL_HOST_PRIVATE: "host-private", LABEL_GUEST_SHARED: "guest-shared"}
# The extents a guest's pages are donated into, by whose memory the extent is.
GUEST_LABELS = (LABEL_GUEST_PRIVATE, LABEL_GUEST_SHARED)
LEND, SHARE = "lend", "share"
# Access given per transfer and writability (facts §10.2, Linux vm_mgr_mem.c).
ACCESS = {(LEND, True): PgtableAccess.RWX, (LEND, False): PgtableAccess.RX,
          (SHARE, True): PgtableAccess.RW, (SHARE, False): PgtableAccess.R}
HOST_AS_RIGHTS = AddrspaceRights.MAP | AddrspaceRights.LOOKUP
HOST_EXTENT_RIGHTS = MemextentRights.MAP | MemextentRights.DONATE | MemextentRights.LOOKUP
AS_MASTER_RIGHTS = HOST_AS_RIGHTS | AddrspaceRights.ATTACH | AddrspaceRights.ADD_VMMIO_RANGE
EXTENT_MASTER_RIGHTS = HOST_EXTENT_RIGHTS | MemextentRights.DERIVE | MemextentRights.ATTACH


class AddrSpace(KObject):
    """A VM's stage-2 address space (hyp/mem/addrspace); its tables live in MemoryModel."""

    obj_type = ObjectType.ADDRSPACE

    def __init__(self, oid: int, vm: Vm) -> None:
        super().__init__(oid, vm.name)
        self.vm = vm


class MemExtent(KObject):
    """A sparse memory extent of ``vm``'s memory (hyp/mem/memextent), by its label."""

    obj_type = ObjectType.MEMEXTENT

    def __init__(self, oid: int, vm: Vm, label: int) -> None:
        super().__init__(oid, f"{vm.name}:{EXTENT_NAMES[label]}")
        self.vm = vm
        self.label = label


@dataclass
class Window:
    """The IPA range of ``guest`` whose pages its owner ``host`` gives on demand."""

    guest: Vm
    host: Vm
    base: int
    size: int
    transfer: str = LEND

    def holds(self, addr: int) -> bool:
        return self.base <= addr < self.base + self.size


def setup(hyp: Hypervisor, guest: Vm, host: Vm, base: int, pages: int,
          transfer: str = LEND, writable: bool = True) -> dict[str, Any]:
    """Create the guest's address space and the four extents, copy caps to ``host`` and
    record them in ``host.resources`` as the RM would after VM_SET_DEMAND_PAGING."""
    space = AddrSpace(hyp._next_oid(), guest)
    extents = {label: MemExtent(hyp._next_oid(), guest if label in GUEST_LABELS else host,
                                label) for label in EXTENT_NAMES}
    caps: dict[str, int] = {}
    for name, obj, master, given in (
            [("addrspace", space, AS_MASTER_RIGHTS, HOST_AS_RIGHTS)]
            + [(EXTENT_NAMES[label], ext, EXTENT_MASTER_RIGHTS, HOST_EXTENT_RIGHTS)
               for label, ext in extents.items()]):
        obj.activate()
        capid = hyp.master_cspace.create(obj, int(master))
        caps[name] = hyp.master_cspace.copy_to(capid, host.cspace, int(given))
    hyp._copied_caps(host)
    window = Window(guest, host, base, pages * PAGE_SIZE, transfer)
    hyp.demand[guest.vmid] = window
    entry = {"type": "DEMAND_PAGING", "partner": guest.name, "base": base,
             "size": window.size, "transfer": transfer, "writable": writable, "caps": caps}
    host.resources[f"demand:{guest.name}"] = entry
    return entry


def faults_to_owner(hyp: Hypervisor, vcpu: Any, addr: int) -> bool:
    """True if an access by ``vcpu`` at ``addr`` is a page fault its owner must serve:
    the vCPU is proxy-scheduled and the IPA is an unmapped page of its demand window
    (facts §10.2). Anything else faults as before: an abort injected into the guest."""
    window = hyp.demand.get(vcpu.vm.vmid) if hyp.demand else None
    return (window is not None and vcpu.proxy_owner is not None and window.holds(addr)
            and not hyp.memory.mapped(vcpu.vm.vmid, addr))
