"""The model against much simpler references, over random operation sequences.

Each reference is a few lines written from the source, not from the model: a doorbell is
an integer of flags, two masks and the two bits of its vIRQ (pending, active), stepped by
the rules of hyp/ipc/doorbell/src/doorbell.c and the vIRQ re-check at EOI (facts §4,
§9.1). Any difference in a return value, an error, the flags or the vIRQ state fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gunyah_core import Hypervisor
from gunyah_core.consts import DOORBELL_FLAGS_MASK, Error
from tests.core.conftest import add_vm, capid, make_pair, run_until, set_program

ALL = DOORBELL_FLAGS_MASK
# Few distinct bits, so that masks and flags overlap often.
BITS = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 0x8000_0000_0000_0000, ALL])


@dataclass
class RefBell:
    """doorbell.c in a dozen lines, plus the vIRQ's pending and active bits."""

    level_trigger: bool
    flags: int = 0
    enable: int = ALL
    ack: int = 0
    pending: bool = False
    active: bool = False

    def send(self, new: int) -> int:
        old, self.flags = self.flags, self.flags | new
        level = bool(self.flags & self.enable)
        if level or not self.level_trigger:  # an edge-only assert does nothing to a level line
            self.pending = True
        if level:
            self.flags &= ~self.ack
        return old

    def receive(self, clear: int) -> int | Error:
        if clear == 0:
            return Error.ARGUMENT_INVALID
        old, self.flags = self.flags, self.flags & ~clear
        return old

    def mask(self, enable: int, ack: int) -> None:
        was, now = bool(self.flags & self.enable), bool(self.flags & enable)
        self.enable, self.ack = enable, ack
        if was and not now:
            self.pending = False
        elif now:
            self.pending = self.pending or not was
            self.flags &= ~ack

    def reset(self) -> None:
        self.flags, self.enable, self.ack, self.pending = 0, ALL, 0, False

    def acknowledge(self) -> bool:
        taken = self.pending and not self.active
        if taken:
            self.pending, self.active = False, True
        return taken

    def eoi(self) -> None:
        self.active = False
        if self.level_trigger and self.flags & self.enable:
            self.pending = True


OPS = st.one_of(
    st.tuples(st.just("send"), BITS),
    st.tuples(st.just("receive"), BITS),
    st.tuples(st.just("mask"), BITS, BITS),
    st.tuples(st.just("reset")),
    st.tuples(st.just("ack")),
    st.tuples(st.just("eoi")),
)


@settings(max_examples=150, deadline=None)
@given(level=st.booleans(), ops=st.lists(OPS, max_size=25))
def test_doorbell_and_its_vIRQ_follow_the_reference(level: bool, ops: list[tuple]) -> None:
    p = make_pair(doorbell=True, bell_trigger="level" if level else "edge")
    bell, vic, vcpu = p.hyp.doorbells["bell"], p.b.vic, p.vb
    src, rx, virq = capid(p.a, "bell:src"), capid(p.b, "bell:rx"), bell.source.virq
    ref = RefBell(level_trigger=level)
    for op, *args in ops:
        if op == "send":
            result = p.call_a("doorbell_send", capid=src, new_flags=args[0])
            assert (result.error, result["old_flags"]) == (Error.OK, ref.send(args[0]))
        elif op == "receive":
            result = p.call_b("doorbell_receive", capid=rx, clear_flags=args[0])
            expected = ref.receive(args[0])
            if isinstance(expected, Error):
                assert result.error is expected
            else:
                assert (result.error, result["old_flags"]) == (Error.OK, expected)
        elif op == "mask":
            assert p.call_b("doorbell_mask", capid=rx, enable_mask=args[0],
                            ack_mask=args[1]).error is Error.OK
            ref.mask(*args)
        elif op == "reset":
            assert p.call_b("doorbell_reset", capid=rx).error is Error.OK
            ref.reset()
        elif op == "ack":
            if virq in vic.active:
                continue  # a vCPU takes no second interrupt inside its handler
            assert (vic.acknowledge(vcpu) == virq) is ref.acknowledge()
        elif ref.active:  # eoi only ends a handler that runs
            vic.eoi(vcpu, virq)
            ref.eoi()
        state = (bell.flags, bell.enable_mask, bell.ack_mask, virq in vic.pending,
                 virq in vic.active)
        assert state == (ref.flags, ref.enable, ref.ack, ref.pending, ref.active), op


# --- FPRR: a priority list per level, and the three rules of facts §7.1 ----------------------
US = 1_000
SLICES = st.sampled_from([100 * US, 300 * US, 1_000 * US])
PRIOS = st.sampled_from([10, 32, 32, 50])  # equal priorities often: FIFO order matters


