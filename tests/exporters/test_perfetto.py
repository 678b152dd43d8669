"""Chrome Trace Event Format export, checked against the format's own rules."""

from __future__ import annotations

import io
import json
from collections import defaultdict

from gunyah_core.exporters import PerfettoWriter, export


def _trace(events) -> dict:
    out = io.StringIO()
    export(events, "perfetto", out)
    return json.loads(out.getvalue())


def _names(trace) -> tuple[dict, dict]:
    procs, threads = {}, {}
    for ev in trace["traceEvents"]:
        if ev["ph"] == "M" and ev["name"] == "process_name":
            procs[ev["pid"]] = ev["args"]["name"]
        if ev["ph"] == "M" and ev["name"] == "thread_name":
            threads[ev["tid"]] = (ev["pid"], ev["args"]["name"])
    return procs, threads


def test_follows_the_format_rules(events, check_chrome_trace):
    check_chrome_trace(_trace(events))


def test_processes_threads_and_deterministic_ids(events):
    trace = _trace(events)
    procs, threads = _names(trace)
    # pid 0 stays unused: viewers take it for the kernel's idle task.
    assert procs == {1: "Gunyah hypervisor", 2: "VM_A", 3: "VM_B", 4: "RM"}
    named = {name: pid for pid, name in threads.values()}
    assert named["pCPU 0"] == named["pCPU 1"] == 1
    assert named["VM_A.0"] == named["VM_A.1"] == 2
    assert named["VM_B.0"] == 3
    assert _trace(events) == trace


def test_running_slices_on_pcpu_and_vcpu_threads(events):
    trace = _trace(events)
    _, threads = _names(trace)
    tid = {name: t for t, (_, name) in threads.items()}
    spans = defaultdict(list)
    for ev in trace["traceEvents"]:
        if ev["ph"] == "X" and ev["cat"] == "sched":
            spans[ev["tid"]].append((ev["name"], ev["ts"], ev["ts"] + ev["dur"]))
    assert spans[tid["pCPU 0"]] == [("VM_A.0", 0.0, 3.0), ("VM_A.0", 4.0, 10.0)]
    assert spans[tid["pCPU 1"]] == [("VM_B.0", 0.0, 6.0), ("VM_A.1", 6.0, 7.0),
                                    ("VM_B.0", 7.0, 10.0)]
    assert spans[tid["VM_A.0"]] == [("running", 0.0, 3.0), ("running", 4.0, 10.0)]
    assert spans[tid["VM_A.1"]] == [("running", 6.0, 7.0)]


def test_instants_counters_and_message_flows(events):
    trace = _trace(events)
    evs = trace["traceEvents"]
    instants = {ev["name"] for ev in evs if ev["ph"] == "i"}
    assert {"virq.assert 961", "virq.eoi 962", "bell.send bell0", "msgqueue_send",
            "custom.probe"} <= instants
    depths = [ev["args"]["depth"] for ev in evs if ev["ph"] == "C"]
    assert depths == [1, 0, 1, 0, 0]
    flows = {(ev["bind_id"], "flow_out" in ev, ev["ts"]) for ev in evs if "bind_id" in ev}
    assert flows == {("0x1", True, 1.0), ("0x1", False, 2.0), ("0x2", True, 6.0),
                     ("0x2", False, 7.5)}


def test_ts_keeps_nanosecond_precision():
    evs = [{"seq": 0, "t": 1, "kind": "sched.switch", "pcpu": 0, "prev": None,
            "next": "VM_A.0", "reason": "wakeup"},
           {"seq": 1, "t": 1_234_567, "kind": "user.action", "action": "pause", "args": {}}]
    trace = _trace(evs)
    xs = [ev for ev in trace["traceEvents"] if ev["ph"] == "X"]
    assert xs[0]["ts"] == 0.001
    assert xs[0]["dur"] == 1234.566


def test_streams_before_close_and_leaves_unreceived_messages_open(events):
    out = io.StringIO()
    writer = PerfettoWriter(out)
    for ev in events[:6]:  # up to and including the first msgq.send
        writer.write(ev)
    assert out.getvalue().startswith('{"traceEvents":[')
    assert '"msgqueue_send"' in out.getvalue()
    writer.close()
    trace = json.loads(out.getvalue())
    outs = [ev for ev in trace["traceEvents"] if ev.get("flow_out")]
    assert [ev["bind_id"] for ev in outs] == ["0x1"]
    assert not any(ev.get("flow_in") for ev in trace["traceEvents"])


def test_message_slices_never_overlap_on_a_busy_queue():
    evs = [{"seq": i, "t": 10 * i, "kind": "msgq.send", "msgq": "q", "src": "VM_A",
            "dst": "VM_B", "size": 1, "msg": i, "depth": i + 1, "push": False, "payload": ""}
           for i in range(5)]
    trace = _trace(evs)
    sends = [ev for ev in trace["traceEvents"] if ev["ph"] == "X"]
    assert [round(ev["dur"], 6) for ev in sends] == [0.01, 0.01, 0.01, 0.01, 0.1]


def test_other_queue_events_sample_the_depth_counter(check_chrome_trace):
    evs = [{"seq": 0, "t": 0, "kind": "msgq.push", "msgq": "q", "src": "VM_A", "dst": "VM_B",
            "depth": 3},
           {"seq": 1, "t": 5, "kind": "msgq.config", "msgq": "q", "src": "VM_A",
            "dst": "VM_B", "notempty_thd": 1, "notfull_thd": 2}]
    trace = _trace(evs)
    check_chrome_trace(trace)
    counters = [(ev["ts"], ev["args"]) for ev in trace["traceEvents"] if ev["ph"] == "C"]
    assert counters == [(0.0, {"depth": 3})]
    assert {"msgq.push q", "msgq.config q"} <= {ev["name"] for ev in trace["traceEvents"]}
