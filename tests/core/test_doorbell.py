"""Doorbells through the hypercall table: flags, masks, resets and the vIRQ (facts §4)."""

from __future__ import annotations

from gunyah_core.consts import DOORBELL_FLAGS_MASK, Error
from gunyah_core.rm.overlay import hypervisor_node
from tests.core.conftest import Pair, capid, make_pair, project

SRC = "doorbell:bell"
ALL = DOORBELL_FLAGS_MASK
VIRQ_KINDS = {"virq.assert", "virq.clear"}


def bell_pair(**kw) -> Pair:
    return make_pair(doorbell=True, **kw)


def ring(p: Pair, flags: int):
    return p.call_a("doorbell_send", capid=capid(p.a, "bell:src"), new_flags=flags)


def take_flags(p: Pair, clear: int):
    return p.call_b("doorbell_receive", capid=capid(p.b, "bell:rx"), clear_flags=clear)


def mask(p: Pair, enable: int, ack: int):
    return p.call_b("doorbell_mask", capid=capid(p.b, "bell:rx"), enable_mask=enable,
                    ack_mask=ack)


def bell_virq(p: Pair) -> int:
    return p.hyp.doorbells["bell"].source.virq


def settle(p: Pair) -> None:
    vcpu = p.vb
    while (virq := p.b.vic.acknowledge(vcpu)) is not None:
        p.b.vic.eoi(vcpu, virq)
    p.take()


def test_defaults() -> None:
    bell = bell_pair().hyp.doorbells["bell"]
    assert (bell.flags, bell.enable_mask, bell.ack_mask) == (0, ALL, 0)


def test_send_returns_old_flags_and_ors() -> None:
    p = bell_pair()
    first, second, third = ring(p, 0b01), ring(p, 0b10), ring(p, 0b100)
    assert [(r.error, r["old_flags"]) for r in (first, second, third)] == [
        (Error.OK, 0), (Error.OK, 0b01), (Error.OK, 0b11)]
    assert p.hyp.doorbells["bell"].flags == 0b111
    # The first send asserts; later ones merge into the still-pending vIRQ.
    assert project(p.take(), "old", "flags", "source") == [
        ("bell.send", 0, 0b01, None), ("virq.assert", None, None, SRC), ("hvc", None, None, None),
        ("bell.send", 0b01, 0b11, None), ("hvc", None, None, None),
        ("bell.send", 0b11, 0b111, None), ("hvc", None, None, None)]


def test_ack_mask_auto_clears_on_level_assert() -> None:
    p = bell_pair()
    assert mask(p, enable=0x2, ack=0x2).ok
    p.take()
    result = ring(p, 0x2)
    assert (result.error, result["old_flags"]) == (Error.OK, 0)
    assert p.hyp.doorbells["bell"].flags == 0  # asserted, then the ack bit cleared itself
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.assert", SRC)]
    settle(p)
    assert ring(p, 0x2)["old_flags"] == 0  # every send raises one interrupt
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.assert", SRC)]


def test_disabled_flag_is_edge_only_and_not_acked() -> None:
    p = bell_pair()
    mask(p, enable=0x2, ack=0x1)
    p.take()
    ring(p, 0x1)  # not enabled: an edge-only assert, no ack auto-clear
    assert p.hyp.doorbells["bell"].flags == 0x1
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.assert", SRC)]


def test_disabled_flag_does_nothing_to_a_level_vIRQ() -> None:
    p = bell_pair(bell_trigger="level")
    mask(p, enable=0x2, ack=0)
    p.take()
    ring(p, 0x1)
    assert project(p.take(), kinds=VIRQ_KINDS) == []
    assert p.b.vic.pending == set()


def test_receive_zero_mask_is_argument_invalid() -> None:
    p = bell_pair()
    ring(p, 0b11)
    p.take()
    assert take_flags(p, 0).error is Error.ARGUMENT_INVALID
    assert p.hyp.doorbells["bell"].flags == 0b11
    assert project(p.take(), "result") == [("hvc", "ARGUMENT_INVALID")]


