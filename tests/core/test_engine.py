"""The event engine and the trace recorder: ordering, cancel, determinism, numbering."""

from __future__ import annotations

import pytest

from gunyah_core.engine import PRIO_NORMAL, PRIO_URGENT, Engine
from gunyah_core.trace import ALL_KINDS, EventKind, Trace


def test_events_run_in_time_then_priority_then_schedule_order() -> None:
    engine, log = Engine(), []
    engine.schedule(20, log.append, "t20")
    engine.schedule(10, log.append, "t10-normal-1")
    engine.schedule(10, log.append, "t10-urgent", prio=PRIO_URGENT)
    engine.schedule(10, log.append, "t10-normal-2", prio=PRIO_NORMAL)
    engine.schedule(0, log.append, "t0")
    times = []
    while engine.step():
        times.append(engine.now)
    assert log == ["t0", "t10-urgent", "t10-normal-1", "t10-normal-2", "t20"]
    assert times == [0, 10, 10, 10, 20]
    assert engine.processed == 5
    assert engine.step() is False


def test_delays_are_relative_to_now() -> None:
    engine, log = Engine(), []

    def chain(n: int) -> None:
        log.append((engine.now, n))
        if n:
            engine.schedule(5, chain, n - 1)

    engine.schedule(3, chain, 2)
    while engine.step():
        pass
    assert log == [(3, 2), (8, 1), (13, 0)]


def test_cancel_peek_and_len() -> None:
    engine, log = Engine(), []
    first = engine.schedule(5, log.append, "a")
    engine.schedule(7, log.append, "b")
    assert (engine.peek(), len(engine)) == (5, 2)
    engine.cancel(first)
    engine.cancel(None)  # cancelling nothing is harmless
    assert (engine.peek(), len(engine)) == (7, 1)
    assert engine.step() and log == ["b"] and engine.now == 7
    assert engine.peek() is None and len(engine) == 0
    assert engine.processed == 1


def test_cannot_schedule_in_the_past() -> None:
    with pytest.raises(ValueError):
        Engine().schedule(-1, print)


def test_clock_does_not_move_without_events() -> None:
    engine = Engine()
    assert engine.step() is False and engine.now == 0


def test_trace_numbers_and_stamps_events() -> None:
    engine = Engine()
    trace = Trace(engine)
    seen: list[dict] = []
    stop = trace.subscribe(seen.append)
    trace.emit(EventKind.HVC, vm="A", name="x")
    engine.schedule(42, trace.emit, EventKind.VIRQ_ASSERT)
    engine.step()
    stop()
    trace.emit(EventKind.USER_ACTION, action="after unsubscribe")
    assert seen == [{"seq": 0, "t": 0, "kind": "hvc", "vm": "A", "name": "x"},
                    {"seq": 1, "t": 42, "kind": "virq.assert"}]
    assert list(seen[0]) == ["seq", "t", "kind", "vm", "name"]  # fixed key order
    taken = trace.take()
    assert [e["seq"] for e in taken] == [0, 1, 2]
    assert trace.take() == []


def test_kinds_are_area_dot_verb_and_include_the_contract() -> None:
    assert {"hvc", "msgq.send", "msgq.recv", "virq.assert", "virq.deliver", "virq.eoi",
            "bell.send", "bell.recv", "sched.switch", "vcpu.state", "vcpu.run", "rm.rpc",
            "vm.state", "mem.lend", "mem.share", "mem.donate", "mem.accept", "mem.reclaim",
            "mem.fault", "user.action"} <= ALL_KINDS
    assert all(k == "hvc" or k.count(".") == 1 for k in ALL_KINDS)
