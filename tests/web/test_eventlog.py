"""The compact event log behind each branch: what goes in comes out, capped and shared."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp import eventlog
from webapp.eventlog import EventLog, EventQueue


def event(seq: int) -> dict:
    return {"seq": seq, "t": seq * 3, "kind": "k", "x": [seq, {"a": None, "b": "é"}]}


batches = st.lists(st.tuples(st.integers(0, 25), st.booleans()), max_size=10)


@settings(max_examples=200, deadline=None)
@given(cap=st.integers(1, 60), start=st.integers(0, 5), batches=batches,
       probe=st.integers(0, 400), count=st.integers(0, 40))
def test_log_keeps_the_newest_cap_events_in_order(cap, start, batches, probe, count):
    log, ref, seq = EventLog(cap, chunk_events=7), [], start
    for size, seal in batches:
        new = [event(seq + i) for i in range(size)]
        seq += size
        log.extend(new)
        ref = (ref + new)[-cap:]
        if seal:
            log.seal()
    assert list(log) == ref and len(log) == len(ref)
    assert log.head_seq == (ref[-1]["seq"] if ref else -1)
    if not ref:
        return
    assert log.first_seq == ref[0]["seq"] and log.last() == ref[-1]
    from_seq = max(probe + start, ref[0]["seq"])
    assert log.window(probe + start, count) == [e for e in ref if e["seq"] >= from_seq][:count]
    through = ref[0]["seq"] + probe % len(ref)
    fork = log.prefix(through)
    assert list(fork) == [e for e in ref if e["seq"] <= through]
    fork.extend([event(through + 1)])
    assert fork.head_seq == through + 1 and list(log) == ref  # the parent is untouched
    queue = EventQueue(log)
    assert [queue.popleft() for _ in range(len(queue))] == ref and not queue


def test_sealed_chunks_are_compressed_and_shared_by_a_prefix():
    log = EventLog(10_000, (event(i) for i in range(5_000)))
    assert log.tail_bytes() < eventlog.CHUNK_EVENTS * 1000  # only the last chunk unsealed
    assert sum(map(len, log.blobs())) < 5_000 * 40
    fork = log.prefix(4_000)
    assert all(a is b for a, b in zip(fork.blobs(), log.blobs()[:3], strict=False))


def test_the_newest_events_wait_without_objects_the_garbage_collector_scans():
    """Every playing session's unsealed events live for seconds: as dicts they reached
    the oldest generation and made full collections frequent and long under load."""
    import gc

    log = EventLog(10_000)
    gc.collect()
    before = len(gc.get_objects())
    log.extend(event(i) for i in range(eventlog.CHUNK_EVENTS - 1))  # all in the tail
    gc.collect()
    assert len(gc.get_objects()) - before < 10
    assert [e["seq"] for e in log.window(0, 5)] == [0, 1, 2, 3, 4]


def test_the_budget_counts_a_shared_chunk_once_and_refuses_past_its_limit():
    from webapp.budget import RESERVE_BYTES_PER_EVENT, MemoryBudget
    from webapp.protocol import ProtocolError

    budget = MemoryBudget(limit=10**9)
    log = budget.track(EventLog(10_000, (event(i) for i in range(5_000))))
    alone = budget.used()
    assert alone == sum(map(len, log.blobs())) + log.tail_bytes()
    fork = budget.track(log.prefix(3_999))  # three whole chunks shared, nothing new
    assert budget.used() == alone + fork.tail_bytes()
    budget.limit = budget.used() + 100 * RESERVE_BYTES_PER_EVENT
    budget.admit("branch", 100)
    with pytest.raises(ProtocolError) as err:
        budget.admit("branch", 101)
    assert err.value.code == "MEMORY_BUDGET"
