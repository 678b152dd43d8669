"""Guest programs behave like the Linux drivers they stand for, as seen in the trace."""

from __future__ import annotations

import pytest

from gunyah_core import Hypervisor, Simulation, load, parse
from gunyah_core.consts import (
    SIM_CONTEXT_SWITCH_NS,
    SIM_HVC_COST_NS,
    SIM_SYSREG_ACCESS_NS,
    SIM_VIRQ_DELIVERY_NS,
)
from gunyah_core.guest.programs import PROGRAMS, MissingResource
from gunyah_core.vm.vtimer import ns_to_ticks, ticks_to_ns
from tests.core.conftest import MS, US, add_vm, run_until, set_program, start

RUN_NS = 5 * MS
# A guest woken by its virtual timer: switched in, takes the timer's vIRQ, its handler
# reads CNTV_CTL_EL0 and masks the timer, EOI; then its program goes on.
TIMER_WAKE_NS = SIM_CONTEXT_SWITCH_NS + 2 * SIM_VIRQ_DELIVERY_NS + 2 * SIM_SYSREG_ACCESS_NS
# After its hvc, a guest arming its timer reads CNTV_CTL_EL0 then CNTVCT_EL0 (the counter
# it adds its period to), writes CNTV_CVAL_EL0 then CNTV_CTL_EL0, then executes WFI.
COUNTER_READ_NS = SIM_HVC_COST_NS + SIM_SYSREG_ACCESS_NS
ARM_AND_WFI_NS = SIM_HVC_COST_NS + 4 * SIM_SYSREG_ACCESS_NS


def timer_deadlines(events, vcpu: str) -> list[tuple[int, int]]:
    """(time of the CNTV_CVAL_EL0 write, its value) for each arming of ``vcpu``'s timer."""
    return [(e["t"], e["value"]) for e in events if e["kind"] == "vtimer.write"
            and e["vcpu"] == vcpu and e["reg"] == "CNTV_CVAL_EL0"]


def timer_fires(events, vcpu: str) -> list[int]:
    return [e["t"] for e in events if e["kind"] == "vtimer.fire" and e["vcpu"] == vcpu]
# One ping-pong round trip: each side is switched in and takes the Rx vIRQ, two
# receives and the sender's EOI (each send's own hvc is counted from where it starts).
ROUND_TRIP_NS = 2 * SIM_CONTEXT_SWITCH_NS + 2 * SIM_VIRQ_DELIVERY_NS + 2 * SIM_HVC_COST_NS \
    + SIM_VIRQ_DELIVERY_NS


def hvcs(events, vm: str, name: str) -> list[dict]:
    return [e for e in events if e["kind"] == "hvc" and e["vm"] == vm and e["name"] == name]


def test_programs_registry() -> None:
    assert set(PROGRAMS) >= {"idle", "ping", "echo", "producer", "consumer", "ringer",
                             "bell-handler", "spin"}
    assert all(cls.program == name for name, cls in PROGRAMS.items())


def test_echo_answers_each_ping_in_order() -> None:
    events = Simulation(load("msgq-pingpong")).run(until_ns=RUN_NS)
    sends = [(e["msgq"], e["payload"]) for e in events if e["kind"] == "msgq.send"]
    pings = [p for q, p in sends if q == "A_to_B"]
    echoes = [p for q, p in sends if q == "B_to_A"]
    ping_times = [e["t"] for e in events if e["kind"] == "msgq.send" and e["msgq"] == "A_to_B"]
    assert {b - a for a, b in zip(ping_times, ping_times[1:], strict=False)} == {ROUND_TRIP_NS}
    assert len(pings) == 1 + (RUN_NS - ping_times[0]) // ROUND_TRIP_NS == 666
    assert pings == [f"ping {i}" for i in range(len(pings))]
    assert echoes == [f"echo ping {i}" for i in range(len(echoes))]
    # Each echo follows its ping by the same lag; every ping whose echo is due by RUN_NS
    # has been answered (here all 666: the last ping is 6.5 us before the end).
    echo_times = [e["t"] for e in events if e["kind"] == "msgq.send" and e["msgq"] == "B_to_A"]
    (lag,) = {b - a for a, b in zip(ping_times, echo_times, strict=False)}
    assert len(echoes) == sum(t + lag <= RUN_NS for t in ping_times) == 666
    # one message in flight: sends alternate ping, echo, ping, echo ...
    assert [q for q, _ in sends] == ["A_to_B", "B_to_A"] * len(echoes) + ["A_to_B"] * (
        len(pings) - len(echoes))
    assert all(e["result"] == "OK" for e in events if e["kind"] == "hvc")


