"""Property tests: random hypercall sequences keep Gunyah's invariants; runs are reproducible.

The state machine drives the hypercall table directly from random VMs with whatever caps
those VMs hold (including ones lacking the needed right, or naming the wrong object), and
keeps its own model of every queue to check conservation, FIFO order and depth limits.
"""

from __future__ import annotations

import json
from collections import deque

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from gunyah_core import Hypervisor, Simulation, load
from gunyah_core.consts import (
    CSPACE_CAP_INVALID,
    MSGQUEUE_SEND_FLAG_PUSH,
    MSGQUEUE_THRESHOLD_MAXIMUM,
    MSGQUEUE_THRESHOLD_UNCHANGED,
    Error,
    MsgqueueRights,
    ObjectType,
)
from gunyah_core.errors import HypResult
from gunyah_core.ipc.msgq import MSG_PAYLOAD
from tests.core.conftest import MS, add_vm, seedless

MAX_EXAMPLES = 50
VM_NAMES = ("V0", "V1", "V2")
BOGUS_CAPID = CSPACE_CAP_INVALID  # never decodes: ARGUMENT_INVALID
# facts §1.4: the right each msgq call needs on the cap it names
SIZES = st.one_of(st.integers(1, 48), st.sampled_from([0, 49, 1023]))
BUFS = st.one_of(st.just(1024), st.integers(1, 48))
REQUIRED_RIGHT = {"msgqueue_send": MsgqueueRights.SEND,
                  "msgqueue_receive": MsgqueueRights.RECEIVE,
                  "msgqueue_flush": MsgqueueRights.RECEIVE,
                  "msgqueue_configure_receive": MsgqueueRights.RECEIVE}


