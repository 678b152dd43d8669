"""Perfetto / Chrome Trace Event Format exporter (JSON object form).

Layout: process 0 is "Gunyah hypervisor" with one thread per physical CPU; every VM is a
process with one thread per vCPU plus an "events" thread for VM-level happenings that
have no vCPU (vIRQ assert, doorbells, message queue slices). Scheduling becomes `X`
slices on both the vCPU and the pCPU threads; vIRQs, doorbells and hypercalls are `i`
instants; each queue's depth is a `C` counter, as are each virtqueue's chains in its
available ring, with the device and in its used ring; each message is an arrow from its
send to its receive. A vCPU of a PSCI VM also has a "<vCPU> power" thread whose slices
are its power states (on, suspended, off) from ``vcpu.power`` events. Each vCPU's
virtual timer has a thread of its own ("<vcpu> timer") with an `X` slice for each time
it is armed, from the write that arms it until it fires (or is disabled, masked or
re-armed); the timer's writes and firings are instants on the vCPU's thread, its vIRQ
27 like any vIRQ. Times are simulated ns written as µs floats (t/1000), so no precision
is lost. Simplified: idle time on a pCPU is a gap, not an "idle" slice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

HYPERVISOR_PID = 1  # not 0: trace viewers treat pid 0 as the kernel's idle task
HYPERVISOR_NAME = "Gunyah hypervisor"
NS_PER_US = 1000
#: Length of the small slice that carries a message's flow arrow. Each slice is cut
#: short if the next message slice on the same thread starts sooner, so they never overlap.
MSG_SLICE_NS = 100
_COMPACT = (",", ":")
_COMMON = ("seq", "t", "kind")
#: Fields that make a generic instant's name more telling, first match wins.
_NAME_FIELDS = ("name", "state", "action", "doorbell", "virq", "reg")
_VIRQ_KINDS = ("virq.assert", "virq.deliver", "virq.eoi", "virq.clear")
_VIRTQ_DEPTHS = ("avail_depth", "in_device", "used_depth")


def _us(t_ns: int) -> float:
    """Chrome wants µs; dividing keeps the ns digits after the point."""
    return t_ns / NS_PER_US


def vm_of_vcpu(vcpu: str) -> str:
    """A vCPU id is "<vm>.<index>" (trace contract), so the VM is the part before the dot."""
    return vcpu.rsplit(".", 1)[0]


class PerfettoWriter:
    """Streaming Chrome-trace writer.

    Memory is O(threads + queues + open slices): a running slice is held only until the
    next `sched.switch` on its pCPU, a message slice only until its length has passed
    (it is cut short if another message slice starts on the same thread first).
    The JSON array is written as events arrive; `close()` ends open slices at the last
    seen time and writes the closing bracket and the file-level fields.
    """

    extension = "json"
    media_type = "application/json"

    def __init__(self, fileobj: TextIO) -> None:
        self._out = fileobj
        self._first = True
        self._closed = False
        self._pids: dict[str, int] = {}
        self._threads: dict[tuple[str, Any], tuple[int, int]] = {}
        self._vcpu_vm: dict[str, str] = {}
        self._pcpu_run: dict[int, tuple[int, str]] = {}  # pcpu -> (start, vcpu)
        self._vcpu_run: dict[str, tuple[int, int]] = {}  # vcpu -> (start, pcpu)
        self._msg_slice: dict[tuple[int, int], dict[str, Any]] = {}  # deferred, per thread
        self._power: dict[str, tuple[int, str, int]] = {}  # vcpu -> (start, power, seq)
        self._timer_armed: dict[str, tuple[int, Any, Any]] = {}  # vcpu -> (start, cval, seq)
        self._last_t = 0
        self.count = 0
        self._out.write('{"traceEvents":[\n')
        self._emit_process(HYPERVISOR_PID, HYPERVISOR_NAME)

    # -- low-level output -------------------------------------------------------------
    def _emit(self, rec: dict[str, Any]) -> None:
        if not self._first:
            self._out.write(",\n")
        self._first = False
        self._out.write(json.dumps(rec, separators=_COMPACT, ensure_ascii=False))

    def _emit_process(self, pid: int, name: str) -> None:
        self._emit({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": name}})
        self._emit({"ph": "M", "name": "process_sort_index", "pid": pid,
                    "args": {"sort_index": pid}})

    def _pid(self, vm: str) -> int:
        pid = self._pids.get(vm)
        if pid is None:
            pid = self._pids[vm] = HYPERVISOR_PID + len(self._pids) + 1
            self._emit_process(pid, vm)
        return pid

    def _thread(self, key: tuple[str, Any], pid: int, name: str) -> tuple[int, int]:
        """(pid, tid) for a thread, declaring it on first use; tids are unique overall."""
        ids = self._threads.get(key)
        if ids is None:
            tid = len(self._threads) + 1
            ids = self._threads[key] = (pid, tid)
            self._emit({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                        "args": {"name": name}})
            self._emit({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                        "args": {"sort_index": tid}})
        return ids

    def _pcpu_thread(self, pcpu: int) -> tuple[int, int]:
        return self._thread(("pcpu", pcpu), HYPERVISOR_PID, f"pCPU {pcpu}")

    def _vcpu_thread(self, vcpu: str) -> tuple[int, int]:
        vm = self._vcpu_vm.get(vcpu) or vm_of_vcpu(vcpu)
        return self._thread(("vcpu", vcpu), self._pid(vm), vcpu)

    def _vm_thread(self, vm: str) -> tuple[int, int]:
        return self._thread(("vm", vm), self._pid(vm), f"{vm} events")

    def _hyp_thread(self) -> tuple[int, int]:
        return self._thread(("hyp", "events"), HYPERVISOR_PID, "hypervisor events")

    def _slice(self, ids: tuple[int, int], name: str, cat: str, start: int, end: int,
               args: dict[str, Any]) -> None:
        self._emit({"ph": "X", "name": name, "cat": cat, "pid": ids[0], "tid": ids[1],
                    "ts": _us(start), "dur": _us(end - start), "args": args})

    def _instant(self, ids: tuple[int, int], name: str, cat: str, t: int,
                 args: dict[str, Any]) -> None:
        self._emit({"ph": "i", "s": "t", "name": name, "cat": cat, "pid": ids[0],
                    "tid": ids[1], "ts": _us(t), "args": args})

    # -- scheduling ---------------------------------------------------------------------
    def _end_pcpu(self, pcpu: int, t: int) -> None:
        run = self._pcpu_run.pop(pcpu, None)
        if run is not None:
            start, vcpu = run
            self._slice(self._pcpu_thread(pcpu), vcpu, "sched", start, t, {"pcpu": pcpu})
            if self._vcpu_run.get(vcpu, (0, pcpu))[1] == pcpu:
                self._end_vcpu(vcpu, t)

    def _end_vcpu(self, vcpu: str, t: int) -> None:
        run = self._vcpu_run.pop(vcpu, None)
        if run is not None:
            start, pcpu = run
            self._slice(self._vcpu_thread(vcpu), "running", "sched", start, t, {"pcpu": pcpu})

    def _switch(self, e: Mapping[str, Any]) -> None:
        t, pcpu, nxt = e["t"], e["pcpu"], e.get("next")
        ids = self._pcpu_thread(pcpu)
        self._end_pcpu(pcpu, t)
        self._instant(ids, f"switch -> {nxt or 'idle'}", "sched", t,
                      {"seq": e["seq"], "prev": e.get("prev"), "reason": e.get("reason")})
        if nxt is not None:
            self._end_vcpu(nxt, t)  # a trace that moved a vCPU without switching it out
            self._pcpu_run[pcpu] = (t, nxt)
            self._vcpu_run[nxt] = (t, pcpu)
            self._vcpu_thread(nxt)

    # -- power (PSCI) ----------------------------------------------------------------------
    def _power_thread(self, vcpu: str) -> tuple[int, int]:
        vm = self._vcpu_vm.get(vcpu) or vm_of_vcpu(vcpu)
        return self._thread(("power", vcpu), self._pid(vm), f"{vcpu} power")

    def _end_power(self, vcpu: str, t: int) -> None:
        held = self._power.pop(vcpu, None)
        if held is not None:
            start, power, seq = held
            self._slice(self._power_thread(vcpu), power, "power", start, t,
                        {"power": power, "seq": seq})

    def _power_change(self, e: Mapping[str, Any]) -> None:
        """A ``vcpu.power`` ends the vCPU's power slice and starts the next one."""
        vcpu, t = e["vcpu"], e["t"]
        self._end_power(vcpu, t)
        self._power[vcpu] = (t, str(e.get("power")), e["seq"])
        self._instant(self._power_thread(vcpu), f"power {e.get('power')}", "power", t,
                      _args(e))
    # -- virtual timers -----------------------------------------------------------------
    def _timer(self, e: Mapping[str, Any]) -> None:
        """A write that arms the timer opens its slice; firing, disabling, masking or a
        new compare value closes it (a new value opens the next one)."""
        vcpu, t = e["vcpu"], e["t"]
        armed = (e["kind"] == "vtimer.write" and bool(e.get("enable"))
                 and not e.get("imask") and not e.get("istatus"))
        open_ = self._timer_armed.get(vcpu)
        if open_ is not None and armed and open_[1] == e.get("cval"):
            return  # still armed for the same deadline
        if open_ is not None:
            self._end_timer(vcpu, t)
        if armed:
            self._timer_armed[vcpu] = (t, e.get("cval"), e["seq"])

    def _end_timer(self, vcpu: str, t: int) -> None:
        start, cval, seq = self._timer_armed.pop(vcpu)
        vm = self._vcpu_vm.get(vcpu) or vm_of_vcpu(vcpu)
        ids = self._thread(("vtimer", vcpu), self._pid(vm), f"{vcpu} timer")
        self._slice(ids, "CNTV armed", "vtimer", start, t, {"cval": cval, "seq": seq})

    # -- message queues -----------------------------------------------------------------
    def _msg(self, e: Mapping[str, Any], sending: bool) -> None:
        t, msgq = e["t"], e["msgq"]
        vm = e["src"] if sending else e["dst"]
        ids = self._vm_thread(vm)
        self._flush_msg_slice(ids, t)
        args = _args(e)
        rec = {"ph": "X", "name": f"{'send' if sending else 'recv'} {msgq} #{e['msg']}",
               "cat": "msgq", "pid": ids[0], "tid": ids[1], "ts": _us(t), "dur": 0.0,
               "bind_id": f"0x{e['msg']:x}", ("flow_out" if sending else "flow_in"): True,
               "args": args, "_t": t}
        self._msg_slice[ids] = rec
        self._counter(msgq, t, e["depth"])

    def _flush_msg_slice(self, ids: tuple[int, int], until: int | None) -> None:
        rec = self._msg_slice.pop(ids, None)
        if rec is not None:
            start = rec.pop("_t")
            end = start + MSG_SLICE_NS if until is None else min(start + MSG_SLICE_NS, until)
            rec["dur"] = _us(end - start)
            self._emit(rec)

    def _flush_due(self, t: int) -> None:
        """Write message slices whose full length has passed; the dict is in start order."""
        while self._msg_slice:
            ids, rec = next(iter(self._msg_slice.items()))
            if rec["_t"] + MSG_SLICE_NS > t:
                break
            self._flush_msg_slice(ids, None)

    def _counter(self, msgq: str, t: int, depth: int) -> None:
        self._emit({"ph": "C", "name": f"msgq {msgq} depth", "cat": "msgq",
                    "pid": HYPERVISOR_PID, "ts": _us(t), "args": {"depth": depth}})

    def _virtq_counters(self, e: Mapping[str, Any], t: int) -> None:
        """One counter track per virtqueue: its three depths (docs/trace.md)."""
        self._emit({"ph": "C", "name": f"virtq {e['device']} q{e['queue']}", "cat": "virtq",
                    "pid": HYPERVISOR_PID, "ts": _us(t),
                    "args": {key: e[key] for key in _VIRTQ_DEPTHS}})

    # -- public API ---------------------------------------------------------------------
    def write(self, event: Mapping[str, Any]) -> None:
        """Translate one trace event; unknown kinds become generic instants."""
        kind, t = event["kind"], event["t"]
        self._last_t = max(self._last_t, t)
        self.count += 1
        self._flush_due(t)
        if "vcpu" in event and "vm" in event and event["vcpu"] is not None:
            self._vcpu_vm.setdefault(event["vcpu"], event["vm"])
        if kind == "sched.switch":
            self._switch(event)
        elif kind in ("msgq.send", "msgq.recv"):
            self._msg(event, kind == "msgq.send")
        elif kind.startswith("msgq.") and "msgq" in event:  # flush, push, config
            if "depth" in event:
                self._counter(event["msgq"], t, event["depth"])
            self._instant(self._hyp_thread(), f"{kind} {event['msgq']}", "msgq", t,
                          _args(event))
        elif kind.startswith("virtq.") and all(key in event for key in _VIRTQ_DEPTHS):
            self._virtq_counters(event, t)
            self._instant(self._where(event), f"{kind} {event['device']} q{event['queue']}",
                          "virtq", t, _args(event))
        elif kind in _VIRQ_KINDS:
            self._instant(self._where(event), f"{kind} {event.get('virq')}", "virq", t,
                          _args(event))
        elif kind == "hvc":
            self._instant(self._where(event), event.get("name", "hvc"), "hvc", t, _args(event))
        elif kind == "vcpu.power" and isinstance(event.get("vcpu"), str):
            self._power_change(event)
        elif kind == "psci.call":
            self._instant(self._where(event), f"PSCI {event.get('function')}", "psci", t,
                          _args(event))
        else:
            if kind in ("vtimer.write", "vtimer.fire") and isinstance(event.get("vcpu"), str):
                self._timer(event)
            self._instant(self._where(event), _generic_name(event), kind.split(".")[0], t,
                          _args(event))

    def _where(self, e: Mapping[str, Any]) -> tuple[int, int]:
        """The most specific thread an event belongs to: vCPU, then VM, then hypervisor."""
        if isinstance(e.get("vcpu"), str):
            return self._vcpu_thread(e["vcpu"])
        for key in ("vm", "src", "owner"):
            if isinstance(e.get(key), str):
                return self._vm_thread(e[key])
        return self._hyp_thread()

    def close(self) -> None:
        """End open slices at the last seen time, then finish the JSON object."""
        if self._closed:
            return
        self._closed = True
        for pcpu in list(self._pcpu_run):
            self._end_pcpu(pcpu, self._last_t)
        for vcpu in list(self._vcpu_run):
            self._end_vcpu(vcpu, self._last_t)
        for vcpu in list(self._power):
            self._end_power(vcpu, self._last_t)
        for ids in list(self._msg_slice):
            self._flush_msg_slice(ids, None)
        for vcpu in list(self._timer_armed):
            self._end_timer(vcpu, self._last_t)
        other = {"generator": "gunyah-sim", "clock": "simulated ns, written as us"}
        self._out.write('\n],"displayTimeUnit":"ns","otherData":')
        self._out.write(json.dumps(other, separators=_COMPACT))
        self._out.write("}\n")
        self._out.flush()

    def __enter__(self) -> PerfettoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _args(e: Mapping[str, Any]) -> dict[str, Any]:
    """Every field but t and kind (already in ts/name); seq kept to find the JSONL line."""
    args = {k: v for k, v in e.items() if k not in _COMMON}
    args["seq"] = e["seq"]
    return args


def _generic_name(e: Mapping[str, Any]) -> str:
    for key in _NAME_FIELDS:
        if key in e:
            return f"{e['kind']} {e[key]}"
    return str(e["kind"])