def test_producer_full_then_waits_for_tx_virq_then_resumes() -> None:
    events = Simulation(load("msgq-backpressure")).run(until_ns=RUN_NS)
    story = [(e["kind"], e.get("result"), (e.get("ret") or {}).get("not_full"))
             for e in events
             if (e["kind"] == "hvc" and e["vm"] == "Producer")
             or (e["kind"] == "virq.assert" and e["source"] == "msgq:P_to_C:tx")]
    full_at = story.index(("hvc", "MSGQUEUE_FULL", False))  # X1 not_full = false
    assert story[full_at - 1] == ("hvc", "OK", False)  # the send that filled the queue
    assert story[full_at + 1] == ("virq.assert", None, None)  # nothing tried until Tx fires
    assert story[full_at + 2] == ("hvc", "OK", False)  # room for exactly one again
    tx_asserts = [e for e in events if e["kind"] == "virq.assert"
                  and e["source"] == "msgq:P_to_C:tx"]
    assert tx_asserts and all(e["vm"] == "Producer" for e in tx_asserts)
    # every Tx vIRQ came from a receive that left depth - 1 = 3 messages queued
    recv_depth_before = {e["seq"]: e["depth"] for e in events if e["kind"] == "msgq.recv"}
    for assert_event in tx_asserts:
        assert recv_depth_before[assert_event["seq"] - 1] == 3


def handler_receives(events, vm: str, virq: int) -> list[list[dict]]:
    """The msgqueue_receive results of each vIRQ handler run of ``vm`` (deliver .. eoi)."""
    runs: list[list[dict]] = []
    inside = False
    for e in events:
        if e.get("vm") != vm:
            continue
        if e["kind"] == "virq.deliver" and e["virq"] == virq:
            inside = True
            runs.append([])
        elif e["kind"] == "virq.eoi" and e["virq"] == virq:
            inside = False
        elif inside and e["kind"] == "hvc" and e["name"] == "msgqueue_receive":
            runs[-1].append(e)
    return runs


def test_consumer_drains_until_not_empty_false(hyp: Hypervisor) -> None:
    items = 20
    prod, cons = add_vm(hyp, "P", (0,)), add_vm(hyp, "C", (1,))
    hyp.create_msgq("q", prod, cons, 4, 64)
    set_program(prod, "producer", count=items, size=32, work_ns=2 * US)
    set_program(cons, "consumer", work_ns=30 * US)
    start(hyp, prod, cons)
    events = run_until(hyp, 10 * MS)
    runs = handler_receives(events, "C", cons.resources["q:rx"]["virq"])
    assert runs and all(runs)
    for run in runs:
        flags = [e["ret"].get("not_empty") for e in run]
        assert all(e["result"] == "OK" for e in run)
        assert flags == [True] * (len(flags) - 1) + [False]
    assert sum(len(r) for r in runs) == items == cons.guest.received == prod.guest.sent
    assert hyp.msgqs["q"].count == 0
    assert any(len(run) > 1 for run in runs)  # at least one drain took several messages


