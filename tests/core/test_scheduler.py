"""FPRR scheduling on hand-built machines: whole sched.switch sequences with times (facts §7.1)."""

from __future__ import annotations

from functools import partial

from gunyah_core import Hypervisor, Simulation, load
from gunyah_core.consts import (
    SCHEDULER_DEFAULT_PRIORITY,
    SCHEDULER_DEFAULT_TIMESLICE_NS,
    SCHEDULER_MAX_TIMESLICE_NS,
    SCHEDULER_MIN_TIMESLICE_NS,
    SIM_CONTEXT_SWITCH_NS,
    SIM_SYSREG_ACCESS_NS,
    SIM_VIRQ_DELIVERY_NS,
    Error,
    ObjectState,
    ThreadRights,
)
from gunyah_core.guest.programs import Guest, work
from gunyah_core.vm.vcpu import Vcpu
from gunyah_core.vm.vic import VirqSource
from gunyah_core.vm.vtimer import ns_to_ticks, ticks_to_ns
from tests.core.conftest import MS, US, add_vm, hvc, run_until, set_program, start

SLICE = 1 * MS
BURST_NS = 200 * US
SPIN_CHUNK_NS = 50 * US


class Burst(Guest):
    """Works once for ``BURST_NS`` then waits in WFI: a short high-priority job."""

    program = "burst"

    def run(self, vcpu: Vcpu):
        yield work(BURST_NS)


class Napper(Guest):
    """Uses most of its slice, sleeps on its timer (blocks in WFI) for a while, then
    computes for good."""

    program = "napper"

    def run(self, vcpu: Vcpu):
        yield work(NAP_AFTER_NS)
        yield from self.timer_sleep(vcpu, NAP_NS)
        while True:
            yield work(SPIN_CHUNK_NS)


NAP_AFTER_NS = 800 * US
NAP_NS = 500 * US


def switches(events, pcpu: int | None = None) -> list[tuple]:
    return [(e["t"], e["pcpu"], e["prev"], e["next"], e["reason"]) for e in events
            if e["kind"] == "sched.switch" and (pcpu is None or e["pcpu"] == pcpu)]


def spinners(hyp: Hypervisor, *names: str, pcpu: int = 0, priority: int = 32):
    vms = []
    for name in names:
        vm = add_vm(hyp, name, (pcpu,), priority=priority, timeslice_ns=SLICE)
        set_program(vm, "spin", work_ns=SPIN_CHUNK_NS)
        vms.append(vm)
    return vms


def test_round_robin_over_several_slices(hyp: Hypervisor) -> None:
    a, b, c = spinners(hyp, "A", "B", "C")
    start(hyp, a, b, c)
    events = run_until(hyp, 5 * MS)
    assert switches(events) == [
        (0, 0, None, "A.0", "wake:vcpu_off"),
        (1 * MS, 0, "A.0", "B.0", "timeslice"),
        (2 * MS, 0, "B.0", "C.0", "timeslice"),
        (3 * MS, 0, "C.0", "A.0", "timeslice"),
        (4 * MS, 0, "A.0", "B.0", "timeslice"),
        (5 * MS, 0, "B.0", "C.0", "timeslice"),
    ]


def test_alone_at_its_priority_keeps_running(hyp: Hypervisor) -> None:
    (a,) = spinners(hyp, "A")
    start(hyp, a)
    assert switches(run_until(hyp, 5 * MS)) == [(0, 0, None, "A.0", "wake:vcpu_off")]


def test_higher_priority_preempts_at_once_and_preempted_returns_to_head(hyp) -> None:
    a, b = spinners(hyp, "A", "B")
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    start(hyp, a, b)
    wake_at = 300 * US
    hyp.engine.schedule(wake_at, hyp.power_on, urgent.vcpus[0])
    seq = switches(run_until(hyp, 3 * MS))
    assert seq[:2] == [(0, 0, None, "A.0", "wake:vcpu_off"),
                       (wake_at, 0, "A.0", "U.0", "preempt")]
    t_back, _, prev, nxt, reason = seq[2]
    # U ran its burst (after the context switch in) and blocked; A (at the head, not B)
    # gets the CPU back ...
    assert (prev, nxt, reason) == ("U.0", "A.0", "block:vcpu_wfi")
    assert t_back == wake_at + SIM_CONTEXT_SWITCH_NS + BURST_NS
    # ... with the 700 us it had left, then goes to the tail with a fresh slice.
    left = SLICE - wake_at
    assert seq[3:] == [(t_back + left, 0, "A.0", "B.0", "timeslice"),
                       (t_back + left + SLICE, 0, "B.0", "A.0", "timeslice")]


def test_equal_priority_waits_for_slice_expiry(hyp: Hypervisor) -> None:
    a, b = spinners(hyp, "A", "B")
    start(hyp, a)
    hyp.engine.schedule(300 * US, start, hyp, b)
    events = run_until(hyp, 2 * MS)
    assert switches(events) == [
        (0, 0, None, "A.0", "wake:vcpu_off"),
        (1 * MS, 0, "A.0", "B.0", "timeslice"),
        (2 * MS, 0, "B.0", "A.0", "timeslice"),
    ]
    assert [(e["t"], e["vcpu"], e["state"]) for e in events
            if e["kind"] == "vcpu.state" and e["vcpu"] == "B.0"][:2] == [
        (300 * US, "B.0", "ready"), (1 * MS, "B.0", "running")]


def test_a_woken_thread_gets_a_fresh_slice_at_the_tail(hyp: Hypervisor) -> None:
    """facts §7.1: a wake resets the slice and queues at the tail
    (H-SRC scheduler_fprr.c add_thread_to_scheduler, reset_sched_params)."""
    nap = add_vm(hyp, "Nap", (0,), timeslice_ns=SLICE)
    nap.guest = Napper(nap, {})
    a, b = spinners(hyp, "A", "B")
    start(hyp, nap, a)
    events = run_until(hyp, 5 * MS)
    seq = [(t, prev, nxt, reason) for t, _, prev, nxt, reason in switches(events)]
    # Nap blocks in its sleep after the switch in, its work and arming its timer (two
    # reads, two writes): about 198 us of its slice unused
    t_nap = SIM_CONTEXT_SWITCH_NS + NAP_AFTER_NS + 4 * SIM_SYSREG_ACCESS_NS
    # the timer fires NAP_NS (in counter ticks) after the counter it read
    t_wake = ticks_to_ns(ns_to_ticks(t_nap - 3 * SIM_SYSREG_ACCESS_NS) + ns_to_ticks(NAP_NS))
    assert seq[:2] == [(0, None, "Nap.0", "wake:vcpu_off"),
                       (t_nap, "Nap.0", "A.0", "block:vcpu_wfi")]
    # Nap wakes about 500 us later while A runs: it waits at the tail for A's slice ...
    assert [(e["t"], e["state"]) for e in events if e["kind"] == "vcpu.state"
            and e["vcpu"] == "Nap.0"][:4] == [(0, "running"), (t_nap, "wfi"),
                                              (t_wake, "ready"),
                                              (t_nap + SLICE, "running")]
    # ... then runs a whole fresh slice, not the 200 us it had left when it slept.
    assert seq[2:5] == [(t_nap + SLICE, "A.0", "Nap.0", "timeslice"),
                        (t_nap + 2 * SLICE, "Nap.0", "A.0", "timeslice"),
                        (t_nap + 3 * SLICE, "A.0", "Nap.0", "timeslice")]
    slices = [e["slice_ns"] for e in events if e["kind"] == "sched.switch"]
    assert slices[:4] == [SLICE, SLICE, SLICE, SLICE]
    # B wakes at 5 ms while A runs: it queues at the tail, behind Nap.
    hyp.engine.schedule(0, start, hyp, b)
    later = [(t, prev, nxt) for t, _, prev, nxt, _ in switches(run_until(hyp, 8 * MS))]
    assert later == [(t_nap + 5 * SLICE, "A.0", "Nap.0"), (t_nap + 6 * SLICE, "Nap.0", "B.0"),
                     (t_nap + 7 * SLICE, "B.0", "A.0")]


