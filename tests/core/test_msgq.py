"""Message queues through the hypercall table: results, errors and the exact trace (facts §3)."""

from __future__ import annotations

import pytest

from gunyah_core.consts import MSGQUEUE_SEND_FLAG_PUSH, Error
from gunyah_core.core.hypervisor import Hypervisor
from gunyah_core.errors import HypError
from gunyah_core.ipc.msgq import Msgq
from tests.core.conftest import Pair, capid, make_pair, project

PUSH = MSGQUEUE_SEND_FLAG_PUSH
RX = "msgq:q:rx"
TX = "msgq:q:tx"


def send(p: Pair, size: int = 16, flags: int = 0, payload: str = "m"):
    return p.call_a("msgqueue_send", capid=capid(p.a, "q:tx"), size=size, flags=flags,
                    payload=payload)


def recv(p: Pair, **args):
    return p.call_b("msgqueue_receive", capid=capid(p.b, "q:rx"), **args)


def settle(p: Pair, vm_name: str) -> None:
    """Deliver and EOI every pending vIRQ of a VM, so a new assert is visible again."""
    vm = p.hyp.vms[vm_name]
    vcpu = vm.vcpus[0]
    while (virq := vm.vic.acknowledge(vcpu)) is not None:
        vm.vic.eoi(vcpu, virq)
    p.take()


def test_defaults_at_activation(pair: Pair) -> None:
    q = pair.hyp.msgqs["q"]
    assert (q.notempty_thd, q.notfull_thd, q.depth, q.max_size) == (1, 7, 8, 240)


def test_eighth_send_fills_and_ninth_is_full(pair: Pair) -> None:
    results = [send(pair, payload=f"p{i}") for i in range(9)]
    assert [(r.error, r.ret.get("not_full")) for r in results] == (
        [(Error.OK, True)] * 7 + [(Error.OK, False), (Error.MSGQUEUE_FULL, False)])
    events = pair.take()
    expected = [("msgq.send", None, 1), ("virq.assert", "VM_B", 1), ("hvc", "VM_A", None)]
    for depth in range(2, 9):
        expected += [("msgq.send", None, depth), ("hvc", "VM_A", None)]
    expected += [("hvc", "VM_A", None)]
    assert [(e["kind"], e.get("vm"), e.get("depth")) for e in events] == expected
    assert [e["result"] for e in events if e["kind"] == "hvc"] == ["OK"] * 8 + ["MSGQUEUE_FULL"]
    assert pair.hyp.msgqs["q"].count == 8


def test_rx_virq_only_on_threshold_crossing_or_push(pair: Pair) -> None:
    send(pair)
    assert project(pair.take(), "vm", "source", kinds={"virq.assert"}) == [
        ("virq.assert", "VM_B", RX)]
    settle(pair, "VM_B")  # Rx no longer pending: a new assert would be traced
    send(pair)  # count 1 -> 2, no PUSH: not a crossing
    assert project(pair.take(), kinds={"virq.assert"}) == []
    send(pair, flags=PUSH)  # count 3 with PUSH: asserted regardless of the threshold
    assert project(pair.take(), "vm", "source", kinds={"virq.assert"}) == [
        ("virq.assert", "VM_B", RX)]
    settle(pair, "VM_B")
    for _ in range(3):
        assert recv(pair).ok
    pair.take()
    send(pair)  # 0 -> 1 again: a fresh crossing
    assert project(pair.take(), "source", kinds={"virq.assert"}) == [("virq.assert", RX)]


def test_tx_virq_when_count_falls_to_not_full_threshold(pair: Pair) -> None:
    for _ in range(8):
        send(pair)
    pair.take()
    result = recv(pair)  # 8 -> 7 == depth - 1
    assert (result.error, result.ret["not_empty"]) == (Error.OK, True)
    assert project(pair.take(), "vm", "source", "depth") == [
        ("msgq.recv", None, None, 7), ("virq.assert", "VM_A", TX, 7),
        ("hvc", "VM_B", None, None)]
    settle(pair, "VM_A")
    recv(pair)  # 7 -> 6: below the threshold, not a crossing
    assert project(pair.take(), kinds={"virq.assert"}) == []


def test_tx_virq_not_raised_away_from_threshold(pair: Pair) -> None:
    for _ in range(3):
        send(pair)
    pair.take()
    recv(pair)
    assert project(pair.take(), kinds={"virq.assert"}) == []


