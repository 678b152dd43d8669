"""User actions: what a person asks a VM to do, turned into that VM's own hypercalls.

A click "send on A_to_B from VM_A" queues ``msgqueue_send`` on VM_A's vCPU 0 with the
capid VM_A holds for that queue, and wakes the vCPU as a keystroke would; the result
(OK, MSGQUEUE_FULL, CSPACE_INSUFFICIENT_RIGHTS, ...) appears as the ``hvc`` event.
Input that names nothing real is refused here with a structured ``ActionError``.
"""

from __future__ import annotations

from typing import Any

from .consts import (
    DOORBELL_FLAGS_MASK,
    MSGQUEUE_MAX_MAX_MSG_SIZE,
    MSGQUEUE_MAX_QUEUE_DEPTH,
    MSGQUEUE_SEND_FLAG_PUSH,
    MSGQUEUE_THRESHOLD_MAXIMUM,
    MSGQUEUE_THRESHOLD_UNCHANGED,
    U64_MAX,
    VCPU_MAX_PRIORITY,
)
from .core.hypercalls import MAX_PAYLOAD_CHARS, params, signatures
from .core.hypervisor import Hypervisor
from .core.trace import EventKind
from .vm.vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_WFI

MAX_QUEUED_USER_OPS = 256
# Names of VMs, vCPUs, queues, doorbells and images (the scenario schema allows 24
# characters; a vCPU id adds ".index").
MAX_NAME_CHARS = 64
MAX_SHOWN_CHARS = 40  # a refused field name quoted back, at most
# A register typed as text ("0x1f", "31"): 0x and 16 hex digits, or 20 decimal digits.
MAX_REGISTER_CHARS = 20

# Every action's arguments and nothing else (what the page and links send): a string
# with its longest length, an integer with its range, or a boolean. The action log and
# the trace keep arguments, so anything else would be stored for nothing.
_NAME = ("str", MAX_NAME_CHARS)
_CAPID = ("int", 0, U64_MAX)
_FLAGS = ("int", 0, DOORBELL_FLAGS_MASK)
_BOOL = ("bool",)
_MSGQ = {"vm": _NAME, "msgq": _NAME, "capid": _CAPID}
_BELL = {"vm": _NAME, "doorbell": _NAME, "capid": _CAPID}
ARGUMENTS: dict[str, dict[str, tuple[Any, ...]]] = {
    "msgq_send": {**_MSGQ, "size": ("int", 0, MSGQUEUE_MAX_MAX_MSG_SIZE),
                  "payload": ("str", MAX_PAYLOAD_CHARS), "push": _BOOL},
    "msgq_receive": _MSGQ,
    "msgq_flush": _MSGQ,
    "msgq_configure": {**_MSGQ,
                       "notempty_thd": ("int", MSGQUEUE_THRESHOLD_MAXIMUM,
                                        MSGQUEUE_MAX_QUEUE_DEPTH),
                       "notfull_thd": ("int", MSGQUEUE_THRESHOLD_UNCHANGED,
                                       MSGQUEUE_MAX_QUEUE_DEPTH)},
    "doorbell_send": {**_BELL, "flags": _FLAGS},
    "doorbell_receive": {**_BELL, "clear": _FLAGS},
    "doorbell_mask": {**_BELL, "enable_mask": _FLAGS, "ack_mask": _FLAGS},
    "set_priority": {"vcpu": _NAME, "priority": ("int", 0, VCPU_MAX_PRIORITY)},
    "vm_start": {"vm": _NAME},
    "vm_stop": {"vm": _NAME},
    "rm_vm_create": {"image": _NAME, "start": _BOOL},
    "rm_vm_start": {"vm": _NAME},
    "rm_vm_stop": {"vm": _NAME, "force": _BOOL},
    "rm_vm_reset": {"vm": _NAME},
    "rm_vm_destroy": {"vm": _NAME},
    # The console: any hypercall by its Gunyah name; ``args`` is checked against that
    # call's own argument list (hypercalls.signatures) in _hvc.
    "hvc": {"vm": _NAME, "call": _NAME, "args": ("obj",)},
    # Faults, done as Gunyah does them (see Actions._fault_*): the RM revokes or unbinds
    # with the master cap it holds, a sender floods, HLOS reclaims what it lent.
    "fault_revoke": {"msgq": _NAME, "doorbell": _NAME},
    "fault_unbind": {"msgq": _NAME, "doorbell": _NAME, "side": ("str", len("receive"))},
    "fault_flood": {**_MSGQ, "count": ("int", 1, MSGQUEUE_MAX_QUEUE_DEPTH + 1)},
    "rm_mem_reclaim": {"vm": _NAME},
}


