"""Live invariants: properties every run must keep, checked event by event from the trace.

A listener on the trace keeps its own small account of what the events say (each
queue's messages in order, the vCPU each pCPU runs) and checks every new event against
it, and, for hypercalls, against the caller's CSpace at that moment:

- ``msg_once``: a message is received at most once and only after it was accepted;
  every accepted message is received once or is still queued (or its queue was
  flushed or destroyed);
- ``fifo``: a queue gives its messages back in the order it accepted them;
- ``depth``: a queue never holds more than its depth, and each event's ``depth`` is
  the count the account gives;
- ``one_per_pcpu``: a pCPU runs at most one vCPU, a vCPU runs on at most one pCPU, and
  each ``sched.switch`` leaves the vCPU the pCPU was running;
- ``rights``: a hypercall that succeeded named, in the caller's CSpace, a cap to an
  object of the type it needs with every right it needs (the hypercall table's own
  ``Param.rights``, facts §1.4), and one refused CSPACE_INSUFFICIENT_RIGHTS named a cap
  that really lacks one.

These are the model checking itself, not Gunyah behaviour. The first violation is kept
with the event's seq; a run that watches ``violation`` (the page's session) pauses.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..consts import RIGHTS_BY_TYPE, ObjectType
from ..core.hypercalls import params
from ..core.trace import EventKind
from ..errors import HypError

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor

NAMES = ("msg_once", "fifo", "depth", "one_per_pcpu", "rights")
MAX_VIOLATIONS = 20  # kept per run; the first is what the page points at


class Invariants:
    """A trace listener: ``checks`` counts every check made, ``violations`` lists the
    broken ones (at most MAX_VIOLATIONS), ``violation`` is the first."""

    def __init__(self, hyp: Hypervisor) -> None:
        self.hyp = hyp
        self.checks = 0
        self.by_name = dict.fromkeys(NAMES, 0)
        self.violations: list[dict[str, Any]] = []
        # The account starts from the machine as it is (built, nothing run yet).
        self.queues: dict[str, deque[int]] = {
            name: deque(item[0] for item in q.items) for name, q in hyp.msgqs.items()}
        # Each queue's depth as it was created (configuration never changes it).
        self.capacity = {name: q.depth for name, q in hyp.msgqs.items()}
        self.running: dict[int, str | None] = {
            p.index: p.current.id if p.current else None for p in hyp.pcpus}
        self._needs_cache: dict[str, tuple[ObjectType, int, tuple[str, ...]] | None] = {}
        self._handlers = {
            EventKind.MSGQ_SEND: self._send,
            EventKind.MSGQ_RECV: self._recv,
            EventKind.MSGQ_FLUSH: self._flush,
            EventKind.OBJ_CREATE: self._created,
            EventKind.OBJ_DESTROY: self._destroyed,
            EventKind.SCHED_SWITCH: self._switch,
            EventKind.HVC: self._hvc,
        }

    @property
    def violation(self) -> dict[str, Any] | None:
        return self.violations[0] if self.violations else None

    def status(self) -> dict[str, Any]:
        """Plain JSON for the page: the counts, and the first violation if any."""
        return {"checks": self.checks, "by_name": dict(self.by_name),
                "violations": len(self.violations), "violation": self.violation}

    def __call__(self, event: dict[str, Any]) -> None:
        handler = self._handlers.get(event["kind"])
        if handler is not None:
            handler(event)

    def _check(self, name: str, ok: bool, event: dict[str, Any],
                message: Callable[[], str]) -> None:
        """Count one check; on failure keep it. ``message`` is only called then: building
        every message's text would cost more than the checks themselves."""
        self.checks += 1
        self.by_name[name] += 1
        if not ok and len(self.violations) < MAX_VIOLATIONS:
            self.violations.append({"invariant": name, "seq": event["seq"], "t": event["t"],
                                    "kind": event["kind"], "message": message()})

    # -- message queues ------------------------------------------------------------------
    def _send(self, e: dict[str, Any]) -> None:
        name, msg = e["msgq"], e["msg"]
        queue = self.queues.setdefault(name, deque())
        self._check("msg_once", msg not in queue, e,
                    lambda: f"message {msg} accepted into {name} while already queued there")
        queue.append(msg)
        self._depth(e, name, queue)

    def _recv(self, e: dict[str, Any]) -> None:
        name, msg = e["msgq"], e["msg"]
        queue = self.queues.setdefault(name, deque())
        queued = bool(queue) and (queue[0] == msg or msg in queue)
        self._check("msg_once", queued, e, lambda: f"message {msg} received from {name} but "
                    "not queued there (never accepted, or received already)")
        if queued:
            head = queue[0]
            self._check("fifo", head == msg, e, lambda: f"{name} gave message {msg} before "
                        f"message {head}, accepted earlier")
            if head == msg:
                queue.popleft()
            else:
                queue.remove(msg)
        self._depth(e, name, queue)

    def _flush(self, e: dict[str, Any]) -> None:
        name, dropped = e["msgq"], e.get("dropped")
        queue = self.queues.setdefault(name, deque())
        count = len(queue)
        self._check("msg_once", dropped is None or dropped == count, e,
                    lambda: f"flush of {name} dropped {dropped} messages; {count} were queued")
        queue.clear()
        self._depth(e, name, queue)

    def _depth(self, e: dict[str, Any], name: str, queue: deque[int]) -> None:
        count = len(queue)
        capacity = self.capacity.get(name)
        if capacity is not None:
            self._check("depth", count <= capacity, e, lambda: f"{name} holds {count} "
                        f"messages, more than its depth {capacity}")
        told = e.get("depth")
        self._check("depth", told is None or told == count, e, lambda: f"the event says "
                    f"{name} holds {told} messages; {count} were accepted and not received")

    def _created(self, e: dict[str, Any]) -> None:
        if e.get("type") == "msgq":
            self.queues[e["name"]] = deque()
            msgq = self.hyp.msgqs.get(e["name"])
            if msgq is not None:
                self.capacity[e["name"]] = msgq.depth

    def _destroyed(self, e: dict[str, Any]) -> None:
        if e.get("type") == "msgq":
            self.queues.pop(e["name"], None)  # its messages went with it
            self.capacity.pop(e["name"], None)
        elif e.get("type") == "vcpu":
            for pcpu, vcpu in self.running.items():
                if vcpu == e["name"]:
                    self.running[pcpu] = None

    # -- scheduling ------------------------------------------------------------------------
    def _switch(self, e: dict[str, Any]) -> None:
        pcpu, prev, nxt = e["pcpu"], e["prev"], e["next"]
        running = self.running
        was = running.get(pcpu)
        self._check("one_per_pcpu", prev == was, e,
                    lambda: f"pCPU {pcpu} switches away from {prev} but was running {was}")
        if nxt is not None:
            elsewhere = [p for p, v in running.items() if v == nxt and p != pcpu]
            self._check("one_per_pcpu", not elsewhere, e, lambda: f"{nxt} starts on pCPU "
                        f"{pcpu} while running on pCPU {elsewhere[0]}")
        running[pcpu] = nxt

    # -- hypercalls ----------------------------------------------------------------------------
    def _needs(self, call: str) -> tuple[ObjectType, int, tuple[str, ...]] | None:
        """(object type, rights mask, right names) the call's ``capid`` needs, or None."""
        if call not in self._needs_cache:
            param = (params(call) or {}).get("capid")
            need = None
            if param is not None:
                obj_type = ObjectType[param.obj]
                flags = RIGHTS_BY_TYPE[obj_type]
                need = (obj_type, sum(int(flags[r]) for r in param.rights), param.rights)
            self._needs_cache[call] = need
        return self._needs_cache[call]

    def _hvc(self, e: dict[str, Any]) -> None:
        result = e["result"]
        if result == "CSPACE_INSUFFICIENT_RIGHTS":
            self._refused(e)
        if result != "OK":
            return
        call = e["name"]
        need = self._needs(call)
        vm = self.hyp.vms.get(e["vm"])
        capid = e["args"].get("capid")
        if need is None or vm is None or type(capid) is not int:
            return
        obj_type, mask, names = need
        try:
            cap = vm.cspace.cap(capid)
        except HypError as err:
            error = err.error.name
            self._check("rights", False, e, lambda: f"{call} succeeded with capid "
                        f"{capid:#x}, which {e['vm']}'s CSpace refuses ({error})")
            return
        if cap.obj.obj_type is not obj_type:
            self._check("rights", False, e, lambda: f"{call} succeeded on a "
                        f"{cap.obj.obj_type.name} cap; it needs a {obj_type.name}")
            return
        rights = cap.rights
        self._check("rights", rights & mask == mask, e, lambda: f"{call} succeeded on "
                    f"{e['vm']}'s cap {capid:#x} without {_lacking(obj_type, rights, names)}")


    def _refused(self, e: dict[str, Any]) -> None:
        """The other side: a call refused for its rights named a cap that lacks one."""
        call, capid = e["name"], e["args"].get("capid")
        need, vm = self._needs(call), self.hyp.vms.get(e["vm"])
        if need is None or vm is None or type(capid) is not int:
            return
        obj_type, mask, _ = need
        try:
            cap = vm.cspace.cap(capid)
        except HypError:
            return  # revoked since; nothing to compare
        if cap.obj.obj_type is obj_type:
            self._check("rights", cap.rights & mask != mask, e, lambda: f"{call} was refused "
                        f"CSPACE_INSUFFICIENT_RIGHTS on {e['vm']}'s cap {capid:#x}, which has "
                        "every right it needs")


def _lacking(obj_type: ObjectType, rights: int, names: tuple[str, ...]) -> str:
    flags = RIGHTS_BY_TYPE[obj_type]
    return "+".join(name for name in names if not rights & int(flags[name]))