def test_lower_priority_waits_until_higher_blocks(hyp: Hypervisor) -> None:
    (low,) = spinners(hyp, "Low", priority=10)
    high = add_vm(hyp, "High", (0,), priority=50)
    high.guest = Burst(high, {})
    start(hyp, high, low)
    seq = switches(run_until(hyp, 2 * MS))
    assert [(p, n, r) for _, _, p, n, r in seq] == [
        (None, "High.0", "wake:vcpu_off"), ("High.0", "Low.0", "block:vcpu_wfi")]
    assert seq[1][0] == SIM_CONTEXT_SWITCH_NS + BURST_NS


def test_wfi_blocks_and_virq_wakes(hyp: Hypervisor) -> None:
    a = add_vm(hyp, "A", (0,))
    b = add_vm(hyp, "B", (1,))
    hyp.create_doorbell("bell", a, b)
    set_program(b, "bell-handler", work_ns=10 * US)
    start(hyp, b)
    first = run_until(hyp, 100 * US)
    t_block = first[-1]["t"]
    assert switches(first) == [(0, 1, None, "B.0", "wake:vcpu_off"),
                               (t_block, 1, "B.0", None, "block:vcpu_wfi")]
    assert hyp.vms["B"].vcpus[0].sched_state == "wfi"
    ring = partial(hvc, hyp, a.vcpus[0], "doorbell_send",
                   capid=a.resources["bell:src"]["capid"], new_flags=1)
    hyp.engine.schedule(1 * MS - hyp.engine.now, ring)
    events = run_until(hyp, 2 * MS)
    assert [(e["kind"], e.get("next") or e.get("source")) for e in events
            if e["kind"] in ("virq.assert", "sched.switch", "virq.deliver", "virq.eoi")][:4] == [
        ("virq.assert", "doorbell:bell"), ("sched.switch", "B.0"),
        ("virq.deliver", "doorbell:bell"), ("virq.eoi", "doorbell:bell")]
    wake = switches(events)[0]
    assert wake == (1 * MS, 1, None, "B.0", "wake:vcpu_wfi")
    assert switches(events)[-1][2:] == ("B.0", None, "block:vcpu_wfi")


def test_affinity_is_respected(hyp: Hypervisor) -> None:
    on0 = spinners(hyp, "A", "B", pcpu=0)
    on1 = spinners(hyp, "C", "D", pcpu=1)
    start(hyp, *on0, *on1)
    seq = switches(run_until(hyp, 6 * MS))
    where = {"A.0": 0, "B.0": 0, "C.0": 1, "D.0": 1}
    assert {p for _, p, _, _, _ in seq} == {0, 1}
    for _, pcpu, prev, nxt, _ in seq:
        for vcpu in (prev, nxt):
            if vcpu is not None:
                assert where[vcpu] == pcpu


def test_yield_hands_cpu_to_equal_priority(hyp: Hypervisor) -> None:
    a, b = spinners(hyp, "A", "B")
    start(hyp, a, b)
    run_until(hyp, 100 * US)
    now = hyp.engine.now
    result = hvc(hyp, a.vcpus[0], "scheduler_yield", control=0)
    assert result.ok
    events = hyp.trace.take()
    assert switches(events) == [(now, 0, "A.0", "B.0", "yield")]
    # A gave up the rest of its slice: it comes back with a fresh one, not the 900 us left.
    back = switches(run_until(hyp, 3 * MS))
    assert back[0] == (now + SLICE, 0, "B.0", "A.0", "timeslice")
    assert back[1] == (now + 2 * SLICE, 0, "A.0", "B.0", "timeslice")


def test_yield_alone_restarts_the_slice(hyp: Hypervisor) -> None:
    """H-SRC scheduler_fprr.c scheduler_yield: active_timeslice = 0, so update_timeslice
    sees it expired and resets it, even when nothing else can run (facts §7.1)."""
    a, b = spinners(hyp, "A", "B")
    start(hyp, a)
    run_until(hyp, 300 * US)
    now = hyp.engine.now
    assert hvc(hyp, a.vcpus[0], "scheduler_yield", control=0).ok
    hyp.engine.schedule(500 * US - now, start, hyp, b)  # B waits at the tail from 500 us
    seq = switches(run_until(hyp, 2 * MS))
    assert seq[0] == (now + SLICE, 0, "A.0", "B.0", "timeslice")  # not at 1 ms


def test_yield_hints_the_fprr_scheduler_refuses(hyp: Hypervisor) -> None:
    """hint 2 (yield_lower), unknown hints and the impl_def bit -> ARGUMENT_INVALID
    (H-SRC scheduler_fprr/src/hypercalls.c hypercall_scheduler_yield)."""
    (a,) = spinners(hyp, "A")
    start(hyp, a)
    run_until(hyp, 10 * US)
    for control in (2, 3, 1 << 31):
        result = hvc(hyp, a.vcpus[0], "scheduler_yield", control=control, arg1=0)
        assert result.error is Error.ARGUMENT_INVALID, control
    assert hyp.pcpus[0].current is a.vcpus[0]