def test_a_full_queue_answers_full_before_any_size_check() -> None:
    """facts §3.2: count == depth is checked first (H-SRC msgqueue_common.c
    msgqueue_send_msg), so even an oversized or empty send to a full queue gets
    MSGQUEUE_FULL, with not_full = false in X1 of the hvc event."""
    p = make_pair(depth=2, max_size=32)
    send(p)
    send(p)
    p.take()
    for size in (33, 0, 16):
        result = send(p, size=size)
        assert (result.error, result.ret["not_full"]) == (Error.MSGQUEUE_FULL, False), size
    assert [(e["result"], e["ret"]) for e in p.take()] == [
        ("MSGQUEUE_FULL", {"not_full": False})] * 3
    assert p.hyp.msgqs["q"].count == 2


def test_argument_size_for_zero_and_max_plus_one() -> None:
    p = make_pair(depth=4, max_size=32)
    assert send(p, size=0).error is Error.ARGUMENT_SIZE
    assert send(p, size=33).error is Error.ARGUMENT_SIZE
    assert send(p, size=32).error is Error.OK
    assert [(e["kind"], e["result"]) for e in p.take() if e["kind"] == "hvc"] == [
        ("hvc", "ARGUMENT_SIZE"), ("hvc", "ARGUMENT_SIZE"), ("hvc", "OK")]
    assert p.hyp.msgqs["q"].count == 1


def test_receive_empty(pair: Pair) -> None:
    result = recv(pair)
    assert result.error is Error.MSGQUEUE_EMPTY
    assert (result.ret["size"], result.ret["not_empty"]) == (0, False)  # msgqueue_receive_msg
    assert project(pair.take(), "vm", "result") == [("hvc", "VM_B", "MSGQUEUE_EMPTY")]


def test_a_too_small_buffer_is_argument_size_and_leaves_the_message_queued(pair: Pair) -> None:
    """H-SRC useraccess_copy_to_guest_va refuses with ARGUMENT_SIZE (H-API: ADDR_OVERFLOW;
    the source that runs is followed); size 0, not_empty true: the message stays."""
    send(pair, size=100, payload="big")
    send(pair, size=10, payload="small")
    pair.take()
    result = recv(pair, buf_size=99)
    assert (result.error, result.ret["size"], result.ret["not_empty"]) == (
        Error.ARGUMENT_SIZE, 0, True)
    assert project(pair.take(), "result") == [("hvc", "ARGUMENT_SIZE")]
    assert pair.hyp.msgqs["q"].count == 2
    first = recv(pair, buf_size=100)
    assert (first.error, first.ret["payload"], first.ret["size"], first.ret["not_empty"]) == (
        Error.OK, "big", 100, True)
    second = recv(pair)
    assert (second.ret["payload"], second.ret["not_empty"]) == ("small", False)


def test_fifo_and_message_ids_follow_send_to_recv(pair: Pair) -> None:
    for i in range(5):
        send(pair, payload=f"m{i}")
    sent = [e["msg"] for e in pair.take() if e["kind"] == "msgq.send"]
    got = [recv(pair) for _ in range(5)]
    assert [r.ret["payload"] for r in got] == [f"m{i}" for i in range(5)]
    assert [r.ret["msg"] for r in got] == sent
    assert [e["msg"] for e in pair.take() if e["kind"] == "msgq.recv"] == sent
    assert [r.ret["not_empty"] for r in got] == [True] * 4 + [False]
    assert all(isinstance(m, int) for m in sent) and len(set(sent)) == 5  # one id each


def test_rx_assert_carries_the_count_and_the_threshold_it_met(pair: Pair) -> None:
    send(pair)
    rx = [e for e in pair.take() if e["kind"] == "virq.assert" and e["source"] == "msgq:q:rx"]
    assert [(e["depth"], e["notempty_thd"]) for e in rx] == [(1, 1)]


