"""Action arguments are checked against each action's list before anything is stored:
no unknown fields, no oversized strings, integers in range; the action log is bounded."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load
from gunyah_core.actions import ARGUMENTS, MAX_NAME_CHARS, MAX_PAYLOAD_CHARS, ActionError
from gunyah_core.simulation import MAX_ACTIONS

SEND = {"vm": "VM_A", "msgq": "A_to_B"}


@pytest.fixture
def sim() -> Simulation:
    return Simulation(load("msgq-pingpong"))


def refused(sim: Simulation, action: str, args: dict) -> ActionError:
    """The refusal, checking that nothing was stored: no trace event, no log entry."""
    seq, log = sim.trace.seq, len(sim.action_log)
    with pytest.raises(ActionError) as info:
        sim.act(action, args)
    assert sim.trace.seq == seq and len(sim.action_log) == log
    return info.value


def test_every_action_has_its_argument_list(sim: Simulation) -> None:
    assert sorted(ARGUMENTS) == sim.actions.names


def test_an_unknown_field_is_refused_by_name(sim: Simulation) -> None:
    err = refused(sim, "msgq_send", {**SEND, "junk": "x" * 100_000})
    assert err.code == "UNKNOWN_FIELD" and "'junk'" in err.message
    assert "fields: vm, msgq, capid, size, payload, push" in err.message


def test_a_huge_unknown_field_name_is_cut_short(sim: Simulation) -> None:
    err = refused(sim, "vm_start", {"vm": "VM_A", "k" * 100_000: 1})
    assert err.code == "UNKNOWN_FIELD" and len(err.message) < 200


@pytest.mark.parametrize(("field", "value", "code"), [
    ("vm", "V" * (MAX_NAME_CHARS + 1), "TOO_LARGE"),
    ("payload", "p" * (MAX_PAYLOAD_CHARS + 1), "TOO_LARGE"),
    ("size", 10**4000, "INVALID_ARGUMENT"),
    ("size", -1, "INVALID_ARGUMENT"),
    ("size", 16.0, "INVALID_ARGUMENT"),
    ("capid", 1 << 64, "INVALID_ARGUMENT"),
    ("push", 1, "INVALID_ARGUMENT"),
    ("msgq", ["A_to_B"], "INVALID_ARGUMENT"),
])
def test_values_are_checked_by_type_range_and_length(sim: Simulation, field, value,
                                                     code) -> None:
    err = refused(sim, "msgq_send", {**SEND, field: value})
    assert err.code == code and repr(field) in err.message and len(err.message) < 200


def test_strings_at_their_length_limit_are_taken_as_values(sim: Simulation) -> None:
    """One past the limit is TOO_LARGE (above); at the limit the string is read: a
    payload of MAX_PAYLOAD_CHARS is queued, a VM name of MAX_NAME_CHARS is looked up
    (and names no VM)."""
    ack = sim.act("msgq_send", {**SEND, "payload": "p" * MAX_PAYLOAD_CHARS})
    assert (ack["queued"], ack["hvc"]) == (True, "msgqueue_send")
    err = refused(sim, "msgq_send", {**SEND, "vm": "V" * MAX_NAME_CHARS})
    assert err.code == "UNKNOWN_VM"


def test_a_field_of_another_action_is_refused(sim: Simulation) -> None:
    """``force`` belongs to rm_vm_stop only."""
    err = refused(sim, "vm_stop", {"vm": "VM_A", "force": True})
    assert err.code == "UNKNOWN_FIELD" and "'force'" in err.message


def test_accepted_arguments_are_stored_as_given(sim: Simulation) -> None:
    args = {**SEND, "size": 8, "payload": "hi", "push": False}
    sim.act("msgq_send", args)
    assert sim.action_log[-1]["args"] == args
    assert [e for e in sim.trace.take() if e["kind"] == "user.action"][-1]["args"] == args


def test_the_action_log_is_bounded(sim: Simulation) -> None:
    for _ in range(MAX_ACTIONS):
        sim.act("vm_start", {"vm": "VM_A"})
    err = refused(sim, "vm_start", {"vm": "VM_A"})
    assert err.code == "ACTION_LOG_FULL" and str(MAX_ACTIONS) in err.message
    assert len(sim.action_log) == MAX_ACTIONS


def test_a_proxy_scheduled_vcpu_has_no_priority_to_change() -> None:
    """Its scheduler is its owner's vcpu_run: the control says so instead of crashing."""
    sim = Simulation(load("proxy-scheduling"))
    sim.run(until_ns=100)
    err = refused(sim, "set_priority", {"vcpu": "Guest.0", "priority": 5})
    assert err.code == "PROXY_SCHEDULED" and "Guest.0" in err.message