class RefFprr:
    """One pCPU of always-busy threads: a higher priority preempts at once and the preempted
    thread goes to the head of its list keeping the rest of its slice; an expired slice
    goes to the tail with a fresh slice if anything of equal or higher priority waits; a
    woken thread gets a fresh slice at the tail (scheduler_fprr.c get_next_target,
    update_timeslice, add_thread_to_scheduler); the simulator's live priority control
    re-places a thread as the model's set_priority documents. A wake and an expiry at the
    same instant make it give up (``tie``): that case is left to the scheduler's tests."""

    def __init__(self, prio: list[int], slices: list[int]) -> None:
        self.prio, self.slices = prio, slices
        self.left = list(slices)
        self.lists: dict[int, list[int]] = {}
        self.cur: int | None = None
        self.end = 0  # when the current slice runs out
        self.off = set(range(len(prio)))
        self.switches: list[tuple] = []
        self.tie = False

    def _waiting(self) -> int:
        return max((p for p, q in self.lists.items() if q), default=-1)

    def _switch(self, t: int, nxt: int | None, reason: str) -> None:
        self.switches.append((t, self.cur, nxt, reason))
        self.cur = nxt
        if nxt is not None:
            self.end = t + self.left[nxt]

    def _run_until(self, t: int) -> None:
        while self.cur is not None and self.end <= t:
            if self.end == t:
                self.tie = True
            now, cur = self.end, self.cur
            self.left[cur] = self.slices[cur]
            if self._waiting() >= self.prio[cur]:
                self.lists[self.prio[cur]].append(cur)
                self._switch(now, self.lists[self._waiting()].pop(0), "timeslice")
            else:
                self.end = now + self.left[cur]

    def power_on(self, t: int, v: int) -> None:
        self._run_until(t)
        if v not in self.off:
            return
        self.off.discard(v)
        self.left[v] = self.slices[v]
        if self.cur is None:
            self._switch(t, v, "wake:vcpu_off")
        elif self.prio[v] > self.prio[self.cur]:
            self.left[self.cur] = self.end - t
            self.lists.setdefault(self.prio[self.cur], []).insert(0, self.cur)
            self._switch(t, v, "preempt")
        else:
            self.lists.setdefault(self.prio[v], []).append(v)

    def set_priority(self, t: int, v: int, prio: int) -> None:
        """The simulator's live priority control: the running thread is re-compared
        with the waiting ones; a queued one leaves its list and is placed as a wake."""
        self._run_until(t)
        if v == self.cur:
            self.prio[v] = prio
            if self._waiting() > prio:
                self.left[v] = self.end - t
                self.lists.setdefault(prio, []).insert(0, v)
                self._switch(t, self.lists[self._waiting()].pop(0), "preempt")
        elif v not in self.off:
            self.lists[self.prio[v]].remove(v)
            self.prio[v] = prio
            self.off.add(v)
            self.power_on(t, v)
        else:
            self.prio[v] = prio

    def power_off(self, t: int, v: int) -> None:
        self._run_until(t)
        if v in self.off:
            return
        self.off.add(v)
        if v == self.cur:
            best = self._waiting()
            self._switch(t, self.lists[best].pop(0) if best >= 0 else None, "block:vcpu_off")
        else:
            self.lists[self.prio[v]].remove(v)


@settings(max_examples=150, deadline=None)
@given(threads=st.lists(st.tuples(PRIOS, SLICES, st.integers(0, 1_500_000)), min_size=1,
                        max_size=4),
       ops=st.lists(st.tuples(st.integers(0, 3_000_000), st.sampled_from(["on", "off", "prio"]),
                              st.integers(0, 3), PRIOS), max_size=10))
def test_fprr_switches_follow_the_reference(threads, ops) -> None:
    hyp = Hypervisor(seed=1, pcpus=1)
    vcpus = []
    for i, (prio, slice_ns, _) in enumerate(threads):
        vm = add_vm(hyp, f"T{i}", (0,), priority=prio, timeslice_ns=slice_ns)
        set_program(vm, "spin", work_ns=50 * US)
        vcpus.append(vm.vcpus[0])
    hyp.trace.take()
    ref = RefFprr([p for p, _, _ in threads], [s for _, s, _ in threads])
    ops = [(t, "on", i, 0) for i, (_, _, t) in enumerate(threads)] + [
        (t, kind, v % len(threads), prio) for t, kind, v, prio in ops]
    assume(len({op[0] for op in ops}) == len(ops))  # one operation at a time
    ops.sort()
    for t, kind, v, prio in ops:
        if kind == "prio":
            hyp.engine.schedule(t, lambda v=vcpus[v], p=prio: v.sched.set_priority(v, p))
        else:
            hyp.engine.schedule(t, hyp.power_on if kind == "on" else hyp.power_off, vcpus[v])
        if kind == "prio":
            ref.set_priority(t, v, prio)
        else:
            (ref.power_on if kind == "on" else ref.power_off)(t, v)
    end = 4_000_000
    ref._run_until(end)
    assume(not ref.tie)
    names = [v.id for v in vcpus]
    got = [(e["t"], e["prev"], e["next"], e["reason"]) for e in run_until(hyp, end)
           if e["kind"] == "sched.switch"]
    want = [(t, None if p is None else names[p], None if n is None else names[n], r)
            for t, p, n, r in ref.switches]
    assert got == want
