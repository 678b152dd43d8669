"""The Resource Manager VM's program: RM RPC server over one link per VM.

The RM is a VM like any other here: its vCPU drains each link on the Rx vIRQ, answers
requests with replies (first payload word = RM error), sends notifications, and does
slow work (VM reset stages) from its main loop. Simplified: it creates and destroys
hypervisor objects by direct calls rather than through partition_create_* hypercalls
with its privileged caps; the objects, caps and vIRQs it hands out are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.trace import EventKind
from ..guest.programs import WFI, Guest, work
from .endpoint import RpcEndpoint
from .messages import RmError, RmMessageId, RpcType
from .payloads import PayloadError
from .rpc import RpcMessage, make_reply

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor
    from ..vm.vm import Vm

# SIMULATOR: how long the RM spends on one request (the facts sheet has no figure).
RM_REQUEST_NS = 20_000
SEQ_MODULUS = 1 << 16


class RmFailure(Exception):
    """A request the RM refuses: the reply carries ``error``."""

    def __init__(self, error: RmError, detail: str = "") -> None:
        super().__init__(f"{error.name}: {detail}" if detail else error.name)
        self.error = error
        self.detail = detail


Handler = Callable[["Vm", bytes], bytes | None]


class ResourceManager(Guest):
    """Program of the RM VM (vmid 0xFF)."""

    program = "rm"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.hyp: Hypervisor | None = None
        self.links: dict[str, RpcEndpoint] = {}
        self.by_virq: dict[int, RpcEndpoint] = {}
        self.handlers: dict[int, Handler] = {}
        self._notify_seq = 0
        # HALT vIRQs of PSCI VMs' vCPUs, bound in this VM's VIC: vIRQ -> (VM, the RM's
        # capid of the vCPU) (RM vm_config.c vm_config_add_vcpu; vm/psci.py enable).
        self.halts: dict[int, tuple[Vm, int]] = {}
        self.on_halt: Callable[[Vm, int], Any] | None = None

    def attach(self, hyp: Hypervisor, services: list[Any]) -> None:
        """Give the RM the hypervisor and its services (each adds request handlers)."""
        self.hyp = hyp
        for service in services:
            self.handlers.update(service.handlers())
            self.on_halt = getattr(service, "vcpu_halted", self.on_halt)

    def watch_halt(self, virq: int, vm: Vm, capid: int) -> None:
        """Serve a vCPU's HALT vIRQ (RM vm_mgnt.c ``vm_mgnt_register_event``)."""
        self.halts[virq] = (vm, capid)

    def add_link(self, peer: Vm) -> None:
        """Serve a VM's RM link (its queues already exist: RM holds the peer's rx/tx ends)."""
        tx = self.vm.resources[f"rm:{peer.name}:tx"]
        rx = self.vm.resources[f"rm:{peer.name}:rx"]
        endpoint = RpcEndpoint(self.vm.name, peer.name, tx, rx, self.vm_trace, push_last=False)
        self.links[peer.name] = endpoint
        self.by_virq[rx["virq"]] = endpoint
        self.by_virq[tx["virq"]] = endpoint

    def drop_link(self, peer_name: str) -> None:
        endpoint = self.links.pop(peer_name, None)
        if endpoint is not None:
            self.by_virq.pop(endpoint.rx["virq"], None)
            self.by_virq.pop(endpoint.tx["virq"], None)

    @property
    def vm_trace(self):
        return self.hyp.trace

    # -- the RM's own execution ------------------------------------------------------------
    def run(self, vcpu):
        while True:
            while self.jobs:
                yield from self.jobs.popleft()
                yield from self.flush()
            yield WFI

    def handle_virq(self, vcpu, virq: int):
        halted = self.halts.get(virq)
        if halted is not None and self.on_halt is not None:
            yield from self.on_halt(*halted)
            yield from self.flush()
            return
        endpoint = self.by_virq.get(virq)
        if endpoint is None:
            return
        if virq == endpoint.tx["virq"]:
            yield from endpoint.tx_ready()
            return
        for message in (yield from endpoint.drain()):
            if message.msg_type == RpcType.REQUEST:
                yield work(RM_REQUEST_NS)
                self.dispatch(endpoint, message)
            # Non-request packets sent to the RM are ignored (RM resource-manager.c).
        yield from self.flush()

    def flush(self):
        """Push out whatever replies and notifications are waiting, link by link."""
        for endpoint in list(self.links.values()):
            if endpoint.outbox and not endpoint.waiting_tx:
                yield from endpoint.pump()

    def dispatch(self, endpoint: RpcEndpoint, message: RpcMessage) -> None:
        caller = self.hyp.vms.get(endpoint.peer)
        handler = self.handlers.get(message.msg_id)
        try:
            if handler is None:
                raise RmFailure(RmError.UNIMPLEMENTED, "unknown message id")
            reply, detail = make_reply(RmError.OK, handler(caller, message.payload) or b""), ""
        except RmFailure as failure:
            reply, detail = make_reply(failure.error), failure.detail
        except PayloadError as bad:
            reply, detail = make_reply(RmError.MSG_INVALID), str(bad)
        if endpoint.peer in self.links:  # a VM_EXIT or deallocate may have removed the link
            endpoint.queue(RpcType.REPLY, message.seq, message.msg_id, reply,
                           {"detail": detail} if detail else None)

    def notify(self, vm_name: str, msg_id: RmMessageId, payload: bytes,
               fields: dict | None = None) -> None:
        """Queue a notification (type 3) to a VM, numbered by the RM's own counter: 0, 1, ...
        (RM ``rm-rpc.c`` ``get_next_seq_num``: ``static uint16_t seq_num = 0; return
        seq_num++``; facts §5.1)."""
        endpoint = self.links.get(vm_name)
        if endpoint is None:
            return
        seq, self._notify_seq = self._notify_seq, (self._notify_seq + 1) % SEQ_MODULUS
        endpoint.queue(RpcType.NOTIFICATION, seq, msg_id, payload, fields)

    def set_state(self, vm: Vm, state: Any) -> None:
        """Record a VM state change (RM vm_state_t) and trace it."""
        vm.state = state.name
        if self.hyp.trace.on:
            self.hyp.trace.emit(EventKind.VM_STATE, vm=vm.name, vmid=vm.vmid, state=state.name,
                                value=int(state))