class ActionError(ValueError):
    """A refused action: ``code`` is stable for programs, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _int(args: dict[str, Any], key: str, lo: int, hi: int, default: Any = ...) -> int:
    value = args.get(key, default)
    if value is ...:
        raise ActionError("MISSING_FIELD", f"field {key!r} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ActionError("INVALID_ARGUMENT", f"field {key!r} must be an integer {lo}..{hi}")
    return value


def check_arguments(action: str, args: dict[str, Any]) -> None:
    """Refuse any field ``action`` does not take, and any value of the wrong type, range
    or length; the message names the field (cut short)."""
    spec = ARGUMENTS[action]
    for key, value in args.items():
        rule = spec.get(key) if isinstance(key, str) else None
        if rule is None:
            shown = key if len(str(key)) <= MAX_SHOWN_CHARS else f"{str(key)[:MAX_SHOWN_CHARS]}..."
            raise ActionError("UNKNOWN_FIELD", f"{action} takes no field {shown!r}; "
                                               f"fields: {', '.join(spec)}")
        kind = rule[0]
        if kind == "obj":
            if not isinstance(value, dict):
                raise ActionError("INVALID_ARGUMENT", f"field {key!r} must be an object")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ActionError("INVALID_ARGUMENT", f"field {key!r} must be true or false")
        elif kind == "int":
            _int(args, key, rule[1], rule[2])
        elif not isinstance(value, str):
            raise ActionError("INVALID_ARGUMENT", f"field {key!r} must be a string")
        elif len(value) > rule[1]:
            raise ActionError("TOO_LARGE", f"field {key!r} is longer than {rule[1]} characters")


def _shown(name: Any) -> str:
    text = str(name)
    return repr(text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}...")


def register_value(call: str, key: str, value: Any) -> int:
    """A u64 register as typed: an integer, or its decimal or 0x-hex text."""
    if isinstance(value, str) and 0 < len(value) <= MAX_REGISTER_CHARS:
        text = value.strip().lower()
        try:
            value = int(text[2:], 16) if text.startswith("0x") else int(text, 10)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
        raise ActionError("INVALID_ARGUMENT", f"{call}: argument {key!r} must be a 64-bit "
                                              "register value 0..0xffffffffffffffff "
                                              "(decimal or 0x hex)")
    return value


def hypercall_arguments(call: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The registers of a typed hypercall, checked against the call's entry in the
    hypercall table: unknown calls and arguments are refused by name, registers must be
    u64, text at most MAX_PAYLOAD_CHARS, required arguments present. Nothing else is
    checked here: the call itself refuses bad values with its real Gunyah error."""
    spec = params(call) if isinstance(call, str) else None
    if spec is None:
        raise ActionError("UNKNOWN_HYPERCALL", f"no hypercall {_shown(call)}; "
                          f"hypercalls: {', '.join(sorted(signatures()))}")
    out: dict[str, Any] = {}
    for key, value in args.items():
        param = spec.get(key) if isinstance(key, str) else None
        if param is None:
            raise ActionError("UNKNOWN_FIELD", f"{call} takes no argument {_shown(key)}; "
                              f"arguments: {', '.join(spec) or 'none'}")
        if param.kind == "text":
            if not isinstance(value, str):
                raise ActionError("INVALID_ARGUMENT", f"{call}: argument {key!r} must be text")
            if len(value) > MAX_PAYLOAD_CHARS:
                raise ActionError("TOO_LARGE", f"{call}: argument {key!r} is longer than "
                                               f"{MAX_PAYLOAD_CHARS} characters")
            out[key] = value
        else:
            out[key] = register_value(call, key, value)
    missing = [key for key, param in spec.items() if param.required and key not in out]
    if missing:
        raise ActionError("MISSING_FIELD", f"{call} needs argument {missing[0]!r}; "
                          f"arguments: {', '.join(spec)}")
    return out