def test_doorbell_ringer_and_handler() -> None:
    events = Simulation(load("doorbell")).run(until_ns=3 * MS)
    story = [(e["kind"], e["vm"], (e.get("ret") or {}).get("old_flags")) for e in events
             if e["kind"] == "hvc" and e["name"].startswith("doorbell_")
             and e["vm"] in ("VM_A", "VM_B")]
    rings = story.count(("hvc", "VM_A", 0))
    ring_times = [e["t"] for e in events if e["kind"] == "bell.send" and e["doorbell"] == "bell0"]
    assert rings == len(ring_times) == 10
    # VM_A: switched in, rings after the switch cost, arms its virtual timer period_ns
    # (300 us) ahead of the counter it read, sleeps in WFI; the timer fires at that
    # deadline and wakes it; it is switched in as soon as pCPU 0 is free, takes the
    # timer's vIRQ, masks the timer and rings again.
    states = [(e["t"], e["state"]) for e in events
              if e["kind"] == "vcpu.state" and e["vcpu"] == "VM_A.0"]
    runs = [t for t, state in states if state == "running"]
    sleeps = [t for t, state in states if state == "wfi"]
    wakes = [t for (t, state), (_, before) in zip(states[1:], states, strict=False)
             if before == "wfi"]
    assert ring_times == [runs[0] + SIM_CONTEXT_SWITCH_NS] + [
        t + TIMER_WAKE_NS for t in runs[1:10]]
    assert sleeps[:10] == [t + ARM_AND_WFI_NS for t in ring_times]
    armed = timer_deadlines(events, "VM_A.0")[:10]
    assert [cval for _, cval in armed] == [
        ns_to_ticks(t + COUNTER_READ_NS) + ns_to_ticks(300 * US) for t in ring_times]
    fires = timer_fires(events, "VM_A.0")
    assert wakes == fires == [ticks_to_ns(cval) for _, cval in armed[:len(fires)]]
    assert len(wakes) == 9
    assert story == [("hvc", "VM_A", 0), ("hvc", "VM_B", 1)] * rings
    # bell1 (VM_C, Linux's level irqfd): masks set once, then every send interrupts VM_B
    # once and bit 0 never stays.
    masks = [e for e in events if e["kind"] == "bell.mask"]
    assert [(e["doorbell"], e["enable_mask"], e["ack_mask"]) for e in masks] == [("bell1", 1, 1)]
    level = [e for e in events if e["kind"] == "bell.send" and e["doorbell"] == "bell1"]
    assert len(level) == 6 and all((e["sent"], e["flags"], e["acked"]) == (1, 0, 1)
                                   for e in level)
    # bell2 (VM_D, Linux's edge irqfd): no masks; bit 0 stays set, each send still interrupts.
    edge = [e for e in events if e["kind"] == "bell.send" and e["doorbell"] == "bell2"]
    assert len(edge) == 5  # at 13 us, then every 700 us + switch-in + hvc, up to 2825 us
    assert [(e["old"], e["flags"], e["acked"]) for e in edge] == (
        [(0, 1, 0)] + [(1, 1, 0)] * (len(edge) - 1))
    bell_vm_b = [e for e in events if e["kind"] in ("virq.deliver", "virq.eoi")
                 and e["vm"] == "VM_B"]
    assert len(bell_vm_b) == 2 * (rings + len(level) + len(edge))


IRQFD_KINDS = """
name: irqfd-kinds
pcpus: 2
vms:
  - name: Host
    affinity: [0]
    program: ringer
    params: {doorbell: lvl, irqfd: level, count: 2, period_ns: 200000}
  - name: Host2
    affinity: [0]
    program: ringer
    params: {doorbell: other, irqfd: %s, count: 2, period_ns: 200000}
  - name: Guest
    affinity: [1]
doorbells:
  - {name: lvl, sender: Host, receiver: Guest, trigger: %s, source_can_clear: true}
  - {name: other, sender: Host2, receiver: Guest, trigger: %s, source_can_clear: %s}
"""


def _irqfd_run(other: str, trigger: str, can_clear: str = "true") -> tuple[dict, list]:
    """vIRQ deliveries to Guest per doorbell, and the doorbell_mask results, for two sends."""
    sim = Simulation(parse(IRQFD_KINDS % (other, trigger, trigger, can_clear)))
    events = sim.run(until_ns=600 * US)
    guest = sim.hyp.vms["Guest"]
    virq = {guest.resources[f"{n}:rx"]["virq"]: n for n in ("lvl", "other")}
    count = {n: 0 for n in virq.values()}
    for e in events:
        if e["kind"] == "virq.deliver" and e["vm"] == "Guest" and e.get("virq") in virq:
            count[virq[e["virq"]]] += 1
    masks = [(e["vm"], e["result"]) for e in events
             if e["kind"] == "hvc" and e["name"] == "doorbell_mask"]
    return count, masks


def test_linux_irqfd_level_sets_both_masks_edge_sets_none() -> None:
    # On edge lines (what the RM binds), both kinds give one interrupt per send.
    count, masks = _irqfd_run("edge", "edge")
    assert count == {"lvl": 2, "other": 2}
    assert masks == [("Host", "OK")]  # only the level irqfd calls bell_set_mask
    # Why Linux sets enable = ack = 1 for a level irqfd: on a level-triggered line, bit 0
    # left set keeps the line asserted after EOI (an interrupt storm); acked, it does not.
    count, _ = _irqfd_run("edge", "level")
    assert count["lvl"] == 2 and count["other"] > 10 * count["lvl"]
    count, masks = _irqfd_run("level", "level")
    assert count == {"lvl": 2, "other": 2}
    assert masks == [("Host", "OK"), ("Host2", "OK")]
    # bell_set_mask needs RECEIVE on the sender's cap: without "source can clear" it is
    # refused and the doorbell keeps its default masks (Linux warns of an IRQ storm).
    count, masks = _irqfd_run("level", "level", can_clear="false")
    assert ("Host2", "CSPACE_INSUFFICIENT_RIGHTS") in masks
    assert count["other"] > 10 * count["lvl"]


