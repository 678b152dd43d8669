"""CSpace: opaque capids, lookup error precedence, copy with a rights mask, revoke (facts §1)."""

from __future__ import annotations

import random

import pytest

from gunyah_core.consts import (
    CSPACE_CAP_INVALID,
    CSPACE_MAX_CAPS,
    DoorbellRights,
    Error,
    MsgqueueRights,
    ObjectType,
)
from gunyah_core.core.cspace import CSpace
from gunyah_core.core.hypervisor import Hypervisor
from gunyah_core.errors import HypError
from gunyah_core.ipc.doorbell import Doorbell
from gunyah_core.ipc.msgq import Msgq
from tests.core.conftest import capid, make_pair

JS_SAFE_INTEGER = 2**53
MQ = ObjectType.MSGQUEUE
DB = ObjectType.DOORBELL
SEND, RECV = MsgqueueRights.SEND, MsgqueueRights.RECEIVE


def error_of(fn, *args) -> Error:
    with pytest.raises(HypError) as info:
        fn(*args)
    return info.value.error


@pytest.fixture
def world():
    hyp = Hypervisor(seed=7)
    q = Msgq(1, "q", 4, 16, hyp.trace)
    q.activate()
    bell = Doorbell(2, "b", hyp.trace)
    bell.activate()
    idle_q = Msgq(3, "inactive", 4, 16, hyp.trace)  # left in INIT
    cs = CSpace("vm", random.Random(3))
    return cs, q, bell, idle_q


def test_lookup_ok_returns_the_object(world) -> None:
    cs, q, _, _ = world
    cid = cs.create(q, SEND | RECV)
    assert cs.lookup(cid, MQ, SEND) is q
    assert cs.lookup(cid, MQ, SEND | RECV) is q


def test_each_error_alone(world) -> None:
    cs, q, bell, idle_q = world
    assert error_of(cs.lookup, CSPACE_CAP_INVALID, MQ, SEND) is Error.ARGUMENT_INVALID
    assert error_of(cs.lookup, -1, MQ, SEND) is Error.ARGUMENT_INVALID
    gone = cs.create(q, SEND)
    cs.delete(gone)
    assert error_of(cs.lookup, gone, MQ, SEND) is Error.CSPACE_CAP_NULL
    master = cs.create(q, SEND | RECV)
    child = cs.copy_to(master, cs, SEND)
    cs.revoke_children(master)
    assert error_of(cs.lookup, child, MQ, SEND) is Error.CSPACE_CAP_REVOKED
    bell_cap = cs.create(bell, DoorbellRights.SEND)
    assert error_of(cs.lookup, bell_cap, MQ, SEND) is Error.CSPACE_WRONG_OBJECT_TYPE
    send_only = cs.create(q, SEND)
    assert error_of(cs.lookup, send_only, MQ, RECV) is Error.CSPACE_INSUFFICIENT_RIGHTS
    inactive = cs.create(idle_q, SEND)
    assert error_of(cs.lookup, inactive, MQ, SEND) is Error.OBJECT_STATE
    assert cs.lookup(inactive, MQ, SEND, active=False) is idle_q


def test_precedence_when_several_checks_fail(world) -> None:
    cs, _, bell, idle_q = world
    # revoked AND wrong type AND missing right -> REVOKED first
    master = cs.create(bell, DoorbellRights.SEND | DoorbellRights.RECEIVE)
    child = cs.copy_to(master, cs, DoorbellRights.SEND)
    cs.revoke_children(master)
    assert error_of(cs.lookup, child, MQ, RECV) is Error.CSPACE_CAP_REVOKED
    # wrong type AND missing right -> WRONG_OBJECT_TYPE
    other = cs.create(bell, DoorbellRights.SEND)
    assert error_of(cs.lookup, other, MQ, RECV) is Error.CSPACE_WRONG_OBJECT_TYPE
    # missing right AND inactive object -> INSUFFICIENT_RIGHTS
    inactive = cs.create(idle_q, SEND)
    assert error_of(cs.lookup, inactive, MQ, RECV) is Error.CSPACE_INSUFFICIENT_RIGHTS
    # undecodable beats everything; an empty slot beats type/rights/state
    gone = cs.create(idle_q, 0)
    cs.delete(gone)
    assert error_of(cs.lookup, gone, DB, 0xFFFF) is Error.CSPACE_CAP_NULL


