"""A PSCI vCPU's power state in the Perfetto and VCD exports (from ``vcpu.power``)."""

from __future__ import annotations

import io
import json

from vcdvcd import VCDVCD

from gunyah_core.exporters import export

POWER = [  # vCPU G.1: on by CPU_ON at 1 µs, suspended at 3 µs, on at 5 µs, off at 8 µs
    {"seq": 0, "t": 1000, "kind": "vcpu.power", "vcpu": "G.1", "vm": "G", "power": "on",
     "reason": "CPU_ON from G.0"},
    {"seq": 1, "t": 3000, "kind": "vcpu.power", "vcpu": "G.1", "vm": "G",
     "power": "suspended", "reason": "CPU_SUSPEND"},
    {"seq": 2, "t": 5000, "kind": "vcpu.power", "vcpu": "G.1", "vm": "G", "power": "on",
     "reason": "wake:timer"},
    {"seq": 3, "t": 8000, "kind": "vcpu.power", "vcpu": "G.1", "vm": "G", "power": "off",
     "reason": "CPU_OFF"},
    {"seq": 4, "t": 9000, "kind": "psci.call", "vm": "G", "vcpu": "G.0",
     "function": "SYSTEM_OFF", "fid": 0x84000008, "args": {}, "ret": None, "x0": None},
]


def test_perfetto_has_one_power_slice_per_state_on_a_power_thread():
    out = io.StringIO()
    export(POWER, "perfetto", out)
    records = json.loads(out.getvalue())["traceEvents"]
    names = {r["tid"]: r["args"]["name"] for r in records if r.get("name") == "thread_name"}
    slices = [(names[r["tid"]], r["name"], r["ts"], r["dur"]) for r in records
              if r.get("ph") == "X" and r.get("cat") == "power"]
    assert slices == [("G.1 power", "on", 1.0, 2.0), ("G.1 power", "suspended", 3.0, 2.0),
                      ("G.1 power", "on", 5.0, 3.0), ("G.1 power", "off", 8.0, 1.0)]
    assert any(r.get("name") == "PSCI SYSTEM_OFF" and r.get("cat") == "psci"
               for r in records)


def test_vcd_has_the_power_state_as_a_number_and_a_string():
    out = io.StringIO()
    export(POWER, "vcd", out)
    vcd = VCDVCD(vcd_string=out.getvalue())
    code = vcd["gunyah.power.G_1"]
    assert [int(code[t], 2) for t in (0, 1000, 3000, 4999, 5000, 8000)] == [0, 1, 2, 2, 1, 0]
    # vcdvcd skips string values: read the string twin's changes from the text.
    text = out.getvalue()
    ident = next(line.split()[3] for line in text.splitlines()
                 if line.endswith(" G_1_state $end"))
    changes = [line[1:-len(ident) - 1] for line in text.splitlines()
               if line.startswith("s") and line.endswith(f" {ident}")]
    assert changes == ["off", "on", "suspended", "on", "off"]