def test_level_bound_queue_vIRQs_re_pend_at_eoi_while_their_condition_holds() -> None:
    """Bound level-triggered, each side's vIRQ is re-checked at EOI against the queue
    (count >= not-empty threshold for Rx, count <= not-full threshold for Tx)."""
    pair = make_pair(trigger="level")
    send(pair)
    send(pair)
    pair.take()
    rx = pair.b.vic.acknowledge(pair.vb)
    pair.b.vic.eoi(pair.vb, rx)  # two still queued: pending again
    assert project(pair.take(), "virq", kinds={"virq.eoi", "virq.assert"}) == [
        ("virq.eoi", rx), ("virq.assert", rx)]
    assert pair.b.vic.acknowledge(pair.vb) == rx
    recv(pair)
    recv(pair)
    pair.take()
    pair.b.vic.eoi(pair.vb, rx)  # drained: not pending again
    assert project(pair.take(), "virq", kinds={"virq.eoi", "virq.assert"}) == [
        ("virq.eoi", rx)]
    for _ in range(8):  # full; one receive brings the count to the not-full threshold
        send(pair)
    recv(pair)
    pair.take()
    tx = pair.a.vic.acknowledge(pair.va)
    pair.a.vic.eoi(pair.va, tx)  # 7 <= 7: pending again
    assert project(pair.take(), "virq", kinds={"virq.eoi", "virq.assert"}) == [
        ("virq.eoi", tx), ("virq.assert", tx)]
    assert pair.a.vic.acknowledge(pair.va) == tx
    send(pair)
    pair.take()
    pair.a.vic.eoi(pair.va, tx)  # full again: not pending again
    assert project(pair.take(), "virq", kinds={"virq.eoi", "virq.assert"}) == [
        ("virq.eoi", tx)]


def test_each_queue_has_its_own_object_id(pair: Pair) -> None:
    """The oid is the queue's DT label in the RM's overlay (rm/overlay.py)."""
    q = pair.hyp.msgqs["q"]
    pair.hyp.create_msgq("q2", pair.a, pair.b, 8, 240)
    assert pair.hyp.msgqs["q2"].oid == q.oid + 1


def test_flush_asserts_tx_and_clears_rx(pair: Pair) -> None:
    for _ in range(3):
        send(pair)
    pair.take()
    assert pair.call_b("msgqueue_flush", capid=capid(pair.b, "q:rx")).ok
    assert project(pair.take(), "vm", "source", "dropped") == [
        ("msgq.flush", None, None, 3), ("virq.assert", "VM_A", TX, None),
        ("virq.clear", "VM_B", RX, None), ("hvc", "VM_B", None, None)]
    assert pair.hyp.msgqs["q"].count == 0
    assert recv(pair).error is Error.MSGQUEUE_EMPTY


def test_flush_returns_how_many_it_dropped() -> None:
    hyp = Hypervisor(seed=1)
    q = Msgq(1, "q", 4, 16, hyp.trace)
    for i in range(3):
        q.send(4, f"m{i}", False, lambda: 0, 0)
    assert (q.flush(), q.flush()) == (3, 0)


def test_trace_shows_text_cut_to_32_characters_and_bytes_whole_as_hex(pair: Pair) -> None:
    send(pair, payload="x" * 40)
    assert pair.call_a("msgqueue_send", capid=capid(pair.a, "q:tx"), size=40,
                       payload=bytes(range(40))).ok
    assert [e["payload"] for e in pair.take() if e["kind"] == "msgq.send"] == [
        "x" * 32, bytes(range(40)).hex()]


def test_flush_of_empty_queue_raises_nothing(pair: Pair) -> None:
    assert pair.call_b("msgqueue_flush", capid=capid(pair.b, "q:rx")).ok
    assert project(pair.take(), "dropped") == [("msgq.flush", 0), ("hvc", None)]


def test_flush_needs_receive_right(pair: Pair) -> None:
    send(pair)
    result = pair.call_a("msgqueue_flush", capid=capid(pair.a, "q:tx"))
    assert result.error is Error.CSPACE_INSUFFICIENT_RIGHTS
    assert pair.hyp.msgqs["q"].count == 1


def cfg_send(p: Pair, thd: int, **extra):
    return p.call_a("msgqueue_configure_send", capid=capid(p.a, "q:tx"), notfull_thd=thd, **extra)


def cfg_recv(p: Pair, thd: int, **extra):
    return p.call_b("msgqueue_configure_receive", capid=capid(p.b, "q:rx"), notempty_thd=thd,
                    **extra)


