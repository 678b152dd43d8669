"""The virtual GIC: shared vIRQ range, binding errors, edge merging, level re-check, WFI wake."""

from __future__ import annotations

import pytest

from gunyah_core import Hypervisor
from gunyah_core.consts import Error
from gunyah_core.errors import HypError
from gunyah_core.vm.vic import EDGE, LEVEL, VirqSource
from tests.core.conftest import MS, US, add_vm, project, run_until, set_program, start


@pytest.fixture
def vm(hyp: Hypervisor):
    vm = add_vm(hyp, "V", (0,))
    hyp.trace.take()
    return vm


def bind_error(vm, source: VirqSource, virq: int, trigger: str = EDGE) -> Error:
    with pytest.raises(HypError) as info:
        vm.vic.bind(source, virq, trigger)
    return info.value.error


def deliver_all(vm) -> list[int]:
    vcpu, out = vm.vcpus[0], []
    while (virq := vm.vic.acknowledge(vcpu)) is not None:
        out.append(virq)
        vm.vic.eoi(vcpu, virq)
    return out


@pytest.mark.parametrize("virq", [0, 15, 31, 1020, 1023, 4096])
def test_only_shared_range_binds(vm, virq: int) -> None:
    assert bind_error(vm, VirqSource("s"), virq) is Error.ARGUMENT_INVALID


@pytest.mark.parametrize("virq", [32, 1019])
def test_shared_range_edges_bind(vm, hyp, virq: int) -> None:
    vm.vic.bind(VirqSource("s"), virq, LEVEL)
    assert project(hyp.trace.take(), "vm", "virq", "source", "trigger") == [
        ("virq.bind", "V", virq, "s", LEVEL)]


def test_busy_and_virq_bound(vm) -> None:
    first, second = VirqSource("first"), VirqSource("second")
    vm.vic.bind(first, 100)
    assert bind_error(vm, second, 100) is Error.BUSY  # number taken
    assert bind_error(vm, first, 101) is Error.VIRQ_BOUND  # source already bound
    vm.vic.unbind(first)
    vm.vic.unbind(first)  # unbinding an unbound source is fine
    vm.vic.bind(second, 100)
    assert vm.vic.sources == {100: second}


def test_unbind_forgets_the_line_and_is_traced(vm, hyp) -> None:
    src = VirqSource("s")
    vm.vic.bind(src, 100, LEVEL)
    src.assert_()
    hyp.trace.take()
    vm.vic.unbind(src)
    assert (vm.vic.sources, vm.vic.trigger, vm.vic.route, vm.vic.pending) == ({}, {}, {}, set())
    assert project(hyp.trace.take(), "virq", "source") == [("virq.unbind", 100, "s")]


def test_edge_asserts_merge_while_pending(vm, hyp) -> None:
    src = VirqSource("s")
    vm.vic.bind(src, 40)
    hyp.trace.take()
    src.assert_()
    src.assert_()
    src.assert_()
    assert project(hyp.trace.take(), "virq") == [("virq.assert", 40)]
    assert deliver_all(vm) == [40]
    assert project(hyp.trace.take(), "virq", "source") == [
        ("virq.deliver", 40, "s"), ("virq.eoi", 40, "s")]
    src.assert_()  # no longer pending: a new edge
    assert project(hyp.trace.take(), "virq") == [("virq.assert", 40)]


def test_edge_reasserted_while_active_pends_again(vm, hyp) -> None:
    src = VirqSource("s")
    vm.vic.bind(src, 40)
    src.assert_()
    vcpu = vm.vcpus[0]
    assert vm.vic.acknowledge(vcpu) == 40
    assert vm.vic.active == {40}
    src.assert_()  # arrives during the handler: latched
    vm.vic.eoi(vcpu, 40)
    assert (vm.vic.active, vm.vic.pending) == (set(), {40})
    hyp.trace.take()
    assert deliver_all(vm) == [40]


def test_level_recheck_at_eoi_repends(vm, hyp) -> None:
    state = {"level": True}
    src = VirqSource("lvl", lambda: state["level"])
    vm.vic.bind(src, 50, LEVEL)
    src.assert_()
    vcpu = vm.vcpus[0]
    hyp.trace.take()
    assert vm.vic.acknowledge(vcpu) == 50
    vm.vic.eoi(vcpu, 50)  # condition still true: pending again
    assert project(hyp.trace.take(), "virq") == [
        ("virq.deliver", 50), ("virq.eoi", 50), ("virq.assert", 50)]
    assert vm.vic.acknowledge(vcpu) == 50
    state["level"] = False
    vm.vic.eoi(vcpu, 50)
    assert project(hyp.trace.take(), "virq") == [("virq.deliver", 50), ("virq.eoi", 50)]
    assert vm.vic.pending == set()


def test_level_latched_by_an_assert_is_delivered_and_not_repended_once_gone(vm, hyp) -> None:
    state = {"level": True}
    src = VirqSource("lvl", lambda: state["level"])
    vm.vic.bind(src, 50, LEVEL)
    src.assert_()
    state["level"] = False
    hyp.trace.take()
    assert vm.vic.acknowledge(vm.vcpus[0]) == 50
    vm.vic.eoi(vm.vcpus[0], 50)
    assert project(hyp.trace.take(), "virq") == [("virq.deliver", 50), ("virq.eoi", 50)]
    assert not vm.vic.pending


