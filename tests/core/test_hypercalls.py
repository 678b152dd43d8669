"""The hypercall table: numbers, the hvc trace of every call, errors seen by guests (facts §2)."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load
from gunyah_core.consts import CSPACE_CAP_INVALID, HVC_IMM_BASE, Error
from gunyah_core.core.hypercalls import HypercallTable
from tests.core.conftest import MS, US, Pair, capid, make_pair

# Call numbers (facts §2.3), HVC #0x6000 + n.
EXPECTED_NUMBERS = {
    "hypervisor_identify": 0x00,
    "doorbell_send": 0x12,
    "doorbell_receive": 0x13,
    "doorbell_reset": 0x14,
    "doorbell_mask": 0x15,
    "msgqueue_send": 0x1B,
    "msgqueue_receive": 0x1C,
    "msgqueue_flush": 0x1D,
    "msgqueue_configure_send": 0x1F,
    "msgqueue_configure_receive": 0x20,
    "scheduler_yield": 0x3B,
    "vcpu_set_priority": 0x46,
    "vcpu_set_timeslice": 0x47,
    "msgqueue_push": None,  # documented only; 0x601E is reserved
}
API_VERSION_MASK = (1 << 14) - 1
API_64BIT = 1 << 15
API_VARIANT_SHIFT = 56
FLAG_MSGQUEUE = 1 << 2
FLAG_DOORBELL = 1 << 1
FLAG_VIRTIO_MMIO = 1 << 9  # hyp/interfaces/virtio_mmio/virtio_mmio.tc extends flags0
SCHED_VARIANT_SHIFT = 28
SCHED_FPRR = 1


def test_table_numbers_match_facts() -> None:
    names = HypercallTable.names()
    for name, number in EXPECTED_NUMBERS.items():
        assert names[name] == number, name
    numbers = [n for n in names.values() if n is not None]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("name", sorted(EXPECTED_NUMBERS))
def test_every_call_traced_as_hvc(pair: Pair, name: str) -> None:
    args = {"capid": capid(pair.a, "q:tx")}
    result = pair.call_a(name, **args)
    (event,) = [e for e in pair.take() if e["kind"] == "hvc"]
    number = EXPECTED_NUMBERS[name]
    assert event["call"] == (None if number is None else HVC_IMM_BASE + number)
    assert (event["vm"], event["vcpu"], event["name"], event["args"]) == (
        "VM_A", "VM_A.0", name, args)
    assert event["result"] == result.error.name
    assert event["ret"] == result.ret


def test_identify(pair: Pair) -> None:
    result = pair.call_a("hypervisor_identify")
    assert result.ok
    info = result["api_info"]
    assert info & API_VERSION_MASK == 1
    assert info & API_64BIT
    assert info >> API_VARIANT_SHIFT == 0x51
    flags0 = result["flags0"]
    assert flags0 & FLAG_MSGQUEUE and flags0 & FLAG_DOORBELL and flags0 & FLAG_VIRTIO_MMIO
    assert (flags0 >> SCHED_VARIANT_SHIFT) & 0xF == SCHED_FPRR
    assert pair.take()[-1]["call"] == HVC_IMM_BASE


def test_unknown_hypercall_is_unimplemented(pair: Pair) -> None:
    result = pair.call_a("no_such_call", capid=1)
    assert result.error is Error.UNIMPLEMENTED
    event = pair.take()[-1]
    assert (event["kind"], event["call"], event["result"]) == ("hvc", None, "UNIMPLEMENTED")


@pytest.mark.parametrize("bad", [None, "12", 1.5, True])
def test_non_integer_capid_is_argument_invalid(pair: Pair, bad) -> None:
    result = pair.call_a("msgqueue_send", capid=bad, size=4)
    assert result.error is Error.ARGUMENT_INVALID


def test_send_checks_the_capability_before_the_other_arguments(pair: Pair) -> None:
    rx_capid = capid(pair.b, "q:rx")  # B may receive from q, not send to it
    assert pair.call_b("msgqueue_send", capid=rx_capid).error is (
        Error.CSPACE_INSUFFICIENT_RIGHTS)
    assert pair.call_a("msgqueue_send", capid=7, size="4").error is Error.ARGUMENT_INVALID
    bad = pair.call_a("msgqueue_send", capid=capid(pair.a, "q:tx"), size="4", flags="x")
    assert bad.error is Error.ARGUMENT_INVALID and "'flags'" in bad["detail"]
    bad = pair.call_a("msgqueue_send", capid=capid(pair.a, "q:tx"), size=True)
    assert bad.error is Error.ARGUMENT_INVALID and "'size'" in bad["detail"]
    assert pair.hyp.msgqs["q"].count == 0


@pytest.mark.parametrize("args", [{"capid": "7"}, {"buf_size": 1.5}, {"buf_size": None},
                                  {"capid": None}, {"buf_size": True}])
def test_receive_with_a_non_integer_argument_is_argument_invalid(pair: Pair, args) -> None:
    assert pair.call_a("msgqueue_send", capid=capid(pair.a, "q:tx"), size=4).ok
    result = pair.call_b("msgqueue_receive", **{"capid": capid(pair.b, "q:rx"), **args})
    assert result.error is Error.ARGUMENT_INVALID
    assert pair.hyp.msgqs["q"].count == 1  # nothing was taken


def test_missing_argument_is_argument_invalid(pair: Pair) -> None:
    assert pair.call_a("msgqueue_send", capid=capid(pair.a, "q:tx")).error is (
        Error.ARGUMENT_INVALID)
    assert pair.hyp.msgqs["q"].count == 0


@pytest.mark.parametrize("bogus", [0xDEAD_BEEF_0001, 2**64 - 1, 7])
def test_unknown_capid_that_does_not_decode_is_argument_invalid(pair: Pair, bogus: int) -> None:
    """facts §1.2 step 2: a number that is no (index * mult) ^ base of this CSpace."""
    cs = pair.a.cspace
    assert bogus >= CSPACE_CAP_INVALID or (bogus ^ cs._base) % cs._mult  # premise (seed 1)
    result = pair.call_a("msgqueue_send", capid=bogus, size=4)
    assert result.error is Error.ARGUMENT_INVALID
    assert pair.hyp.msgqs["q"].count == 0


def test_unknown_capid_that_decodes_to_an_empty_slot_is_cap_null(pair: Pair) -> None:
    """facts §1.2 step 3: it decodes, but the slot holds no cap."""
    empty = pair.a.cspace._encode(5)  # VM_A holds 3 caps: slots 0-2
    result = pair.call_a("msgqueue_send", capid=empty, size=4)
    assert result.error is Error.CSPACE_CAP_NULL


def _hvc_for_action(events: list[dict], action_id: int) -> dict:
    (event,) = [e for e in events if e["kind"] == "hvc" and e.get("action") == action_id]
    return event


def test_receive_only_cap_cannot_send_in_pingpong() -> None:
    sim = Simulation(load("msgq-pingpong"))
    events = sim.run(until_ns=200 * US)
    ack = sim.act("msgq_send", {"vm": "VM_B", "msgq": "A_to_B"})
    assert ack["queued"] and ack["vcpu"] == "VM_B.0" and ack["hvc"] == "msgqueue_send"
    events += sim.run(until_ns=1 * MS)
    user = [e for e in events if e["kind"] == "user.action"]
    assert [(e["action"], e["id"]) for e in user] == [("msgq_send", ack["action_id"])]
    event = _hvc_for_action(events, ack["action_id"])
    vm_b = sim.hyp.vms["VM_B"]
    assert (event["vm"], event["vcpu"], event["name"], event["result"]) == (
        "VM_B", "VM_B.0", "msgqueue_send", "CSPACE_INSUFFICIENT_RIGHTS")
    assert event["args"]["capid"] == vm_b.resources["A_to_B:rx"]["capid"]
    assert event["call"] == HVC_IMM_BASE + 0x1B
    assert event["t"] > user[0]["t"]


def test_user_action_with_unknown_capid() -> None:
    sim = Simulation(load("msgq-pingpong"))
    sim.run(until_ns=100 * US)
    cs = sim.hyp.vms["VM_A"].cspace
    assert (123456789 ^ cs._base) % cs._mult  # premise (the preset's seed): it does not decode
    ack = sim.act("msgq_receive", {"vm": "VM_A", "msgq": "B_to_A", "capid": 123456789})
    event = _hvc_for_action(sim.run(until_ns=1 * MS), ack["action_id"])
    assert event["result"] == "ARGUMENT_INVALID"  # facts §1.2 step 2
    # A number that decodes to an empty slot of VM_A's CSpace is CSPACE_CAP_NULL instead.
    empty = cs._encode(len(cs._slots))
    ack = sim.act("msgq_receive", {"vm": "VM_A", "msgq": "B_to_A", "capid": empty})
    event = _hvc_for_action(sim.run(until_ns=2 * MS), ack["action_id"])
    assert event["result"] == "CSPACE_CAP_NULL"  # facts §1.2 step 3


def test_user_action_send_with_the_right_cap_succeeds() -> None:
    sim = Simulation(load("msgq-pingpong"))
    sim.run(until_ns=100 * US)
    ack = sim.act("msgq_send", {"vm": "VM_A", "msgq": "A_to_B", "size": 8, "payload": "hi"})
    event = _hvc_for_action(sim.run(until_ns=1 * MS), ack["action_id"])
    assert (event["result"], event["args"]["payload"]) == ("OK", "hi")


def test_result_names_are_gunyah_error_names() -> None:
    p = make_pair(depth=1)
    tx = capid(p.a, "q:tx")
    p.call_a("msgqueue_send", capid=tx, size=4)
    p.call_a("msgqueue_send", capid=tx, size=4)
    p.call_b("msgqueue_receive", capid=capid(p.b, "q:rx"))  # room again: the size is checked
    p.call_a("msgqueue_send", capid=tx, size=0)
    results = [e["result"] for e in p.take() if e["kind"] == "hvc"]
    assert results == ["OK", "MSGQUEUE_FULL", "OK", "ARGUMENT_SIZE"]
    assert all(name in Error.__members__ for name in results)