def test_configure_send_rules(pair: Pair) -> None:
    q = pair.hyp.msgqs["q"]
    assert cfg_send(pair, -1).ok and q.notfull_thd == 7  # -1: unchanged
    assert cfg_send(pair, 8).error is Error.ARGUMENT_INVALID  # must be < depth
    assert cfg_send(pair, -2).error is Error.ARGUMENT_INVALID
    assert cfg_send(pair, 3, delay=10).error is Error.UNIMPLEMENTED
    assert q.notfull_thd == 7
    assert cfg_send(pair, 0).ok and q.notfull_thd == 0
    assert cfg_send(pair, 7).ok and q.notfull_thd == 7  # depth - 1: the largest accepted
    # configure_send needs SEND: the receiver's RECEIVE-only cap is refused.
    result = pair.call_b("msgqueue_configure_send", capid=capid(pair.b, "q:rx"), notfull_thd=2)
    assert result.error is Error.CSPACE_INSUFFICIENT_RIGHTS


def test_configure_send_level_follows_new_threshold(pair: Pair) -> None:
    for _ in range(4):
        send(pair)
    pair.take()
    assert cfg_send(pair, 5).ok  # count 4 <= 5: Tx asserted at once
    assert project(pair.take(), "source", kinds={"virq.assert", "virq.clear"}) == [
        ("virq.assert", TX)]
    assert cfg_send(pair, 2).ok  # count 4 > 2: Tx cleared
    assert project(pair.take(), "source", kinds={"virq.assert", "virq.clear"}) == [
        ("virq.clear", TX)]
    assert cfg_send(pair, 4).ok  # count 4 <= 4: at the threshold counts as not full
    assert project(pair.take(), "source", "notfull_thd",
                   kinds={"virq.assert", "virq.clear", "msgq.config"}) == [
        ("msgq.config", None, 4), ("virq.assert", TX, 4)]  # the assert names the threshold met


def test_configure_receive_rules(pair: Pair) -> None:
    q = pair.hyp.msgqs["q"]
    assert cfg_recv(pair, 0).error is Error.ARGUMENT_INVALID
    assert cfg_recv(pair, 9).error is Error.ARGUMENT_INVALID  # > depth
    assert cfg_recv(pair, -3).error is Error.ARGUMENT_INVALID
    assert cfg_recv(pair, 2, delay=0).error is Error.UNIMPLEMENTED
    assert q.notempty_thd == 1
    assert cfg_recv(pair, -2).ok and q.notempty_thd == 8  # -2: set to depth
    assert cfg_recv(pair, -1).ok and q.notempty_thd == 8  # -1: unchanged
    assert cfg_recv(pair, 8).ok
    assert cfg_recv(pair, 1).ok and q.notempty_thd == 1  # the smallest accepted
    assert project(pair.take(), "notempty_thd", "notfull_thd", kinds={"msgq.config"})[-2:] == [
        ("msgq.config", 8, 7), ("msgq.config", 1, 7)]
    result = pair.call_a("msgqueue_configure_receive", capid=capid(pair.a, "q:tx"),
                         notempty_thd=1)
    assert result.error is Error.CSPACE_INSUFFICIENT_RIGHTS


def test_unchanged_thresholds_assert_and_clear_nothing(pair: Pair) -> None:
    """-1 (MSGQUEUE_THRESHOLD_UNCHANGED) changes nothing: no Tx or Rx assert or clear,
    whatever the count (facts §3.3; H-SRC msgqueue.c msgqueue_configure_send /
    msgqueue_configure_receive only re-check after a real set)."""
    q = pair.hyp.msgqs["q"]
    assert cfg_send(pair, -1).ok  # count 0 <= 7: a re-check would raise Tx here
    assert cfg_recv(pair, -1).ok
    send(pair)
    settle(pair, "VM_B")  # Rx taken: count 1 >= 1 would raise it again on a re-check
    settle(pair, "VM_A")
    assert cfg_recv(pair, -1).ok
    assert cfg_send(pair, -1).ok
    events = pair.take()
    assert project(events, "name", "result", kinds={"hvc", "virq.assert", "virq.clear"}) == [
        ("hvc", "msgqueue_configure_receive", "OK"), ("hvc", "msgqueue_configure_send", "OK")]
    assert (q.notempty_thd, q.notfull_thd, q.count) == (1, 7, 1)


