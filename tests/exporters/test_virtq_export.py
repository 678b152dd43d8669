"""Virtqueue depths in the exports: a Perfetto counter track and three VCD integers per
queue, following the virtq.* events of a real virtio run (docs/exports.md)."""

from __future__ import annotations

import io
import json

import pytest
from vcdvcd import VCDVCD

from gunyah_core.exporters import export
from gunyah_core.scenario import load
from gunyah_core.simulation import Simulation

RUN_NS = 1_000_000
DEPTHS = ("avail_depth", "in_device", "used_depth")


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return Simulation(load("virtio-block")).run(until_ns=RUN_NS)


def _virtq(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"].startswith("virtq.")]


def test_perfetto_has_a_counter_per_virtqueue_with_its_depths(events, check_chrome_trace):
    out = io.StringIO()
    export(events, "perfetto", out)
    trace = json.loads(out.getvalue())
    check_chrome_trace(trace)
    counters = [r for r in trace["traceEvents"] if r["ph"] == "C" and r["cat"] == "virtq"]
    assert {r["name"] for r in counters} == {"virtq disk q0"}
    rings = _virtq(events)
    assert [r["args"] for r in counters] == [{k: e[k] for k in DEPTHS} for e in rings]
    assert [r["ts"] for r in counters] == [e["t"] / 1000 for e in rings]
    assert max(r["args"]["avail_depth"] for r in counters) >= 2


def test_vcd_has_three_depth_signals_per_virtqueue(events):
    out = io.StringIO()
    export(events, "vcd", out)
    vcd = VCDVCD(vcd_string=out.getvalue())
    at: dict[int, list[dict]] = {}
    for e in _virtq(events):
        at.setdefault(e["t"], []).append(e)
    # Two changes at one instant are both in the file; a reader may show either, so
    # compare where one event set the depths.
    last_at = {t: group[0] for t, group in at.items() if len(group) == 1}
    assert len(last_at) > 10
    for suffix, field in (("avail", "avail_depth"), ("device", "in_device"),
                          ("used", "used_depth")):
        signal = vcd[f"gunyah.virtq.disk_q0_{suffix}"]
        for t, e in last_at.items():
            assert int(signal[t], 2) == e[field], (suffix, t)
    assert any(e["used_depth"] >= 2 for e in last_at.values())