def test_debug_capids_are_slot_indexes_and_out_of_range_does_not_decode(world) -> None:
    _, q, _, _ = world
    cs = CSpace("dbg", random.Random(0), debug_ids=True)
    assert [cs.create(q, SEND) for _ in range(4)] == [0, 1, 2, 3]
    assert error_of(cs.lookup, 4, MQ, SEND) is Error.CSPACE_CAP_NULL  # decodes, empty slot
    assert error_of(cs.lookup, 1 << 16, MQ, SEND) is Error.ARGUMENT_INVALID  # no such index


def test_random_capids_opaque_and_js_safe(world) -> None:
    _, q, _, _ = world
    cs = CSpace("vm", random.Random(11))
    ids = [cs.create(q, SEND) for _ in range(300)]
    assert len(set(ids)) == len(ids)
    assert all(0 <= i < JS_SAFE_INTEGER for i in ids)
    steps = {b - a for a, b in zip(ids, ids[1:], strict=False)}
    assert steps != {1}  # not a sequential counter
    assert ids[:3] != [0, 1, 2]


def test_capids_differ_between_cspaces_and_hypervisor_seeds() -> None:
    p1, p2 = make_pair(seed=1), make_pair(seed=2)
    a_tx, b_rx = capid(p1.a, "q:tx"), capid(p1.b, "q:rx")
    assert a_tx != b_rx  # same queue, different CSpaces, different numbers
    assert capid(p2.a, "q:tx") != a_tx
    assert make_pair(seed=1).a.resources == p1.a.resources  # same seed: same numbers


def test_capid_from_another_vm_means_nothing_there() -> None:
    """With seed 1, VM_A's q:tx capid does not decode in VM_B's CSpace (its mult does not
    divide it): ARGUMENT_INVALID, facts §1.2 step 2."""
    p = make_pair()
    foreign = capid(p.a, "q:tx")
    assert (foreign ^ p.b.cspace._base) % p.b.cspace._mult != 0  # the premise, checked
    result = p.call_b("msgqueue_receive", capid=foreign)
    assert result.error is Error.ARGUMENT_INVALID


def test_a_foreign_capid_that_decodes_to_an_empty_slot_is_cap_null() -> None:
    """A number that decodes (index below CSPACE_MAX_CAPS) but names no cap: step 3."""
    p = make_pair()
    cs = p.b.cspace
    empty = cs._encode(CSPACE_MAX_CAPS - 1)  # the last index, never allocated here
    assert p.call_b("msgqueue_receive", capid=empty).error is Error.CSPACE_CAP_NULL
    beyond = cs._encode(CSPACE_MAX_CAPS)  # one index past the table: cannot decode
    assert p.call_b("msgqueue_receive", capid=beyond).error is Error.ARGUMENT_INVALID


def test_cspace_holds_exactly_max_caps_then_is_full(world) -> None:
    """cspace_twolevel.c cspace_allocate_cap_slot: cap_count == max_caps -> CSPACE_FULL
    (facts §1.2), for create and for a copy into the full CSpace alike."""
    _, q, _, _ = world
    cs = CSpace("dbg", random.Random(0), debug_ids=True)
    ids = [cs.create(q, SEND) for _ in range(CSPACE_MAX_CAPS)]
    assert ids[-1] == CSPACE_MAX_CAPS - 1  # the last slot is accepted
    assert cs.lookup(ids[-1], MQ, SEND) is q
    assert error_of(cs.create, q, SEND) is Error.CSPACE_FULL
    src = CSpace("src", random.Random(1))
    master = src.create(q, SEND | RECV)
    assert error_of(src.copy_to, master, cs, SEND) is Error.CSPACE_FULL
    cs.delete(ids[7])
    cs.delete(ids[3])
    assert [cs.create(q, SEND), cs.create(q, SEND)] == [3, 7]  # lowest free slot first
    assert error_of(cs.create, q, SEND) is Error.CSPACE_FULL


