"""Faults a teacher or student injects: each is done as Gunyah would do it (the RM's
master-cap revoke and unbind, a sender's repeated msgqueue_send, HLOS's MEM_RECLAIM), so
the answers in the trace are the real ones: CSPACE_CAP_REVOKED, MSGQUEUE_FULL, a vIRQ
that never fires, MEM_INUSE. Every fault is an action, so a replay repeats it."""

from __future__ import annotations

import json

import pytest

from gunyah_core import Simulation, parse
from gunyah_core.actions import ARGUMENTS, ActionError
from gunyah_core.teaching.captions import caption
from tests.core.rm_support import run_for, sim_of

MS = 1_000_000
SCENARIO = """
name: faults
pcpus: 2
vms:
  - {name: VM_A, affinity: [0], program: idle}
  - {name: VM_B, affinity: [1], program: idle}
msgqs:
  - {name: A_to_B, sender: VM_A, receiver: VM_B, depth: 2, max_size: 64}
doorbells:
  - {name: bell, sender: VM_A, receiver: VM_B}
"""
HLOS_ONLY = """
name: rm-faults
pcpus: 2
vms:
  - name: HLOS
    affinity: [0]
    program: vm-manager
    params: {step_ns: 10000}
images:
  - name: echo
    program: echo
    affinity: [1]
"""


def booted(seed: int | None = None) -> Simulation:
    sim = Simulation(parse(SCENARIO), seed=seed)
    sim.run(until_ns=MS)
    return sim


def hvcs(events: list[dict], action_id: int) -> list[dict]:
    return [e for e in events if e["kind"] == "hvc" and e.get("action") == action_id]


def test_revoke_makes_the_holders_next_send_get_cspace_cap_revoked() -> None:
    sim = booted()
    ack = sim.act("fault_revoke", {"msgq": "A_to_B"})
    events = sim.trace.take()
    revoke = [e for e in events if e["kind"] == "cap.revoke"]
    assert ack["revoked"] == 2  # the sender's SEND copy and the receiver's RECEIVE copy
    assert revoke[0]["call"] == "cspace_revoke_caps_from" and revoke[0]["count"] == 2
    assert "cspace_revoke_caps_from" in caption(revoke[0])
    # VM_A still sends with the capid the RM gave it; that slot's state is now REVOKED.
    send = sim.act("msgq_send", {"vm": "VM_A", "msgq": "A_to_B"})
    result = hvcs(sim.run(until_ns=sim.now + MS), send["action_id"])
    assert [e["result"] for e in result] == ["CSPACE_CAP_REVOKED"]


def test_revoke_refuses_bad_targets_by_field() -> None:
    sim = booted()
    for args, code in [({}, "INVALID_ARGUMENT"),
                       ({"msgq": "A_to_B", "doorbell": "bell"}, "INVALID_ARGUMENT"),
                       ({"msgq": "nope"}, "UNKNOWN_OBJECT"),
                       ({"vm": "VM_A"}, "UNKNOWN_FIELD")]:
        with pytest.raises(ActionError) as err:
            sim.act("fault_revoke", args)
        assert err.value.code == code
    assert sim.action_log == []


def test_unbind_leaves_the_queue_working_but_its_receiver_is_never_interrupted() -> None:
    sim = booted()
    sim.act("fault_unbind", {"msgq": "A_to_B", "side": "receive"})
    events = sim.trace.take()
    unbind = [e for e in events if e["kind"] == "virq.unbind"]
    assert [e["vm"] for e in unbind] == ["VM_B"]
    send = sim.act("msgq_send", {"vm": "VM_A", "msgq": "A_to_B"})
    events = sim.run(until_ns=sim.now + MS)
    assert [e["result"] for e in hvcs(events, send["action_id"])] == ["OK"]
    assert not [e for e in events if e["kind"] == "virq.assert" and e.get("vm") == "VM_B"]
    # Unbinding again is OK (facts §9.1): no second event, no error.
    sim.act("fault_unbind", {"msgq": "A_to_B"})
    assert not [e for e in sim.trace.take() if e["kind"] == "virq.unbind"]
    with pytest.raises(ActionError) as err:
        sim.act("fault_unbind", {"msgq": "A_to_B", "side": "both"})
    assert err.value.code == "INVALID_ARGUMENT" and "'side'" in err.value.message


def test_flood_fills_the_queue_then_every_send_gets_msgqueue_full() -> None:
    sim = booted()
    ack = sim.act("fault_flood", {"vm": "VM_A", "msgq": "A_to_B", "count": 5})
    errors = [e["result"] for e in hvcs(sim.run(until_ns=sim.now + MS), ack["action_id"])]
    assert errors == ["OK", "OK", "MSGQUEUE_FULL", "MSGQUEUE_FULL", "MSGQUEUE_FULL"]
    assert len(sim.action_log) == 1  # one action, so a link carries it whole


def test_flood_by_default_sends_one_more_than_the_queue_holds() -> None:
    sim = booted()
    ack = sim.act("fault_flood", {"vm": "VM_A", "msgq": "A_to_B"})
    assert ack["count"] == 3
    with pytest.raises(ActionError) as err:
        sim.act("fault_flood", {"vm": "VM_B", "msgq": "A_to_B", "count": 1000})
    assert err.value.code == "INVALID_ARGUMENT" and "'count'" in err.value.message


def test_reclaiming_the_image_a_running_guest_accepted_gets_mem_inuse() -> None:
    sim = sim_of(HLOS_ONLY)
    sim.act("rm_vm_create", {"image": "echo", "start": True})
    run_for(sim, MS)
    sim.act("rm_mem_reclaim", {"vm": "VM_80"})
    events = run_for(sim, MS)
    replies = [e["error"] for e in events if e["kind"] == "rm.rpc" and e["stage"] == "send"
               and e["name"] == "MEM_RECLAIM" and e["dir"] == "reply"]
    assert replies == ["MEM_INUSE"]
    assert sim.hyp.vms["VM_80"].state == "RUNNING"


def test_every_fault_is_an_action_with_checked_arguments() -> None:
    for name in ("fault_revoke", "fault_unbind", "fault_flood", "rm_mem_reclaim"):
        assert name in ARGUMENTS


def test_a_run_with_faults_replays_to_the_same_trace() -> None:
    sim = booted(seed=5)
    events = sim.trace.take()
    for action, args in [("fault_flood", {"vm": "VM_A", "msgq": "A_to_B", "count": 4}),
                         ("fault_unbind", {"doorbell": "bell"}),
                         ("doorbell_mask", {"vm": "VM_B", "doorbell": "bell",
                                            "enable_mask": 0, "ack_mask": 0}),
                         ("fault_revoke", {"doorbell": "bell"}),
                         ("doorbell_send", {"vm": "VM_A", "doorbell": "bell"})]:
        try:
            sim.act(action, args)
        except ActionError:
            pass
        events.extend(sim.trace.take())  # an RM-side fault runs no engine step of its own
        events.extend(sim.run(max_events=7))
    events.extend(sim.run(until_ns=sim.now + MS))
    log = json.loads(json.dumps(sim.action_log))
    _, replayed = Simulation.replay(parse(SCENARIO), 5, log, through_seq=events[-1]["seq"])
    assert json.dumps(replayed[-len(events):]) == json.dumps(events)
    assert any(e["kind"] == "cap.revoke" for e in events)