def test_directed_yield_runs_the_target_on_the_callers_slice(hyp: Hypervisor) -> None:
    """scheduler_yield hint 1 (arg1 = a thread cap with YIELD_TO): the target runs at
    once on the rest of the caller's slice, ahead of the run list; the caller's slice
    end ends it (H-SRC scheduler_fprr.c scheduler_yield_to, select_yield_target)."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    (c,) = spinners(hyp, "C")
    p0, p1 = p.vcpus
    for vcpu in (p0, c.vcpus[0], p1):
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    now = hyp.engine.now
    assert hyp.pcpus[0].snapshot()["runq"] == ["C.0", "P.1"]
    result = hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources["vcpu1"]["capid"])
    assert result.ok
    events = run_until(hyp, 4 * MS)
    seq = [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
           if e["kind"] == "sched.switch"]
    assert seq[:4] == [
        (now, "P.0", "P.1", "yield_to", SLICE - now),  # C waits: P.1 runs on P.0's slice
        (SLICE, "P.1", "C.0", "timeslice", SLICE),  # P.0's slice is over: P.0 to the tail
        (2 * SLICE, "C.0", "P.1", "timeslice", SLICE),  # P.1's own slice is untouched
        (3 * SLICE, "P.1", "P.0", "timeslice", SLICE)]
    assert [(e["t"], e["state"]) for e in events if e["kind"] == "vcpu.state"
            and e["vcpu"] == "P.0"][:2] == [(now, "yielding"), (SLICE, "ready")]


def test_directed_yield_refusals_and_early_end(hyp: Hypervisor) -> None:
    """A cap without YIELD_TO is refused; a target on another pCPU, blocked or the
    caller itself makes the call return at once; a target that blocks ends the yield
    and the caller runs on with what is left of its slice."""
    p = add_vm(hyp, "P", (0, 0, 1), timeslice_ns=SLICE)
    p.guest = Burst(p, {})
    p.guest.all_vcpus = True
    p0, p1, p2 = p.vcpus
    hyp.power_on(p0)
    run_until(hyp, 50 * US)
    weak = p.cspace.create(p1, ThreadRights.AFFINITY)
    assert hvc(hyp, p0, "scheduler_yield", control=1,
               arg1=weak).error is Error.CSPACE_INSUFFICIENT_RIGHTS
    for key in ("vcpu0", "vcpu1", "vcpu2"):  # itself, off (blocked), other pCPU
        assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources[key]["capid"]).ok
        assert hyp.pcpus[0].current is p0 and hyp.pcpus[0].proxy is None
    hyp.power_on(p1)  # queued behind P.0 (equal priority)
    now = hyp.engine.now
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources["vcpu1"]["capid"]).ok
    events = run_until(hyp, 2 * MS)
    seq = [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
           if e["kind"] == "sched.switch"]
    t_block = seq[1][0]
    assert seq[:2] == [(now, "P.0", "P.1", "yield_to", SLICE - now),
                       (t_block, "P.1", "P.0", "yield_to:return", SLICE - t_block)]
    assert t_block == now + SIM_CONTEXT_SWITCH_NS + BURST_NS  # switched in, then the burst


def _init_thread(hyp: Hypervisor, vm, rights: int) -> tuple[Vcpu, int]:
    """A second thread of ``vm`` built by hand and left in INIT, plus a cap to it."""
    thread = Vcpu(999, vm, 1, hyp.trace)
    assert thread.state is ObjectState.INIT
    return thread, vm.cspace.create(thread, rights)


def test_set_priority_limits_and_state(hyp: Hypervisor) -> None:
    vm = add_vm(hyp, "A", (0,))
    caller = vm.vcpus[0]
    thread, cap = _init_thread(hyp, vm, ThreadRights.PRIORITY | ThreadRights.TIMESLICE)
    assert hvc(hyp, caller, "vcpu_set_priority", capid=cap, priority=63).error is Error.DENIED
    # priority_t is a u32: -1 is 0xffffffff, above 62 (H-SRC hypercall_vcpu_set_priority).
    assert hvc(hyp, caller, "vcpu_set_priority", capid=cap, priority=-1).error is Error.DENIED
    assert hvc(hyp, caller, "vcpu_set_priority", capid=cap, priority=62).ok
    assert thread.priority == 62
    assert hvc(hyp, caller, "vcpu_set_timeslice", capid=cap, timeslice_ns=99_999).error is (
        Error.ARGUMENT_INVALID)
    assert hvc(hyp, caller, "vcpu_set_timeslice", capid=cap, timeslice_ns=100_000).ok
    thread.activate()
    assert hvc(hyp, caller, "vcpu_set_priority", capid=cap, priority=10).error is (
        Error.OBJECT_STATE)
    assert hvc(hyp, caller, "vcpu_set_timeslice", capid=cap, timeslice_ns=MS).error is (
        Error.OBJECT_STATE)
    # The RM's own vCPU caps point at activated threads: always OBJECT_STATE.
    own = vm.resources["vcpu0"]["capid"]
    assert hvc(hyp, caller, "vcpu_set_priority", capid=own, priority=10).error is (
        Error.OBJECT_STATE)
    assert [e["result"] for e in hyp.trace.take() if e["kind"] == "hvc"] == [
        "DENIED", "DENIED", "OK", "ARGUMENT_INVALID", "OK", "OBJECT_STATE",
        "OBJECT_STATE", "OBJECT_STATE"]


def test_set_priority_checks_the_limit_before_the_state(hyp: Hypervisor) -> None:
    """DENIED (above VCPU_MAX_PRIORITY = 62) comes before OBJECT_STATE; for the timeslice
    the state comes first (H-SRC vcpu/aarch64/src/hypercalls.c hypercall_vcpu_set_priority,
    hypercall_vcpu_set_timeslice; facts §7.1)."""
    vm = add_vm(hyp, "A", (0,))
    caller = vm.vcpus[0]
    thread, cap = _init_thread(hyp, vm, ThreadRights.PRIORITY | ThreadRights.TIMESLICE)
    thread.activate()
    for priority in (63, -1):
        assert hvc(hyp, caller, "vcpu_set_priority", capid=cap,
                   priority=priority).error is Error.DENIED
    assert hvc(hyp, caller, "vcpu_set_priority", capid=cap,
               priority=62).error is Error.OBJECT_STATE
    assert hvc(hyp, caller, "vcpu_set_timeslice", capid=cap,
               timeslice_ns=1).error is Error.OBJECT_STATE
    assert [(e["args"].get("priority"), e["result"]) for e in hyp.trace.take()
            if e["kind"] == "hvc"] == [(63, "DENIED"), (-1, "DENIED"), (62, "OBJECT_STATE"),
                                       (None, "OBJECT_STATE")]
    assert thread.priority == SCHEDULER_DEFAULT_PRIORITY


def test_set_priority_needs_priority_right(hyp: Hypervisor) -> None:
    vm = add_vm(hyp, "A", (0,))
    _, cap = _init_thread(hyp, vm, ThreadRights.TIMESLICE)
    result = hvc(hyp, vm.vcpus[0], "vcpu_set_priority", capid=cap, priority=40)
    assert result.error is Error.CSPACE_INSUFFICIENT_RIGHTS


def _yield_then_urgent_at_400us(hyp: Hypervisor):
    """P.0 and P.1 spin on pCPU 0; at about 100 µs P.0 yields to P.1 (scheduler_yield,
    directed); U.0 (priority 40, a short burst) is powered on at 400 µs and preempts.
    Returns P.1 and the time of the yield."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    p0, p1 = p.vcpus
    hyp.power_on(p0)
    hyp.power_on(p1)
    run_until(hyp, 100 * US)
    now = hyp.engine.now
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources["vcpu1"]["capid"]).ok
    hyp.engine.schedule(400 * US - now, hyp.power_on, urgent.vcpus[0])
    return p1, now


def test_a_preempted_directed_yield_resumes_when_the_caller_is_picked(hyp: Hypervisor) -> None:
    """A thread above the caller suspends a directed yield; when it blocks, the caller
    (at the head of its list) yields to its target again, on what is left of its slice
    (H-SRC scheduler_fprr.c: scheduler_yielding stays set; select_yield_target)."""
    _p1, now = _yield_then_urgent_at_400us(hyp)
    events = run_until(hyp, 4 * MS)
    seq = [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
           if e["kind"] == "sched.switch"]
    t_back = seq[2][0]
    left = SLICE - 400 * US
    assert seq[:5] == [(now, "P.0", "P.1", "yield_to", SLICE - now),
                       (400 * US, "P.1", "U.0", "preempt", seq[1][4]),
                       (t_back, "U.0", "P.1", "yield_to", left),
                       # P.0's slice is over: P.1, at the head of the list, goes on
                       # on its own (untouched) slice, then P.0's turn comes.
                       (t_back + left, "P.1", "P.1", "timeslice", SLICE),
                       (t_back + left + SLICE, "P.1", "P.0", "timeslice", SLICE)]
    assert t_back == 400 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS  # switched in, its burst


