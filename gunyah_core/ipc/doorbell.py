"""Doorbell (hyp/ipc/doorbell): 64 flag bits that raise a vIRQ in the receiver.

send ORs flags and returns the old value; if any enabled flag is set the vIRQ is
asserted as a level source and the ack-mask bits auto-clear, otherwise only an edge
assert happens (facts §4). receive clears with a non-zero mask and returns the old
flags. The payload is the flags themselves: doorbells carry no message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..consts import (
    DOORBELL_DEFAULT_ACK_MASK,
    DOORBELL_DEFAULT_ENABLE_MASK,
    DOORBELL_FLAGS_MASK,
    Error,
    ObjectType,
)
from ..core.kobject import KObject
from ..core.trace import EventKind
from ..errors import HypError
from ..vm.vic import VirqSource

if TYPE_CHECKING:
    from ..core.trace import Trace


class Doorbell(KObject):
    """Flags + enable mask + ack mask + one bound vIRQ in the receiving VM."""

    obj_type = ObjectType.DOORBELL

    def __init__(self, oid: int, name: str, trace: Trace, sender: str = "",
                 receiver: str = "") -> None:
        super().__init__(oid, name)
        self.trace = trace
        self.sender = sender
        self.receiver = receiver
        self.flags = 0
        self.enable_mask = DOORBELL_DEFAULT_ENABLE_MASK
        self.ack_mask = DOORBELL_DEFAULT_ACK_MASK
        self.source = VirqSource(f"doorbell:{name}", self._pending)

    def _pending(self) -> bool:
        return bool(self.flags & self.enable_mask)

    def send(self, new_flags: int) -> int:
        """OR in ``new_flags``; level-assert if an enabled flag is set; return old flags."""
        old = self.flags
        flags = (old | new_flags) & DOORBELL_FLAGS_MASK
        level = bool(flags & self.enable_mask)
        acked = flags & self.ack_mask if level else 0  # auto-cleared at the level assert
        self.flags = flags & ~acked
        if self.trace.on:
            self.trace.emit(EventKind.BELL_SEND, doorbell=self.name, src=self.sender,
                            dst=self.receiver, sent=new_flags, old=old, flags=self.flags,
                            acked=acked, enable_mask=self.enable_mask)
        # Either way the assert latches the vIRQ pending; edge-only has no effect on a
        # level-configured line (facts §4).
        self.source.assert_(edge_only=not level)
        return old

    def receive(self, clear_flags: int) -> int:
        """Clear ``clear_flags`` (must be non-zero); return the old flags. Asserts nothing."""
        if clear_flags == 0:
            raise HypError(Error.ARGUMENT_INVALID, "clear mask must be non-zero")
        old = self.flags
        self.flags = old & ~clear_flags
        if self.trace.on:
            self.trace.emit(EventKind.BELL_RECV, doorbell=self.name, src=self.sender,
                            dst=self.receiver, vm=self.receiver, old=old, clear=clear_flags,
                            flags=self.flags)
        return old

    def mask(self, enable_mask: int, ack_mask: int) -> None:
        """Store both masks; the vIRQ follows the enabled-flags level as it changes."""
        was = bool(self.flags & self.enable_mask)
        self.enable_mask = enable_mask & DOORBELL_FLAGS_MASK
        self.ack_mask = ack_mask & DOORBELL_FLAGS_MASK
        now = bool(self.flags & self.enable_mask)
        acked = self.flags & self.ack_mask if now else 0
        self.flags &= ~acked
        if self.trace.on:
            self.trace.emit(EventKind.BELL_MASK, doorbell=self.name, src=self.sender,
                            dst=self.receiver, enable_mask=self.enable_mask,
                            ack_mask=self.ack_mask, flags=self.flags, acked=acked)
        if was and not now:
            self.source.clear()
        elif now and not was:
            self.source.assert_()

    def reset(self) -> None:
        """Clear the vIRQ and the flags; masks back to their defaults."""
        self.source.clear()
        self.flags = 0
        self.ack_mask = DOORBELL_DEFAULT_ACK_MASK
        self.enable_mask = DOORBELL_DEFAULT_ENABLE_MASK
        if self.trace.on:
            self.trace.emit(EventKind.BELL_RESET, doorbell=self.name, src=self.sender,
                            dst=self.receiver, flags=0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sender": self.sender,
            "receiver": self.receiver,
            "flags": self.flags,
            "enable_mask": self.enable_mask,
            "ack_mask": self.ack_mask,
            "virq": self.source.virq,
        }
