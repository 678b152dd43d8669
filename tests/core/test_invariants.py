"""Live invariants: every preset keeps them (with checks actually made), and each one
fails, at the right event, when the model's state or its trace is corrupted."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load, parse
from gunyah_core.core.cspace import CSpace
from gunyah_core.scenario import preset_names
from gunyah_core.teaching.invariants import NAMES

RUN_NS = 20_000_000
QUEUE_PRESETS = {"msgq-pingpong", "msgq-backpressure", "msgq-thresholds"}

# VM_B idle, so what VM_A sends stays queued until VM_B asks.
SCENARIO = """
name: inv
pcpus: 2
vms:
  - {name: VM_A, affinity: [0], program: idle}
  - {name: VM_B, affinity: [1], program: idle}
msgqs:
  - {name: A_to_B, sender: VM_A, receiver: VM_B, depth: 4, max_size: 64}
doorbells:
  - {name: bell, sender: VM_A, receiver: VM_B}
"""


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_keeps_every_invariant(preset: str) -> None:
    sim = Simulation(load(preset), check_invariants=True)
    sim.run(until_ns=RUN_NS, collect=False)
    inv = sim.invariants
    assert inv.violations == []
    assert inv.by_name["one_per_pcpu"] > 0 and inv.by_name["rights"] > 0
    if preset in QUEUE_PRESETS:
        assert all(inv.by_name[name] > 0 for name in NAMES)
    assert inv.checks == sum(inv.by_name.values())


def test_checking_is_off_unless_asked() -> None:
    assert Simulation(load("msgq-pingpong")).invariants is None
    assert Simulation(load("msgq-pingpong"), trace_on=False).check_invariants() is None


def machine() -> Simulation:
    sim = Simulation(parse(SCENARIO), check_invariants=True)
    sim.run(until_ns=1_000_000)
    return sim


def console(sim: Simulation, vm: str, call: str, **args) -> dict:
    ack = sim.act("hvc", {"vm": vm, "call": call, "args": args})
    for _ in range(1000):
        for event in sim.step():
            if event["kind"] == "hvc" and event.get("action") == ack["action_id"]:
                return event
    raise AssertionError("the call never ran")


def capid(sim: Simulation, vm: str, obj: str) -> int:
    return next(c["capid"] for v in sim.snapshot()["vms"] if v["name"] == vm
                for c in v["caps"] if c["object"] == obj)


def send(sim: Simulation, payload: str) -> dict:
    return console(sim, "VM_A", "msgqueue_send", capid=capid(sim, "VM_A", "msgqueue:A_to_B"),
                   size=8, payload=payload)


def receive(sim: Simulation) -> dict:
    return console(sim, "VM_B", "msgqueue_receive", capid=capid(sim, "VM_B", "msgqueue:A_to_B"))


def only_violation(sim: Simulation, name: str) -> dict:
    assert [v["invariant"] for v in sim.invariants.violations] == [name], \
        sim.invariants.violations
    return sim.invariants.violation


def test_a_clean_machine_sends_and_receives_without_violation() -> None:
    sim = machine()
    send(sim, "one"), send(sim, "two")
    assert receive(sim)["ret"]["payload"] == "one"
    assert sim.invariants.violations == [] and sim.invariants.by_name["fifo"] == 1


def test_reordered_queue_state_breaks_fifo_at_the_receive() -> None:
    sim = machine()
    send(sim, "one"), send(sim, "two")
    sim.hyp.msgqs["A_to_B"].items.reverse()  # corrupt: the model now gives "two" first
    event = receive(sim)
    found = only_violation(sim, "fifo")
    assert found["kind"] == "msgq.recv" and found["seq"] < event["seq"]
    assert "before message" in found["message"]


def test_a_message_slipped_into_a_queue_breaks_depth_at_the_next_send() -> None:
    sim = machine()
    send(sim, "one")
    queue = sim.hyp.msgqs["A_to_B"]
    queue.items.append((999_999, 8, "ghost", sim.now))  # corrupt: queued, never traced
    send(sim, "two")
    found = only_violation(sim, "depth")
    assert found["kind"] == "msgq.send" and "says A_to_B holds 3" in found["message"]


def test_a_queue_taking_more_than_its_depth_breaks_depth() -> None:
    sim = machine()
    sim.hyp.msgqs["A_to_B"].depth = 8  # corrupt: the queue now takes more than 4
    events = [send(sim, f"m{i}") for i in range(5)]
    assert [e["result"] for e in events] == ["OK"] * 5
    found = only_violation(sim, "depth")
    assert found["kind"] == "msgq.send" and found["seq"] < events[4]["seq"]
    assert "holds 5 messages, more than its depth 4" in found["message"]


def test_a_duplicated_receive_in_the_trace_breaks_msg_once() -> None:
    sim = machine()
    send(sim, "one")
    receive(sim)
    events = []
    sim.trace.subscribe(events.append)
    send(sim, "two")
    receive(sim)
    twice = next(e for e in events if e["kind"] == "msgq.recv")
    sim.invariants({**twice, "seq": 10**6})  # the same message received again
    found = only_violation(sim, "msg_once")
    assert found["seq"] == 10**6 and "not queued" in found["message"]


def test_a_vcpu_on_two_pcpus_breaks_one_per_pcpu() -> None:
    sim = machine()
    send(sim, "one")
    inv = sim.invariants
    inv({"seq": 10**6, "t": 0, "kind": "sched.switch", "pcpu": 0, "prev": inv.running[0],
         "next": "VM_C.0"})  # a vCPU no pCPU runs: fine
    inv({"seq": 10**6 + 1, "t": 0, "kind": "sched.switch", "pcpu": 1,
         "prev": inv.running[1], "next": "VM_C.0"})  # and on the other pCPU too: not
    found = only_violation(sim, "one_per_pcpu")
    assert found["seq"] == 10**6 + 1 and "while running on pCPU 0" in found["message"]


def test_a_switch_from_a_vcpu_the_pcpu_was_not_running_breaks_one_per_pcpu() -> None:
    sim = machine()
    sim.invariants({"seq": 7, "t": 0, "kind": "sched.switch", "pcpu": 1, "prev": "VM_A.0",
                    "next": None})
    assert "was running" in only_violation(sim, "one_per_pcpu")["message"]


def test_a_hypercall_that_skips_its_rights_check_breaks_rights(monkeypatch) -> None:
    sim = machine()
    bell = capid(sim, "VM_A", "doorbell:bell")  # VM_A may only SEND on it
    assert console(sim, "VM_A", "doorbell_receive", capid=bell,
                   clear_flags=1)["result"] == "CSPACE_INSUFFICIENT_RIGHTS"
    assert sim.invariants.violations == []
    original = CSpace.lookup

    def no_rights(self, capid, obj_type, rights, active=True):  # corrupt: rights ignored
        return original(self, capid, obj_type, 0, active)

    monkeypatch.setattr(CSpace, "lookup", no_rights)
    event = console(sim, "VM_A", "doorbell_receive", capid=bell, clear_flags=1)
    assert event["result"] == "OK"
    found = only_violation(sim, "rights")
    assert found["seq"] == event["seq"] and "without RECEIVE" in found["message"]


def test_a_hypercall_refused_a_right_its_cap_has_breaks_rights(monkeypatch) -> None:
    sim = machine()
    queue = capid(sim, "VM_A", "msgqueue:A_to_B")  # VM_A may SEND on it
    assert console(sim, "VM_A", "msgqueue_receive", capid=queue)["result"] == \
        "CSPACE_INSUFFICIENT_RIGHTS"  # really lacks RECEIVE: no violation
    assert sim.invariants.violations == [] and sim.invariants.by_name["rights"] >= 1
    original = CSpace.lookup

    def all_rights(self, capid, obj_type, rights, active=True):  # corrupt: asks for more
        return original(self, capid, obj_type, rights | 0b11, active)

    monkeypatch.setattr(CSpace, "lookup", all_rights)
    event = send(sim, "one")
    assert event["result"] == "CSPACE_INSUFFICIENT_RIGHTS"
    found = only_violation(sim, "rights")
    assert found["seq"] == event["seq"] and "has every right it needs" in found["message"]