def test_timeslice_limits_at_and_one_past_each_end(hyp: Hypervisor) -> None:
    """SCHEDULER_MIN_TIMESLICE (100 us) and SCHEDULER_MAX_TIMESLICE (100 ms) are accepted,
    one nanosecond outside is ARGUMENT_INVALID (H-SRC scheduler_fprr.c
    scheduler_set_timeslice; facts §7.1)."""
    vm = add_vm(hyp, "A", (0,))
    thread, cap = _init_thread(hyp, vm, ThreadRights.TIMESLICE)
    results = [hvc(hyp, vm.vcpus[0], "vcpu_set_timeslice", capid=cap, timeslice_ns=ns).error
               for ns in (SCHEDULER_MIN_TIMESLICE_NS - 1, SCHEDULER_MIN_TIMESLICE_NS,
                          SCHEDULER_MAX_TIMESLICE_NS, SCHEDULER_MAX_TIMESLICE_NS + 1)]
    assert results == [Error.ARGUMENT_INVALID, Error.OK, Error.OK, Error.ARGUMENT_INVALID]
    assert thread.timeslice_ns == SCHEDULER_MAX_TIMESLICE_NS


def test_a_wake_during_a_directed_yield_queues_at_the_tail(hyp: Hypervisor) -> None:
    """An equal-priority thread woken while P.1 runs on P.0's yielded slice is compared
    with the caller P.0, does not preempt, and joins the tail of its list behind C
    (H-SRC scheduler_fprr.c add_thread_to_scheduler: add_to_runqueue at the tail)."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    c, d = spinners(hyp, "C", "D")
    p0, p1 = p.vcpus
    for vcpu in (p0, c.vcpus[0], p1):
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    now = hyp.engine.now
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources["vcpu1"]["capid"]).ok
    hyp.engine.schedule(100 * US, hyp.power_on, d.vcpus[0])  # during the yield
    seq = [(e["t"], e["prev"], e["next"], e["reason"]) for e in run_until(hyp, 5 * MS)
           if e["kind"] == "sched.switch"]
    assert seq[:5] == [(now, "P.0", "P.1", "yield_to"),
                       (SLICE, "P.1", "C.0", "timeslice"),
                       (2 * SLICE, "C.0", "P.1", "timeslice"),
                       (3 * SLICE, "P.1", "D.0", "timeslice"),
                       (4 * SLICE, "D.0", "P.0", "timeslice")]


def test_a_preempted_yielder_that_powers_off_forgets_its_yield(hyp: Hypervisor) -> None:
    """P.0 yields to P.1, Urgent preempts (P.0 waits at the head, still yielding), then
    P.0 is powered off: its yield ends there (H-SRC scheduler_fprr.c: blocking clears
    scheduler_yielding). Powered on again, P.0 runs itself, no second yield_to."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    p0, p1 = p.vcpus
    for vcpu in (p0, p1):
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources["vcpu1"]["capid"]).ok
    hyp.engine.schedule(100 * US, hyp.power_on, urgent.vcpus[0])
    hyp.engine.schedule(150 * US, hyp.power_off, p0)
    hyp.engine.schedule(900 * US, hyp.power_on, p0)
    seq = [(e["prev"], e["next"], e["reason"]) for e in run_until(hyp, 4 * MS)
           if e["kind"] == "sched.switch"]
    assert seq[:3] == [("P.0", "P.1", "yield_to"), ("P.1", "U.0", "preempt"),
                       ("U.0", "P.1", "block:vcpu_wfi")]
    assert ("P.1", "P.0", "timeslice") in seq[3:]
    assert [s for s in seq if s[2] == "yield_to"] == [("P.0", "P.1", "yield_to")]


def test_a_waiting_thread_that_blocks_leaves_its_list_and_says_why(hyp: Hypervisor) -> None:
    a, b = spinners(hyp, "A", "B")
    start(hyp, a, b)
    run_until(hyp, 100 * US)
    hyp.power_off(b.vcpus[0])
    assert [(e["kind"], e["vcpu"], e["state"], e["reason"]) for e in hyp.trace.take()] == [
        ("vcpu.state", "B.0", "off", "vcpu_off")]
    assert hyp.pcpus[0].snapshot()["runq"] == []
    assert switches(run_until(hyp, 3 * MS)) == []  # A alone: no switch at its slice ends


def _yield_story(hyp: Hypervisor, until: int) -> list[tuple]:
    return [(e["t"], "switch", e["prev"], e["next"], e["reason"], e["slice_ns"])
            if e["kind"] == "sched.switch" else (e["t"], e["vcpu"], e["state"], e["reason"])
            for e in run_until(hyp, until) if e["kind"] in ("sched.switch", "vcpu.state")]


def _yielding_pair(hyp: Hypervisor):
    """P.0 and P.1 spin on pCPU 0; Urgent (40) bursts 200 us when powered on."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    for vcpu in p.vcpus:
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    hyp.trace.take()
    return p, urgent


def test_a_directed_yield_preempted_resumes_then_ends_when_its_target_stops(hyp) -> None:
    """scheduler_fprr.c: a higher priority preempts the yielder (it waits at the head,
    still yielding, its target ready); picked again it yields to the target on the rest
    of its slice (select_yield_target); the target powering off ends the yield and the
    caller runs on with what is left."""
    p, urgent = _yielding_pair(hyp)
    t0 = hyp.engine.now
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1,
               arg1=p.resources["vcpu1"]["capid"]).ok
    t1, t2 = t0 + 100 * US, t0 + 500 * US
    hyp.engine.schedule(t1 - t0, hyp.power_on, urgent.vcpus[0])
    hyp.engine.schedule(t2 - t0, hyp.power_off, p.vcpus[1])
    t_back = t1 + SIM_CONTEXT_SWITCH_NS + BURST_NS  # Urgent's burst is over
    left = SLICE - t0 - (t1 - t0)  # P.0's slice when Urgent preempted
    assert _yield_story(hyp, 2 * MS) == [
        (t0, "P.0", "yielding", "yield_to_caller"),
        (t0, "switch", "P.0", "P.1", "yield_to", SLICE - t0),
        (t0, "P.1", "running", "yield_to"),
        (t1, "P.1", "ready", "preempt"),
        (t1, "P.0", "ready", "preempt"),
        (t1, "switch", "P.1", "U.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS),
        (t1, "U.0", "running", "preempt"),
        (t_back, "U.0", "wfi", "vcpu_wfi"),
        (t_back, "P.0", "yielding", "yield_to:resume"),
        (t_back, "switch", "U.0", "P.1", "yield_to", left),
        (t_back, "P.1", "running", "yield_to"),
        (t2, "P.1", "off", "vcpu_off"),
        (t2, "switch", "P.1", "P.0", "yield_to:return", left - (t2 - t_back)),
        (t2, "P.0", "running", "yield_to:return"),
    ]


def test_live_priority_changes_during_a_directed_yield(hyp: Hypervisor) -> None:
    """The simulator's priority control while P.0 yields to P.1: lowering the caller
    below a waiting C lets C preempt (P.0 waits, still yielding); raising the waiting
    target P.1 above C re-places it as a wake, so it preempts with a fresh slice."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    (c,) = spinners(hyp, "C")
    p0, p1 = p.vcpus
    for vcpu in (p0, c.vcpus[0], p1):
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    hyp.trace.take()
    t0, sched = hyp.engine.now, hyp.pcpus[0]
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=p.resources["vcpu1"]["capid"]).ok
    t1, t2 = t0 + 100 * US, t0 + 300 * US
    hyp.engine.schedule(t1 - t0, sched.set_priority, p0, 10)
    hyp.engine.schedule(t2 - t0, sched.set_priority, p1, 50)
    assert _yield_story(hyp, 3 * MS) == [
        (t0, "P.0", "yielding", "yield_to_caller"),
        (t0, "switch", "P.0", "P.1", "yield_to", SLICE - t0),
        (t0, "P.1", "running", "yield_to"),
        (t1, "P.1", "ready", "preempt"),
        (t1, "P.0", "ready", "preempt"),
        (t1, "switch", "P.1", "C.0", "preempt", SLICE),
        (t1, "C.0", "running", "preempt"),
        (t2, "C.0", "ready", "preempt"),
        (t2, "switch", "C.0", "P.1", "preempt", SLICE),
        (t2, "P.1", "running", "preempt"),
    ]
    assert sched.snapshot()["runq"] == ["C.0", "P.0"]


