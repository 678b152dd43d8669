"""Message queue (hyp/ipc/msgqueue): a unidirectional, hypervisor-buffered FIFO.

Depth and maximum message size are fixed at creation. The Rx vIRQ fires when a send
makes the count reach the not-empty threshold or carries PUSH; the Tx vIRQ fires when a
receive makes the count fall to the not-full threshold (facts §3.2): crossings, not
every message. Simplified: a message is a size plus a short text payload, not bytes
copied from guest memory; the delay timers are UNIMPLEMENTED, as in the source.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..consts import (
    MSGQUEUE_DELAY_UNCHANGED,
    MSGQUEUE_MAX_MAX_MSG_SIZE,
    MSGQUEUE_MAX_QUEUE_DEPTH,
    MSGQUEUE_THRESHOLD_MAXIMUM,
    MSGQUEUE_THRESHOLD_UNCHANGED,
    Error,
    ObjectType,
)
from ..core.kobject import KObject
from ..core.trace import EventKind
from ..errors import HypError
from ..vm.vic import VirqSource

if TYPE_CHECKING:
    from ..core.trace import Trace

PAYLOAD_PREVIEW_CHARS = 32
BINARY = (bytes, bytearray)  # an RM packet: shown whole, as hex


def preview(payload: Any) -> str:
    """What a view shows of a message: the text, or the bytes as hex (RM packets).

    Bytes are shown whole (at most 240 of them on an RM link) so that a packet
    inspector can decode the header and payload from the trace alone.
    """
    if isinstance(payload, BINARY):
        return payload.hex()
    return str(payload)[:PAYLOAD_PREVIEW_CHARS]


# What msgqueue_send_msg / msgqueue_receive_msg return beside FULL / EMPTY (H-SRC).
NOT_FULL_FALSE = {"not_full": False}
NOT_EMPTY_FALSE = {"size": 0, "not_empty": False}
BUFFER_TOO_SMALL = {"size": 0, "not_empty": True}  # the message is still queued

# A queued message is a plain tuple (one is made per send, so it is kept cheap) with
# this layout; its id and send time let a view follow and scrub it.
MSG_ID, MSG_SIZE, MSG_PAYLOAD, MSG_SENT_NS = range(4)


class Msgq(KObject):
    """One direction of an inter-VM channel: sender VM -> hypervisor buffer -> receiver VM."""

    obj_type = ObjectType.MSGQUEUE

    def __init__(self, oid: int, name: str, depth: int, max_size: int, trace: Trace,
                 sender: str = "", receiver: str = "") -> None:
        if not 1 <= depth < MSGQUEUE_MAX_QUEUE_DEPTH:
            raise HypError(Error.ARGUMENT_INVALID, f"depth {depth} not in 1..255")
        if not 1 <= max_size < MSGQUEUE_MAX_MAX_MSG_SIZE:
            raise HypError(Error.ARGUMENT_INVALID, f"max size {max_size} not in 1..1023")
        super().__init__(oid, name)
        self.depth = depth
        self.max_size = max_size
        self.trace = trace
        self.sender = sender
        self.receiver = receiver
        self.items: deque[tuple[int, int, Any, int]] = deque()
        # Defaults at activation (H-SRC): not-empty 1, not-full depth - 1.
        self.notempty_thd = 1
        self.notfull_thd = depth - 1
        self.rx_source = VirqSource(f"msgq:{name}:rx", self._rx_pending, self._rx_why)
        self.tx_source = VirqSource(f"msgq:{name}:tx", self._tx_pending, self._tx_why)

    def _rx_pending(self) -> bool:
        return len(self.items) >= self.notempty_thd

    def _tx_pending(self) -> bool:
        return len(self.items) <= self.notfull_thd

    def _rx_why(self) -> dict[str, int]:
        """What a traced Rx assert carries: the count and the threshold it met."""
        return {"depth": len(self.items), "notempty_thd": self.notempty_thd}

    def _tx_why(self) -> dict[str, int]:
        return {"depth": len(self.items), "notfull_thd": self.notfull_thd}

    @property
    def count(self) -> int:
        return len(self.items)

    def send(self, size: int, payload: Any, push: bool, new_msg_id: Any, now: int) -> bool:
        """Append a message; assert Rx on PUSH or at the threshold; return not_full.

        ``new_msg_id`` hands out the id a view follows from send to receive.

        Raises MSGQUEUE_FULL (count == depth) with not_full = false, checked *before*
        the size, so a full queue answers it even to an oversized send; then
        ARGUMENT_SIZE (0 or above max size) (facts §3.2; H-SRC msgqueue_common.c
        ``msgqueue_send_msg``).
        """
        items = self.items
        if len(items) >= self.depth:
            raise HypError(Error.MSGQUEUE_FULL, ret=NOT_FULL_FALSE)
        if not 0 < size <= self.max_size:
            raise HypError(Error.ARGUMENT_SIZE, f"size {size} not in 1..{self.max_size}")
        msg_id = new_msg_id()  # only accepted messages get an id
        items.append((msg_id, size, payload, now))
        count = len(items)
        if self.trace.on:
            self.trace.msgq_send(self.name, self.sender, self.receiver, size, msg_id, count,
                                 push, preview(payload), self.notempty_thd)
        if push or count == self.notempty_thd:
            self.rx_source.assert_()
        return count < self.depth

    def receive(self, buf_size: int) -> tuple[int, int, Any, bool]:
        """Take the head message: ``(msg, size, payload, not_empty)``; assert Tx when the
        count falls to the not-full threshold.

        Raises MSGQUEUE_EMPTY, then ARGUMENT_SIZE when the buffer is smaller than the
        message, which stays queued: the error the source's copy routine gives (H-SRC
        useraccess.c ``useraccess_copy_to_guest_va``, called by msgqueue_common.c
        ``msgqueue_receive_msg``); H-API says ADDR_OVERFLOW (facts §3.2, §11: the source
        that runs is followed). X1/X2 stay size 0, not_empty true, as the source leaves them.
        """
        items = self.items
        if not items:
            raise HypError(Error.MSGQUEUE_EMPTY, ret=NOT_EMPTY_FALSE)
        if buf_size < items[0][MSG_SIZE]:
            raise HypError(Error.ARGUMENT_SIZE, "receive buffer too small", BUFFER_TOO_SMALL)
        msg, size, payload, _ = items.popleft()
        count = len(items)
        if self.trace.on:
            self.trace.msgq_recv(self.name, self.sender, self.receiver, size, msg, count,
                                 self.notfull_thd)
        if count == self.notfull_thd:
            self.tx_source.assert_()
        return msg, size, payload, count > 0

    def push(self) -> None:
        """The explicit push of Linux's message-queue.rst: raise Rx if anything is queued.

        Documented (LX-DOC message-queue.rst, 2b) but absent from the public
        hypervisor source (0x601E is reserved); modelled as the document describes.
        """
        if self.trace.on:
            self.trace.emit(EventKind.MSGQ_PUSH, msgq=self.name, src=self.sender,
                            dst=self.receiver, depth=len(self.items))
        if self.items:
            self.rx_source.assert_()

    def flush(self) -> int:
        """Empty the queue; if it held anything, assert Tx and clear Rx (H-SRC)."""
        dropped = len(self.items)
        self.items.clear()
        if self.trace.on:
            self.trace.emit(EventKind.MSGQ_FLUSH, msgq=self.name, src=self.sender,
                            dst=self.receiver, dropped=dropped, depth=0)
        if dropped:
            self.tx_source.assert_()
            self.rx_source.clear()
        return dropped

    def configure_send(self, notfull_thd: int, delay: int = MSGQUEUE_DELAY_UNCHANGED) -> None:
        """Set the not-full threshold; Tx follows the new level at once.

        -1 (unchanged) changes nothing and asserts or clears nothing (facts §3.3;
        H-SRC msgqueue.c ``msgqueue_configure_send`` re-checks only after a real set).
        """
        if delay != MSGQUEUE_DELAY_UNCHANGED:
            raise HypError(Error.UNIMPLEMENTED, "not-full delay timer")
        if notfull_thd == MSGQUEUE_THRESHOLD_UNCHANGED:
            return
        if not 0 <= notfull_thd < self.depth:
            raise HypError(Error.ARGUMENT_INVALID, "not-full threshold must be < depth")
        self.notfull_thd = notfull_thd
        self._emit_config()
        if self._tx_pending():
            self.tx_source.assert_()
        else:
            self.tx_source.clear()

    def configure_receive(self, notempty_thd: int, delay: int = MSGQUEUE_DELAY_UNCHANGED) -> None:
        """Set the not-empty threshold; Rx follows the new level at once.

        -1 (unchanged) does nothing; -2 (maximum) sets it to the depth *without*
        re-checking Rx (facts §3.3; H-SRC msgqueue.c ``msgqueue_configure_receive``).
        """
        if delay != MSGQUEUE_DELAY_UNCHANGED:
            raise HypError(Error.UNIMPLEMENTED, "not-empty delay timer")
        if notempty_thd == MSGQUEUE_THRESHOLD_UNCHANGED:
            return
        if notempty_thd == MSGQUEUE_THRESHOLD_MAXIMUM:
            self.notempty_thd = self.depth
            self._emit_config()
            return
        if not 0 < notempty_thd <= self.depth:
            raise HypError(Error.ARGUMENT_INVALID, "not-empty threshold must be 1..depth")
        self.notempty_thd = notempty_thd
        self._emit_config()
        if self._rx_pending():
            self.rx_source.assert_()
        else:
            self.rx_source.clear()

    def _emit_config(self) -> None:
        if self.trace.on:
            self.trace.emit(EventKind.MSGQ_CONFIG, msgq=self.name, src=self.sender,
                            dst=self.receiver, notempty_thd=self.notempty_thd,
                            notfull_thd=self.notfull_thd)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sender": self.sender,
            "receiver": self.receiver,
            "depth": self.depth,
            "max_size": self.max_size,
            "count": len(self.items),
            "notempty_thd": self.notempty_thd,
            "notfull_thd": self.notfull_thd,
            "rx_virq": self.rx_source.virq,
            "tx_virq": self.tx_source.virq,
            "items": [
                {"msg": msg, "size": size, "payload": preview(payload), "sent_ns": sent_ns}
                for msg, size, payload, sent_ns in self.items
            ],
        }
