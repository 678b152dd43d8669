"""End to end: a real run's trace through every exporter and back."""

from __future__ import annotations

import csv
import io
import json

from vcdvcd import VCDVCD

from gunyah_core.exporters import EXPORTERS, export, load_jsonl
from gunyah_core.scenario import load
from gunyah_core.simulation import Simulation

RUN_NS = 1_000_000
SEED = 7
FORMATS = sorted(EXPORTERS)
#: The design's default scenario: a msgq ping-pong between two VMs.
PRESET = "msgq-pingpong"


def test_a_real_run_exports_cleanly(check_chrome_trace):
    events = Simulation(load(PRESET), seed=SEED).run(until_ns=RUN_NS)
    assert any(e["kind"] == "msgq.recv" for e in events)
    files = {}
    for fmt in FORMATS:
        out = io.StringIO()
        assert export(events, fmt, out) == len(events)
        files[fmt] = out.getvalue()

    assert load_jsonl(files["jsonl"]) == events
    assert len(list(csv.DictReader(io.StringIO(files["csv"])))) == len(events)

    sent = {e["msg"] for e in events if e["kind"] == "msgq.send"}
    received = {e["msg"] for e in events if e["kind"] == "msgq.recv"}
    check_chrome_trace(json.loads(files["perfetto"]),
                       open_flows=frozenset(f"0x{m:x}" for m in sent - received))

    vcd = VCDVCD(vcd_string=files["vcd"])
    for event in events:
        if event["kind"] in ("msgq.send", "msgq.recv"):
            signal = vcd[f"gunyah.msgq.{event['msgq']}"]
            last_at_t = [int(v, 2) for t, v in signal.tv if t == event["t"]][-1]
            depths_at_t = [e["depth"] for e in events
                           if e.get("msgq") == event["msgq"] and e["t"] == event["t"]
                           and "depth" in e]
            assert last_at_t == depths_at_t[-1]