def _pair_and_c(hyp: Hypervisor):
    """P.0, C and P.1 spin on pCPU 0 at priority 32, in that order; P.0 runs."""
    p = add_vm(hyp, "P", (0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    (c,) = spinners(hyp, "C")
    for vcpu in (p.vcpus[0], c.vcpus[0], p.vcpus[1]):
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    hyp.trace.take()
    return p, c


def _yield_to_p1(hyp: Hypervisor, p) -> int:
    t0 = hyp.engine.now
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1,
               arg1=p.resources["vcpu1"]["capid"]).ok
    return t0


def test_a_yield_ends_when_its_target_stops_and_the_caller_runs_on_before_an_equal(
        hyp: Hypervisor) -> None:
    """The target powering off ends the yield; the caller keeps the pCPU though C, of
    equal priority, waits (get_next_target switches only on a higher priority)."""
    p, _ = _pair_and_c(hyp)
    t0 = _yield_to_p1(hyp, p)
    hyp.engine.schedule(100 * US, hyp.power_off, p.vcpus[1])
    t1 = t0 + 100 * US
    assert _yield_story(hyp, 600 * US)[3:] == [
        (t1, "P.1", "off", "vcpu_off"),
        (t1, "switch", "P.1", "P.0", "yield_to:return", SLICE - t1),
        (t1, "P.0", "running", "yield_to:return")]


def test_a_yield_target_that_yields_on_ends_the_yield(hyp: Hypervisor) -> None:
    """SIMULATOR choice (scheduler.yield_to): the target's own directed yield ends the
    caller's instead of redirecting it; the target stays ready in its list."""
    p, c = _pair_and_c(hyp)
    _yield_to_p1(hyp, p)
    run_until(hyp, hyp.engine.now + 100 * US)
    hyp.trace.take()
    t1 = hyp.engine.now
    cap = p.cspace.create(c.vcpus[0], ThreadRights.YIELD_TO)
    assert hvc(hyp, p.vcpus[1], "scheduler_yield", control=1, arg1=cap).ok
    assert _yield_story(hyp, t1 + 100 * US) == [
        (t1, "P.1", "ready", "yield_to:end"),
        (t1, "switch", "P.1", "P.0", "yield_to:return", SLICE - t1),
        (t1, "P.0", "running", "yield_to:return")]
    assert hyp.pcpus[0].snapshot()["runq"] == ["C.0", "P.1"]


def test_a_yielding_caller_powered_off_hands_the_cpu_on_when_the_yield_ends(
        hyp: Hypervisor) -> None:
    """P.0 is powered off while its target runs: nothing changes until the target stops;
    then the caller cannot resume and the next waiting thread runs."""
    p, _ = _pair_and_c(hyp)
    t0 = _yield_to_p1(hyp, p)
    hyp.engine.schedule(100 * US, hyp.power_off, p.vcpus[0])
    hyp.engine.schedule(200 * US, hyp.power_off, p.vcpus[1])
    t1, t2 = t0 + 100 * US, t0 + 200 * US
    assert _yield_story(hyp, 600 * US)[3:] == [
        (t1, "P.0", "off", "poweroff"),
        (t2, "P.1", "off", "vcpu_off"),
        (t2, "switch", "P.1", "C.0", "block:yield_to_caller", SLICE),
        (t2, "C.0", "running", "block:yield_to_caller")]


def test_a_caller_with_a_vIRQ_pending_does_not_yield(hyp: Hypervisor) -> None:
    """scheduler_fprr.c scheduler_yield_to: vcpu_pending_wakeup() -> return at once."""
    p, _ = _pair_and_c(hyp)
    src = VirqSource("s")
    p.vic.bind(src, 100)
    src.assert_()
    hyp.trace.take()
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1,
               arg1=p.resources["vcpu1"]["capid"]).ok
    assert (hyp.pcpus[0].current, hyp.pcpus[0].proxy) == (p.vcpus[0], None)
    assert [e for e in hyp.trace.take() if e["kind"] in ("sched.switch", "vcpu.state")] == []


def test_lowering_the_running_threads_priority_lets_a_waiting_one_preempt(
        hyp: Hypervisor) -> None:
    """The live priority control: the running thread, now below a waiting one, goes to
    the head of its new list with the rest of its slice and comes back when that one
    stops."""
    a, b = spinners(hyp, "A", "B")
    start(hyp, a, b)
    run_until(hyp, 100 * US)
    hyp.trace.take()
    t1 = hyp.engine.now
    hyp.pcpus[0].set_priority(a.vcpus[0], 10)
    hyp.engine.schedule(300 * US, hyp.power_off, b.vcpus[0])
    t2 = t1 + 300 * US
    assert _yield_story(hyp, t2) == [
        (t1, "A.0", "ready", "preempt"),
        (t1, "switch", "A.0", "B.0", "preempt", SLICE),
        (t1, "B.0", "running", "preempt"),
        (t2, "B.0", "off", "vcpu_off"),
        (t2, "switch", "B.0", "A.0", "block:vcpu_off", SLICE - t1),
        (t2, "A.0", "running", "block:vcpu_off")]


def test_raising_the_yield_target_to_the_callers_level_preempts_nothing(
        hyp: Hypervisor) -> None:
    """During a directed yield the caller is the active thread: C, equal to it, waits
    (get_next_target switches only on a higher priority)."""
    p, _ = _pair_and_c(hyp)
    _yield_to_p1(hyp, p)
    hyp.trace.take()
    hyp.pcpus[0].set_priority(p.vcpus[1], 40)
    assert (hyp.pcpus[0].current, hyp.pcpus[0].proxy.target) == (p.vcpus[1], p.vcpus[1])
    assert [e for e in hyp.trace.take() if e["kind"] == "sched.switch"] == []


def test_a_thread_preempted_as_its_slice_ends_comes_back_with_a_fresh_slice(
        hyp: Hypervisor) -> None:
    """Urgent wakes at the very instant A's slice runs out (its wake is queued first):
    A has nothing left, so it runs again on a fresh slice (scheduler_fprr.c
    update_timeslice: expired -> reset_sched_params). Alone at its priority, where it
    waits in its list does not matter here."""
    (a,) = spinners(hyp, "A")
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    hyp.engine.schedule(SLICE, hyp.power_on, urgent.vcpus[0])
    start(hyp, a)
    t_back = SLICE + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(t, prev, nxt, slice_ns) for t, prev, nxt, _, slice_ns in
            [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"])
             for e in run_until(hyp, 3 * MS) if e["kind"] == "sched.switch"]] == [
        (0, None, "A.0", SLICE), (SLICE, "A.0", "U.0", SCHEDULER_DEFAULT_TIMESLICE_NS),
        (t_back, "U.0", "A.0", SLICE)]