def test_receive_returns_old_flags_and_clears_only_the_mask() -> None:
    p = bell_pair()
    ring(p, 0b1011)
    p.take()
    first = take_flags(p, 0b0001)
    second = take_flags(p, ALL)
    assert (first["old_flags"], second["old_flags"]) == (0b1011, 0b1010)
    assert p.hyp.doorbells["bell"].flags == 0
    assert project(p.take(), "old", "clear", "flags", kinds={"bell.recv"}) == [
        ("bell.recv", 0b1011, 0b0001, 0b1010), ("bell.recv", 0b1010, ALL, 0)]


def test_mask_transitions_assert_and_clear() -> None:
    p = bell_pair()
    mask(p, enable=0, ack=0)
    ring(p, 0x1)  # flags set but disabled
    settle(p)
    bell = p.hyp.doorbells["bell"]
    assert mask(p, enable=0x1, ack=0).ok  # zero -> non-zero: assert
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.assert", SRC)]
    assert bell.flags == 0x1
    assert mask(p, enable=0x0, ack=0).ok  # non-zero -> zero: clear
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.clear", SRC)]
    ring(p, 0x4)
    assert mask(p, enable=0x5, ack=0).ok  # zero -> non-zero again
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.assert", SRC)]
    settle(p)
    assert mask(p, enable=0x5, ack=0x4).ok  # non-zero -> non-zero: ack bits clear, no assert
    assert bell.flags == 0x1
    assert project(p.take(), kinds=VIRQ_KINDS) == []
    assert mask(p, enable=0x5, ack=0x1).ok  # non-zero -> non-zero: ack clears flag 0x1
    assert bell.flags == 0


def test_reset_restores_defaults_and_clears_vIRQ() -> None:
    p = bell_pair()
    mask(p, enable=0x3, ack=0x0)
    ring(p, 0x1)
    p.take()
    assert p.call_b("doorbell_reset", capid=capid(p.b, "bell:rx")).ok
    bell = p.hyp.doorbells["bell"]
    assert (bell.flags, bell.enable_mask, bell.ack_mask) == (0, ALL, 0)
    assert project(p.take(), "source", "flags") == [
        ("virq.clear", SRC, None), ("bell.reset", None, 0), ("hvc", None, None)]
    assert p.b.vic.pending == set()


def test_rights_send_vs_receive() -> None:
    p = bell_pair()
    src, rx = capid(p.a, "bell:src"), capid(p.b, "bell:rx")
    denied = Error.CSPACE_INSUFFICIENT_RIGHTS
    assert p.call_a("doorbell_receive", capid=src, clear_flags=1).error is denied
    assert p.call_a("doorbell_mask", capid=src, enable_mask=1, ack_mask=0).error is denied
    assert p.call_a("doorbell_reset", capid=src).error is denied
    assert p.call_b("doorbell_send", capid=rx, new_flags=1).error is denied


def test_source_can_clear_gets_receive() -> None:
    p = bell_pair(source_can_clear=True)
    ring(p, 0x3)
    result = p.call_a("doorbell_receive", capid=capid(p.a, "bell:src"), clear_flags=0x1)
    assert (result.error, result["old_flags"]) == (Error.OK, 0x3)


def test_level_vIRQ_latched_by_its_assert_is_delivered_once_then_not_repended() -> None:
    """The assert latched it pending (so the irqfd idiom, flags auto-cleared by the ack
    mask, still interrupts once); the level is re-checked at EOI, where it is gone."""
    p = bell_pair(bell_trigger="level")
    ring(p, 0x1)
    take_flags(p, ALL)
    p.take()
    virq = p.b.vic.acknowledge(p.vb)
    assert virq == bell_virq(p)
    p.b.vic.eoi(p.vb, virq)
    assert project(p.take(), "source") == [("virq.deliver", SRC), ("virq.eoi", SRC)]
    assert not p.b.vic.pending