def test_receive_threshold_maximum_sets_depth_without_a_recheck(pair: Pair) -> None:
    """-2 sets the not-empty threshold to the depth and re-checks nothing, even with
    the queue full (facts §3.3; H-SRC msgqueue.c msgqueue_configure_receive)."""
    for _ in range(8):
        send(pair)
    settle(pair, "VM_B")
    assert cfg_recv(pair, -2).ok
    assert pair.hyp.msgqs["q"].notempty_thd == 8
    assert project(pair.take(), "source", kinds={"virq.assert", "virq.clear"}) == []
    assert cfg_recv(pair, 8).ok  # an explicit 8 does re-check: count 8 >= 8
    assert project(pair.take(), "source", kinds={"virq.assert", "virq.clear"}) == [
        ("virq.assert", RX)]


def test_receive_threshold_at_depth_fires_only_when_full(pair: Pair) -> None:
    assert cfg_recv(pair, -2).ok
    assert project(pair.take(), "notempty_thd", "notfull_thd", kinds={"msgq.config"}) == [
        ("msgq.config", 8, 7)]  # -2: the depth, traced like any new threshold
    for _ in range(7):
        send(pair)
    assert project(pair.take(), kinds={"virq.assert"}) == []
    send(pair)
    assert project(pair.take(), "source", kinds={"virq.assert"}) == [("virq.assert", RX)]


def test_configure_receive_explicit_set_follows_level(pair: Pair) -> None:
    for _ in range(3):
        send(pair)
    settle(pair, "VM_B")
    assert cfg_recv(pair, 3).ok  # count 3 >= 3: Rx asserted
    assert project(pair.take(), "source", kinds={"virq.assert", "virq.clear"}) == [
        ("virq.assert", RX)]
    assert cfg_recv(pair, 5).ok  # count 3 < 5: Rx cleared
    assert project(pair.take(), "source", kinds={"virq.assert", "virq.clear"}) == [
        ("virq.clear", RX)]


def test_documented_push_raises_rx_when_not_empty(pair: Pair) -> None:
    """The LX-DOC "msgq push" call: no number in the source (0x601E is reserved)."""
    tx = capid(pair.a, "q:tx")
    assert pair.call_a("msgqueue_push", capid=tx).ok
    assert project(pair.take(), "depth", "call") == [("msgq.push", 0, None), ("hvc", None, None)]
    send(pair)
    settle(pair, "VM_B")
    send(pair)  # no crossing, no PUSH flag: nothing
    pair.take()
    assert pair.call_a("msgqueue_push", capid=tx).ok
    assert project(pair.take(), "source", "depth") == [
        ("msgq.push", None, 2), ("virq.assert", RX, 2), ("hvc", None, None)]
    assert pair.call_b("msgqueue_push", capid=capid(pair.b, "q:rx")).error is (
        Error.CSPACE_INSUFFICIENT_RIGHTS)


@pytest.mark.parametrize(("depth", "max_size"), [(0, 8), (256, 8), (8, 0), (8, 1024)])
def test_creation_limits_are_strict(depth: int, max_size: int) -> None:
    hyp = Hypervisor(seed=1)
    with pytest.raises(HypError) as info:
        Msgq(1, "bad", depth, max_size, hyp.trace)
    assert info.value.error is Error.ARGUMENT_INVALID


def test_creation_limits_largest_legal() -> None:
    hyp = Hypervisor(seed=1)
    q = Msgq(1, "big", 255, 1023, hyp.trace)
    assert (q.depth, q.max_size, q.notfull_thd) == (255, 1023, 254)


def test_creation_limits_smallest_legal() -> None:
    """The other end of each range: depth 1 and max size 1 are accepted (H-SRC
    msgqueue.c: 0 < depth <= MSGQUEUE_MAX_QUEUE_DEPTH, 0 < max_size <= the maximum)."""
    hyp = Hypervisor(seed=1)
    q = Msgq(1, "small", 1, 1, hyp.trace)
    assert (q.depth, q.max_size, q.notfull_thd, q.notempty_thd) == (1, 1, 0, 1)
    with pytest.raises(HypError) as info:
        q.send(2, "xy", False, lambda: 0, 0)
    assert info.value.error is Error.ARGUMENT_SIZE
    assert q.send(1, "x", False, lambda: 0, 0) is False  # accepted, and now full