def test_a_thread_preempted_as_its_slice_ends_goes_to_the_tail(hyp: Hypervisor) -> None:
    """As above with B waiting at A's priority: A's slice had expired, so A is queued at
    the tail (get_next_target: add_to_runqueue(prev, timeslice_expired)) and B runs when
    Urgent blocks, not A as a thread preempted with slice left would."""
    a, b = spinners(hyp, "A", "B")
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    hyp.engine.schedule(SLICE, hyp.power_on, urgent.vcpus[0])
    start(hyp, a, b)
    t_back = SLICE + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert switches(run_until(hyp, t_back + SLICE))[:4] == [
        (0, 0, None, "A.0", "wake:vcpu_off"), (SLICE, 0, "A.0", "U.0", "preempt"),
        (t_back, 0, "U.0", "B.0", "block:vcpu_wfi"),
        (t_back + SLICE, 0, "B.0", "A.0", "timeslice")]


def test_a_thread_preempted_as_its_partial_slice_ends_gets_a_whole_fresh_one(
        hyp: Hypervisor) -> None:
    """A, preempted once at 300 us, resumes with the 700 us it had left; a second
    preemption at the very end of those 700 us finds that slice expired: A goes to the
    tail with a *whole* fresh slice (H-SRC scheduler_fprr.c update_timeslice:
    reset_sched_params), not a whole slice less what it ran since it resumed."""
    a, b = spinners(hyp, "A", "B")
    first, second = (add_vm(hyp, name, (0,), priority=40) for name in ("U", "V"))
    first.guest, second.guest = Burst(first, {}), Burst(second, {})
    resumed = 300 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS
    ends = resumed + SLICE - 300 * US
    # Both wakes are scheduled before the slice's expiry event: at ``ends`` V comes first.
    hyp.engine.schedule(300 * US, hyp.power_on, first.vcpus[0])
    hyp.engine.schedule(ends, hyp.power_on, second.vcpus[0])
    start(hyp, a, b)
    t_back = ends + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in
            run_until(hyp, t_back + 2 * SLICE) if e["kind"] == "sched.switch"][:6] == [
        (0, None, "A.0", "wake:vcpu_off", SLICE), (300 * US, "A.0", "U.0", "preempt",
                                                   SCHEDULER_DEFAULT_TIMESLICE_NS),
        (resumed, "U.0", "A.0", "block:vcpu_wfi", 700 * US),
        (ends, "A.0", "V.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS),
        (t_back, "V.0", "B.0", "block:vcpu_wfi", SLICE),
        (t_back + SLICE, "B.0", "A.0", "timeslice", SLICE)]


def _burst_target(hyp: Hypervisor, p) -> tuple[Vcpu, int]:
    """A Burst thread T on pCPU 0 and P's cap to it with YIELD_TO."""
    t = add_vm(hyp, "T", (0,))
    t.guest = Burst(t, {})
    hyp.power_on(t.vcpus[0])
    return t.vcpus[0], p.cspace.create(t.vcpus[0], ThreadRights.YIELD_TO)


def test_a_preempted_yield_target_keeps_the_rest_of_its_work(hyp: Hypervisor) -> None:
    """Urgent preempts T in the middle of its burst: T's work stops with it and resumes
    when the yield does (after a new switch-in), not while Urgent runs."""
    p = add_vm(hyp, "P", (0,), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    hyp.power_on(p.vcpus[0])
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    run_until(hyp, 10 * US)
    target, cap = _burst_target(hyp, p)
    hyp.trace.take()
    t0 = hyp.engine.now
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1, arg1=cap).ok
    hyp.engine.schedule(100 * US, hyp.power_on, urgent.vcpus[0])
    t1 = t0 + 100 * US
    t_back = t1 + SIM_CONTEXT_SWITCH_NS + BURST_NS
    left = SIM_CONTEXT_SWITCH_NS + BURST_NS - (t1 - t0)  # of T's work when preempted
    story = [(e["t"], e["vcpu"], e["state"]) for e in run_until(hyp, 2 * MS)
             if e["kind"] == "vcpu.state" and e["vcpu"] == "T.0"]
    assert story == [(t0, "T.0", "running"), (t1, "T.0", "ready"),
                     (t_back, "T.0", "running"),
                     (t_back + SIM_CONTEXT_SWITCH_NS + left, "T.0", "wfi")]


def test_a_yield_target_cut_off_by_the_callers_slice_keeps_the_rest_of_its_work(
        hyp: Hypervisor) -> None:
    """P's slice ends in the middle of T's burst: the yield ends, T's work stops there
    and is finished when T next runs on its own slice."""
    p = add_vm(hyp, "P", (0,), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    hyp.power_on(p.vcpus[0])
    run_until(hyp, SLICE - 100 * US)
    target, cap = _burst_target(hyp, p)
    hyp.trace.take()
    t0 = hyp.engine.now
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1, arg1=cap).ok
    left = SIM_CONTEXT_SWITCH_NS + BURST_NS - (SLICE - t0)
    seq = [(e["t"], e["prev"], e["next"], e["reason"]) for e in run_until(hyp, 4 * MS)
           if e["kind"] == "sched.switch"]
    assert seq[:3] == [(t0, "P.0", "T.0", "yield_to"),
                       (SLICE, "T.0", "T.0", "timeslice"),
                       (SLICE + SIM_CONTEXT_SWITCH_NS + left, "T.0", "P.0", "block:vcpu_wfi")]


def test_each_vcpu_run_exit_parks_the_target_in_proxy_state_saying_why() -> None:
    """proxy-scheduling preset: when vcpu_run returns, Guest.0 is parked again (state
    'proxy'), with the returned state as the reason, just before the exit is traced."""
    events = Simulation(load("proxy-scheduling")).run(until_ns=5 * MS)
    exits = [i for i, e in enumerate(events) if e["kind"] == "vcpu.run" and e["stage"] == "exit"]
    assert [events[i]["state"] for i in exits] == ["READY", "EXPECTS_WAKEUP"]
    assert [(events[i - 1]["kind"], events[i - 1]["vcpu"], events[i - 1]["state"],
             events[i - 1]["reason"]) for i in exits] == [
        ("vcpu.state", "Guest.0", "proxy", "READY"),
        ("vcpu.state", "Guest.0", "proxy", "EXPECTS_WAKEUP")]


def test_a_resumed_yielder_powered_off_is_not_taken_off_a_list(hyp: Hypervisor) -> None:
    """After its yield resumed, P.0 is blocked as a yielding caller again: powering it
    off changes nothing until P.1 stops, and no vcpu_run is traced for a yield_to."""
    p, urgent = _yielding_pair(hyp)
    t0 = hyp.engine.now
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1,
               arg1=p.resources["vcpu1"]["capid"]).ok
    hyp.engine.schedule(100 * US, hyp.power_on, urgent.vcpus[0])
    t_back = t0 + 100 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS
    hyp.engine.schedule(t_back + 50 * US - t0, hyp.power_off, p.vcpus[0])
    events = run_until(hyp, 2 * MS)
    assert [e for e in events if e["kind"] == "vcpu.run"] == []
    assert [(e["t"], e["state"], e["reason"]) for e in events
            if e["kind"] == "vcpu.state" and e["vcpu"] == "P.0"][-2:] == [
        (t_back, "yielding", "yield_to:resume"), (t_back + 50 * US, "off", "poweroff")]
    assert hyp.pcpus[0].current is p.vcpus[1]


