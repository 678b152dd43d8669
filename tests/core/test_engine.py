"""The event engine and the trace recorder: ordering, cancel, determinism, numbering."""

from __future__ import annotations

import pytest

from gunyah_core.core.engine import (
    MAX_EVENTS_AT_ONE_TIME,
    PRIO_NORMAL,
    PRIO_URGENT,
    Engine,
    NoProgressError,
)
from gunyah_core.core.trace import ALL_KINDS, EventKind, Trace


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


def _stuck_engine(start_ns: int = 5) -> Engine:
    """An action that reschedules itself with no delay: the clock can never move."""
    engine = Engine()

    def again() -> None:
        engine.schedule(0, again)

    engine.schedule(start_ns, again)
    return engine


def test_run_stops_a_model_whose_clock_never_moves() -> None:
    engine = _stuck_engine()
    with pytest.raises(NoProgressError, match="no progress") as info:
        engine.run()
    assert info.value.now == 5 == engine.now
    assert MAX_EVENTS_AT_ONE_TIME <= engine.processed <= 2 * MAX_EVENTS_AT_ONE_TIME


def test_step_stops_a_model_whose_clock_never_moves() -> None:
    engine = _stuck_engine()
    with pytest.raises(NoProgressError):
        while engine.step():
            pass
    assert engine.processed == MAX_EVENTS_AT_ONE_TIME
    assert engine.peek() == 5  # the refused event is still there


def test_many_events_while_the_clock_moves_are_fine() -> None:
    engine = Engine()
    left = [3 * MAX_EVENTS_AT_ONE_TIME]

    def tick() -> None:
        left[0] -= 1
        if left[0]:
            engine.schedule(1, tick)

    engine.schedule(0, tick)
    engine.run()
    assert engine.processed == 3 * MAX_EVENTS_AT_ONE_TIME
    engine.schedule(0, tick)
    left[0] = MAX_EVENTS_AT_ONE_TIME
    while engine.step():  # step() after run() counts afresh
        pass