def test_copy_masks_rights_and_is_never_master(world) -> None:
    cs, q, _, _ = world
    dst = CSpace("dst", random.Random(5))
    master = cs.create(q, SEND | RECV | MsgqueueRights.BIND_SEND)
    copy = cs.copy_to(master, dst, SEND | MsgqueueRights.BIND_RECEIVE)
    assert dst.cap(copy).rights == SEND
    assert dst.cap(copy).master is False
    assert cs.cap(master).master is True
    assert [row["master"] for row in dst.table({})] == [False]
    assert error_of(cs.copy_to, master, dst, 0) is Error.CSPACE_INSUFFICIENT_RIGHTS
    assert error_of(cs.copy_to, master, dst, MsgqueueRights.BIND_RECEIVE) is (
        Error.CSPACE_INSUFFICIENT_RIGHTS)


def test_revoke_marks_children_only(world) -> None:
    cs, q, _, _ = world
    dst = CSpace("dst", random.Random(5))
    master = cs.create(q, SEND | RECV)
    kids = [cs.copy_to(master, dst, SEND), cs.copy_to(master, dst, RECV)]
    assert cs.revoke_children(master) == 2
    assert [row["state"] for row in dst.table({})] == [
        "REVOKED", "REVOKED"]
    for kid in kids:
        assert error_of(dst.lookup, kid, MQ, 0) is Error.CSPACE_CAP_REVOKED
    assert cs.lookup(master, MQ, SEND | RECV) is q  # the master survives
    assert cs.revoke_children(master) == 0


def test_guest_sees_revoked_cap_through_hypercall() -> None:
    p = make_pair()
    q = p.hyp.msgqs["q"]
    master = p.hyp.master_cspace.find(q)
    assert p.hyp.master_cspace.cap(master).master
    p.hyp.master_cspace.revoke_children(master)
    result = p.call_a("msgqueue_send", capid=capid(p.a, "q:tx"), size=4)
    assert result.error is Error.CSPACE_CAP_REVOKED
    assert p.take()[-1]["result"] == "CSPACE_CAP_REVOKED"


def test_guest_wrong_type_through_hypercall() -> None:
    p = make_pair(doorbell=True)
    result = p.call_a("msgqueue_send", capid=capid(p.a, "bell:src"), size=4)
    assert result.error is Error.CSPACE_WRONG_OBJECT_TYPE
    result = p.call_b("doorbell_receive", capid=capid(p.b, "q:rx"), clear_flags=1)
    assert result.error is Error.CSPACE_WRONG_OBJECT_TYPE


def test_rm_hands_guests_minimal_rights() -> None:
    p = make_pair(doorbell=True)
    rights = {row["object"] + "@" + vm.name: row["rights"]
              for vm in (p.a, p.b) for row in vm.cspace.table({}) if row["type"] != "THREAD"}
    assert rights == {"msgqueue:q@VM_A": SEND, "msgqueue:q@VM_B": RECV,
                      "doorbell:bell@VM_A": DoorbellRights.SEND,
                      "doorbell:bell@VM_B": DoorbellRights.RECEIVE}