def _str(args: dict[str, Any], key: str, default: Any = ...) -> str:
    value = args.get(key, default)
    if value is ...:
        raise ActionError("MISSING_FIELD", f"field {key!r} is required")
    if not isinstance(value, str):
        raise ActionError("INVALID_ARGUMENT", f"field {key!r} must be a string")
    return value


class Actions:
    """Validates and applies user actions on one Hypervisor."""

    def __init__(self, hyp: Hypervisor) -> None:
        self.hyp = hyp
        self.count = 0
        self._handlers = {
            "msgq_send": self._msgq_send,
            "msgq_receive": self._msgq_receive,
            "msgq_flush": self._msgq_flush,
            "msgq_configure": self._msgq_configure,
            "doorbell_send": self._doorbell_send,
            "doorbell_receive": self._doorbell_receive,
            "doorbell_mask": self._doorbell_mask,
            "set_priority": self._set_priority,
            "vm_start": self._vm_start,
            "vm_stop": self._vm_stop,
            "rm_vm_create": self._rm_vm_create,
            "rm_vm_start": self._rm_job,
            "rm_vm_stop": self._rm_job,
            "rm_vm_reset": self._rm_job,
            "rm_vm_destroy": self._rm_job,
            "hvc": self._hvc,
            "fault_revoke": self._fault_revoke,
            "fault_unbind": self._fault_unbind,
            "fault_flood": self._fault_flood,
            "rm_mem_reclaim": self._rm_mem_reclaim,
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    def apply(self, action: Any, args: Any) -> dict[str, Any]:
        if not isinstance(action, str) or action not in self._handlers:
            raise ActionError("UNKNOWN_ACTION", f"unknown action {action!r}; "
                              f"known: {', '.join(self.names)}")
        if not isinstance(args, dict):
            raise ActionError("INVALID_ARGUMENT", "action arguments must be an object")
        check_arguments(action, args)
        return self._handlers[action](action, args)

    # -- lookups ------------------------------------------------------------------------
    def _vm(self, args: dict[str, Any]):
        name = _str(args, "vm")
        vm = self.hyp.vms.get(name)
        if vm is None:
            raise ActionError("UNKNOWN_VM", f"no VM named {name!r}")
        return vm

    def _capid(self, vm, table: dict, key: str, args: dict[str, Any]) -> int:
        name = _str(args, key)
        obj = table.get(name)
        if obj is None:
            raise ActionError("UNKNOWN_OBJECT", f"no {key} named {name!r}")
        if "capid" in args:  # try any number: the hypervisor answers CSPACE_CAP_NULL etc.
            return _int(args, "capid", 0, U64_MAX)
        capid = vm.cspace.find(obj)
        if capid is None:  # revoked: the VM still uses the capid the RM gave it (51)
            capid = next((r["capid"] for r in vm.resources.values()
                          if r.get(key) == name and "capid" in r), None)
        if capid is None:
            raise ActionError("NO_CAPABILITY", f"{vm.name} holds no capability for {name}")
        return capid

    def _record(self, action: str, args: dict[str, Any]) -> int:
        self.count += 1
        if self.hyp.trace.on:
            self.hyp.trace.emit(EventKind.USER_ACTION, action=action, args=args, id=self.count)
        return self.count

    def _queue_hvc(self, action: str, vm, hvc_name: str, hvc_args: dict[str, Any],
                   args: dict[str, Any]) -> dict[str, Any]:
        vcpu = vm.vcpus[0]
        if BLOCK_VCPU_OFF in vcpu.blocked:
            raise ActionError("VM_NOT_RUNNING", f"{vm.name}'s vCPU is powered off")
        if len(vcpu.user_ops) >= MAX_QUEUED_USER_OPS:
            raise ActionError("BUSY", f"{vm.name} already has {MAX_QUEUED_USER_OPS} requests")
        action_id = self._record(action, args)
        vcpu.user_ops.append((hvc_name, hvc_args, action_id))
        vcpu.wfi_reason = "user"
        vcpu.unblock(BLOCK_VCPU_WFI)
        return {"action_id": action_id, "queued": True, "vcpu": vcpu.id, "hvc": hvc_name}

    # -- message queues -------------------------------------------------------------------
    def _msgq_send(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.msgqs, "msgq", args)
        size = _int(args, "size", 0, MSGQUEUE_MAX_MAX_MSG_SIZE, 16)
        payload = _str(args, "payload", "")
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise ActionError("TOO_LARGE", f"payload longer than {MAX_PAYLOAD_CHARS} characters")
        push = args.get("push", True)
        if not isinstance(push, bool):
            raise ActionError("INVALID_ARGUMENT", "field 'push' must be true or false")
        flags = MSGQUEUE_SEND_FLAG_PUSH if push else 0
        return self._queue_hvc(action, vm, "msgqueue_send",
                               {"capid": capid, "size": size, "flags": flags,
                                "payload": payload}, args)

    def _msgq_receive(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.msgqs, "msgq", args)
        return self._queue_hvc(action, vm, "msgqueue_receive", {"capid": capid}, args)

    def _msgq_flush(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.msgqs, "msgq", args)
        return self._queue_hvc(action, vm, "msgqueue_flush", {"capid": capid}, args)

    def _msgq_configure(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.msgqs, "msgq", args)
        if "notempty_thd" in args:
            thd = _int(args, "notempty_thd", MSGQUEUE_THRESHOLD_MAXIMUM, MSGQUEUE_MAX_QUEUE_DEPTH)
            return self._queue_hvc(action, vm, "msgqueue_configure_receive",
                                   {"capid": capid, "notempty_thd": thd}, args)
        thd = _int(args, "notfull_thd", MSGQUEUE_THRESHOLD_UNCHANGED, MSGQUEUE_MAX_QUEUE_DEPTH)
        return self._queue_hvc(action, vm, "msgqueue_configure_send",
                               {"capid": capid, "notfull_thd": thd}, args)

    # -- doorbells -----------------------------------------------------------------------------
    def _doorbell_send(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.doorbells, "doorbell", args)
        flags = _int(args, "flags", 0, DOORBELL_FLAGS_MASK, 1)
        return self._queue_hvc(action, vm, "doorbell_send",
                               {"capid": capid, "new_flags": flags}, args)

    def _doorbell_receive(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.doorbells, "doorbell", args)
        clear = _int(args, "clear", 0, DOORBELL_FLAGS_MASK, DOORBELL_FLAGS_MASK)
        return self._queue_hvc(action, vm, "doorbell_receive",
                               {"capid": capid, "clear_flags": clear}, args)

    def _doorbell_mask(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.doorbells, "doorbell", args)
        enable = _int(args, "enable_mask", 0, DOORBELL_FLAGS_MASK)
        ack = _int(args, "ack_mask", 0, DOORBELL_FLAGS_MASK)
        return self._queue_hvc(action, vm, "doorbell_mask",
                               {"capid": capid, "enable_mask": enable, "ack_mask": ack}, args)

    # -- the console: a hypercall typed by its Gunyah name -------------------------------------
    def _hvc(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """Queue the typed call on the VM's vCPU 0, exactly as a click's call is: it runs
        with that VM's own CSpace, so a wrong capid or a missing right gets the real
        error (CSPACE_CAP_NULL, CSPACE_INSUFFICIENT_RIGHTS, ...) in its ``hvc`` event."""
        vm = self._vm(args)
        call = _str(args, "call")
        registers = hypercall_arguments(call, args.get("args", {}))
        return self._queue_hvc(action, vm, call, registers, args)

    # -- simulator controls (not hypercalls; labelled so in the UI) --------------------------
    def _set_priority(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """Change a vCPU's priority live. Gunyah only allows vcpu_set_priority while the
        thread is INIT (OBJECT_STATE otherwise); this control exists to explore FPRR."""
        name = _str(args, "vcpu")
        vcpu = next((v for vm in self.hyp.vms.values() for v in vm.vcpus if v.id == name), None)
        if vcpu is None:
            raise ActionError("UNKNOWN_VCPU", f"no vCPU named {name!r}")
        if vcpu.sched is None:  # proxy-scheduled: priority 0 on no pCPU (facts §7.1)
            raise ActionError("PROXY_SCHEDULED", f"{name} is proxy-scheduled: it runs only "
                              "inside its owner's vcpu_run, at no priority of its own")
        priority = _int(args, "priority", 0, VCPU_MAX_PRIORITY)
        action_id = self._record(action, args)
        old = vcpu.priority
        vcpu.sched.set_priority(vcpu, priority)
        if self.hyp.trace.on:
            self.hyp.trace.emit(EventKind.VCPU_PRIORITY, vcpu=vcpu.id, vm=vcpu.vm.name,
                                old=old, priority=priority)
        return {"action_id": action_id, "priority": priority}

    # -- the primary VM asks the RM (real RM RPCs over HLOS's RM link) -----------------------
    def _vm_manager(self):
        primary = next((vm for vm in self.hyp.vms.values() if vm.kind == "primary"), None)
        manager = getattr(primary, "guest", None)
        if manager is None or not hasattr(manager, "submit"):
            raise ActionError("NO_VM_MANAGER", "the primary VM does not run the VM manager")
        if BLOCK_VCPU_OFF in primary.vcpus[0].blocked:
            raise ActionError("VM_NOT_RUNNING", f"{primary.name}'s vCPU is powered off")
        return primary, manager

    def _submit(self, action: str, args: dict[str, Any], primary, job) -> dict[str, Any]:
        action_id = self._record(action, args)
        primary.guest.submit(job)
        vcpu = primary.vcpus[0]
        vcpu.wfi_reason = "user"
        vcpu.unblock(BLOCK_VCPU_WFI)
        return {"action_id": action_id, "queued": True, "vm": primary.name}

    def _rm_vm_create(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        primary, manager = self._vm_manager()
        image = _str(args, "image")
        names = [i["name"] for i in self.hyp.images]
        if image not in names:
            raise ActionError("UNKNOWN_IMAGE", f"no image {image!r}; images: {', '.join(names)}")
        start = args.get("start", True)
        if not isinstance(start, bool):
            raise ActionError("INVALID_ARGUMENT", "field 'start' must be true or false")
        return self._submit(action, args, primary, manager.create_vm(image, start))

    def _rm_job(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        primary, manager = self._vm_manager()
        vm = self._vm(args)
        if vm.kind != "guest":
            raise ActionError("INVALID_ARGUMENT", f"{vm.name} is not a guest VM")
        force = args.get("force", False)
        if not isinstance(force, bool):
            raise ActionError("INVALID_ARGUMENT", "field 'force' must be true or false")
        job = {"rm_mem_reclaim": lambda: manager.reclaim(vm.vmid),
               "rm_vm_start": lambda: manager.start_vm(vm.vmid),
               "rm_vm_stop": lambda: manager.stop_vm(vm.vmid, force),
               "rm_vm_reset": lambda: manager.reset_vm(vm.vmid),
               "rm_vm_destroy": lambda: manager.destroy_vm(vm.vmid)}[action]()
        return self._submit(action, args, primary, job)

    # -- simulator controls: power a VM's vCPUs (not an RM call; labelled so in the UI) -------
    def _vm_start(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        action_id = self._record(action, args)
        for vcpu in vm.vcpus:
            self.hyp.power_on(vcpu)
        return {"action_id": action_id}

    def _vm_stop(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        vm = self._vm(args)
        action_id = self._record(action, args)
        for vcpu in vm.vcpus:
            self.hyp.power_off(vcpu)
        return {"action_id": action_id}

    # -- faults: one-click versions of what the console could type, done by whoever in
    # Gunyah may do them, so the model answers with its real errors ------------------------
    def _ipc_object(self, args: dict[str, Any]):
        """The queue or doorbell a fault names (exactly one of ``msgq``, ``doorbell``)."""
        if ("msgq" in args) == ("doorbell" in args):
            raise ActionError("INVALID_ARGUMENT", "name exactly one of 'msgq', 'doorbell'")
        key, table = ("msgq", self.hyp.msgqs) if "msgq" in args else ("doorbell",
                                                                      self.hyp.doorbells)
        name = _str(args, key)
        obj = table.get(name)
        if obj is None:
            raise ActionError("UNKNOWN_OBJECT", f"no {key} named {name!r}")
        return obj

    def _fault_revoke(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """The RM, which holds the object's master cap, calls ``cspace_revoke_caps_from``
        (hypercall 0x59, facts §1.1, §2.3): every copy becomes REVOKED, so each holder's next
        call on it gets CSPACE_CAP_REVOKED (51). H-SRC hyp/core/cspace_twolevel/src/
        cspace_twolevel.c ``cspace_revoke_caps``; ``cspace_revoke_cap_from`` (one cap) is
        documented as unimplemented, so there is no per-VM revoke. The RM has no RPC that
        asks it to revoke: that it does so here is the simulator's choice of trigger."""
        obj = self._ipc_object(args)
        action_id = self._record(action, args)
        count = self.hyp.master_cspace.revoke_children(obj.master_capid)
        if self.hyp.trace.on:
            self.hyp.trace.emit(EventKind.CAP_REVOKE, object=obj.ref, count=count,
                                call="cspace_revoke_caps_from", by="RM")
        return {"action_id": action_id, "revoked": count}

    def _fault_unbind(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """The RM unbinds the object's vIRQ with its master cap (``msgqueue_unbind_send_virq``
        0x19 / ``msgqueue_unbind_receive_virq`` 0x1A / ``doorbell_unbind_virq`` 0x11, facts
        §2.3, §9.1): the object still works, but its VM is never interrupted again."""
        obj = self._ipc_object(args)
        side = _str(args, "side", "receive")
        if side not in ("send", "receive"):
            raise ActionError("INVALID_ARGUMENT", "field 'side' must be 'send' or 'receive'")
        if "doorbell" in args:
            source = obj.source
        else:
            source = obj.tx_source if side == "send" else obj.rx_source
        action_id = self._record(action, args)
        if source.vic is not None:  # unbinding an unbound source is OK (facts §9.1)
            source.vic.unbind(source)
        return {"action_id": action_id}

    def _fault_flood(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """The sender's vCPU 0 makes ``count`` msgqueue_send calls in a row; once the queue
        is full each gets MSGQUEUE_FULL (facts §3). One action, so a replay repeats it."""
        vm = self._vm(args)
        capid = self._capid(vm, self.hyp.msgqs, "msgq", args)
        count = _int(args, "count", 1, MSGQUEUE_MAX_QUEUE_DEPTH + 1,
                     self.hyp.msgqs[args["msgq"]].depth + 1)
        vcpu = vm.vcpus[0]
        if len(vcpu.user_ops) + count > MAX_QUEUED_USER_OPS:
            raise ActionError("BUSY", f"{vm.name} cannot take {count} more requests")
        result = self._queue_hvc(action, vm, "msgqueue_send",
                                 {"capid": capid, "size": 16, "flags": MSGQUEUE_SEND_FLAG_PUSH,
                                  "payload": "flood"}, args)
        op = vcpu.user_ops[-1]
        vcpu.user_ops.extend([op] * (count - 1))
        return {**result, "count": count}

    def _rm_mem_reclaim(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """HLOS asks the RM for MEM_RECLAIM of the image parcel it lent the guest: refused
        with MEM_INUSE (0xB) while the guest still has it accepted (facts §8.3)."""
        return self._rm_job(action, args)
