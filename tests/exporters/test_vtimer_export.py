"""The virtual timer in the exports: its private vIRQ 27 per vCPU and its armed periods."""

from __future__ import annotations

import io
import json

from vcdvcd import VCDVCD

from gunyah_core import Simulation, load
from gunyah_core.exporters import export

RUN_NS = 1_000_000


def _events() -> list[dict]:
    return Simulation(load("virtual-timer")).run(until_ns=RUN_NS)


def _firings(events, vcpu: str) -> list[dict]:
    return [e for e in events if e["kind"] == "vtimer.fire" and e["vcpu"] == vcpu]


def _eois(events, vcpu: str) -> list[int]:
    return [e["t"] for e in events if e["kind"] == "virq.eoi" and e["vcpu"] == vcpu
            and e["virq"] == 27]


def _event_with_vcpu(seq: int, t: int, kind: str, vcpu: str, **fields) -> dict:
    return {"seq": seq, "t": t, "kind": kind, "vm": vcpu.split(".")[0], "vcpu": vcpu,
            **fields}


def test_vcd_has_a_ppi_27_wire_and_an_armed_wire_per_vcpu() -> None:
    events = _events()
    out = io.StringIO()
    export(events, "vcd", out)
    vcd = VCDVCD(vcd_string=out.getvalue())
    for vm, vcpu in (("Sleeper", "Sleeper.0"), ("Busy", "Busy.0")):
        virq = vcd[f"gunyah.{vm}.{vm}_0_virq27"]
        armed = vcd[f"gunyah.{vm}.{vm}_0_vtimer_armed"]
        fire, eoi = _firings(events, vcpu)[0]["t"], _eois(events, vcpu)[0]
        assert [virq[t] for t in (fire - 1, fire, eoi - 1, eoi)] == ["0", "1", "1", "0"]
        assert [armed[t] for t in (fire - 1, fire)] == ["1", "0"]
        first_arm = next(e["t"] for e in events if e["kind"] == "vtimer.write"
                         and e["vcpu"] == vcpu and e["enable"])
        assert [armed[t] for t in (first_arm - 1, first_arm)] == ["0", "1"]


def test_vcd_keeps_two_vcpus_ppi_27_apart() -> None:
    events = [
        _event_with_vcpu(0, 10, "virq.assert", "V.0", virq=27, source="vtimer:V.0"),
        _event_with_vcpu(1, 20, "virq.assert", "V.1", virq=27, source="vtimer:V.1"),
        _event_with_vcpu(2, 30, "virq.clear", "V.0", virq=27, source="vtimer:V.0"),
        {"seq": 3, "t": 40, "kind": "virq.assert", "vm": "V", "virq": 40, "source": "s",
         "vcpu": "V.1"},
    ]
    out = io.StringIO()
    export(events, "vcd", out)
    vcd = VCDVCD(vcd_string=out.getvalue())
    v0, v1 = vcd["gunyah.V.V_0_virq27"], vcd["gunyah.V.V_1_virq27"]
    assert [v0[t] for t in (10, 20, 30)] == ["1", "1", "0"]
    assert [v1[t] for t in (10, 20, 30)] == ["0", "1", "1"]
    assert vcd["gunyah.V.virq40"][40] == "1"  # a shared one stays the VM's


def test_perfetto_draws_each_armed_period_on_the_vcpus_timer_thread(check_chrome_trace):
    events = _events()
    out = io.StringIO()
    export(events, "perfetto", out)
    trace = json.loads(out.getvalue())
    check_chrome_trace(trace)
    threads = {ev["tid"]: ev["args"]["name"] for ev in trace["traceEvents"]
               if ev["ph"] == "M" and ev["name"] == "thread_name"}
    slices = [ev for ev in trace["traceEvents"] if ev["ph"] == "X" and ev["cat"] == "vtimer"]
    sleeper = [ev for ev in slices if threads[ev["tid"]] == "Sleeper.0 timer"]
    fires = _firings(events, "Sleeper.0")
    ends = [round(ev["ts"] + ev["dur"], 3) for ev in sleeper]
    assert [f["t"] / 1000 for f in fires] == ends[:len(fires)]
    assert [ev["args"]["cval"] for ev in sleeper[:len(fires)]] == [f["cval"] for f in fires]
    names = {ev["name"] for ev in trace["traceEvents"] if ev["ph"] == "i"}
    assert {"vtimer.write CNTV_CVAL_EL0", "vtimer.write CNTV_CTL_EL0", "vtimer.fire 27",
            "virq.assert 27"} <= names


def test_perfetto_closes_a_timer_left_armed_at_the_end(check_chrome_trace):
    events = [
        _event_with_vcpu(0, 0, "vtimer.write", "V.0", reg="CNTV_CTL_EL0", value=1,
                         enable=True, imask=False, cval=100, istatus=False),
        _event_with_vcpu(1, 500, "vtimer.write", "V.0", reg="CNTV_CTL_EL0", value=1,
                         enable=True, imask=False, cval=100, istatus=False),
        _event_with_vcpu(2, 700, "vtimer.write", "V.0", reg="CNTV_CVAL_EL0", value=200,
                         enable=True, imask=False, cval=200, istatus=False),
        _event_with_vcpu(3, 900, "hvc", "V.0", name="x"),
    ]
    out = io.StringIO()
    export(events, "perfetto", out)
    trace = json.loads(out.getvalue())
    check_chrome_trace(trace)
    slices = [(ev["ts"], ev["dur"], ev["args"]["cval"]) for ev in trace["traceEvents"]
              if ev["ph"] == "X" and ev["cat"] == "vtimer"]
    assert slices == [(0.0, 0.7, 100), (0.7, 0.2, 200)]  # same deadline: one slice