def test_a_vcpu_run_caller_powered_off_lets_the_run_go_on() -> None:
    """proxy-scheduling preset: HLOS.0, blocked in its vcpu_run while Guest.0 runs, is
    powered off: it is in no run list to leave, and Guest.0 keeps the pCPU."""
    sim = Simulation(load("proxy-scheduling"))
    sim.run(until_ns=100 * US)
    sim.hyp.trace.take()
    assert sim.hyp.pcpus[0].current.id == "Guest.0"
    sim.hyp.power_off(sim.hyp.vms["HLOS"].vcpus[0])
    assert [(e["kind"], e["vcpu"], e["state"], e["reason"]) for e in sim.hyp.trace.take()] == [
        ("vcpu.state", "HLOS.0", "off", "poweroff")]
    assert sim.hyp.pcpus[0].current.id == "Guest.0"


def test_a_thread_preempted_in_a_later_slice_keeps_what_is_left_of_that_slice(
        hyp: Hypervisor) -> None:
    """B's slice starts at 1 ms (A's expired): U preempts it at 1.3 ms, so B goes back to
    the head with the 700 us left of *that* slice (H-SRC scheduler_fprr.c update_timeslice:
    timeout - curticks, timeout = schedtime + active_timeslice). Every vcpu.state event
    pinned with its reason: queued at power-on, ready by timeslice, ready by preemption."""
    a, b = spinners(hyp, "A", "B")
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    start(hyp, a, b)
    hyp.engine.schedule(1300 * US, hyp.power_on, urgent.vcpus[0])
    events = hyp.trace.take() + run_until(hyp, 3 * MS)
    t_back = 1300 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"], e["prev_left_ns"])
            for e in events if e["kind"] == "sched.switch"] == [
        (0, None, "A.0", "wake:vcpu_off", SLICE, None),
        (SLICE, "A.0", "B.0", "timeslice", SLICE, SLICE),
        (1300 * US, "B.0", "U.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS, 700 * US),
        (t_back, "U.0", "B.0", "block:vcpu_wfi", 700 * US,
         SCHEDULER_DEFAULT_TIMESLICE_NS - SIM_CONTEXT_SWITCH_NS - BURST_NS),
        (t_back + 700 * US, "B.0", "A.0", "timeslice", SLICE, SLICE)]
    assert [(e["t"], e["vcpu"], e["state"], e["reason"]) for e in events
            if e["kind"] == "vcpu.state"] == [
        (0, "A.0", "running", "wake:vcpu_off"), (0, "B.0", "ready", "vcpu_off"),
        (SLICE, "A.0", "ready", "timeslice"), (SLICE, "B.0", "running", "timeslice"),
        (1300 * US, "B.0", "ready", "preempt"), (1300 * US, "U.0", "running", "preempt"),
        (t_back, "U.0", "wfi", "vcpu_wfi"), (t_back, "B.0", "running", "block:vcpu_wfi"),
        (t_back + 700 * US, "B.0", "ready", "timeslice"),
        (t_back + 700 * US, "A.0", "running", "timeslice")]


def test_after_a_yield_alone_the_fresh_slice_counts_from_the_yield(hyp: Hypervisor) -> None:
    """scheduler_yield with nothing else to run: H-SRC scheduler_fprr.c scheduler_yield sets
    active_timeslice = 0, scheduler_schedule -> get_next_target -> update_timeslice finds
    it expired and resets it (reset_sched_params), and schedtime = now. So the slice is
    fresh *from the yield*: preempted 300 us later, A keeps exactly SLICE - 300 us (not
    what was left before the yield, not a whole fresh slice)."""
    (a,) = spinners(hyp, "A")
    urgent = add_vm(hyp, "U", (0,), priority=40)
    urgent.guest = Burst(urgent, {})
    start(hyp, a)
    run_until(hyp, 600 * US)
    t_yield = hyp.engine.now
    assert hvc(hyp, a.vcpus[0], "scheduler_yield", control=0).ok
    # It runs on: no switch, only the hvc.
    assert [e["kind"] for e in hyp.trace.take() if e["t"] == t_yield] == ["hvc"]
    hyp.engine.schedule(300 * US, hyp.power_on, urgent.vcpus[0])
    events = run_until(hyp, 3 * MS)
    t_back = t_yield + 300 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"], e["prev_left_ns"])
            for e in events if e["kind"] == "sched.switch"] == [
        (t_yield + 300 * US, "A.0", "U.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS,
         SLICE - 300 * US),
        (t_back, "U.0", "A.0", "block:vcpu_wfi", SLICE - 300 * US,
         SCHEDULER_DEFAULT_TIMESLICE_NS - SIM_CONTEXT_SWITCH_NS - BURST_NS)]


class Waker(Guest):
    """Sleeps 300 us, works 100 us, then sleeps for good: a higher thread that comes and goes."""

    program = "waker"

    def run(self, vcpu: Vcpu):
        yield from self.timer_sleep(vcpu, 300 * US)
        yield work(100 * US)
        yield from self.timer_sleep(vcpu, 10 * MS)


def test_a_yield_target_keeps_its_own_partial_slice_for_when_it_runs_itself(
        hyp: Hypervisor) -> None:
    """T (32) is preempted by P (33) with about 700 us left; P yields to T, which runs on P's
    slice; when that ends, P runs again with a fresh one (nothing above it waits) and
    T, back in its list, still has its own 700 us: when P blocks, T runs with exactly
    those (H-SRC scheduler_fprr.c: the target's scheduler_active_timeslice is not
    touched by a directed yield, only the yielding active thread's is)."""
    p = add_vm(hyp, "P", (0,), priority=33, timeslice_ns=SLICE)
    p.guest = Waker(p, {})
    (t,) = spinners(hyp, "T")
    start(hyp, p, t)
    run_until(hyp, 350 * US)
    t_yield = hyp.engine.now
    assert hyp.pcpus[0].current is p.vcpus[0]
    # P ran first (switched in, then armed its timer: CNTVCT read after one MRS), its
    # timer fired 300 us later in whole ticks and P preempted T; it is now in its work,
    # after the switch-in, the vIRQ's delivery, its handler (MRS, MSR) and the EOI.
    p_start = ticks_to_ns(ns_to_ticks(SIM_CONTEXT_SWITCH_NS + SIM_SYSREG_ACCESS_NS)
                          + ns_to_ticks(300 * US))
    assert t_yield == (p_start + SIM_CONTEXT_SWITCH_NS + 2 * SIM_VIRQ_DELIVERY_NS
                       + 2 * SIM_SYSREG_ACCESS_NS)
    cap = p.cspace.create(t.vcpus[0], ThreadRights.YIELD_TO)
    assert hvc(hyp, p.vcpus[0], "scheduler_yield", control=1, arg1=cap).ok
    events = hyp.trace.take() + run_until(hyp, 4 * MS)
    p_end = p_start + SLICE
    # T went in when P slept (after P's switch-in and four sysreg accesses) and ran about
    # 300 us of its first slice before P preempted it
    own = SLICE - (p_start - (SIM_CONTEXT_SWITCH_NS + 4 * SIM_SYSREG_ACCESS_NS))
    # P back in, its whole work, then it arms its timer (four sysreg accesses) and sleeps
    t_block = p_end + SIM_CONTEXT_SWITCH_NS + 100 * US + 4 * SIM_SYSREG_ACCESS_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"], e["prev_left_ns"])
            for e in events if e["kind"] == "sched.switch"] == [
        (t_yield, "P.0", "T.0", "yield_to", p_end - t_yield, p_end - t_yield),
        (p_end, "T.0", "P.0", "yield_to:return", SLICE, own),
        (t_block, "P.0", "T.0", "block:vcpu_wfi", own, SLICE - (t_block - p_end))]


