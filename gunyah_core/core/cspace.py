"""CSpace: a VM's table of capabilities, capid -> (object, rights).

Capids are opaque per-CSpace numbers like Gunyah's two-level cspace:
``capid = (index * mult) XOR base`` with a seeded random ``mult`` and ``base``, so
numbers mean nothing outside their CSpace. Lookup fails in Gunyah's own order
(facts §1.2). Copies are never masters; revoking a master revokes its copies.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from ..consts import (
    CSPACE_CAP_INVALID,
    CSPACE_MAX_CAPS,
    CapState,
    Error,
    ObjectState,
    ObjectType,
)
from ..errors import HypError
from .kobject import KObject

_U16 = (1 << 16) - 1
CAPID_BASE_BITS = 48
# Enum members as plain names: on the lookup path an Enum attribute costs a lookup each time.
CAP_VALID = CapState.VALID
OBJECT_ACTIVE = ObjectState.ACTIVE


@dataclass(slots=True)
class Cap:
    """One slot: the object, its rights and whether it is the object's master cap."""

    obj: KObject
    rights: int
    master: bool
    state: CapState = CapState.VALID
    children: list[Cap] = field(default_factory=list)


class CSpace:
    """Per-VM capability table with Gunyah's lookup error precedence."""

    def __init__(self, owner: str, rng: random.Random, debug_ids: bool = False) -> None:
        self.owner = owner
        if debug_ids:  # DISABLE_CSPACE_RAND: capids equal the slot index
            self._mult, self._base = 1, 0
        else:
            self._mult = rng.randrange(1, _U16 + 1)
            # Gunyah draws a 64-bit base (top 32 bits below 0xffffff00). SIMULATOR: we keep
            # it to 48 bits so that capids survive JavaScript's 53-bit numbers intact.
            self._base = rng.randrange(0, 1 << CAPID_BASE_BITS)
        self._slots: list[Cap | None] = []
        self._free: list[int] = []  # heap of emptied slot indexes: the first is reused first
        self._by_id: dict[int, Cap] = {}  # capid -> cap: the hot path skips decoding

    # -- encoding ---------------------------------------------------------------
    def _encode(self, index: int) -> int:
        return (index * self._mult) ^ self._base

    def _decode(self, capid: int) -> int:
        """capid -> slot index, ARGUMENT_INVALID when it cannot be one of ours."""
        if not 0 <= capid < CSPACE_CAP_INVALID:
            raise HypError(Error.ARGUMENT_INVALID, "capid does not decode")
        scaled = capid ^ self._base
        index, rem = divmod(scaled, self._mult)
        if rem or index >= CSPACE_MAX_CAPS:
            raise HypError(Error.ARGUMENT_INVALID, "capid does not decode")
        return index

    # -- create / copy / revoke --------------------------------------------------
    def create(self, obj: KObject, rights: int, master: bool = True) -> int:
        """Put a new cap in the first free slot; CSPACE_FULL when there is none."""
        cap = Cap(obj, int(rights), master)
        # A heap of emptied slots, not a scan: filling a CSpace to CSPACE_MAX_CAPS stays
        # linear (cspace_twolevel.c cspace_allocate_cap_slot: cap_count == max_caps ->
        # CSPACE_FULL).
        if self._free:
            index = heapq.heappop(self._free)
            self._slots[index] = cap
        else:
            if len(self._slots) >= CSPACE_MAX_CAPS:
                raise HypError(Error.CSPACE_FULL)
            self._slots.append(cap)
            index = len(self._slots) - 1
        capid = self._encode(index)
        self._by_id[capid] = cap
        return capid

    def cap(self, capid: int) -> Cap:
        """The slot behind a capid, checked up to (not including) type and rights."""
        cap = self._by_id.get(capid)
        if cap is None:
            self._decode(capid)  # ARGUMENT_INVALID if it cannot be one of ours
            raise HypError(Error.CSPACE_CAP_NULL)
        if cap.state is not CapState.VALID:
            raise HypError(Error.CSPACE_CAP_REVOKED if cap.state is CapState.REVOKED
                           else Error.CSPACE_CAP_NULL)
        return cap

    def lookup(
        self, capid: int, obj_type: ObjectType, rights: int, active: bool = True
    ) -> KObject:
        """Resolve a capid to its object; errors in Gunyah's order (facts §1.2)."""
        cap = self._by_id.get(capid)
        if cap is None or cap.state is not CAP_VALID:
            cap = self.cap(capid)  # raises the precise error
        obj = cap.obj
        if obj.obj_type is not obj_type:
            raise HypError(Error.CSPACE_WRONG_OBJECT_TYPE)
        if cap.rights & rights != rights:
            raise HypError(Error.CSPACE_INSUFFICIENT_RIGHTS)
        if active and obj.state is not OBJECT_ACTIVE:
            raise HypError(Error.OBJECT_STATE)
        return obj

    def copy_to(self, capid: int, dst: CSpace, rights_mask: int) -> int:
        """Copy a cap into ``dst`` with rights ``old & mask``; a copy is never a master."""
        cap = self.cap(capid)
        rights = cap.rights & rights_mask
        if not rights:
            raise HypError(Error.CSPACE_INSUFFICIENT_RIGHTS)
        new_id = dst.create(cap.obj, rights, master=False)
        cap.children.append(dst.cap(new_id))
        return new_id

    def revoke_children(self, capid: int) -> int:
        """Mark every copy made from this master cap REVOKED; return how many."""
        cap = self.cap(capid)
        if not cap.master:
            raise HypError(Error.DENIED, "not a master cap")
        count = 0
        for child in cap.children:
            if child.state is CapState.VALID:
                child.state = CapState.REVOKED
                count += 1
        return count

    def find(self, obj: KObject) -> int | None:
        """The capid of this CSpace's first valid cap to ``obj`` (what the RM told the VM)."""
        for index, cap in enumerate(self._slots):
            if cap is not None and cap.obj is obj and cap.state is CapState.VALID:
                return self._encode(index)
        return None

    def delete(self, capid: int) -> None:
        index = self._decode(capid)
        if index >= len(self._slots) or self._slots[index] is None:
            raise HypError(Error.CSPACE_CAP_NULL)
        self._slots[index] = None
        heapq.heappush(self._free, index)
        del self._by_id[capid]

    def table(self, rights_names: dict[ObjectType, type]) -> list[dict]:
        """The capability table for the inspector: capid, object, rights names, state."""
        rows = []
        for index, cap in enumerate(self._slots):
            if cap is None:
                continue
            flag_type = rights_names.get(cap.obj.obj_type)
            names = (
                [f.name for f in flag_type if f.value & cap.rights and f.name != "OBJECT_ACTIVATE"]
                if flag_type
                else []
            )
            rows.append(
                {
                    "capid": self._encode(index),
                    "object": cap.obj.ref,
                    "type": cap.obj.obj_type.name,
                    "rights": cap.rights,
                    "rights_names": names,
                    "master": cap.master,
                    "state": cap.state.name,
                }
            )
        return rows