def test_edge_only_assert_ignored_by_level_vIRQ(vm, hyp) -> None:
    lvl, edge = VirqSource("lvl", lambda: True), VirqSource("edge")
    vm.vic.bind(lvl, 60, LEVEL)
    vm.vic.bind(edge, 61, EDGE)
    hyp.trace.take()
    lvl.assert_(edge_only=True)
    edge.assert_(edge_only=True)
    assert project(hyp.trace.take(), "virq") == [("virq.assert", 61)]


def test_lowest_intid_delivered_first(vm) -> None:
    sources = {virq: VirqSource(f"s{virq}") for virq in (900, 33, 500)}
    for virq, src in sources.items():
        vm.vic.bind(src, virq)
        src.assert_()
    assert deliver_all(vm) == [33, 500, 900]


def test_clear_removes_pending(vm, hyp) -> None:
    src = VirqSource("s")
    vm.vic.bind(src, 70)
    src.assert_()
    src.clear()
    src.clear()  # clearing a non-pending vIRQ traces nothing
    assert project(hyp.trace.take(), "virq", kinds={"virq.clear"}) == [("virq.clear", 70)]
    assert deliver_all(vm) == []


def test_wfi_vcpu_wakes_on_assert_and_takes_the_virq(hyp: Hypervisor) -> None:
    a = add_vm(hyp, "A", (0,))
    b = add_vm(hyp, "B", (1,))
    hyp.create_doorbell("bell", a, b)
    set_program(b, "bell-handler", work_ns=10 * US)
    start(hyp, b)
    run_until(hyp, 100 * US)
    vcpu = b.vcpus[0]
    assert vcpu.sched_state == "wfi"
    hyp.engine.schedule(1 * MS - hyp.engine.now, hyp.doorbells["bell"].send, 1)
    events = run_until(hyp, 2 * MS)
    virq = b.resources["bell:rx"]["virq"]
    assert [(e["kind"], e.get("state")) for e in events
            if e["kind"] in ("virq.assert", "vcpu.state", "virq.deliver", "virq.eoi")] == [
        ("virq.assert", None), ("vcpu.state", "running"), ("virq.deliver", None),
        ("virq.eoi", None), ("vcpu.state", "wfi")]
    assert {e["virq"] for e in events if e["kind"].startswith("virq.")} == {virq}
    assert events[0]["t"] == 1 * MS


def test_a_vIRQ_routed_to_vcpu_1_is_taken_only_by_vcpu_1(hyp: Hypervisor) -> None:
    vm = add_vm(hyp, "V2", (0, 1))
    v0, v1 = vm.vcpus
    to_1, to_0 = VirqSource("to1"), VirqSource("to0")
    vm.vic.bind(to_1, 40, EDGE, vcpu_index=1)
    to_1.assert_()
    assert (vm.vic.has_pending(0), vm.vic.has_pending(1)) == (False, True)
    assert vm.vic.acknowledge(v0) is None  # the only pending vIRQ is not v0's
    vm.vic.bind(to_0, 41, EDGE, vcpu_index=0)
    to_0.assert_()
    assert vm.vic.acknowledge(v0) == 41  # two pending: v0 takes its own, not the lower 40
    assert vm.vic.acknowledge(v0) is None
    assert vm.vic.acknowledge(v1) == 40
    assert (vm.vic.has_pending(0), vm.vic.has_pending(1)) == (False, False)


def test_unbind_drops_an_active_vIRQ_and_ignores_another_vics_source(hyp: Hypervisor) -> None:
    a, b = add_vm(hyp, "A", (0,)), add_vm(hyp, "B", (1,))
    src, other = VirqSource("s"), VirqSource("o")
    assert (src.vic, src.virq) == (None, 0)  # unbound: the views show vIRQ 0
    a.vic.bind(src, 100, LEVEL)
    b.vic.bind(other, 100, LEVEL)
    src.assert_()
    assert a.vic.acknowledge(a.vcpus[0]) == 100
    b.vic.unbind(src)  # not B's: nothing happens
    assert (src.vic, src.virq, a.vic.active) == (a.vic, 100, {100})
    a.vic.unbind(src)
    assert (src.vic, src.virq, a.vic.active, b.vic.sources) == (None, 0, set(), {100: other})
    src.assert_()  # unbound: asserts go nowhere
    assert a.vic.pending == set()
    hyp.trace.take()
    a.vic.eoi(a.vcpus[0], 100)  # a stale EOI after unbind is harmless and says so
    assert project(hyp.trace.take(), "virq", "source") == [("virq.eoi", 100, "unbound")]


def test_a_vcpu_finds_no_vIRQ_when_the_pending_ones_are_routed_elsewhere(hyp) -> None:
    vm = add_vm(hyp, "W", (0, 1))
    v0, v1 = vm.vcpus
    for virq in (100, 101):
        src = VirqSource(f"s{virq}")
        vm.vic.bind(src, virq, EDGE, vcpu_index=1)
        src.assert_()
    assert not vm.vic.has_pending_for(v0) and vm.vic.has_pending_for(v1)
    assert vm.vic.acknowledge(v0) is None
    assert vm.vic.acknowledge(v1) == 100


def test_the_first_shared_vIRQ_32_is_asked_again_at_eoi(vm) -> None:
    src = VirqSource("s", check_pending=lambda: True)
    vm.vic.bind(src, 32, LEVEL)
    src.assert_()
    v0 = vm.vcpus[0]
    assert vm.vic.acknowledge(v0) == 32
    vm.vic.eoi(v0, 32)
    assert vm.vic.pending == {32} and vm.vic.active == set()
