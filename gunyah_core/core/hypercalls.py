"""The hypercall table: the only door from a guest into the hypervisor.

Like Gunyah's generated wrappers, each entry resolves the capid in the *caller's*
CSpace with the right the call needs (facts §1.4), then hands the object to the
object's own method. Every call is traced as ``hvc`` with Gunyah's call number and
its real result. Call numbers are facts §2.3 (HVC #0x6000 + n).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..consts import (
    ADDRSPACE_MAP_FLAGS_VALID,
    HVC_IMM_BASE,
    MAP_ATTR_USER_ACCESS_MASK,
    MAP_ATTRS_VALID,
    MEMEXTENT_DONATE_NOSYNC,
    MEMEXTENT_DONATE_TYPE_MASK,
    MSGQUEUE_DELAY_UNCHANGED,
    MSGQUEUE_SEND_FLAG_PUSH,
    SCHEDULER_MAX_TIMESLICE_NS,
    SCHEDULER_MIN_PRIORITY,
    SCHEDULER_MIN_TIMESLICE_NS,
    SCHEDULER_YIELD_CONTROL_HINT_MASK,
    SCHEDULER_YIELD_CONTROL_IMPL_DEF,
    SCHEDULER_YIELD_HINT_YIELD,
    SCHEDULER_YIELD_HINT_YIELD_TO_THREAD,
    VCPU_MAX_PRIORITY,
    AddrspaceMapFlags,
    AddrspaceRights,
    DoorbellRights,
    Error,
    MemextentDonateType,
    MemextentRights,
    MsgqueueRights,
    ObjectState,
    ObjectType,
    ThreadRights,
    VcpuRunResume,
    VirtioMmioRights,
)
from ..errors import ERROR_OK, MEANINGS, HypError, HypResult
from ..ipc.msgq import BINARY
from ..mem.demand_paging import (
    LABEL_GUEST_PRIVATE,
    LABEL_GUEST_SHARED,
    LABEL_HOST_PRIVATE,
    LABEL_HOST_SHARED,
)
from ..mem.memparcel import PAGE_SIZE, MemError
from ..vm.vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_RUN, BLOCK_VCPU_WFI
from ..vm.vcpu_run import PAGE_FAULT_BLOCK, VcpuRunState, state_of_stopped

if TYPE_CHECKING:
    from ..vm.vcpu import Vcpu
    from .hypervisor import Hypervisor

# Gunyah API info (facts §2.1): version 1, 64-bit, variant 0x51 (Qualcomm).
API_VERSION = 1
API_FLAG_64BIT = 1 << 15
API_VARIANT_QUALCOMM = 0x51
API_VARIANT_SHIFT = 56
# flags0: only what is modelled: partition+cspace (0), doorbell (1), msgqueue (2), vic (3),
# vcpu (5), memextent (6), virtio_mmio (9, hyp/interfaces/virtio_mmio/virtio_mmio.tc),
# vcpu_run (11); scheduler variant 1 = FPRR in bits 31:28.
IDENTIFY_FEATURE_BITS = (0, 1, 2, 3, 5, 6, 9, 11)
IDENTIFY_SCHEDULER_SHIFT = 28
IDENTIFY_SCHEDULER_FPRR = 1
IDENTIFY_FLAGS0 = (sum(1 << bit for bit in IDENTIFY_FEATURE_BITS)
                   | IDENTIFY_SCHEDULER_FPRR << IDENTIFY_SCHEDULER_SHIFT)

# Rights as plain ints: IntFlag arithmetic is slow on the hot path.
MSGQ_SEND = int(MsgqueueRights.SEND)
MSGQ_RECEIVE = int(MsgqueueRights.RECEIVE)
BELL_SEND = int(DoorbellRights.SEND)
BELL_RECEIVE = int(DoorbellRights.RECEIVE)
THREAD_PRIORITY = int(ThreadRights.PRIORITY)
THREAD_TIMESLICE = int(ThreadRights.TIMESLICE)
THREAD_AFFINITY = int(ThreadRights.AFFINITY)
THREAD_YIELD_TO = int(ThreadRights.YIELD_TO)
THREAD_BIND_VIRQ = int(ThreadRights.BIND_VIRQ)
THREAD_STATE = int(ThreadRights.STATE)

# Enum members as plain names for the hot path (an Enum attribute is a lookup each time).
ERROR_NAME = {error: error.name for error in Error}
TYPE_MSGQUEUE = ObjectType.MSGQUEUE

# SIMULATOR: the documented-but-absent "msgq push" gets no real number (0x1E is reserved).
MSGQUEUE_PUSH_DOCUMENTED = None

Handler = Callable[["HypercallTable", "Vcpu", dict[str, Any]], dict[str, Any] | None]

# A handler returns this when its call returns later (vcpu_run that yields to its
# target): the ``hvc`` event is traced then, with the real result (scheduler._switch).
RETURNS_LATER: dict[str, Any] = {}
_TABLE: dict[str, tuple[int | None, Handler]] = {}

# The text a guest hands msgqueue_send in its buffer, at most (the model keeps it as a
# string; the real call takes a buffer address and ``size``).
MAX_PAYLOAD_CHARS = 1024


class Param(NamedTuple):
    """One argument register of a hypercall, as a person may type it (the console).

    ``kind``: "capid" (a u64 naming a cap of ``obj`` needing ``rights``), "u64" (any
    register value: the call itself refuses what it does not take, with its real error)
    or "text" (the message's bytes, the model's stand-in for a buffer). A missing
    optional argument takes the handler's own default.
    """

    kind: str
    required: bool = True
    obj: str = ""
    rights: tuple[str, ...] = ()
    note: str = ""


def _cap(obj: ObjectType, *rights: str, required: bool = True, note: str = "") -> Param:
    return Param("capid", required, obj.name, rights, note)


def _reg(note: str, required: bool = True) -> Param:
    return Param("u64", required, note=note)


_DELAY = _reg("timer delay; unchanged when left out", required=False)
_PARAMS: dict[str, dict[str, Param]] = {}


def hypercall(name: str, number: int | None, **params: Param) -> Callable[[Handler], Handler]:
    """Register a handler with its call number and its argument registers, by name."""
    def register(fn: Handler) -> Handler:
        _TABLE[name] = (number, fn)
        _PARAMS[name] = params
        return fn
    return register


def signatures() -> dict[str, dict[str, Any]]:
    """Every call's number and arguments as plain JSON: what the console completes and
    what the ``hvc`` action checks (the one table; actions.py derives nothing else)."""
    return {name: {"number": HVC_IMM_BASE + number if number is not None else None,
                   "args": {key: {"kind": p.kind, "required": p.required, "object": p.obj,
                                  "rights": list(p.rights), "note": p.note,
                                  "max_chars": MAX_PAYLOAD_CHARS if p.kind == "text" else None}
                            for key, p in _PARAMS[name].items()}}
            for name, (number, _) in _TABLE.items()}


def console_table() -> dict[str, Any]:
    """What the hypercall console completes and explains: the calls with their
    arguments, and every X0 error by name with its number and meaning."""
    return {"calls": signatures(),
            "errors": {e.name: {"code": int(e), "meaning": MEANINGS.get(e, "")}
                       for e in Error}}


def params(name: str) -> dict[str, Param] | None:
    """The arguments of hypercall ``name``; None when there is no such call."""
    return _PARAMS.get(name)


def _arg(args: dict[str, Any], key: str, default: Any = ...) -> int:
    value = args.get(key, default)
    if type(value) is not int:  # also refuses bool, a subclass of int
        raise HypError(Error.ARGUMENT_INVALID, f"argument {key!r} must be an integer")
    return value


def _printable(values: dict[str, Any]) -> dict[str, Any]:
    """Trace events are JSON: a bytes payload (an RM packet) is shown as hex."""
    payload = values.get("payload")
    if isinstance(payload, BINARY):
        return {**values, "payload": payload.hex()}
    return values


class HypercallTable:
    """Dispatches ``name(args)`` from a vCPU and traces it."""

    def __init__(self, hyp: Hypervisor) -> None:
        self.hyp = hyp
        self.trace = hyp.trace

    @staticmethod
    def names() -> dict[str, int | None]:
        """ABI name -> call number (None for the documented-only msgq push)."""
        return {name: number for name, (number, _) in _TABLE.items()}

    def call(self, vcpu: Vcpu, name: str, args: dict[str, Any],
             action: int | None = None) -> HypResult:
        entry = _TABLE.get(name)
        first = self.trace.seq if action is not None else None  # its effects start here
        try:
            if entry is None:
                raise HypError(Error.UNIMPLEMENTED, f"no hypercall {name!r}")
            ret = entry[1](self, vcpu, args)
            if ret is RETURNS_LATER:
                if self.trace.on:
                    vcpu.pending_hvc = (name, HVC_IMM_BASE + entry[0], _printable(args),
                                        action)
                return HypResult(ERROR_OK, {})  # replaced by the result when it returns
            result = HypResult(ERROR_OK, ret or {})
        except HypError as err:
            ret = dict(err.ret) if err.ret else {}
            if err.detail:
                ret["detail"] = err.detail
            result = HypResult(err.error, ret)
        trace = self.trace
        if trace.on:
            number = entry[0] if entry else None
            trace.hvc(vcpu.vm.name, vcpu.id, name,
                      HVC_IMM_BASE + number if number is not None else None,
                      _printable(args), ERROR_NAME[result.error], _printable(result.ret), action,
                      first)
        return result

    def lookup(self, vcpu: Vcpu, args: dict[str, Any], obj_type: ObjectType, rights: int) -> Any:
        return vcpu.vm.cspace.lookup(_arg(args, "capid"), obj_type, rights)


# --- identification --------------------------------------------------------------------
@hypercall("hypervisor_identify", 0x00)
def _identify(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    api_info = API_VERSION | API_FLAG_64BIT | (API_VARIANT_QUALCOMM << API_VARIANT_SHIFT)
    return {"api_info": api_info, "flags0": IDENTIFY_FLAGS0, "flags1": 0, "flags2": 0}


# --- message queues ----------------------------------------------------------------------
@hypercall("msgqueue_send", 0x1B, capid=_cap(ObjectType.MSGQUEUE, "SEND"),
           size=_reg("bytes, at most the queue's max_msg_size"),
           flags=_reg("bit 0 = PUSH (wake the receiver now)", required=False),
           payload=Param("text", False, note="the message's text"))
def _msgq_send(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    # Send and receive are every benchmark's hot path, so their argument checks are
    # written out: _arg() runs only to raise ARGUMENT_INVALID naming the bad argument.
    # The capability is checked first, then the other arguments, as before any send.
    capid = args.get("capid")
    if type(capid) is not int:
        capid = _arg(args, "capid")
    msgq = vcpu.vm.cspace.lookup(capid, TYPE_MSGQUEUE, MSGQ_SEND)
    flags, size = args.get("flags", 0), args.get("size")
    if type(flags) is not int or type(size) is not int:
        flags, size = _arg(args, "flags", 0), _arg(args, "size")
    hyp = table.hyp
    not_full = msgq.send(size, args.get("payload", ""), bool(flags & MSGQUEUE_SEND_FLAG_PUSH),
                         hyp.next_msg_id, hyp.engine.now)
    return {"not_full": not_full}


@hypercall("msgqueue_receive", 0x1C, capid=_cap(ObjectType.MSGQUEUE, "RECEIVE"),
           buf_size=_reg("receive buffer bytes; the queue's max_msg_size when left out",
                         required=False))
def _msgq_receive(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    capid = args.get("capid")  # written out as in _msgq_send
    if type(capid) is not int:
        capid = _arg(args, "capid")
    msgq = vcpu.vm.cspace.lookup(capid, TYPE_MSGQUEUE, MSGQ_RECEIVE)
    buf_size = args.get("buf_size", msgq.max_size)
    if type(buf_size) is not int:
        buf_size = _arg(args, "buf_size")
    msg, size, payload, not_empty = msgq.receive(buf_size)
    return {"size": size, "not_empty": not_empty, "msg": msg, "payload": payload}


@hypercall("msgqueue_flush", 0x1D, capid=_cap(ObjectType.MSGQUEUE, "RECEIVE"))
def _msgq_flush(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    table.lookup(vcpu, args, ObjectType.MSGQUEUE, MSGQ_RECEIVE).flush()


@hypercall("msgqueue_configure_send", 0x1F, capid=_cap(ObjectType.MSGQUEUE, "SEND"),
           notfull_thd=_reg("Tx vIRQ when the depth falls to this"),
           delay=_DELAY)
def _msgq_configure_send(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    msgq = table.lookup(vcpu, args, ObjectType.MSGQUEUE, MSGQ_SEND)
    msgq.configure_send(_arg(args, "notfull_thd"), _arg(args, "delay", MSGQUEUE_DELAY_UNCHANGED))


@hypercall("msgqueue_configure_receive", 0x20, capid=_cap(ObjectType.MSGQUEUE, "RECEIVE"),
           notempty_thd=_reg("Rx vIRQ when the depth reaches this"),
           delay=_DELAY)
def _msgq_configure_receive(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    msgq = table.lookup(vcpu, args, ObjectType.MSGQUEUE, MSGQ_RECEIVE)
    msgq.configure_receive(_arg(args, "notempty_thd"),
                           _arg(args, "delay", MSGQUEUE_DELAY_UNCHANGED))


@hypercall("msgqueue_push", MSGQUEUE_PUSH_DOCUMENTED, capid=_cap(ObjectType.MSGQUEUE, "SEND"))
def _msgq_push(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    # Documented in Linux's message-queue.rst (2b), absent from the public source.
    table.lookup(vcpu, args, ObjectType.MSGQUEUE, MSGQ_SEND).push()


# --- doorbells ------------------------------------------------------------------------------
@hypercall("doorbell_send", 0x12, capid=_cap(ObjectType.DOORBELL, "SEND"),
           new_flags=_reg("flags to OR in"))
def _bell_send(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    bell = table.lookup(vcpu, args, ObjectType.DOORBELL, BELL_SEND)
    return {"old_flags": bell.send(_arg(args, "new_flags"))}


@hypercall("doorbell_receive", 0x13, capid=_cap(ObjectType.DOORBELL, "RECEIVE"),
           clear_flags=_reg("flags to clear"))
def _bell_receive(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    bell = table.lookup(vcpu, args, ObjectType.DOORBELL, BELL_RECEIVE)
    return {"old_flags": bell.receive(_arg(args, "clear_flags"))}


@hypercall("doorbell_reset", 0x14, capid=_cap(ObjectType.DOORBELL, "RECEIVE"))
def _bell_reset(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    table.lookup(vcpu, args, ObjectType.DOORBELL, BELL_RECEIVE).reset()


@hypercall("doorbell_mask", 0x15, capid=_cap(ObjectType.DOORBELL, "RECEIVE"),
           enable_mask=_reg("flags that raise the vIRQ"),
           ack_mask=_reg("flags cleared when it is raised"))
def _bell_mask(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    bell = table.lookup(vcpu, args, ObjectType.DOORBELL, BELL_RECEIVE)
    bell.mask(_arg(args, "enable_mask"), _arg(args, "ack_mask"))


# --- vCPUs and the scheduler -------------------------------------------------------------------
@hypercall("scheduler_yield", 0x3B,
           control=_reg("hint: 0 yield, 1 yield to arg1", required=False),
           arg1=_cap(ObjectType.THREAD, "YIELD_TO", required=False,
                     note="the vCPU to yield to (hint 1)"))
def _sched_yield(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    """facts §7.1 "scheduler_yield hints"; H-SRC scheduler_fprr/src/hypercalls.c
    ``hypercall_scheduler_yield``: impl_def set or hint 2 (yield_lower) or an unknown
    hint -> ARGUMENT_INVALID; hint 1 looks up ``arg1`` as a thread cap with YIELD_TO
    and yields to it unless it is the caller itself."""
    control = _arg(args, "control", 0)
    if control & SCHEDULER_YIELD_CONTROL_IMPL_DEF:
        raise HypError(Error.ARGUMENT_INVALID, "implementation-defined yield hints")
    hint = control & SCHEDULER_YIELD_CONTROL_HINT_MASK
    if hint == SCHEDULER_YIELD_HINT_YIELD:
        vcpu.sched.yield_(vcpu)
    elif hint == SCHEDULER_YIELD_HINT_YIELD_TO_THREAD:
        target = vcpu.vm.cspace.lookup(_arg(args, "arg1", 0), ObjectType.THREAD,
                                       THREAD_YIELD_TO)
        if target is not vcpu:
            vcpu.sched.yield_to(vcpu, target)
    else:
        raise HypError(Error.ARGUMENT_INVALID, f"yield hint {hint} is not supported by FPRR")


def _thread_config(table: HypercallTable, vcpu: Vcpu, args: dict, right: int) -> Any:
    return vcpu.vm.cspace.lookup(_arg(args, "capid"), ObjectType.THREAD, right, active=False)


def _still_init(thread: Any) -> None:
    if thread.state is not ObjectState.INIT:
        raise HypError(Error.OBJECT_STATE, "priority and timeslice are set before activation")


@hypercall("vcpu_run", 0x65, capid=_cap(ObjectType.THREAD, "AFFINITY", "YIELD_TO"),
           resume0=_reg("the loaded value after a VMMIO read", required=False),
           resume1=_reg("after a page fault: 0 EMULATE, 1 RETRY, 2 FAULT", required=False))
def _vcpu_run(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    target = vcpu.vm.cspace.lookup(_arg(args, "capid"), ObjectType.THREAD,
                                   THREAD_AFFINITY | THREAD_YIELD_TO)
    if target.proxy_owner is None or BLOCK_VCPU_RUN not in target.blocked:
        raise HypError(Error.BUSY, "not proxy-scheduled, or being run already")
    if PAGE_FAULT_BLOCK in target.blocked:
        _resume_page_fault(target, _arg(args, "resume1", int(VcpuRunResume.EMULATE)))
    if len(target.blocked) > 1:  # it cannot run now: say why, at once
        return state_of_stopped(target, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret
    vcpu.sched.donate(vcpu, target)
    # The call returns when the target stops and the caller runs again: its hvc event,
    # with state and data words, is traced then (facts §7.2; vcpu_run.c returns after
    # scheduler_yield_to comes back).
    return RETURNS_LATER


def _resume_page_fault(target: Vcpu, action: int) -> None:
    """Apply the resume action to a vCPU stopped by a page fault, before it runs (H-SRC
    vcpu_run.c ``hypercall_vcpu_run``: ``trigger_vcpu_run_resume_event`` on the last
    state, whose error is returned before the vcpu_run block is lifted; vmmio.c
    ``addrspace_handle_vcpu_run_resume_read`` is the VMMIO one). RETRY re-executes the
    access (Linux gunyah_vcpu.c after it mapped the page), FAULT injects an abort
    instead (facts §7.2). SIMULATOR (no public handler for state 7): EMULATE also
    re-executes it, there being nothing to emulate, and any other action is
    ARGUMENT_INVALID."""
    if action not in VcpuRunResume._value2member_map_:
        raise HypError(Error.ARGUMENT_INVALID, f"resume action {action} is not 0, 1 or 2")
    target.fault_abort = action == VcpuRunResume.FAULT
    target.blocked.discard(PAGE_FAULT_BLOCK)


@hypercall("vcpu_run_check", 0x68, capid=_cap(ObjectType.THREAD, "BIND_VIRQ", "STATE"))
def _vcpu_run_check(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    """H-SRC vcpu_run.c ``hypercall_vcpu_run_check``: the run state of a vCPU that is not
    runnable, as vcpu_run would return it (the RM reads it after a HALT vIRQ, facts §7.2,
    §9.1); BUSY if it is runnable or only transiently BLOCKED."""
    target = vcpu.vm.cspace.lookup(_arg(args, "capid"), ObjectType.THREAD,
                                   THREAD_BIND_VIRQ | THREAD_STATE)
    if target.runnable:
        raise HypError(Error.BUSY, "the vCPU is runnable")
    ret = state_of_stopped(target, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret
    if ret["state"] == VcpuRunState.BLOCKED.name:
        raise HypError(Error.BUSY, "the vCPU is only blocked for now", ret)
    return ret


@hypercall("vcpu_set_priority", 0x46, capid=_cap(ObjectType.THREAD, "PRIORITY"),
           priority=_reg("0..62 for vCPUs"))
def _vcpu_set_priority(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    """The source's order (H-SRC vcpu/aarch64/src/hypercalls.c ``hypercall_vcpu_set_priority``):
    the cap, then DENIED above VCPU_MAX_PRIORITY (62), then OBJECT_STATE unless INIT
    (facts §7.1). ``priority_t`` is a u32, so a negative value is a huge one: DENIED."""
    thread = _thread_config(table, vcpu, args, THREAD_PRIORITY)
    priority = _arg(args, "priority")
    if not SCHEDULER_MIN_PRIORITY <= priority <= VCPU_MAX_PRIORITY:
        raise HypError(Error.DENIED, f"vCPUs may use at most priority {VCPU_MAX_PRIORITY}")
    _still_init(thread)
    thread.priority = priority


@hypercall("vcpu_set_timeslice", 0x47, capid=_cap(ObjectType.THREAD, "TIMESLICE"),
           timeslice_ns=_reg("100 us .. 100 ms"))
def _vcpu_set_timeslice(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    """H-SRC ``hypercall_vcpu_set_timeslice``: OBJECT_STATE unless INIT comes first, then
    ``scheduler_set_timeslice`` refuses a value outside 100 us .. 100 ms."""
    thread = _thread_config(table, vcpu, args, THREAD_TIMESLICE)
    timeslice = _arg(args, "timeslice_ns")
    _still_init(thread)
    if not SCHEDULER_MIN_TIMESLICE_NS <= timeslice <= SCHEDULER_MAX_TIMESLICE_NS:
        raise HypError(Error.ARGUMENT_INVALID, "timeslice must be 100 us .. 100 ms")
    thread.timeslice_ns = timeslice


# --- address spaces and memory extents (demand paging, facts §8.1, §10.2) -----------------
AS_MAP = int(AddrspaceRights.MAP)
EXTENT_MAP = int(MemextentRights.MAP)
EXTENT_DONATE = int(MemextentRights.DONATE)
PARTIAL = int(AddrspaceMapFlags.PARTIAL)
# Which extents a donation type moves memory between: (from label, to label).
DONATE_PAIRS = {int(MemextentDonateType.TO_PROTECTED): (LABEL_HOST_PRIVATE, LABEL_GUEST_PRIVATE),
                int(MemextentDonateType.TO_SIBLING): (LABEL_HOST_SHARED, LABEL_GUEST_SHARED)}


def _page_range(args: dict) -> tuple[int, int]:
    """``offset``/``size`` of one page (offset = physical address, facts §10.2)."""
    offset, size = _arg(args, "offset"), _arg(args, "size")
    if offset < 0 or offset % PAGE_SIZE or size != PAGE_SIZE:
        raise HypError(Error.ARGUMENT_INVALID,
                       "offset must be page-aligned and size one page (SIMULATOR)")
    return offset, size


@hypercall("memextent_donate", 0x61,
           options=_reg("bits 7:0 type: 2 TO_SIBLING, 3 TO_PROTECTED; bit 31 NoSync"),
           capid=_cap(ObjectType.MEMEXTENT, "DONATE", note="the extent the memory leaves"),
           to=_cap(ObjectType.MEMEXTENT, "DONATE", note="the extent it enters"),
           offset=_reg("physical address of the page"), size=_reg("one page, 4096"))
def _memextent_donate(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    """H-SRC memextent/src/hypercalls.c ``hypercall_memextent_donate``: res0 options bits
    -> ARGUMENT_INVALID, both caps need DONATE (``hypercall_memextent_donate_sibling``).
    Types 0/1 (child/parent) are not modelled; 3 TO_PROTECTED is Linux's (facts §8.1),
    taking host-private to guest-private; 2 TO_SIBLING host-shared to guest-shared.
    Memory the source extent does not hold -> MEMDB_NOT_OWNER (facts §8.1)."""
    options = _arg(args, "options")
    kind = options & MEMEXTENT_DONATE_TYPE_MASK
    reserved = options & ~(MEMEXTENT_DONATE_TYPE_MASK | MEMEXTENT_DONATE_NOSYNC)
    if reserved or kind not in DONATE_PAIRS:
        raise HypError(Error.ARGUMENT_INVALID, f"donate options {options:#x} not modelled")
    cspace = vcpu.vm.cspace
    frm = cspace.lookup(_arg(args, "capid"), ObjectType.MEMEXTENT, EXTENT_DONATE)
    to = cspace.lookup(_arg(args, "to"), ObjectType.MEMEXTENT, EXTENT_DONATE)
    if (frm.label, to.label) != DONATE_PAIRS[kind]:
        raise HypError(Error.ARGUMENT_INVALID, f"{frm.name} -> {to.name} is not type {kind}")
    offset, _ = _page_range(args)
    try:
        table.hyp.memory.extent_donate(frm.vm.vmid, to.vm.vmid, offset,
                                       keep=kind == MemextentDonateType.TO_SIBLING)
    except MemError as err:
        raise HypError(Error.MEMDB_NOT_OWNER, err.message) from None


def _space_and_extent(vcpu: Vcpu, args: dict) -> tuple[Any, Any]:
    cspace = vcpu.vm.cspace
    space = cspace.lookup(_arg(args, "capid"), ObjectType.ADDRSPACE, AS_MAP)
    extent = cspace.lookup(_arg(args, "memextent"), ObjectType.MEMEXTENT, EXTENT_MAP)
    return space, extent


def _map_flags(args: dict) -> int:
    flags = _arg(args, "map_flags")
    if flags & ~ADDRSPACE_MAP_FLAGS_VALID:
        raise HypError(Error.ARGUMENT_INVALID, f"map_flags {flags:#x}: reserved bits set")
    if not flags & PARTIAL:
        raise HypError(Error.UNIMPLEMENTED, "only PARTIAL maps of a sparse extent are modelled")
    return flags


@hypercall("addrspace_map", 0x2B, capid=_cap(ObjectType.ADDRSPACE, "MAP"),
           memextent=_cap(ObjectType.MEMEXTENT, "MAP"), base=_reg("the guest IPA"),
           map_attrs=_reg("bits 2:0 user access, 6:4 kernel access, 23:16 memory type"),
           map_flags=_reg("bit 0 PARTIAL, 1 PRIVATE, 2 VMMIO, 31 NoSync"),
           offset=_reg("physical address of the page"), size=_reg("one page, 4096"))
def _addrspace_map(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    """H-SRC addrspace/src/hypercalls.c ``hypercall_addrspace_map``: reserved attrs or
    flags bits -> ARGUMENT_INVALID, then the address space cap (MAP), then the extent
    cap (MAP); PARTIAL maps ``offset``/``size`` of the extent at ``base``. The stage-2
    rights are the user access bits 2:0 of ``map_attrs`` (facts §8.1, §10.2)."""
    attrs = _arg(args, "map_attrs")
    if attrs & ~MAP_ATTRS_VALID:
        raise HypError(Error.ARGUMENT_INVALID, f"map_attrs {attrs:#x}: reserved bits set")
    _map_flags(args)
    space, extent = _space_and_extent(vcpu, args)
    base = _arg(args, "base")
    offset, _ = _page_range(args)
    if extent.vm is not space.vm or base % PAGE_SIZE:
        raise HypError(Error.ARGUMENT_INVALID, "the extent's memory is not this VM's, or "
                       "base is not page-aligned")
    try:
        table.hyp.memory.extent_map(space.vm.vmid, base, offset,
                                    attrs & MAP_ATTR_USER_ACCESS_MASK)
    except MemError as err:
        raise HypError(Error.MEMDB_NOT_OWNER if err.error == "MEM_INVALID"
                       else Error.ARGUMENT_INVALID, err.message) from None


@hypercall("addrspace_unmap", 0x2C, capid=_cap(ObjectType.ADDRSPACE, "MAP"),
           memextent=_cap(ObjectType.MEMEXTENT, "MAP"), base=_reg("the guest IPA"),
           map_flags=_reg("bit 0 PARTIAL, 1 PRIVATE, 2 VMMIO, 31 NoSync"),
           offset=_reg("physical address of the page"), size=_reg("one page, 4096"))
def _addrspace_unmap(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    """H-SRC ``hypercall_addrspace_unmap``: the same checks as map, without attrs."""
    _map_flags(args)
    space, extent = _space_and_extent(vcpu, args)
    offset, _ = _page_range(args)
    if extent.vm is not space.vm:
        raise HypError(Error.ARGUMENT_INVALID, "the extent's memory is not this VM's")
    try:
        table.hyp.memory.extent_unmap(space.vm.vmid, _arg(args, "base"), offset)
    except MemError as err:
        raise HypError(Error.ARGUMENT_INVALID, err.message) from None
# --- virtio-MMIO, the backend's side (hyp/interfaces/virtio_mmio/virtio_mmio.hvc; facts §10.1) ---
# Each looks the device up in the caller's CSpace with its right (H-SRC
# hyp/vm/virtio_mmio/src/hypercalls.c): CONFIG for the register calls, ASSERT_VIRQ for
# assert_virq. The RM gives the backend CONFIG | ASSERT_VIRQ. The bind/unbind calls
# (0x4A-0x4D) and virtio_mmio_configure (0x49) are the RM's: like every object's set-up
# here, the model makes them by direct calls (Hypervisor.create_virtio_mmio).
VIRTIO_CONFIG = int(VirtioMmioRights.CONFIG)
VIRTIO_ASSERT = int(VirtioMmioRights.ASSERT_VIRQ)


def _virtio(vcpu: Vcpu, args: dict, rights: int) -> Any:
    return vcpu.vm.cspace.lookup(_arg(args, "capid"), ObjectType.VIRTIO_MMIO, rights)


_VIRTIO_CAP = _cap(ObjectType.VIRTIO_MMIO, "CONFIG", note="the backend's virtio-MMIO cap")
_SEL = _reg("feature word (0, 1) or queue index")


@hypercall("virtio_mmio_backend_assert_virq", 0x4E,
           capid=_cap(ObjectType.VIRTIO_MMIO, "ASSERT_VIRQ"),
           interrupt_status=_reg("bits to OR into InterruptStatus (1: used buffer)"))
def _virtio_assert_virq(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    _virtio(vcpu, args, VIRTIO_ASSERT).assert_virq(_arg(args, "interrupt_status"))


@hypercall("virtio_mmio_backend_set_dev_features", 0x4F, capid=_VIRTIO_CAP,
           sel=_SEL, dev_feat=_reg("the 32 feature bits of word sel"))
def _virtio_set_dev_features(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    _virtio(vcpu, args, VIRTIO_CONFIG).set_dev_features(_arg(args, "sel"),
                                                        _arg(args, "dev_feat"))


@hypercall("virtio_mmio_backend_set_queue_num_max", 0x50, capid=_VIRTIO_CAP,
           sel=_SEL, queue_num_max=_reg("the largest ring the device takes"))
def _virtio_set_queue_num_max(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    _virtio(vcpu, args, VIRTIO_CONFIG).set_queue_num_max(_arg(args, "sel"),
                                                         _arg(args, "queue_num_max"))


@hypercall("virtio_mmio_backend_get_drv_features", 0x51, capid=_VIRTIO_CAP, sel=_SEL)
def _virtio_get_drv_features(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    return {"drv_feat": _virtio(vcpu, args, VIRTIO_CONFIG).get_drv_features(_arg(args, "sel"))}


@hypercall("virtio_mmio_backend_get_queue_info", 0x52, capid=_VIRTIO_CAP, sel=_SEL)
def _virtio_get_queue_info(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    return _virtio(vcpu, args, VIRTIO_CONFIG).get_queue_info(_arg(args, "sel"))


@hypercall("virtio_mmio_backend_get_notification", 0x53, capid=_VIRTIO_CAP)
def _virtio_get_notification(table: HypercallTable, vcpu: Vcpu, args: dict) -> dict:
    return _virtio(vcpu, args, VIRTIO_CONFIG).get_notification()


@hypercall("virtio_mmio_backend_acknowledge_reset", 0x54, capid=_VIRTIO_CAP)
def _virtio_acknowledge_reset(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    _virtio(vcpu, args, VIRTIO_CONFIG).acknowledge_reset()


@hypercall("virtio_mmio_backend_update_status", 0x55, capid=_VIRTIO_CAP,
           val=_reg("bits to OR into Status"))
def _virtio_update_status(table: HypercallTable, vcpu: Vcpu, args: dict) -> None:
    _virtio(vcpu, args, VIRTIO_CONFIG).update_status(_arg(args, "val"))
