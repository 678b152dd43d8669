"""A Linux-like RM client, as the primary VM's ``gunyah_rsc_mgr`` driver behaves.

Requests get a cyclic 16-bit sequence number from 0 (Linux ``rsc_mgr.c``
``gunyah_rm_call``: ``xa_alloc_cyclic(..., xa_limit_16b, &rm->next_seq)`` with next_seq
starting at 0, facts §5.1); replies are matched on seq and message id; PUSH goes on
the last fragment; the Rx handler drains until not_empty is false; notifications are
handed to the guest program. ``call`` is used from a program's main
flow (it waits in WFI for the reply); ``send`` only queues (usable in a handler).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..guest.programs import WFI
from .endpoint import RpcEndpoint
from .messages import RmError, RpcType
from .rpc import RpcMessage, split_reply

if TYPE_CHECKING:
    from ..core.trace import Trace

SEQ_MODULUS = 1 << 16


class RmClient:
    """Request/reply over one VM's RM link."""

    def __init__(self, vm_name: str, rm_name: str, tx: dict[str, Any], rx: dict[str, Any],
                 trace: Trace) -> None:
        self.endpoint = RpcEndpoint(vm_name, rm_name, tx, rx, trace, push_last=True)
        self._seq = 0
        self.replies: dict[tuple[int, int], RpcMessage] = {}
        self.notifications: deque[RpcMessage] = deque()
        # The link's vIRQs are bound once, when the RM creates the VM's queue pair.
        self.virqs: tuple[int, int] = (rx["virq"], tx["virq"])

    def _next_seq(self) -> int:
        """0, 1, 2, ... 65535, then 0 again."""
        seq = self._seq
        self._seq = (seq + 1) % SEQ_MODULUS
        return seq

    def send(self, msg_id: int, payload: bytes, fields: dict | None = None):
        """Queue a request and push it out; returns its seq (no waiting for the reply)."""
        seq = self._next_seq()
        self.endpoint.queue(RpcType.REQUEST, seq, msg_id, payload, fields)
        yield from self.endpoint.pump()
        return seq

    def call(self, msg_id: int, payload: bytes, fields: dict | None = None):
        """Send a request and wait for its reply: returns (RmError, reply data)."""
        seq = yield from self.send(msg_id, payload, fields)
        key = (seq, msg_id)
        while key not in self.replies:
            yield WFI
        error, data = split_reply(self.replies.pop(key).payload)
        return RmError(error), data

    def on_virq(self, virq: int):
        """The link's vIRQs: Rx drains and files replies; Tx resumes sending."""
        rx_virq, tx_virq = self.virqs
        if virq == tx_virq:
            yield from self.endpoint.tx_ready()
            return
        if virq != rx_virq:
            return
        for message in (yield from self.endpoint.drain()):
            if message.msg_type == RpcType.REPLY:
                self.replies[(message.seq, message.msg_id)] = message
            elif message.msg_type == RpcType.NOTIFICATION:
                self.notifications.append(message)