def test_a_suspended_yield_whose_target_was_powered_off_ends_when_the_caller_is_picked(
        hyp: Hypervisor) -> None:
    """P.0 yields to P.1; U preempts; P.1 is powered off meanwhile. When U blocks, P.0 is
    picked: its target cannot be yielded to (H-SRC scheduler_fprr.c select_yield_target:
    can_yield_to fails, end_directed_yield), so P.0 runs itself on what was left of its
    slice, and P.1 stays off (never shown ready again)."""
    p1, now = _yield_then_urgent_at_400us(hyp)
    hyp.engine.schedule(450 * US - now, hyp.power_off, p1)
    events = hyp.trace.take() + run_until(hyp, 3 * MS)
    t_back = 400 * US + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
            if e["kind"] == "sched.switch"] == [
        (now, "P.0", "P.1", "yield_to", SLICE - now),
        (400 * US, "P.1", "U.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS),
        (t_back, "U.0", "P.0", "yield_to:return", SLICE - 400 * US)]
    assert [(e["t"], e["vcpu"], e["state"], e["reason"]) for e in events
            if e["kind"] == "vcpu.state" and e["vcpu"] in ("P.0", "P.1")] == [
        (now, "P.0", "yielding", "yield_to_caller"), (now, "P.1", "running", "yield_to"),
        (400 * US, "P.1", "ready", "preempt"), (400 * US, "P.0", "ready", "preempt"),
        (450 * US, "P.1", "off", "vcpu_off"), (t_back, "P.0", "running", "yield_to:return")]
    assert hyp.pcpus[0].snapshot()["runq"] == []


def test_a_directed_yield_is_skipped_only_for_a_virq_pending_on_the_caller(
        hyp: Hypervisor) -> None:
    """H-SRC scheduler_fprr.c scheduler_yield_to: a vCPU with a pending wakeup
    (vcpu_pending_wakeup: a vIRQ pending *for it*) returns at once. A vIRQ pending in the
    same VM but routed to another of its vCPUs does not stop the yield."""
    p = add_vm(hyp, "P", (0, 0, 0), timeslice_ns=SLICE)
    set_program(p, "spin", work_ns=SPIN_CHUNK_NS)
    p0 = p.vcpus[0]
    for vcpu in p.vcpus:
        hyp.power_on(vcpu)
    run_until(hyp, 100 * US)
    assert hyp.pcpus[0].current is p0
    lines = []
    for index in (1, 0):
        line = VirqSource(f"line{index}")
        p.vic.bind(line, p.allocate_virq(), vcpu_index=index)
        lines.append(line)
    lines[0].assert_()  # pending, routed to P.1
    hyp.trace.take()
    to_p2 = p.resources["vcpu2"]["capid"]
    now = hyp.engine.now
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=to_p2).ok
    assert switches(hyp.trace.take()) == [(now, 0, "P.0", "P.2", "yield_to")]
    assert hvc(hyp, p.vcpus[2], "scheduler_yield", control=0).ok  # the target ends it
    assert hyp.pcpus[0].current is p0 and hyp.pcpus[0].proxy is None
    lines[1].assert_()  # now one for P.0 itself: the yield returns at once
    hyp.trace.take()
    assert hvc(hyp, p0, "scheduler_yield", control=1, arg1=to_p2).ok
    assert switches(hyp.trace.take()) == []
    assert hyp.pcpus[0].current is p0 and hyp.pcpus[0].proxy is None


def test_a_thread_switched_out_with_no_slice_left_comes_back_with_a_fresh_one(
        hyp: Hypervisor) -> None:
    """The simulator's live priority control lowers A at the very instant its slice ends
    (before the expiry event of that instant): A leaves with 0 ns left, behind B. When
    B blocks, A runs again with a whole fresh slice, as an expired thread does (H-SRC
    scheduler_fprr.c update_timeslice resets a used-up slice), not with 0 ns."""
    (a,) = spinners(hyp, "A")
    b = add_vm(hyp, "B", (0,), priority=32)
    b.guest = Burst(b, {})
    sched = hyp.pcpus[0]
    hyp.engine.schedule(SLICE, sched.set_priority, a.vcpus[0], 31)  # before A's expiry
    start(hyp, a)
    hyp.engine.schedule(500 * US, hyp.power_on, b.vcpus[0])  # B waits behind A
    t_block = SLICE + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"], e["prev_left_ns"])
            for e in run_until(hyp, t_block + SLICE) if e["kind"] == "sched.switch"][:3] == [
        (0, None, "A.0", "wake:vcpu_off", SLICE, None),
        (SLICE, "A.0", "B.0", "preempt", SCHEDULER_DEFAULT_TIMESLICE_NS, 0),
        (t_block, "B.0", "A.0", "block:vcpu_wfi", SLICE,
         SCHEDULER_DEFAULT_TIMESLICE_NS - SIM_CONTEXT_SWITCH_NS - BURST_NS)]


class LongWork(Guest):
    """Works 1.5 ms, then sleeps for good: a yield target that outlasts the yield."""

    program = "long-work"

    def run(self, vcpu: Vcpu):
        yield work(1500 * US)
        yield from self.timer_sleep(vcpu, 10 * MS)


def test_a_yield_cut_with_no_slice_left_resumes_its_caller_with_a_fresh_slice(
        hyp: Hypervisor) -> None:
    """P yields to T; at the very instant P's slice ends (before that instant's expiry
    event) the live priority control lowers P below B: the yield is suspended with 0 ns
    left to P, and T runs on its own. When T and then B block, P is picked, its target
    is blocked, so the yield ends and P runs with a whole fresh slice, not 0 ns (H-SRC
    scheduler_fprr.c update_timeslice resets a used-up slice)."""
    (p,) = spinners(hyp, "P")
    t = add_vm(hyp, "T", (0,), timeslice_ns=SLICE)
    t.guest = LongWork(t, {})
    b = add_vm(hyp, "B", (0,), priority=32)
    b.guest = Burst(b, {})
    p0 = p.vcpus[0]
    hyp.engine.schedule(SLICE, hyp.pcpus[0].set_priority, p0, 31)  # before the expiry
    start(hyp, p, t)
    hyp.engine.schedule(500 * US, hyp.power_on, b.vcpus[0])
    run_until(hyp, 50 * US)
    now = hyp.engine.now
    assert hvc(hyp, p0, "scheduler_yield", control=1,
               arg1=p.cspace.create(t.vcpus[0], ThreadRights.YIELD_TO)).ok
    events = hyp.trace.take() + run_until(hyp, 5 * MS)
    # T's 1.5 ms of work, begun after its switch-in at ``now``, cut by a switch at SLICE,
    # then the four sysreg accesses that arm its timer
    t_sleep = now + 2 * SIM_CONTEXT_SWITCH_NS + 1500 * US + 4 * SIM_SYSREG_ACCESS_NS
    t_back = t_sleep + SIM_CONTEXT_SWITCH_NS + BURST_NS
    assert [(e["t"], e["prev"], e["next"], e["reason"], e["slice_ns"]) for e in events
            if e["kind"] == "sched.switch"] == [
        (now, "P.0", "T.0", "yield_to", SLICE - now),
        (SLICE, "T.0", "T.0", "preempt", SLICE),  # T goes on, on its own slice
        (t_sleep, "T.0", "B.0", "block:vcpu_wfi", SCHEDULER_DEFAULT_TIMESLICE_NS),
        (t_back, "B.0", "P.0", "yield_to:return", SLICE)]
