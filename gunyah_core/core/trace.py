"""Trace recorder: every state change in the model is one event, recorded once.

Events are plain dicts ``{"seq", "t", "kind", ...fields}`` with a fixed key order, so
JSONL output is byte-identical for the same scenario and seed. ``EventKind`` is the one
list of kinds (the contract of design.md §3.2). Emitters check ``trace.on`` first so a
benchmark with tracing off pays nothing for building the dicts.

The kinds every message produces have an emitter of their own (``Trace.msgq_send`` ...):
it spells the event's fields once, here, and builds the dict in one go, about half the
cost of ``emit(kind, **fields)``, which serves every other kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EventKind:
    """Every kind of trace event, ``area.verb``; the UI and exporters rely on these."""

    HVC = "hvc"
    MSGQ_SEND = "msgq.send"
    MSGQ_RECV = "msgq.recv"
    MSGQ_FLUSH = "msgq.flush"
    MSGQ_PUSH = "msgq.push"
    MSGQ_CONFIG = "msgq.config"
    VIRQ_ASSERT = "virq.assert"
    VIRQ_DELIVER = "virq.deliver"
    VIRQ_EOI = "virq.eoi"
    VIRQ_CLEAR = "virq.clear"
    VIRQ_BIND = "virq.bind"
    VIRQ_UNBIND = "virq.unbind"
    BELL_SEND = "bell.send"
    BELL_RECV = "bell.recv"
    BELL_MASK = "bell.mask"
    BELL_RESET = "bell.reset"
    SCHED_SWITCH = "sched.switch"
    VCPU_STATE = "vcpu.state"
    VCPU_PRIORITY = "vcpu.priority"
    VCPU_RUN = "vcpu.run"
    VCPU_POWER = "vcpu.power"
    PSCI_CALL = "psci.call"
    CAP_CREATE = "cap.create"
    CAP_REVOKE = "cap.revoke"
    RM_RPC = "rm.rpc"
    RM_PACKET = "rm.packet"
    VM_STATE = "vm.state"
    MEM_LEND = "mem.lend"
    MEM_SHARE = "mem.share"
    MEM_DONATE = "mem.donate"
    MEM_ACCEPT = "mem.accept"
    MEM_RELEASE = "mem.release"
    MEM_RECLAIM = "mem.reclaim"
    MEM_NOTIFY = "mem.notify"
    MEM_FAULT = "mem.fault"
    MEM_ACCESS = "mem.access"
    VTIMER_WRITE = "vtimer.write"
    VTIMER_QUEUE = "vtimer.queue"
    VTIMER_FIRE = "vtimer.fire"
    MEM_PAGE_FAULT = "mem.page_fault"
    MEM_EXTENT_DONATE = "mem.extent_donate"
    MEM_MAP = "mem.map"
    MEM_UNMAP = "mem.unmap"
    VIRTIO_WRITE = "virtio.write"
    VIRTIO_BACKEND = "virtio.backend"
    VIRTQ_AVAIL = "virtq.avail"
    VIRTQ_POP = "virtq.pop"
    VIRTQ_USED = "virtq.used"
    VIRTQ_RECLAIM = "virtq.reclaim"
    OBJ_CREATE = "obj.create"
    OBJ_DESTROY = "obj.destroy"
    SIM_SNAPSHOT = "sim.snapshot"
    USER_ACTION = "user.action"


ALL_KINDS = frozenset(v for k, v in vars(EventKind).items() if k.isupper())

Listener = Callable[[dict[str, Any]], None]


class Trace:
    """Numbers events, hands each to the listeners and to ``pending`` for ``step()``."""

    __slots__ = ("on", "seq", "clock", "pending", "buffering", "_listeners")

    def __init__(self, clock: Any, enabled: bool = True) -> None:
        self.on = enabled
        self.seq = 0
        self.clock = clock
        self.pending: list[dict[str, Any]] = []
        self.buffering = True  # off while a long run streams to listeners only
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every future event; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, kind: str, **fields: Any) -> None:
        """Record one event at the current simulated time."""
        self.record({"seq": self.seq, "t": self.clock.now, "kind": kind, **fields})

    def record(self, event: dict[str, Any]) -> None:
        """Number an event already built with this ``seq`` and hand it on."""
        self.seq += 1
        if self.buffering:
            self.pending.append(event)
        for listener in self._listeners:
            listener(event)

    # -- the per-message kinds, field by field --------------------------------------------
    def hvc(self, vm: str, vcpu: str, name: str, call: int | None, args: dict[str, Any],
            result: str, ret: dict[str, Any], action: int | None,
            first: int | None = None) -> None:
        """A hypercall and its real result (``action``: the user action that made it;
        ``first``: the seq of the first event the call itself caused, for such calls)."""
        event = {"seq": self.seq, "t": self.clock.now, "kind": EventKind.HVC, "vm": vm,
                 "vcpu": vcpu, "name": name, "call": call, "args": args, "result": result,
                 "ret": ret}
        if action is not None:
            event["action"] = action
            if first is not None and first < self.seq:
                event["effects_from"] = first
        self.record(event)

    def msgq_send(self, msgq: str, src: str, dst: str, size: int, msg: int, depth: int,
                  push: bool, payload: str, notempty_thd: int) -> None:
        """``notempty_thd``: the threshold ``depth`` is compared with (says why Rx fires)."""
        self.record({"seq": self.seq, "t": self.clock.now, "kind": EventKind.MSGQ_SEND,
                     "msgq": msgq, "src": src, "dst": dst, "size": size, "msg": msg,
                     "depth": depth, "push": push, "payload": payload,
                     "notempty_thd": notempty_thd})

    def msgq_recv(self, msgq: str, src: str, dst: str, size: int, msg: int,
                  depth: int, notfull_thd: int) -> None:
        """``notfull_thd``: the threshold ``depth`` is compared with (says why Tx fires)."""
        self.record({"seq": self.seq, "t": self.clock.now, "kind": EventKind.MSGQ_RECV,
                     "msgq": msgq, "src": src, "dst": dst, "size": size, "msg": msg,
                     "depth": depth, "notfull_thd": notfull_thd})

    def virq_assert(self, vm: str, virq: int, source: str, trigger: str,
                    why: dict[str, Any] | None = None) -> None:
        """``why``: the source's own state that raised it (a queue's count and threshold)."""
        event = {"seq": self.seq, "t": self.clock.now, "kind": EventKind.VIRQ_ASSERT,
                 "vm": vm, "virq": virq, "source": source, "trigger": trigger}
        if why is not None:
            event.update(why)
        self.record(event)

    def virq_vcpu(self, kind: str, vm: str, virq: int, source: str, vcpu: str) -> None:
        """virq.deliver or virq.eoi: a vCPU takes or finishes a vIRQ."""
        self.record({"seq": self.seq, "t": self.clock.now, "kind": kind, "vm": vm,
                     "virq": virq, "source": source, "vcpu": vcpu})

    def sched_switch(self, pcpu: int, prev: str | None, next_: str | None,
                     reason: str, slice_ns: int | None = None, prio: int | None = None,
                     prev_prio: int | None = None, prev_left_ns: int | None = None) -> None:
        """A context switch; ``slice_ns``: the timeslice ``next_`` runs with (None: idle);
        ``prio``/``prev_prio``: both threads' priorities; ``prev_left_ns``: what is left of
        ``prev``'s slice (what a preempted thread keeps)."""
        self.record({"seq": self.seq, "t": self.clock.now, "kind": EventKind.SCHED_SWITCH,
                     "pcpu": pcpu, "prev": prev, "next": next_, "reason": reason,
                     "slice_ns": slice_ns, "prio": prio, "prev_prio": prev_prio,
                     "prev_left_ns": prev_left_ns})

    def vcpu_state(self, vcpu: str, vm: str, state: str, reason: str) -> None:
        self.record({"seq": self.seq, "t": self.clock.now, "kind": EventKind.VCPU_STATE,
                     "vcpu": vcpu, "vm": vm, "state": state, "reason": reason})

    def take(self) -> list[dict[str, Any]]:
        """Hand over the events recorded since the last take."""
        events, self.pending = self.pending, []
        return events
