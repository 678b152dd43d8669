"""The model against much simpler references, over random operation sequences.

Each reference is a few lines written from the source, not from the model: a doorbell is
an integer of flags, two masks and the two bits of its vIRQ (pending, active), stepped by
the rules of hyp/ipc/doorbell/src/doorbell.c and the vIRQ re-check at EOI (facts §4,
§9.1). Any difference in a return value, an error, the flags or the vIRQ state fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gunyah_core.consts import DOORBELL_FLAGS_MASK, Error
from tests.core.conftest import capid, make_pair

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
