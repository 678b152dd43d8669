"""A hand-built trace in the model's event shapes, shared by the exporter tests.

Two VMs on two pCPUs: VM_A.0 sends message 1 to VM_B over msgq A_to_B (rx vIRQ 961
asserted, delivered, EOI'd), sleeps in WFI, is woken by doorbell bell0 (vIRQ 962),
VM_A.1 then sends message 2 from pCPU 1; plus RM, VM and memory events and one kind
no exporter knows about.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

RX_VIRQ = 961
BELL_VIRQ = 962
LAST_T = 10_000
NUMBER = (int, float)


def _ev(seq: int, t: int, kind: str, **fields: object) -> dict:
    return {"seq": seq, "t": t, "kind": kind, **fields}


def build_events() -> list[dict]:
    send = {"name": "msgqueue_send", "call": 0x6029}
    recv = {"name": "msgqueue_receive", "call": 0x602A}
    rows = [
        (0, "user.action", {"action": "start", "args": {"scenario": "fixture"}}),
        (0, "vm.state", {"vm": "VM_A", "vmid": 1, "state": "RUNNING"}),
        (0, "sched.switch", {"pcpu": 0, "prev": None, "next": "VM_A.0", "reason": "wakeup"}),
        (0, "sched.switch", {"pcpu": 1, "prev": None, "next": "VM_B.0", "reason": "wakeup"}),
        (1000, "hvc", {"vm": "VM_A", "vcpu": "VM_A.0", **send,
                       "args": {"capid": 3, "size": 16, "push": True}, "result": "OK",
                       "ret": {"not_full": True}}),
        (1000, "msgq.send", {"msgq": "A_to_B", "src": "VM_A", "dst": "VM_B", "size": 16,
                             "msg": 1, "depth": 1, "push": True, "payload": "ping, 1"}),
        (1000, "virq.assert", {"vm": "VM_B", "virq": RX_VIRQ, "source": "msgq:A_to_B:rx"}),
        (1500, "virq.deliver", {"vm": "VM_B", "virq": RX_VIRQ, "source": "msgq:A_to_B:rx",
                                "vcpu": "VM_B.0"}),
        (2000, "hvc", {"vm": "VM_B", "vcpu": "VM_B.0", **recv, "args": {"capid": 4},
                       "result": "OK", "ret": {"size": 16, "not_empty": False}}),
        (2000, "msgq.recv", {"msgq": "A_to_B", "src": "VM_A", "dst": "VM_B", "size": 16,
                             "msg": 1, "depth": 0}),
        (2500, "virq.eoi", {"vm": "VM_B", "virq": RX_VIRQ, "source": "msgq:A_to_B:rx",
                            "vcpu": "VM_B.0"}),
        (3000, "vcpu.state", {"vcpu": "VM_A.0", "vm": "VM_A", "state": "wfi", "reason": "wfi"}),
        (3000, "sched.switch", {"pcpu": 0, "prev": "VM_A.0", "next": None, "reason": "wfi"}),
        (4000, "bell.send", {"doorbell": "bell0", "src": "VM_B", "dst": "VM_A", "flags": 1,
                             "old": 0}),
        (4000, "virq.assert", {"vm": "VM_A", "virq": BELL_VIRQ, "source": "doorbell:bell0"}),
        (4000, "vcpu.state", {"vcpu": "VM_A.0", "vm": "VM_A", "state": "ready",
                              "reason": "virq"}),
        (4000, "sched.switch", {"pcpu": 0, "prev": None, "next": "VM_A.0", "reason": "wakeup"}),
        (4500, "virq.deliver", {"vm": "VM_A", "virq": BELL_VIRQ, "source": "doorbell:bell0",
                                "vcpu": "VM_A.0"}),
        (5000, "bell.recv", {"doorbell": "bell0", "vm": "VM_A", "flags": 1, "clear": 1}),
        (5000, "virq.eoi", {"vm": "VM_A", "virq": BELL_VIRQ, "source": "doorbell:bell0",
                            "vcpu": "VM_A.0"}),
        (5500, "custom.probe", {"note": "a kind no exporter knows", "level": 3}),
        (6000, "sched.switch", {"pcpu": 1, "prev": "VM_B.0", "next": "VM_A.1",
                                "reason": "timeslice"}),
        (6000, "hvc", {"vm": "VM_A", "vcpu": "VM_A.1", **send,
                       "args": {"capid": 3, "size": 8, "push": False}, "result": "OK",
                       "ret": {"not_full": True}}),
        (6000, "msgq.send", {"msgq": "A_to_B", "src": "VM_A", "dst": "VM_B", "size": 8,
                             "msg": 2, "depth": 1, "push": False, "payload": "pong\"2"}),
        (7000, "sched.switch", {"pcpu": 1, "prev": "VM_A.1", "next": "VM_B.0",
                                "reason": "virq"}),
        (7500, "msgq.recv", {"msgq": "A_to_B", "src": "VM_A", "dst": "VM_B", "size": 8,
                             "msg": 2, "depth": 0}),
        (8000, "msgq.flush", {"msgq": "A_to_B", "dropped": 0, "depth": 0}),
        (8000, "rm.rpc", {"dir": "notification", "msg_id": 0x56100011, "name": "VM_STATUS",
                          "rpc_seq": 7, "fragments": 0, "src": "RM", "dst": "VM_A"}),
        (9000, "mem.share", {"owner": "VM_A", "vm": "VM_B", "handle": 5}),
        (LAST_T, "vm.state", {"vm": "VM_B", "vmid": 2, "state": "RUNNING"}),
    ]
    return [_ev(seq, t, kind, **fields) for seq, (t, kind, fields) in enumerate(rows)]


@pytest.fixture
def events() -> list[dict]:
    """A fresh copy per test, so a test that mutates it cannot leak into another."""
    return build_events()


def check_format_rules(trace: dict, open_flows: frozenset = frozenset()) -> None:
    """Required fields per phase, flow pairing, per-thread X order and nesting.

    Every flow id has one out and one in end, except ids in `open_flows` (messages
    never received), which have only an out end.
    """
    assert trace["displayTimeUnit"] == "ns"
    flows = defaultdict(lambda: {"out": [], "in": []})
    slices = defaultdict(list)
    for ev in trace["traceEvents"]:
        assert isinstance(ev["name"], str) and ev["name"]
        assert isinstance(ev["pid"], int)
        ph = ev["ph"]
        if ph == "X":
            for key in ("ts", "dur", "pid", "tid", "name"):
                assert key in ev, (key, ev)
            assert isinstance(ev["ts"], NUMBER) and ev["dur"] >= 0
            slices[(ev["pid"], ev["tid"])].append((ev["ts"], ev["ts"] + ev["dur"]))
            if "bind_id" in ev:
                side = "out" if ev.get("flow_out") else "in"
                assert ev.get("flow_out") or ev.get("flow_in")
                flows[ev["bind_id"]][side].append(ev["ts"])
        elif ph == "i":
            assert ev["s"] in ("t", "p", "g") and "ts" in ev and "tid" in ev
        elif ph == "C":
            assert ev["args"] and all(isinstance(v, NUMBER) for v in ev["args"].values())
        elif ph == "M":
            assert "name" in ev["args"] or "sort_index" in ev["args"]
        else:
            raise AssertionError(f"unexpected phase {ph}")
    for flow_id, ends in flows.items():
        assert len(ends["out"]) == 1, flow_id
        if flow_id in open_flows:
            assert ends["in"] == [], flow_id
            continue
        assert len(ends["in"]) == 1, flow_id
        assert ends["out"][0] <= ends["in"][0]
    for thread, spans in slices.items():
        starts = [s for s, _ in spans]
        assert starts == sorted(starts), thread  # written in time order per thread
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end - 1e-9, thread  # no partial overlap: slices nest or follow


@pytest.fixture
def check_chrome_trace():
    """The Chrome Trace Event Format checker, as a fixture so test modules share it."""
    return check_format_rules
