"""Every trace event explained: one sentence, one "real Gunyah" line, readable fields.

The one place that puts events into words (design.md §7 "Captions in one place"): the
page (the server sends ``captions`` beside the events of each ``sim:trace`` batch and
answers ``sim:explain`` for the inspector; static/js/caption.js only displays them), the
CLI (``run --format text``) and the CSV ``caption`` column all call this module, so they
cannot disagree. It is Python, not a JavaScript mirror, so the words sit next to the
model they describe, exports and replays say the same without a browser, and one test
(tests/core/test_captions.py) holds every kind in ``EventKind`` to a sentence.

A caption is a pure function of one event: where a sentence needs state (a threshold, a
priority, the slice left), the model puts that state in the event (docs/trace.md).
Unknown or malformed events get a plain fallback, never an exception: a replayed or
hand-written timeline is shown as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..consts import HVC_IMM_BASE, Error
from ..core.trace import EventKind
from ..rm.messages import RmError
from ..vm.vtimer import ticks_to_ns as ticks_ns

Event = Mapping[str, Any]

_NS_PER_US = 1_000
_NS_PER_MS = 1_000_000
_KIB = 1024
_MAX_FLOAT_NS = 10**18
_ALL_FLAGS = (1 << 64) - 1
_MAX_LIST = 3  # capabilities or fields named in one sentence; the rest are counted

#: What a Gunyah error means to the caller, for the errors the model returns.
ERROR_MEANING = {
    "MSGQUEUE_FULL": "the queue already holds as many messages as it can, so nothing was "
                     "queued (not_full is false); the sender can wait for its Tx vIRQ, raised "
                     "when the count falls to the not-full threshold",
    "MSGQUEUE_EMPTY": "there was no message to take",
    "ARGUMENT_SIZE": "a size is out of range (a message too big or a buffer too small)",
    "ARGUMENT_INVALID": "an argument is not allowed",
    "CSPACE_CAP_NULL": "the capability slot is empty",
    "CSPACE_CAP_REVOKED": "the capability was revoked",
    "CSPACE_WRONG_OBJECT_TYPE": "the capability names another kind of object",
    "CSPACE_INSUFFICIENT_RIGHTS": "the capability lacks the right this call needs",
    "OBJECT_STATE": "the object is not in a state that allows this",
    "UNIMPLEMENTED": "this is not implemented",
    "BUSY": "the object is busy",
    "DENIED": "the caller may not do this",
}

_VM_STATE_MEANING = {
    "NONE": "the RM has forgotten it",
    "LOAD": "allocated; its image and memory are being set up",
    "INIT": "its hypervisor objects (vCPUs, queues, vIRQs) are created",
    "READY": "ready to start",
    "RUNNING": "its vCPUs are powered on",
    "PAUSED": "paused",
    "AUTH": "being authenticated",
    "INIT_FAILED": "its set-up failed",
    "EXITED": "it has stopped; its owner must reset or destroy it",
    "RESETTING": "the RM is tearing down its objects and taking back its memory",
    "RESET": "torn down, ready to be configured again",
}

_WHY_WOKE = {"vcpu_wfi": "woke from WFI (an interrupt arrived)",
             "vcpu_suspend": "woke from CPU_SUSPEND",
             "vcpu_off": "was powered on"}
_WHY_BLOCKED = {"vcpu_wfi": "waits for an interrupt (WFI)",
                "vcpu_suspend": "is suspended (PSCI CPU_SUSPEND)",
                "vcpu_off": "is powered off",
                "vcpu_run": "waits in vcpu_run"}
_ACCESS = {"R": "read", "W": "write", "X": "instruction fetch"}


# -- numbers as an engineer reads them -------------------------------------------------
def hexn(value: Any) -> str:
    """0x1F; anything that is not an int is shown as it is."""
    return f"0x{value:X}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def duration(ns: Any) -> str:
    """5 ms, 0.6 ms, 12 µs, 500 ns (a tenth of a millisecond and up in ms, like slices)."""
    if not isinstance(ns, int):
        return "?"
    if ns > _MAX_FLOAT_NS:  # an imported timeline's nonsense: no float conversion
        return f"{ns} ns"
    if ns >= _NS_PER_MS // 10:
        return f"{ns / _NS_PER_MS:.3g} ms"
    if ns >= _NS_PER_US:
        return f"{ns / _NS_PER_US:.3g} µs"
    return f"{ns} ns"


def size_text(size: Any) -> str:
    if isinstance(size, int) and size >= _KIB and size % _KIB == 0:
        return f"{size // _KIB} KiB"
    return f"{size} bytes"


def error_text(name: Any) -> str:
    """A hypervisor error with its number: ``MSGQUEUE_FULL (61)``."""
    try:
        return f"{name} ({Error[name].value})"
    except (KeyError, TypeError):
        return str(name)


def rm_error_text(name: Any) -> str:
    """An RM error with its number: ``MEM_INUSE (0xB)``."""
    try:
        return f"{name} ({hexn(RmError[name].value)})"
    except (KeyError, TypeError):
        return str(name)


def call_text(name: Any, call: Any) -> str:
    """``msgqueue_send (0x601B)``; a call with no real number says so."""
    return f"{name} ({hexn(call)})" if isinstance(call, int) else f"{name} (no HVC number)"


def plural(n: Any, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def source_text(ref: Any) -> str:
    """A vIRQ source reference, ``msgq:A_to_B:rx``, in words."""
    parts = str(ref).split(":")
    if parts[0] == "msgq" and len(parts) == 3:
        side = "Rx (message-waiting)" if parts[2] == "rx" else "Tx (room-to-send)"
        return f"{parts[1]}'s {side} line"
    if parts[0] == "doorbell" and len(parts) == 2:
        return f"doorbell {parts[1]}"
    if parts[0] == "vcpu" and len(parts) == 3:
        if parts[2] == "halt":
            return f"{parts[1]}'s HALT line"
        return f"{parts[1]}'s wakeup line"
    if parts[0] == "vtimer" and len(parts) == 2:
        return f"{parts[1]}'s virtual timer"
    if parts[0] == "virtio_mmio" and len(parts) == 3:
        return f"virtio device {parts[1]}'s line to its {parts[2]}"
    return str(ref)


def _side(ref: Any) -> str:
    """'Rx ', 'Tx ' or '' for a vIRQ named by its source."""
    end = str(ref).rsplit(":", 1)[-1]
    return {"rx": "Rx ", "tx": "Tx "}.get(end, "")


# -- one sentence per kind ----------------------------------------------------------------
def _hvc(e: Event) -> str:
    text = _hvc_text(e)
    action = e.get("action")
    return text if action is None else f"{text[:-1]} (your action {action})."


def _hvc_text(e: Event) -> str:
    who, name, result = e.get("vcpu"), e.get("name"), e.get("result")
    args, ret = e.get("args") or {}, e.get("ret") or {}
    if result != "OK":
        meaning = ERROR_MEANING.get(str(result), "")
        what = f"{who} calls {name}: it fails with {error_text(result)}"
        if name == "msgqueue_send" and "size" in args:
            what = f"{who}'s msgqueue_send of {args['size']} bytes fails with {error_text(result)}"
        return f"{what}{': ' + meaning if meaning else ''}."
    if name == "msgqueue_send":
        push = " with PUSH" if args.get("flags", 0) & 1 else ""
        room = ("the queue still has room (not_full)" if ret.get("not_full")
                else "that filled the queue (not_full is false)")
        return f"{who} calls msgqueue_send: {args.get('size')} bytes{push} accepted; {room}."
    if name == "msgqueue_receive":
        more = ("more are waiting (not_empty)" if ret.get("not_empty")
                else "the queue is now empty (not_empty is false)")
        return f"{who} calls msgqueue_receive: it gets a {ret.get('size')}-byte message; {more}."
    if name == "doorbell_send":
        return (f"{who} rings a doorbell with flags {hexn(args.get('new_flags'))}: OK "
                f"(the flags were {hexn(ret.get('old_flags'))}).")
    if name == "doorbell_receive":
        return f"{who} reads and clears a doorbell: OK, it held {hexn(ret.get('old_flags'))}."
    if name == "vcpu_run":
        return f"{who}'s vcpu_run returns: its proxy vCPU stopped ({ret.get('state', '?')})."
    shown = ", ".join(f"{k} {hexn(v) if k in _HEX_FIELDS else v}"
                      for k, v in list(args.items())[:_MAX_LIST])
    return f"{who} calls {name}{' (' + shown + ')' if shown else ''}: OK."


def _msgq_send(e: Event) -> str:
    depth, thd, dst = e.get("depth"), e.get("notempty_thd"), e.get("dst")
    head = (f"{e.get('src')} sends message #{e.get('msg')} ({e.get('size')} bytes) into "
            f"{e.get('msgq')}: it now holds {plural(depth, 'message')}")
    push = e.get("push")
    if not isinstance(depth, int) or not isinstance(thd, int):
        return head + ("; PUSH raises the Rx vIRQ." if push else ".")
    if depth == thd:
        tail = (f", reaching its not-empty threshold ({thd}), so {dst}'s Rx vIRQ is raised"
                + ("; the send also carried PUSH" if push else ""))
    elif depth < thd:
        tail = (f", below its not-empty threshold ({thd}), but PUSH raises {dst}'s Rx vIRQ now"
                if push else f", below its not-empty threshold ({thd}): {dst} is not told yet")
    else:
        tail = (f", past its not-empty threshold ({thd}); PUSH raises {dst}'s Rx vIRQ again"
                if push else f", past its not-empty threshold ({thd}): the Rx vIRQ was "
                "raised already")
    return head + tail + "."


def _msgq_recv(e: Event) -> str:
    depth, thd, src = e.get("depth"), e.get("notfull_thd"), e.get("src")
    head = (f"{e.get('dst')} receives message #{e.get('msg')} ({e.get('size')} bytes) from "
            f"{e.get('msgq')}: {depth} left")
    if isinstance(thd, int) and depth == thd:
        return (head + f", down to its not-full threshold ({thd}), so {src}'s Tx vIRQ is "
                "raised: there is room to send again.")
    return head + "."


def _msgq_flush(e: Event) -> str:
    dropped = e.get("dropped", 0)
    if not dropped:
        return f"{e.get('msgq')} is flushed while empty: nothing changes."
    return (f"{e.get('msgq')} is flushed: {plural(dropped, 'message')} dropped; "
            f"{e.get('src')}'s Tx vIRQ is raised and {e.get('dst')}'s Rx cleared.")


def _msgq_push(e: Event) -> str:
    depth = e.get("depth", 0)
    if not depth:
        return f"{e.get('src')} pushes {e.get('msgq')}, but it is empty: no interrupt."
    return (f"{e.get('src')} pushes {e.get('msgq')}: it holds {plural(depth, 'message')}, so "
            f"{e.get('dst')}'s Rx vIRQ is raised whatever the threshold.")


def _msgq_config(e: Event) -> str:
    return (f"{e.get('msgq')}'s thresholds are set: {e.get('dst')}'s Rx vIRQ fires when the "
            f"count reaches {e.get('notempty_thd')} (not-empty), {e.get('src')}'s Tx when it "
            f"falls to {e.get('notfull_thd')} (not-full).")


def _virq_assert(e: Event) -> str:
    src, vm, virq = e.get("source"), e.get("vm"), e.get("virq")
    head = f"{vm}'s {_side(src)}vIRQ {virq} fires"
    depth = e.get("depth")
    name = str(src).split(":")[1] if str(src).count(":") == 2 else src
    if "notempty_thd" in e:
        thd = e["notempty_thd"]
        if depth == thd:
            why = (f"{name} now holds {plural(depth, 'message')}, reaching its not-empty "
                   f"threshold ({thd})")
        elif isinstance(depth, int) and isinstance(thd, int) and depth < thd:
            why = (f"{name} holds {plural(depth, 'message')}, below its not-empty threshold "
                   f"({thd}), and a PUSH asked for it")
        else:
            why = (f"{name} holds {plural(depth, 'message')} (not-empty threshold {thd}) and "
                   "a PUSH asked for it")
        return f"{head}: {why}."
    if "notfull_thd" in e:
        thd = e["notfull_thd"]
        level = (f"is down to {plural(depth, 'message')}, its not-full threshold ({thd})"
                 if depth == thd else
                 f"holds {plural(depth, 'message')}, at or below its not-full threshold ({thd})")
        return f"{head}: {name} {level}, so there is room to send again."
    if "cval" in e:
        return (f"{head}: {source_text(src)} reached its compare value {e['cval']} "
                f"(private to {e.get('vcpu')}, level: it stays asserted until the guest "
                "masks, disables or re-arms the timer).")
    return f"{head}: {source_text(src)} raised it ({e.get('trigger', 'edge')}-triggered)."


def _virq_deliver(e: Event) -> str:
    return (f"{e.get('vcpu')} takes vIRQ {e.get('virq')} from {source_text(e.get('source'))}: "
            "pending becomes active and its handler runs.")


def _virq_eoi(e: Event) -> str:
    return (f"{e.get('vcpu')} ends vIRQ {e.get('virq')} with an EOI: its handler is done and "
            "the vIRQ can fire again.")


def _virq_clear(e: Event) -> str:
    return (f"{e.get('vm')}'s vIRQ {e.get('virq')} is no longer pending: "
            f"{source_text(e.get('source'))} dropped it before a vCPU took it.")


def _virq_bind(e: Event) -> str:
    return (f"{e.get('vm')}'s vIRQ {e.get('virq')} is bound to {source_text(e.get('source'))} "
            f"({e.get('trigger', 'edge')}-triggered).")


def _virq_unbind(e: Event) -> str:
    return (f"{e.get('vm')}'s vIRQ {e.get('virq')} is unbound from "
            f"{source_text(e.get('source'))}: it can no longer fire.")


def _at(ns: Any) -> str:
    return f"at {duration(ns)}" if isinstance(ns, int) else "never (disabled)"


def _vtimer_write(e: Event) -> str:
    who, reg, value = e.get("vcpu"), e.get("reg"), e.get("value")
    if e.get("by") == "vcpu_stopped":
        return f"{who} is stopped, so the hypervisor disables its virtual timer."
    if reg == "CNTV_CVAL_EL0":
        return (f"{who} writes CNTV_CVAL_EL0 = {value}: its virtual timer will fire when the "
                f"counter reaches {value} ({_at(ticks_ns(value))}).")
    state = ("disabled" if not e.get("enable") else
             "armed but masked (IMASK): it will not interrupt" if e.get("imask") else
             f"armed: it fires {_at(e.get('deadline'))}")
    if e.get("enable") and e.get("istatus") and not e.get("imask"):
        state = "armed, and its compare value is already past: it fires at once"
    return f"{who} writes CNTV_CTL_EL0 = {hexn(value)}: its virtual timer is {state}."


def _vtimer_queue(e: Event) -> str:
    return (f"{e.get('vcpu')} sleeps in WFI with its timer armed: the hypervisor keeps the "
            f"deadline ({_at(e.get('deadline'))}) on its own timer to wake it then.")


_FIRE_PATH = {"running": "the hardware timer interrupts the running vCPU and the "
                         "hypervisor injects",
              "hyp_timer": "the hypervisor's own timer expires for the sleeping vCPU and "
                           "injects",
              "ready": "the vCPU waits for its pCPU; the hypervisor injects"}


def _vtimer_fire(e: Event) -> str:
    who = e.get("vcpu")
    if e.get("masked"):
        return (f"{who}'s virtual timer reaches {e.get('cval')} (ISTATUS = 1) but IMASK is "
                "set: no vIRQ.")
    how = _FIRE_PATH.get(str(e.get("path")), "the hypervisor injects")
    return (f"{who}'s virtual timer reaches {e.get('cval')} (ISTATUS = 1): {how} its "
            f"private vIRQ {e.get('virq')}.")


def _bell_send(e: Event) -> str:
    acked = e.get("acked") or 0
    head = (f"{e.get('src')} rings {e.get('doorbell')} with flags {hexn(e.get('sent'))}: the "
            f"flags go from {hexn(e.get('old'))} to {hexn(e.get('flags'))}")
    enabled = e.get("enable_mask")
    if not isinstance(enabled, int):
        return head + "."
    raised = (e.get("old", 0) | e.get("sent", 0)) & enabled
    if not raised:  # doorbell.c doorbell_send: an edge-only assert when nothing is enabled
        return (head + f"; none is in the enable mask ({hexn(enabled)}), so the assert is "
                f"edge-only: it raises {e.get('dst')}'s vIRQ only if that is edge-triggered.")
    tail = f", and the ack mask clears {hexn(acked)} at once" if acked else ""
    return (head + f"; {hexn(raised)} is enabled (mask {hexn(enabled)}), so {e.get('dst')}'s "
            f"vIRQ is raised{tail}.")


def _bell_recv(e: Event) -> str:
    clear = e.get("clear")
    what = "all flags" if clear == _ALL_FLAGS else f"flags {hexn(clear)}"
    return (f"{e.get('vm')} reads {e.get('doorbell')}: it held {hexn(e.get('old'))}; clearing "
            f"{what} leaves {hexn(e.get('flags'))}.")


def _bell_mask(e: Event) -> str:
    return (f"{e.get('doorbell')}'s masks are set: enable {hexn(e.get('enable_mask'))} (flags "
            f"that raise {e.get('dst')}'s vIRQ), ack {hexn(e.get('ack_mask'))} (flags cleared "
            "as soon as they raise it).")


def _bell_reset(e: Event) -> str:
    return (f"{e.get('doorbell')} is reset: flags 0x0, masks back to their defaults "
            "(all enabled, none auto-acked), its vIRQ cleared.")


def _prio(who: Any, prio: Any) -> str:
    return f"{who} (priority {prio})" if prio is not None else str(who)


def _sched_switch(e: Event) -> str:
    prev, nxt, reason, cpu = e.get("prev"), e.get("next"), str(e.get("reason")), e.get("pcpu")
    prio, prev_prio, left = e.get("prio"), e.get("prev_prio"), e.get("prev_left_ns")
    runs = (f"{_prio(nxt, prio)} runs with a {duration(e.get('slice_ns'))} slice"
            if nxt else f"pCPU {cpu} goes idle")
    kind, _, detail = reason.partition(":")
    if reason == "preempt":
        return (f"{prev} is preempted: {_prio(nxt, prio)} woke on pCPU {cpu}; {prev} goes back "
                f"to the head of priority {prev_prio} with {duration(left)} of its slice left.")
    if reason == "timeslice":
        return (f"{prev}'s timeslice on pCPU {cpu} ran out: it goes to the tail of priority "
                f"{prev_prio}, and {runs}.")
    if kind == "wake":
        woke = _WHY_WOKE.get(detail, f"became runnable ({detail})")
        return f"pCPU {cpu} was idle; {nxt} {woke}: {runs}."
    if kind == "block":
        blocked = _WHY_BLOCKED.get(detail, f"blocks ({detail})")
        follow = (f"{runs}, the highest priority ready" if nxt else runs)
        return f"{prev} {blocked} on pCPU {cpu}, so {follow}."
    if reason == "yield":
        return f"{prev} yields pCPU {cpu} (scheduler_yield): {runs}."
    if reason == "yield_to":
        return (f"{prev} yields pCPU {cpu} to {nxt} (a directed scheduler_yield): it runs on "
                f"{prev}'s slice.")
    if reason == "yield_to:return":
        return f"{prev}'s directed yield ends on pCPU {cpu}: {runs}."
    if reason == "vcpu_run":
        return (f"{prev} calls vcpu_run: its proxy vCPU {nxt} runs in its place on pCPU {cpu} "
                f"for the {duration(e.get('slice_ns'))} left of {prev}'s slice.")
    if reason == "vcpu_run:return":
        return f"{prev} stops running on {nxt}'s behalf on pCPU {cpu}: {nxt}'s vcpu_run returns."
    return f"pCPU {cpu} switches from {prev or 'idle'} to {nxt or 'idle'} ({reason})."


_RUNS_BECAUSE = {
    "wake:vcpu_wfi": "it woke from WFI and its pCPU was idle",
    "wake:vcpu_off": "it was powered on and its pCPU was idle",
    "block:vcpu_wfi": "the thread before it on this pCPU went into WFI",
    "block:vcpu_off": "the thread before it on this pCPU was powered off",
    "wake:vcpu_suspend": "it woke from CPU_SUSPEND and its pCPU was idle",
    "block:vcpu_suspend": "the thread before it on this pCPU suspended (CPU_SUSPEND)",
    "preempt": "it woke with a higher priority than the thread it replaced",
    "timeslice": "the thread before it used up its timeslice",
    "yield": "the thread before it yielded",
    "yield_to": "another vCPU yielded its slice to it",
    "yield_to:return": "the directed yield it made ended",
    "vcpu_run": "its owner called vcpu_run, so it runs on the owner's slice",
    "vcpu_run:return": "the vcpu_run it made returned",
}
_READY_BECAUSE = {
    "preempt": "a higher-priority thread took its pCPU; it keeps the rest of its slice",
    "timeslice": "its timeslice ran out; it goes to the tail of its priority",
    "vcpu_wfi": "it woke from WFI, but its pCPU runs a thread of equal or higher priority",
    "vcpu_off": "it was powered on, but its pCPU runs a thread of equal or higher priority",
    "vcpu_suspend": "it woke from CPU_SUSPEND, but its pCPU runs a thread of equal or higher "
                    "priority",
}


def _vcpu_state(e: Event) -> str:
    state, reason, who = str(e.get("state")), str(e.get("reason")), e.get("vcpu")
    if state == "running":
        because = _RUNS_BECAUSE.get(reason, reason.replace(":", " "))
        return f"{who} is now running: {because}."
    if state == "ready":
        because = _READY_BECAUSE.get(reason, reason.replace(":", " "))
        return f"{who} is ready but waits: {because}."
    if state == "wfi":
        return f"{who} executes WFI: it sleeps until one of its vIRQs fires."
    if state == "off":
        return f"{who} is powered off ({reason}): it runs no more until powered on."
    if state == "suspended":
        return (f"{who} is suspended ({reason}): PSCI CPU_SUSPEND blocks it until an "
                "interrupt or its timer wakes it.")
    if state == "proxy":
        how = ("powered on, " if reason == "vcpu_off"
               else f"back from vcpu_run ({reason}), ")
        return f"{who} is {how}parked: it runs only when its owner calls vcpu_run."
    if state == "vcpu_run":
        return f"{who} is inside vcpu_run: its slice now runs a proxy vCPU."
    if state == "yielding":
        return f"{who} lends its slice to another vCPU (a directed yield)."
    return f"{who} is {state} ({reason})."


_POWER_MEANS = {
    "on": "it runs its program from its entry point",
    "off": "it runs no more until a CPU_ON powers it on",
    "suspended": "it sleeps (blocked vcpu_suspend) until an interrupt or its timer wakes it",
}
_PSCI_RET_MEANS = {
    "SUCCESS": "done",
    "ALREADY_ON": "that vCPU is already on (Gunyah never answers ON_PENDING: CPU_ON is "
                  "synchronous)",
    "INVALID_PARAMETERS": "no CPU of the platform has that MPIDR",
    "INTERNAL_FAILURE": "the CPU exists but this VM has no vCPU there, or it has exited",
    "DENIED": "the last vCPU on may not turn itself off: SYSTEM_OFF ends the VM",
    "NOT_SUPPORTED": "this VM has no PSCI vPM group, or the function is not handled",
    "ON": "that vCPU is on",
    "OFF": "that vCPU is off",
}


def _vcpu_power(e: Event) -> str:
    power, reason = str(e.get("power")), str(e.get("reason"))
    means = _POWER_MEANS.get(power, "")
    return (f"{e.get('vcpu')} is now powered {power} ({reason})"
            + (f": {means}." if means else "."))


def _psci_call(e: Event) -> str:
    function, fid, ret = e.get("function"), e.get("fid"), e.get("ret")
    args = e.get("args") or {}
    shown = ", ".join(f"{k}={hexn(v) if k in ('entry', 'target') else v}"
                      for k, v in list(args.items())[:_MAX_LIST])
    call = f"{e.get('vcpu')} calls PSCI {function} ({hexn(fid)}{', ' + shown if shown else ''})"
    if ret is None:
        return f"{call}: it does not return."
    means = _PSCI_RET_MEANS.get(str(ret))
    return f"{call}: X0 = {ret} ({e.get('x0')}){': ' + means if means else ''}."


def _vcpu_priority(e: Event) -> str:
    return (f"{e.get('vcpu')}'s priority changes from {e.get('old')} to {e.get('priority')} "
            "(the simulator's live control; higher runs first).")


def _vcpu_run(e: Event) -> str:
    caller, target, stage = e.get("caller"), e.get("vcpu"), e.get("stage")
    if stage == "enter":
        return f"{caller} enters vcpu_run: {target} (of {e.get('target_vm')}) runs on its time."
    if stage == "exit":
        return f"{caller}'s vcpu_run returns: {target} stopped with state {e.get('state')}."
    if stage == "preempted":
        return (f"{caller}'s vcpu_run is preempted by a higher-priority thread on pCPU "
                f"{e.get('pcpu')}: the call has not returned.")
    if stage == "resume":
        return f"{caller} is picked again: {target} runs on inside its vcpu_run."
    return f"{caller}'s vcpu_run of {target}: {stage}."


def _cap_create(e: Event) -> str:
    caps = e.get("caps") or []
    named = ", ".join(f"{c.get('object')} as {hexn(c.get('capid'))}" for c in caps[:_MAX_LIST])
    more = f" and {len(caps) - _MAX_LIST} more" if len(caps) > _MAX_LIST else ""
    # ``caps`` is the VM's whole CSpace after the copy (hypervisor._copied_caps).
    return (f"The RM copies capabilities into {e.get('vm')}'s CSpace, which now holds "
            f"{len(caps)}: {named}{more}.")


def _cap_revoke(e: Event) -> str:
    head = (f"{plural(e.get('count'), 'capability')} to {e.get('object')} "
            f"{'is' if e.get('count') == 1 else 'are'} revoked")
    if e.get("call"):  # a fault: the RM revokes through the master cap it holds
        return (f"The {e.get('by')} calls {e.get('call')} with the master cap it holds: "
                f"{head}. Each holder's next call with its capid gets CSPACE_CAP_REVOKED "
                "(51): the slot is still there, its state is REVOKED.")
    return f"{head}: nobody can use it any more."


def _rm_fields(fields: Any) -> str:
    if not isinstance(fields, Mapping) or not fields:
        return ""
    items = list(fields.items())
    text = ", ".join(f"{k} {hexn(v) if k in ('base', 'size', 'handle', 'vmid') else v}"
                     for k, v in items[:_MAX_LIST])
    return f" ({text})"


def _rm_rpc(e: Event) -> str:
    what, name, stage = e.get("dir"), e.get("name"), e.get("stage")
    src, dst = e.get("src"), e.get("dst")
    frags = e.get("fragments") or 0
    packets = f"in {plural(frags + 1, 'packet')}"
    if stage == "send":
        if what == "reply":
            return (f"{src} replies to {dst}'s {name} request: "
                    f"{rm_error_text(e.get('error', 'OK'))}, {e.get('size')} bytes {packets}.")
        article = "an" if str(what)[:1] in "aeiou" else "a"
        return (f"{src} sends {dst} {article} {name} {what}{_rm_fields(e.get('fields'))}, "
                f"{e.get('size')} bytes {packets} over its RM message queue.")
    return f"{dst} receives {src}'s {name} {what} whole ({e.get('size')} bytes {packets})."


def _rm_packet(e: Event) -> str:
    return f"{e.get('dst')} drops a malformed packet from {e.get('src')}: {e.get('dropped')}."


def _vm_state(e: Event) -> str:
    state = e.get("state")
    meaning = _VM_STATE_MEANING.get(str(state), "")
    return (f"{e.get('vm')} (VMID {hexn(e.get('vmid'))}) is now {state} ({e.get('value')})"
            f"{': ' + meaning if meaning else ''}.")


_OBJECT_NAME = {"vm": "VM", "vcpu": "vCPU", "msgq": "message queue", "doorbell": "doorbell"}


def _obj(e: Event, verb: str) -> str:
    extra = ""
    if e.get("src") and e.get("dst"):
        extra = f" ({e['src']} → {e['dst']})"
    elif isinstance(e.get("vmid"), int):
        extra = f" (VMID {hexn(e['vmid'])})"
    what = _OBJECT_NAME.get(str(e.get("type")), str(e.get("type")))
    return f"The RM {verb} the {what} {e.get('name')}{extra} in the hypervisor."


def _mem_create(e: Event) -> str:
    verb = {"mem.lend": "lends", "mem.share": "shares", "mem.donate": "donates"}[str(e["kind"])]
    vms = ", ".join(str(v) for v in e.get("vms") or [e.get("vm")])
    after = {"mem.lend": f"{e.get('owner')} loses access until it reclaims it",
             "mem.share": f"{e.get('owner')} keeps access too",
             "mem.donate": "ownership moves when it is accepted"}[str(e["kind"])]
    return (f"{e.get('owner')} {verb} {size_text(e.get('size'))} at IPA {hexn(e.get('base'))} "
            f"to {vms} ({e.get('rights')}) as memparcel {e.get('handle')}: {after}.")


def _mem_accept(e: Event) -> str:
    return (f"{e.get('vm')} accepts memparcel {e.get('handle')} from {e.get('owner')}: "
            f"{size_text(e.get('size'))} at IPA {hexn(e.get('base'))} is mapped into its "
            f"stage-2 tables ({e.get('rights')}).")


def _mem_release(e: Event) -> str:
    return (f"{e.get('vm')} releases memparcel {e.get('handle')}: it is unmapped from "
            f"{e.get('vm')}, and {e.get('owner')} may reclaim it.")


def _mem_reclaim(e: Event) -> str:
    return (f"{e.get('owner')} reclaims memparcel {e.get('handle')}: "
            f"{size_text(e.get('size'))} at {hexn(e.get('base'))} is its own again.")


def _mem_notify(e: Event) -> str:
    targets = ", ".join(hexn(t) for t in e.get("targets") or [])
    return (f"{e.get('vm')} has the RM tell VMID {targets or '?'} about memparcel "
            f"{e.get('handle')} ({e.get('notification')}).")


def _mem_fault(e: Event) -> str:
    what = _ACCESS.get(str(e.get("access")), str(e.get("access")))
    return (f"{e.get('vm')}'s {what} at {hexn(e.get('addr'))} faults ({e.get('reason')}): its "
            f"stage-2 rights there are {e.get('rights')}, so the hypervisor injects an abort.")


def _mem_access(e: Event) -> str:
    if e.get("device"):  # a load from a virtio register page (facts §10.1)
        return (f"{e.get('vcpu') or e.get('vm')} reads {hexn(e.get('value'))} "
                f"from {e.get('device')}'s {e.get('reg')}: a plain load from the register "
                "page mapped read-only in its VM; only stores trap.")
    what = _ACCESS.get(str(e.get("access")), str(e.get("access")))
    value = f" of {hexn(e.get('value'))}" if e.get("value") is not None else ""
    ok = "allowed by its stage-2 mapping" if e.get("ok") else "refused"
    return f"{e.get('vcpu') or e.get('vm')}'s {what}{value} at {hexn(e.get('addr'))} is {ok}."


def _mem_page_fault(e: Event) -> str:
    what = _ACCESS.get(str(e.get("access")), str(e.get("access")))
    return (f"{e.get('vcpu') or e.get('vm')}'s {what} at {hexn(e.get('addr'))} faults: the "
            f"page is not given yet, so no abort; the vCPU stops and {e.get('owner')}'s "
            f"vcpu_run returns ADDRSPACE_PAGE_FAULT (7) with that IPA.")


def _mem_extent_donate(e: Event) -> str:
    after = (f"{e.get('owner')} keeps it mapped (shared)" if e.get("kept")
             else f"it leaves {e.get('owner')}'s stage-2 and is {e.get('vm')}'s now")
    return (f"{e.get('owner')} donates the {size_text(e.get('size'))} page at PA "
            f"{hexn(e.get('pa'))} into {e.get('vm')}'s memory extent: {after}.")


def _mem_map(e: Event) -> str:
    return (f"The page at PA {hexn(e.get('pa'))} arrives in {e.get('vm')}: mapped at IPA "
            f"{hexn(e.get('base'))} ({e.get('rights')}); the faulting access can be retried.")


def _mem_unmap(e: Event) -> str:
    return (f"The page at IPA {hexn(e.get('base'))} is unmapped from {e.get('vm')}'s "
            f"stage-2 (PA {hexn(e.get('pa'))}).")


def _snapshot(e: Event) -> str:
    state = e.get("state") or {}
    scenario = e.get("scenario") or {}
    name = scenario.get("name", "?") if isinstance(scenario, Mapping) else scenario
    return (f"The machine after boot ({name}): {plural(len(state.get('vms') or []), 'VM')}, "
            f"{plural(len(state.get('msgqs') or []), 'message queue')}, "
            f"{plural(len(state.get('doorbells') or []), 'doorbell')} on "
            f"{plural(len(state.get('pcpus') or []), 'pCPU')}.")


def _user_action(e: Event) -> str:
    args = e.get("args") or {}
    typed = args.get("args", {})
    if e.get("action") == "hvc" and isinstance(typed, dict):  # the hypercall console
        regs = " ".join(f"{k}={v}" for k, v in list(typed.items())[:_MAX_LIST])
        return (f"You typed in {args.get('vm')}'s console: {args.get('call')} {regs}".rstrip()
                + f"; its vCPU 0 makes the call (action {e.get('id')}).")
    shown = ", ".join(f"{k}={v}" for k, v in list(args.items())[:_MAX_LIST])
    shown = f" ({shown})" if shown else ""
    return f"You asked for {e.get('action')}{shown} (action {e.get('id')})."


K = EventKind
# -- virtio-MMIO and its virtqueues (facts §10.1) --------------------------------------
_REASONS = ((0x1, "NEW_BUFFER"), (0x2, "RESET_RQST"), (0x8, "DRIVER_OK"), (0x10, "FAILED"))


def _reasons(value: Any) -> str:
    if not isinstance(value, int) or not value:
        return "none"
    return " | ".join(name for bit, name in _REASONS if value & bit) or hexn(value)


def _virtio_write(e: Event) -> str:
    who, dev, reg, value = e.get("vcpu"), e.get("device"), e.get("reg"), e.get("value")
    head = f"{who} stores {hexn(value)} to {dev}'s {reg}"
    if not e.get("emulated"):
        return (head + ": the hypervisor cannot emulate that store (a read-only register, "
                "a bad size or a selector out of range), so it injects a fault.")
    trap = ": the page is read-only in its VM, so the store traps and the hypervisor "
    if reg == "QueueNotify":
        return (head + trap + f"sets bit {value} of the VQ bitmap and reason NEW_BUFFER, "
                "then raises the backend's vIRQ.")
    if reg == "Status":
        if value == 0 and e.get("status", 0) & 0x40:
            return (head + trap + "asks for a reset: DEVICE_NEEDS_RESET, reason RESET_RQST, "
                    "every QueueReady cleared; the backend's vIRQ is raised.")
        if value == 0:
            return (head + trap + "asks nothing: Status was 0 already (the source ignores a "
                    "first write of 0).")
        reasons = _reasons(e.get("reason"))
        return (head + trap + f"stores it; reasons waiting for the backend: {reasons}.")
    if reg == "InterruptACK":
        return (head + trap + f"clears those InterruptStatus bits (now {hexn(e.get('isr'))}).")
    return head + trap + "stores it in the device's (banked) register."


_BACKEND_OPS = {
    "set_dev_features": "offers feature word {sel}: {value}",
    "set_queue_num_max": "sets queue {sel}'s QueueNumMax to {value}",
    "acknowledge_reset": "acknowledges the reset: Status is 0 again, so assert_virq works "
                         "again",
    "update_status": "ORs {value} into Status",
    "assert_virq": "ORs {value} into InterruptStatus and raises the frontend's vIRQ",
}


def _virtio_backend(e: Event) -> str:
    op, dev = e.get("op"), e.get("device")
    if op == "get_notification":
        return (f"{e.get('vm')} takes {dev}'s notification: queues {hexn(e.get('taken_vqs'))}, "
                f"reasons {_reasons(e.get('taken_reason'))}; both are cleared.")
    text = _BACKEND_OPS.get(str(op), str(op)).format(
        sel=e.get("sel"), value=hexn(e.get("value")))
    return f"{e.get('vm')} {text} ({dev})."


def _ring(e: Event) -> str:
    return f"{e.get('device')}'s queue {e.get('queue')}"


def _depths(e: Event) -> str:
    return (f"available ring {e.get('avail_depth')}, with the device {e.get('in_device')}, "
            f"used ring {e.get('used_depth')} of {e.get('num')}")


def _virtq_avail(e: Event) -> str:
    data = f" (\"{e.get('data')}\")" if e.get("data") else ""
    return (f"{e.get('vm')} makes a chain of {plural(e.get('descs'), 'descriptor')} available "
            f"in {_ring(e)}: {e.get('out_len')} bytes out{data}, {e.get('in_len')} for the "
            f"device to fill; avail.idx is now {e.get('avail_idx')} ({_depths(e)}).")


def _virtq_pop(e: Event) -> str:
    data = f" (\"{e.get('data')}\")" if e.get("data") else ""
    return (f"{e.get('vm')} takes chain {e.get('head')} from {_ring(e)}'s available ring: "
            f"{e.get('out_len')} bytes to read{data}, {e.get('in_len')} to fill ({_depths(e)}).")


def _virtq_used(e: Event) -> str:
    return (f"{e.get('vm')} puts chain {e.get('head')} in {_ring(e)}'s used ring having "
            f"written {e.get('used_len')} bytes; used.idx is now {e.get('used_idx')} "
            f"({_depths(e)}).")


def _virtq_reclaim(e: Event) -> str:
    data = f": \"{e.get('data')}\"" if e.get("data") else ""
    return (f"{e.get('vm')} takes chain {e.get('head')} back from {_ring(e)}'s used ring with "
            f"{e.get('used_len')} bytes written{data} ({_depths(e)}).")


CAPTIONS: dict[str, Callable[[Event], str]] = {
    K.HVC: _hvc,
    K.MSGQ_SEND: _msgq_send,
    K.MSGQ_RECV: _msgq_recv,
    K.MSGQ_FLUSH: _msgq_flush,
    K.MSGQ_PUSH: _msgq_push,
    K.MSGQ_CONFIG: _msgq_config,
    K.VIRQ_ASSERT: _virq_assert,
    K.VIRQ_DELIVER: _virq_deliver,
    K.VIRQ_EOI: _virq_eoi,
    K.VIRQ_CLEAR: _virq_clear,
    K.VIRQ_BIND: _virq_bind,
    K.VIRQ_UNBIND: _virq_unbind,
    K.BELL_SEND: _bell_send,
    K.BELL_RECV: _bell_recv,
    K.BELL_MASK: _bell_mask,
    K.BELL_RESET: _bell_reset,
    K.SCHED_SWITCH: _sched_switch,
    K.VCPU_STATE: _vcpu_state,
    K.VCPU_PRIORITY: _vcpu_priority,
    K.VCPU_RUN: _vcpu_run,
    K.VCPU_POWER: _vcpu_power,
    K.PSCI_CALL: _psci_call,
    K.CAP_CREATE: _cap_create,
    K.CAP_REVOKE: _cap_revoke,
    K.RM_RPC: _rm_rpc,
    K.RM_PACKET: _rm_packet,
    K.VM_STATE: _vm_state,
    K.MEM_LEND: _mem_create,
    K.MEM_SHARE: _mem_create,
    K.MEM_DONATE: _mem_create,
    K.MEM_ACCEPT: _mem_accept,
    K.MEM_RELEASE: _mem_release,
    K.MEM_RECLAIM: _mem_reclaim,
    K.MEM_NOTIFY: _mem_notify,
    K.MEM_FAULT: _mem_fault,
    K.MEM_ACCESS: _mem_access,
    K.VTIMER_WRITE: _vtimer_write,
    K.VTIMER_QUEUE: _vtimer_queue,
    K.VTIMER_FIRE: _vtimer_fire,
    K.MEM_PAGE_FAULT: _mem_page_fault,
    K.MEM_EXTENT_DONATE: _mem_extent_donate,
    K.MEM_MAP: _mem_map,
    K.MEM_UNMAP: _mem_unmap,
    K.VIRTIO_WRITE: _virtio_write,
    K.VIRTIO_BACKEND: _virtio_backend,
    K.VIRTQ_AVAIL: _virtq_avail,
    K.VIRTQ_POP: _virtq_pop,
    K.VIRTQ_USED: _virtq_used,
    K.VIRTQ_RECLAIM: _virtq_reclaim,
    K.OBJ_CREATE: lambda e: _obj(e, "creates"),
    K.OBJ_DESTROY: lambda e: _obj(e, "destroys"),
    K.SIM_SNAPSHOT: _snapshot,
    K.USER_ACTION: _user_action,
}


def caption(event: Event) -> str:
    """One plain sentence: what happened, why, and the numbers that made it happen."""
    fn = CAPTIONS.get(str(event.get("kind")))
    if fn is not None:
        try:
            return fn(event)
        except Exception:  # noqa: BLE001 - a malformed (imported) event: say its kind
            pass
    return f"{event.get('kind')} event."


# -- what real Gunyah does here ----------------------------------------------------------
_RM_SIMPLIFIED = ("the simulator sends the real RM RPC packets (rm_rpc header, message id "
                  "{id}) over the RM message queues; the RM's work is modelled, not run")
_VIRTQ_REAL = ("not a hypervisor event: the two guests read and write the split virtqueue "
               "(virtio 1.1 §2.6) in memory they share; Gunyah never reads the rings, it "
               "only carries the notify and the interrupt (facts §10.1).")
REAL: dict[str, str] = {
    K.MSGQ_SEND: "msgqueue_send (0x601B) copies the message from the guest into the queue "
                 "(hyp/ipc/msgqueue, msgqueue_send_msg); the simulator keeps its size and a "
                 "preview of the payload.",
    K.MSGQ_RECV: "msgqueue_receive (0x601C) copies the head message out "
                 "(msgqueue_receive_msg); the simulator hands back the kept payload.",
    K.MSGQ_FLUSH: "msgqueue_flush (0x601D) empties the queue.",
    K.MSGQ_PUSH: "Linux's message-queue.rst documents a push; the public hypervisor has no "
                 "such call (0x601E is reserved): modelled as the document describes.",
    K.MSGQ_CONFIG: "msgqueue_configure_send (0x601F) or msgqueue_configure_receive (0x6020) "
                   "sets a threshold; the delay timers are not modelled (UNIMPLEMENTED).",
    K.VIRQ_ASSERT: "the vGIC marks the vIRQ pending and kicks the target vCPU (hyp/vm/vgic); "
                   "no list registers or GIC priorities are modelled.",
    K.VIRQ_DELIVER: "the guest acknowledges the interrupt (ICC_IAR1_EL1): pending becomes "
                    "active; the simulator takes the lowest INTID first.",
    K.VIRQ_EOI: "the guest writes ICC_EOIR1_EL1; a level-triggered source is asked again.",
    K.VIRQ_CLEAR: "the source deasserts its line in the vGIC.",
    K.VIRQ_BIND: "msgqueue_bind_send_virq / _receive_virq or doorbell_bind_virq tie a "
                 "source to a shared vIRQ; the RM does this when it creates a VM's resources.",
    K.VIRQ_UNBIND: "the matching *_unbind_virq call.",
    K.BELL_SEND: "doorbell_send (0x6012) ORs the flags in and returns the old ones.",
    K.BELL_RECV: "doorbell_receive (0x6013) clears the given flags and returns the old ones.",
    K.BELL_MASK: "doorbell_mask (0x6015) sets the enable and ack masks.",
    K.BELL_RESET: "doorbell_reset (0x6014).",
    K.SCHED_SWITCH: "scheduler_fprr picks the highest-priority runnable thread, round-robin "
                    "within a priority (hyp/core/scheduler_fprr); the context-switch cost is "
                    "the simulator's choice.",
    K.VCPU_STATE: "the thread's scheduler block flags change (vcpu_wfi, vcpu_off, ...).",
    K.VCPU_PRIORITY: "vcpu_set_priority (0x6046) may only be called before the thread is "
                     "activated; the simulator lets you change it live to explore FPRR.",
    K.VCPU_RUN: "vcpu_run (0x6065): a proxy-scheduled vCPU runs on its caller's time.",
    K.VCPU_POWER: "the vPM group's view of a vCPU (hyp/vm/psci): vcpu_poweron / "
                  "vcpu_poweroff clear or set the scheduler's vcpu_off block, CPU_SUSPEND "
                  "sets vcpu_suspend (hyp/vm/vcpu, psci_common.c).",
    K.PSCI_CALL: "an SMCCC call of the Standard Secure Service (X0 = 0x84000000 + n, "
                 "0xC4000000 + n for SMC64) handled by hyp/vm/psci (psci_common.c); the "
                 "MPIDR is the vCPU index and its cost in time is the simulator's choice.",
    K.CAP_CREATE: "the RM copies capabilities into the VM's CSpace (cspace_copy_cap_from); "
                  "capids are the simulator's own numbers.",
    K.CAP_REVOKE: "cspace_revoke_caps_from on the master capability "
                  "(hyp/core/cspace_twolevel).",
    K.RM_PACKET: "the RM drops a packet it cannot parse (rm_rpc reassembly).",
    K.VM_STATE: "the RM's vm_state_t (include/vm_mgnt.h); owners hear of it in "
                "NOTIFY_VM_STATUS.",
    K.MEM_LEND: "RM MEM_LEND (0x51000012): the RM unmaps the pages from the owner and "
                "creates a memparcel.",
    K.MEM_SHARE: "RM MEM_SHARE (0x51000013): the owner keeps its mapping.",
    K.MEM_DONATE: "RM MEM_DONATE (0x51000010): ownership moves to the recipient.",
    K.MEM_ACCEPT: "RM MEM_ACCEPT (0x51000011) maps the parcel into the acceptor's stage-2.",
    K.MEM_RELEASE: "RM MEM_RELEASE (0x51000014) unmaps it from the acceptor.",
    K.MEM_RECLAIM: "RM MEM_RECLAIM (0x51000015) gives the pages back to their owner.",
    K.MEM_NOTIFY: "RM MEM_NOTIFY (0x51000017) sends a MEM_SHARED/ACCEPTED/RELEASED "
                  "notification.",
    K.MEM_FAULT: "a stage-2 abort; the hypervisor injects a data or instruction abort.",
    K.MEM_ACCESS: "a guest load or store through stage-2; the simulator models one word.",
    K.VTIMER_WRITE: "the guest's MSR to CNTV_CVAL_EL0 / CNTV_CTL_EL0 is not trapped: the "
                    "hypervisor saves and restores them at each context switch "
                    "(hyp/vm/arm_vm_timer, arm_vm_timer_handle_thread_save_state, "
                    "arm_vm_timer_load_state); the simulator traces the write so you see it.",
    K.VTIMER_QUEUE: "arm_vm_timer_handle_thread_context_switch_pre: a vCPU that expects a "
                    "wakeup with ENABLE set and IMASK clear gets its CVAL on the "
                    "hypervisor's timer queue (timer_update).",
    K.VTIMER_FIRE: "running: the physical PPI 27 reaches EL2 and "
                   "arm_vm_timer_handle_irq_received injects the vIRQ; blocked: the queued "
                   "timer's arm_vm_timer_handle_timer_action does; both call "
                   "virq_assert(level). A ready vCPU gets it when switched in (the "
                   "simulator injects it at the deadline).",
    K.MEM_PAGE_FAULT: "a stage-2 fault of a proxy-scheduled vCPU in memory its host gives on "
                      "demand: vcpu_run returns ADDRSPACE_PAGE_FAULT (7), as Linux's "
                      "gunyah_vcpu.c expects from a newer hypervisor; the open hypervisor "
                      "source has no state 7, so the simulator follows Linux.",
    K.MEM_EXTENT_DONATE: "memextent_donate (0x6061) moves the page between sparse memory "
                         "extents: TO_PROTECTED (3, Linux's) for lent memory, TO_SIBLING (2) "
                         "for shared (hyp/mem/memextent, hypercall_memextent_donate).",
    K.MEM_MAP: "addrspace_map (0x602B) with PARTIAL|PRIVATE (lent) or PARTIAL|VMMIO "
               "(shared) maps the page into the guest's stage-2 (hyp/mem/addrspace, "
               "hypercall_addrspace_map; Linux vm_mgr_mem.c gunyah_vm_provide_folio).",
    K.MEM_UNMAP: "addrspace_unmap (0x602C) removes the page from the guest's stage-2.",
    K.VIRTIO_WRITE: "the RM maps the register page read-only in the frontend "
                    "(vm_config.c create_virtio_mmio), so the store faults into the "
                    "hypervisor, which emulates it (hyp/vm/virtio_mmio/src/vdevice.c "
                    "virtio_mmio_vdevice_write); the frontend's reads are plain loads.",
    K.VIRTIO_BACKEND: "a virtio_mmio_backend_* hypercall (0x604E-0x6055) changed the "
                      "device (hyp/vm/virtio_mmio/src/hypercalls.c).",
    K.VIRTQ_AVAIL: _VIRTQ_REAL,
    K.VIRTQ_POP: _VIRTQ_REAL,
    K.VIRTQ_USED: _VIRTQ_REAL,
    K.VIRTQ_RECLAIM: _VIRTQ_REAL,
    K.OBJ_CREATE: "the RM creates hypervisor objects with partition_create_* and activates "
                  "them.",
    K.OBJ_DESTROY: "the RM destroys the objects when it resets a VM.",
    K.SIM_SNAPSHOT: "not a Gunyah event: the simulator's picture of the booted machine.",
    K.USER_ACTION: "not a Gunyah event: what you asked the simulator to do.",
}


#: What the model leaves out of a hypercall, where that is more than its cost.
HVC_SIMPLIFIED = {
    "msgqueue_send": "the payload is passed by value, not copied from a guest address",
    "msgqueue_receive": "the message is handed back by value, not copied to a guest buffer",
    "msgqueue_push": "documented by Linux, absent from the public hypervisor (0x601E is "
                     "reserved): modelled as documented",
    "memextent_donate": "one page per call, types 2 (TO_SIBLING) and 3 (TO_PROTECTED, "
                        "Linux's) only; extents span physical memory, offset = PA",
    "addrspace_map": "one page per call, PARTIAL maps only; the stage-2 rights are the "
                     "user access bits",
    "addrspace_unmap": "one page per call, PARTIAL only",
}


def real_gunyah(event: Event) -> str:
    """The hypercall or RM message an event corresponds to, and what the model simplifies."""
    kind = str(event.get("kind"))
    if kind == K.HVC:
        name, call = event.get("name"), event.get("call")
        number = (f"HVC #{hexn(call)} (0x6000 + {hexn(call - HVC_IMM_BASE)})"
                  if isinstance(call, int) else "no real call number")
        note = HVC_SIMPLIFIED.get(str(name))
        return (f"{name}: {number}; the capid is looked up in the caller's CSpace with the "
                f"right the call needs{'; ' + note if note else ''}; its cost in time is the "
                "simulator's choice.")
    if kind == K.RM_RPC:
        return ("RM " + str(event.get("name")) + ": " +
                _RM_SIMPLIFIED.format(id=hexn(event.get("msg_id"))) + ".")
    return REAL.get(kind, "no Gunyah counterpart.")


# -- fields as an engineer reads them -------------------------------------------------
_HEX_FIELDS = frozenset({"capid", "handle", "msg_id", "vmid", "base", "addr", "pa", "flags", "sent",
                         "acked", "clear", "enable_mask", "ack_mask", "new_flags", "old_flags",
                         "vm_vmid", "owner_vmid", "rights", "targets"})
#: Fields in hex only in some kinds (``old`` is a priority in vcpu.priority).
_HEX_IN_KIND = {"old": ("bell.send", "bell.recv"), "value": ("mem.access",)}
_DURATION_FIELDS = frozenset({"slice_ns", "prev_left_ns"})
_MAX_DEPTH = 3           # nesting shown in one field; deeper is elided
_MAX_FIELD_CHARS = 400   # one field's text, at most


def _value(key: str, value: Any, kind: str, depth: int = 0) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if key in _HEX_FIELDS or kind in _HEX_IN_KIND.get(key, ()):
            return hexn(value)
        if key in _DURATION_FIELDS:
            return duration(value)
    if isinstance(value, Mapping | list) and depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        text = ", ".join(f"{k} {_value(str(k), v, kind, depth + 1)}" for k, v in value.items())
    elif isinstance(value, list):
        text = "; ".join(_value(key, v, kind, depth + 1) for v in value)
    else:
        text = "—" if value is None else str(value)
    return _clip(text or "—")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_FIELD_CHARS else text[:_MAX_FIELD_CHARS - 1] + "…"


def fields(event: Event) -> list[list[str]]:
    """``[[name, text], ...]``: the call with its number, ids in hex, errors with numbers."""
    kind = str(event.get("kind"))
    out: list[list[str]] = []
    for key, value in event.items():
        if key in ("kind", "caption"):
            continue
        if key == "call":
            text = call_text(event.get("name"), value)
        elif key == "result" and kind == K.HVC:
            text = error_text(value)
        elif key == "error" and kind == K.RM_RPC:
            text = rm_error_text(value)
        elif key == "t":
            text = f"{value} ns ({duration(value)})" if isinstance(value, int) else str(value)
        elif kind == K.SIM_SNAPSHOT and key in ("state", "scenario"):
            text = "(the whole machine: see the diagram)"
        else:
            text = _value(key, value, kind)
        out.append([_clip(str(key)), _clip(text)])
    return out


def explain(event: Event) -> dict[str, Any]:
    """Everything the inspector shows about one event."""
    return {"caption": caption(event), "real": real_gunyah(event), "fields": fields(event)}