def test_debug_capids_machine_hands_out_slot_indexes() -> None:
    hyp = Hypervisor(seed=5, debug_capids=True)
    a, b = hyp.create_vm("A", 0x80), hyp.create_vm("B", 0x81)
    hyp.create_vcpu(a, 32, 5_000_000, 0)
    hyp.create_vcpu(b, 32, 5_000_000, 1)
    hyp.create_msgq("q", a, b, 4, 16)
    hyp.create_doorbell("d", a, b)
    assert [r["capid"] for r in a.resources.values()] == [0, 1, 2]
    assert [r["capid"] for r in b.resources.values()] == [0, 1, 2]
    assert hyp.hypercalls.call(a.vcpus[0], "msgqueue_send", {"capid": 1, "size": 4}).ok
    assert hyp.hypercalls.call(b.vcpus[0], "msgqueue_receive", {"capid": 1}).ok


@pytest.mark.parametrize("seed", [0, 3, 11, 2024, 42926])
def test_capids_follow_the_documented_encoding(world, seed: int) -> None:
    """facts §1.1: capid = (index * mult) XOR base, mult a non-zero 16-bit number and
    base (SIMULATOR: 48 bits, JS-safe) drawn from the seed in that order. Seed 42926
    draws the largest mult, 0xFFFF."""
    _, q, _, _ = world
    draw = random.Random(seed)
    mult, base = draw.randrange(1, 1 << 16), draw.randrange(0, 1 << 48)
    cs = CSpace("vm", random.Random(seed))
    assert [cs.create(q, SEND) for _ in range(5)] == [(i * mult) ^ base for i in range(5)]


def test_capid_zero_decodes_and_negative_or_all_ones_do_not() -> None:
    """With DISABLE_CSPACE_RAND capid 0 is slot 0; -1 and CSPACE_CAP_INVALID are no capids."""
    cs = CSpace("dbg", random.Random(0), debug_ids=True)
    assert error_of(cs.lookup, 0, MQ, SEND) is Error.CSPACE_CAP_NULL  # decodes, empty
    assert error_of(cs.delete, 0) is Error.CSPACE_CAP_NULL
    assert error_of(cs.lookup, -1, MQ, SEND) is Error.ARGUMENT_INVALID
    assert error_of(cs.delete, -1) is Error.ARGUMENT_INVALID
    assert error_of(cs.lookup, CSPACE_CAP_INVALID, MQ, SEND) is Error.ARGUMENT_INVALID


def test_only_a_master_cap_revokes_and_a_deleted_cap_cannot_be_deleted_again(world) -> None:
    cs, q, _, _ = world
    master = cs.create(q, SEND | RECV)
    child = cs.copy_to(master, cs, SEND)
    assert error_of(cs.revoke_children, child) is Error.DENIED  # facts §1.1: master only
    assert cs.lookup(child, MQ, SEND) is q  # nothing was revoked
    cs.delete(master)
    assert error_of(cs.delete, master) is Error.CSPACE_CAP_NULL
    assert error_of(cs.lookup, master, MQ, SEND) is Error.CSPACE_CAP_NULL
    assert cs.lookup(child, MQ, SEND) is q


def test_a_reused_slot_holds_its_new_cap_for_every_view(world) -> None:
    """A slot emptied by delete and filled again holds the new cap: lookup, find, the
    table and a second delete all see it (cspace_twolevel.c: the slot is the cap)."""
    cs, q, bell, _ = world
    first = cs.create(q, SEND)
    second = cs.create(q, RECV)
    cs.delete(first)
    again = cs.create(bell, DoorbellRights.SEND)
    assert again == first  # the emptied slot, same index, same capid
    assert cs.lookup(again, ObjectType.DOORBELL, DoorbellRights.SEND) is bell
    assert cs.find(bell) == again and cs.find(q) == second
    assert [(row["capid"], row["type"]) for row in cs.table({})] == [
        (again, "DOORBELL"), (second, "MSGQUEUE")]
    cs.delete(again)
    assert error_of(cs.lookup, again, ObjectType.DOORBELL, DoorbellRights.SEND) is (
        Error.CSPACE_CAP_NULL)
