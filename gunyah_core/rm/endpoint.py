"""One end of an RM link: a SEND-only and a RECEIVE-only queue, with RM RPC framing.

Packets are real bytes (header 0x21 ...) sent with ``msgqueue_send`` by the owning
VM's vCPU. Outgoing messages wait in an outbox and go one link at a time, in order
(the RM keeps one transmission outstanding per link, facts §5.1). After a send that
reports not_full=false, or a MSGQUEUE_FULL, the sender waits for its Tx vIRQ.
Received packets are reassembled; malformed ones are dropped as the RM drops them.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..consts import MSGQUEUE_SEND_FLAG_PUSH, Error
from ..core.trace import EventKind
from ..guest.programs import hvc
from .messages import RpcType
from .rpc import Reassembler, RpcMessage, fragment, split_reply

if TYPE_CHECKING:
    from ..core.trace import Trace

DIRECTION = {RpcType.REQUEST: "request", RpcType.REPLY: "reply",
             RpcType.NOTIFICATION: "notification"}


class RpcEndpoint:
    """The RM-RPC side of one VM on one link (the RM has one per peer VM)."""

    def __init__(self, owner: str, peer: str, tx: dict[str, Any], rx: dict[str, Any],
                 trace: Trace, push_last: bool) -> None:
        self.owner = owner
        self.peer = peer
        self.tx = tx
        self.rx = rx
        self.trace = trace
        # Linux sets PUSH on the last fragment of a request; the RM sends without flags
        # and relies on the receiver's not-empty threshold of 1 (facts §3.4).
        self.push_last = push_last
        self.reassembler = Reassembler()
        self.outbox: deque[tuple[bytes, bool]] = deque()
        self.waiting_tx = False
        # A pump suspended in its msgqueue_send owns the outbox's head: a Tx vIRQ handler
        # that runs meanwhile must not send (and pop) that packet again. Linux holds the
        # RM link's send lock across the hypercall for the same reason (rsc_mgr.c).
        self.pumping = False

    def queue(self, msg_type: RpcType, seq: int, msg_id: int, payload: bytes,
              fields: dict[str, Any] | None = None) -> None:
        """Fragment a message into the outbox and trace it as one ``rm.rpc``."""
        packets = fragment(msg_type, seq, msg_id, payload)
        if self.trace.on:
            event = {"dir": DIRECTION[msg_type], "stage": "send", "msg_id": int(msg_id),
                     "name": RpcMessage(msg_type, seq, msg_id, b"").name, "rpc_seq": seq,
                     "fragments": len(packets) - 1, "src": self.owner, "dst": self.peer,
                     "size": len(payload)}
            if msg_type == RpcType.REPLY:
                event["error"] = split_reply(payload)[0].name
            if fields:
                event["fields"] = fields
            self.trace.emit(EventKind.RM_RPC, **event)
        last = len(packets) - 1
        for index, packet in enumerate(packets):
            self.outbox.append((packet, index == last))

    def pump(self):
        """Send queued packets until the outbox is empty or the queue is full."""
        if self.pumping:
            return  # the pump under way sends what is queued
        self.pumping = True
        try:
            while self.outbox and not self.waiting_tx:
                packet, last = self.outbox[0]
                flags = MSGQUEUE_SEND_FLAG_PUSH if (last and self.push_last) else 0
                result = yield hvc("msgqueue_send", capid=self.tx["capid"], size=len(packet),
                                   flags=flags, payload=packet)
                if result.error is Error.MSGQUEUE_FULL:
                    self.waiting_tx = True
                    return
                self.outbox.popleft()  # sent, or refused: a refused packet is not retried
                if result.error is Error.OK and not result.ret["not_full"]:
                    self.waiting_tx = True
        finally:
            self.pumping = False

    def tx_ready(self):
        """The Tx vIRQ: there is room again."""
        self.waiting_tx = False
        yield from self.pump()

    def drain(self):
        """Receive until not_empty is false; return the messages completed."""
        done: list[RpcMessage] = []
        while True:
            result = yield hvc("msgqueue_receive", capid=self.rx["capid"])
            if result.error is not Error.OK:
                return done
            drops = len(self.reassembler.dropped)
            payload = result.ret["payload"]
            if not isinstance(payload, bytes | bytearray):  # e.g. a person's text message
                payload = str(payload).encode("utf-8", "replace")
            message = self.reassembler.feed(payload)
            if len(self.reassembler.dropped) > drops and self.trace.on:
                self.trace.emit(EventKind.RM_PACKET, src=self.peer, dst=self.owner,
                                dropped=self.reassembler.last_drop, msg=result.ret["msg"])
            if message is not None:
                if self.trace.on:
                    self.trace.emit(EventKind.RM_RPC, dir=DIRECTION.get(message.msg_type, "?"),
                                    stage="receive", msg_id=message.msg_id,
                                    name=message.name, rpc_seq=message.seq,
                                    fragments=message.fragments, src=self.peer,
                                    dst=self.owner, size=len(message.payload))
                done.append(message)
            if not result.ret["not_empty"]:
                return done
