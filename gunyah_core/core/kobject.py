"""Kernel objects: what a capability points at (hyp/interfaces/object).

Every object has a type and a lifecycle state; normal lookups require ACTIVE.
The simulator creates objects already configured and activated at scenario build
time (the RM's job at VM creation), so INIT is only seen on objects built by hand.
"""

from __future__ import annotations

from ..consts import ObjectState, ObjectType


class KObject:
    """Base of every hypervisor object: a type, an id and a lifecycle state."""

    obj_type: ObjectType

    def __init__(self, oid: int, name: str) -> None:
        self.oid = oid
        self.name = name
        self.state = ObjectState.INIT

    def activate(self) -> None:
        self.state = ObjectState.ACTIVE

    @property
    def ref(self) -> str:
        """Stable id used in trace events and snapshots, e.g. ``msgq:A_to_B``."""
        return f"{self.obj_type.name.lower()}:{self.name}"