class MsgqMachine(RuleBasedStateMachine):
    """2-3 VMs, 2 queues of random shape, hypercalls from random VMs with random caps."""

    @initialize(
        seed=st.integers(0, 2**16),
        n_vms=st.integers(2, 3),
        shapes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 48)), min_size=2,
                        max_size=2),
        ends=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 2)), min_size=2, max_size=2),
    )
    def build(self, seed, n_vms, shapes, ends) -> None:
        self.hyp = Hypervisor(seed=seed, pcpus=2)
        self.vms = [add_vm(self.hyp, VM_NAMES[i], (i % 2,)) for i in range(n_vms)]
        self.queues = []
        for index, ((depth, max_size), (s, offset)) in enumerate(zip(shapes, ends, strict=True)):
            sender = self.vms[s % n_vms]
            receiver = self.vms[(s + offset) % n_vms]
            if receiver is sender:
                receiver = self.vms[(s + 1) % n_vms]
            self.queues.append(self.hyp.create_msgq(f"q{index}", sender, receiver, depth,
                                                    max_size))
        self.expected = {q.name: deque() for q in self.queues}  # payloads still queued
        # The reference's vIRQ lines: pending bits per queue end. No vCPU runs here, so
        # nothing acknowledges them: a pending line stays pending until the queue clears it.
        self.rx_pending = {q.name: False for q in self.queues}
        self.tx_pending = {q.name: False for q in self.queues}
        # ... and the reference's own thresholds: not-empty 1, not-full depth - 1 at first
        # (facts §3.3).
        self.rx_thd = {q.name: 1 for q in self.queues}
        self.tx_thd = {q.name: q.depth - 1 for q in self.queues}
        self.accepted: list[str] = []
        self.received: list[str] = []
        self.flushed: list[str] = []
        self.counter = 0
        self.hyp.trace.take()

    # -- helpers ---------------------------------------------------------------------------
    def caps_of(self, vm) -> list[int]:
        return [row["capid"] for row in vm.cspace.table({})] + [BOGUS_CAPID]

    def pick(self, vm_i: int, cap_i: int) -> tuple[object, int]:
        """Any VM with any capid it holds (or a bogus one)."""
        vm = self.vms[vm_i % len(self.vms)]
        caps = self.caps_of(vm)
        return vm, caps[cap_i % len(caps)]

    def owner_cap(self, q_i: int, end: str) -> tuple[object, int]:
        """The queue's sender or receiver with the cap the RM gave it."""
        q = self.queues[q_i % len(self.queues)]
        vm = self.hyp.vms[getattr(q, end)]
        return vm, vm.cspace.find(q)

    def call(self, vm, capid: int, name: str, **args) -> tuple[HypResult, object]:
        """Make the call; check the hvc event and that OK implies the right (facts §1.4)."""
        result = self.hyp.hypercalls.call(vm.vcpus[0], name, {"capid": capid, **args})
        events = self.hyp.trace.take()
        hvc = [e for e in events if e["kind"] == "hvc"]
        assert len(hvc) == 1 and hvc[0]["result"] == result.error.name
        self.last_events = events
        event(f"{name} -> {result.error.name}")
        if capid == BOGUS_CAPID:
            assert result.error is Error.ARGUMENT_INVALID
            return result, None
        cap = vm.cspace.cap(capid)
        if cap.obj.obj_type is not ObjectType.MSGQUEUE:
            assert result.error is Error.CSPACE_WRONG_OBJECT_TYPE
            return result, None
        has_right = bool(cap.rights & REQUIRED_RIGHT[name])
        if result.ok:
            assert has_right, f"{name} succeeded without its right"
        if not has_right:
            assert result.error is Error.CSPACE_INSUFFICIENT_RIGHTS
            return result, None
        return result, cap.obj

    # -- rules --------------------------------------------------------------------------------
    @rule(vm_i=st.integers(0, 2), cap_i=st.integers(0, 6), size=SIZES, push=st.booleans())
    def send_any(self, vm_i, cap_i, size, push) -> None:
        self.send(*self.pick(vm_i, cap_i), size, push)

    @rule(q_i=st.integers(0, 1), size=SIZES, push=st.booleans())
    def send_as_sender(self, q_i, size, push) -> None:
        self.send(*self.owner_cap(q_i, "sender"), size, push)

    @rule(vm_i=st.integers(0, 2), cap_i=st.integers(0, 6), buf=BUFS)
    def receive_any(self, vm_i, cap_i, buf) -> None:
        self.receive(*self.pick(vm_i, cap_i), buf)

    @rule(q_i=st.integers(0, 1), buf=BUFS)
    def receive_as_receiver(self, q_i, buf) -> None:
        self.receive(*self.owner_cap(q_i, "receiver"), buf)

    @rule(q_i=st.integers(0, 1), thd=st.integers(-2, 7), at_count=st.booleans())
    def configure_receive_as_receiver(self, q_i, thd, at_count) -> None:
        """-1 changes nothing, -2 sets the depth without a re-check, 1..depth sets it and
        Rx follows the new level at once, anything else is ARGUMENT_INVALID (facts §3.3;
        H-SRC msgqueue.c msgqueue_configure_receive). ``at_count``: the threshold is the
        queue's count or one more, the two sides of the level."""
        vm, capid = self.owner_cap(q_i, "receiver")
        queued = len(self.expected[self.queues[q_i % len(self.queues)].name])
        if at_count and queued:
            thd = queued + thd % 2
        result, q = self.call(vm, capid, "msgqueue_configure_receive", notempty_thd=thd)
        name = q.name
        clears = [e for e in self.last_events if e["kind"] == "virq.clear"]
        if thd in (MSGQUEUE_THRESHOLD_UNCHANGED, MSGQUEUE_THRESHOLD_MAXIMUM):
            assert result.ok
            if thd == MSGQUEUE_THRESHOLD_MAXIMUM:
                self.rx_thd[name] = q.depth
            self.expect_asserts(q)
            assert clears == []
        elif not 0 < thd <= q.depth:
            assert result.error is Error.ARGUMENT_INVALID
            self.expect_asserts(q)
        else:
            assert result.ok
            self.rx_thd[name] = thd
            level = len(self.expected[name]) >= thd
            self.expect_asserts(q, rx=level)
            assert len(clears) == (not level and self.rx_pending[name])
            self.rx_pending[name] = level

    @rule(vm_i=st.integers(0, 2), cap_i=st.integers(0, 6))
    def flush_any(self, vm_i, cap_i) -> None:
        self.flush(*self.pick(vm_i, cap_i))

    @rule(q_i=st.integers(0, 1))
    def flush_as_receiver(self, q_i) -> None:
        self.flush(*self.owner_cap(q_i, "receiver"))

    def send(self, vm, capid: int, size: int, push: bool) -> None:
        self.counter += 1
        payload = f"m{self.counter}"
        result, q = self.call(vm, capid, "msgqueue_send", size=size, payload=payload,
                              flags=MSGQUEUE_SEND_FLAG_PUSH if push else 0)
        if q is None:
            return
        queued = self.expected[q.name]
        if len(queued) == q.depth:  # checked before the size (facts §3.2)
            assert (result.error, result.ret["not_full"]) == (Error.MSGQUEUE_FULL, False)
        elif not 0 < size <= q.max_size:
            assert result.error is Error.ARGUMENT_SIZE
        else:
            assert result.ok
            queued.append(payload)
            self.accepted.append(payload)
            assert result["not_full"] == (len(queued) < q.depth)
            # Rx is asserted on PUSH or on reaching the not-empty threshold (facts §3.2,
            # H-SRC msgqueue_common.c msgqueue_send_msg); an assert of a pending line
            # merges (no event), as on a GIC.
            raise_rx = push or len(queued) == self.rx_thd[q.name]
            self.expect_asserts(q, rx=raise_rx)
            self.rx_pending[q.name] |= raise_rx

    def receive(self, vm, capid: int, buf: int) -> None:
        result, q = self.call(vm, capid, "msgqueue_receive", buf_size=buf)
        if q is None:
            return
        queued = self.expected[q.name]
        if not queued:
            assert result.error is Error.MSGQUEUE_EMPTY
            return
        if result.error is Error.ARGUMENT_SIZE:  # buffer too small (H-SRC useraccess.c)
            assert buf < q.snapshot()["items"][0]["size"]
            return  # the head message stays; the invariant checks it is still there
        assert result.ok
        payload = queued.popleft()
        assert result["payload"] == payload  # FIFO per queue
        assert result["size"] <= buf
        assert result["not_empty"] == bool(queued)
        self.received.append(payload)
        # Tx is asserted when the count falls to the not-full threshold (facts §3.2).
        raise_tx = len(queued) == self.tx_thd[q.name]
        self.expect_asserts(q, tx=raise_tx)
        self.tx_pending[q.name] |= raise_tx

    def flush(self, vm, capid: int) -> None:
        result, q = self.call(vm, capid, "msgqueue_flush")
        if q is None:
            return
        assert result.ok
        dropped = bool(self.expected[q.name])
        self.flushed.extend(self.expected[q.name])
        self.expected[q.name].clear()
        # A flush of a non-empty queue asserts Tx and clears Rx (H-SRC msgqueue_flush).
        self.expect_asserts(q, tx=dropped)
        assert [e["kind"] for e in self.last_events if e["kind"] == "virq.clear"] == (
            ["virq.clear"] if dropped and self.rx_pending[q.name] else [])
        self.tx_pending[q.name] |= dropped
        if dropped:
            self.rx_pending[q.name] = False

    def expect_asserts(self, q, rx: bool = False, tx: bool = False) -> None:
        """The call's virq.assert events are exactly those of lines it raised that were
        not pending yet."""
        expected = ([q.rx_source.ref] if rx and not self.rx_pending[q.name] else []) + (
            [q.tx_source.ref] if tx and not self.tx_pending[q.name] else [])
        assert [e["source"] for e in self.last_events if e["kind"] == "virq.assert"] == expected

    @precondition(lambda self: hasattr(self, "hyp"))
    @invariant()
    def queues_match_model(self) -> None:
        for q in self.queues:
            assert 0 <= q.count <= q.depth
            assert [m[MSG_PAYLOAD] for m in q.items] == list(self.expected[q.name])

    @precondition(lambda self: hasattr(self, "hyp"))
    @invariant()
    def every_message_accounted_once(self) -> None:
        queued = [p for d in self.expected.values() for p in d]
        outcomes = self.received + self.flushed + queued
        assert len(outcomes) == len(set(outcomes))
        assert sorted(outcomes) == sorted(self.accepted)


MsgqMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestMsgqMachine = MsgqMachine.TestCase


def run_jsonl(name: str, seed: int, until_ns: int) -> str:
    return "\n".join(json.dumps(e) for e in Simulation(load(name), seed=seed).run(
        until_ns=until_ns))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(1, 2**31),
       name=st.sampled_from(["msgq-pingpong", "msgq-backpressure", "doorbell"]))
def test_a_seed_changes_only_the_capids_and_a_run_repeats_byte_for_byte(
        seed: int, name: str) -> None:
    """design.md §3.2: same scenario and seed, byte-identical JSONL. The seed only draws
    the CSpaces' mult and base (facts §1.1), so runs with two seeds are the same story
    once each capid is replaced by what it names."""
    text = run_jsonl(name, seed, 1 * MS)
    assert run_jsonl(name, seed, 1 * MS) == text
    runs = []
    for s in (seed, 0):
        sim = Simulation(load(name), seed=s)
        runs.append(seedless(sim, sim.trace.take() + sim.run(until_ns=1 * MS)))
    assert runs[0] == runs[1]


def test_capids_are_the_documented_draw_of_the_seed() -> None:
    """facts §1.1: each CSpace, in creation order (the RM's master caps, then each VM),
    draws mult (non-zero u16) then base; a VM's caps fill slots 0, 1, 2 ... so its
    capids are exactly (i * mult) ^ base."""
    for seed in (0, 7, 2**31):
        sim = Simulation(load("msgq-pingpong"), seed=seed)
        draw = __import__("random").Random(seed)
        draw.randrange(1, 1 << 16), draw.randrange(0, 1 << 48)  # the RM's master CSpace
        for vm in sim.hyp.vms.values():
            mult, base = draw.randrange(1, 1 << 16), draw.randrange(0, 1 << 48)
            held = sorted(row["capid"] for row in vm.cspace.table({}))
            assert held == sorted((i * mult) ^ base for i in range(len(held))), vm.name


def capids(seed: int) -> list[int]:
    sim = Simulation(load("msgq-pingpong"), seed=seed)
    return [r["capid"] for vm in sim.hyp.vms.values() for r in vm.resources.values()]


@settings(max_examples=20, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**31), min_size=2, max_size=2, unique=True))
def test_different_seeds_give_different_capids(seeds: list[int]) -> None:
    first, second = capids(seeds[0]), capids(seeds[1])
    assert first != second
    assert all(0 <= c < 2**53 for c in first + second)