def test_ping_with_period_sends_on_schedule(hyp: Hypervisor) -> None:
    a, b = add_vm(hyp, "A", (0,)), add_vm(hyp, "B", (1,))
    hyp.create_msgq("q", a, b, 8, 64)
    set_program(a, "ping", period_ns=100 * US, count=5, push=False)
    start(hyp, a, b)
    events = run_until(hyp, 2 * MS)
    sends = [e for e in events if e["kind"] == "msgq.send"]
    assert [e["payload"] for e in sends] == [f"ping {i}" for i in range(5)]
    # Each send arms the timer 100 us past the counter it reads; the next send follows
    # the timer's vIRQ.
    armed = timer_deadlines(events, "A.0")
    assert [cval for _, cval in armed] == [
        ns_to_ticks(e["t"] + COUNTER_READ_NS) + ns_to_ticks(100 * US) for e in sends]
    fires = timer_fires(events, "A.0")
    assert fires == [ticks_to_ns(cval) for _, cval in armed]
    assert [e["t"] for e in sends[1:]] == [t + TIMER_WAKE_NS for t in fires[:4]]
    assert [e["depth"] for e in sends] == [1, 2, 3, 4, 5]  # idle receiver never drains
    assert [e["push"] for e in sends] == [False] * 5


def test_spin_runs_on_every_vcpu(hyp: Hypervisor) -> None:
    vm = add_vm(hyp, "S", (0, 1))
    set_program(vm, "spin", work_ns=10 * US)
    start(hyp, vm)
    run_until(hyp, 1 * MS)
    assert [v.sched_state for v in vm.vcpus] == ["running", "running"]


@pytest.mark.parametrize(("program", "needs"), [
    ("ping", "MSG_QUEUE_SEND"), ("echo", "MSG_QUEUE_SEND"), ("producer", "MSG_QUEUE_SEND"),
    ("consumer", "MSG_QUEUE_RECV"), ("ringer", "DOORBELL_SRC"), ("bell-handler", "DOORBELL"),
])
def test_program_without_its_resource(hyp: Hypervisor, program: str, needs: str) -> None:
    vm = add_vm(hyp, "Lonely", (0,))
    with pytest.raises(MissingResource) as info:
        set_program(vm, program)
    assert needs in str(info.value) and "Lonely" in str(info.value)


def test_ping_waits_for_tx_virq_after_full(hyp: Hypervisor) -> None:
    """No reply queue, no period: the client sends until MSGQUEUE_FULL, then sleeps in WFI
    until the Tx vIRQ says there is room; it never retries into a full queue."""
    a, b = add_vm(hyp, "A", (0,)), add_vm(hyp, "B", (1,))
    hyp.create_msgq("q", a, b, 4, 64)
    set_program(a, "ping", period_ns=0, count=12, push=False)
    set_program(b, "consumer", work_ns=200 * US)
    start(hyp, a, b)
    events = run_until(hyp, 10 * MS)
    story = [e["result"] if e["kind"] == "hvc" else e.get("state", "tx") for e in events
             if (e["kind"] == "hvc" and e["vm"] == "A")
             or (e["kind"] == "vcpu.state" and e["vcpu"] == "A.0")
             or (e["kind"] == "virq.assert" and e["source"] == "msgq:q:tx")]
    # The consumer takes ping 0 at once, so pings 1-4 fill the queue; then each of pings
    # 5-11 meets a full queue once, waits for the Tx vIRQ, and goes in (ping 11 fills it
    # last; ping 12 does not exist).
    assert story.count("MSGQUEUE_FULL") == 7
    for i, step in enumerate(story[:-2]):
        if step == "MSGQUEUE_FULL":
            # asleep in WFI until the Tx vIRQ, no busy retry
            assert story[i + 1: i + 3] == ["wfi", "tx"]
    assert a.guest.sent == b.guest.received == 12
    assert hyp.msgqs["q"].count == 0