def test_irqfd_idiom_each_send_interrupts_once_and_the_flag_clears_itself() -> None:
    p = bell_pair(bell_trigger="level")
    p.call_b("doorbell_mask", capid=capid(p.b, "bell:rx"), enable_mask=1, ack_mask=1)
    p.take()
    ring(p, 0x1)
    sent = [e for e in p.take() if e["kind"] == "bell.send"][0]
    assert (sent["old"], sent["flags"], sent["acked"]) == (0, 0, 1)
    virq = p.b.vic.acknowledge(p.vb)
    assert virq == bell_virq(p)
    p.b.vic.eoi(p.vb, virq)
    assert not p.b.vic.pending


def test_level_vIRQ_re_pends_at_EOI_while_an_enabled_flag_stays_set() -> None:
    """vic re-asks a level source at EOI (facts §9.1; doorbell.c
    doorbell_handle_virq_check_pending): flags & enable_mask still non-zero -> pending."""
    p = bell_pair(bell_trigger="level")
    ring(p, 0x1)  # ack mask 0: the flag stays set
    p.take()
    virq = p.b.vic.acknowledge(p.vb)
    p.b.vic.eoi(p.vb, virq)
    assert project(p.take(), "source", kinds={"virq.eoi", *VIRQ_KINDS}) == [
        ("virq.eoi", SRC), ("virq.assert", SRC)]
    assert p.b.vic.pending == {bell_virq(p)}
    take_flags(p, 0x1)  # the flag is gone: the next EOI lets the vIRQ rest
    p.b.vic.eoi(p.vb, p.b.vic.acknowledge(p.vb))
    assert p.b.vic.pending == set()


def test_mask_change_keeping_an_enabled_flag_leaves_the_vIRQ_pending() -> None:
    """doorbell.c doorbell_mask: was and now asserted -> no virq_clear, only the ack."""
    p = bell_pair()
    ring(p, 0x1)
    p.take()
    assert mask(p, enable=0x3, ack=0x0).ok
    assert project(p.take(), kinds=VIRQ_KINDS) == []
    assert p.b.vic.pending == {bell_virq(p)}
    assert p.hyp.doorbells["bell"].flags == 0x1


def test_mask_enabling_a_set_flag_asserts_then_auto_clears_the_ack_bits() -> None:
    """doorbell.c doorbell_mask: !was && now -> virq_assert, then flags &= ~ack_mask."""
    p = bell_pair()
    mask(p, enable=0, ack=0)
    ring(p, 0x3)
    settle(p)
    assert mask(p, enable=0x1, ack=0x2).ok
    assert project(p.take(), "source", kinds=VIRQ_KINDS) == [("virq.assert", SRC)]
    assert p.hyp.doorbells["bell"].flags == 0x1


def test_every_bell_event_names_both_ends_and_the_overlay_labels_it_by_its_oid() -> None:
    """A doorbell knows its two VMs to the end: send, receive, mask and its destruction
    name sender and receiver. Its oid is its DT label in the RM's overlay (rm/overlay.py,
    ``label``), the object made right after the pair's queue."""
    p = bell_pair()
    hyp = p.hyp
    bell = hyp.doorbells["bell"]
    assert bell.oid == hyp.msgqs["q"].oid + 1
    node = hypervisor_node(hyp, p.b).split(f"bell@{capid(p.b, 'bell:rx'):x} {{")[1]
    assert node.split("};")[0].count(f"label = <{bell.oid}>;") == 2  # qcom,label and label
    p.take()
    assert ring(p, 1).ok and take_flags(p, 1).ok and mask(p, ALL, 0).ok
    hyp.destroy_object(bell)
    assert project(p.take(), "src", "dst", kinds={"bell.send", "bell.recv", "bell.mask",
                                                  "obj.destroy"}) == [
        ("bell.send", "VM_A", "VM_B"), ("bell.recv", "VM_A", "VM_B"),
        ("bell.mask", "VM_A", "VM_B"), ("obj.destroy", "VM_A", "VM_B")]
