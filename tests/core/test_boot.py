"""The boot: which leading events of a run the page folds at load (Simulation.boot)."""

from __future__ import annotations

import pytest
from gunyah_core.trace import ALL_KINDS

from gunyah_core import Simulation, load, parse, preset_names
from gunyah_core.scenario import ScenarioError, schema
from gunyah_core.simulation import BOOT_MAX_EVENTS, BOOT_SETTLE_KINDS, boot_length

SCENARIO = ("name: b\nvms:\n  - name: A\n    program: ping\n"
            "    params: {tx: AB, rx: BA, period_ns: 0, size: 8}\n"
            "  - name: B\n    program: echo\n    params: {tx: BA, rx: AB}\n"
            "msgqs:\n  - {name: AB, sender: A, receiver: B}\n"
            "  - {name: BA, sender: B, receiver: A}\n")
SCHEDULING_ONLY = {"vcpu.state", "sched.switch", "virq.bind", "sim.snapshot"}


@pytest.mark.parametrize("name", preset_names())
def test_every_presets_first_event_after_the_boot_is_what_it_is_about(name):
    """The build and the vCPUs settling (RM and idle VMs going to WFI) are the boot; the
    first event after it is neither a build event nor a scheduling move."""
    sim = Simulation(load(name))
    boot, rest = sim.boot()
    assert any(e["kind"] == "sim.snapshot" for e in boot)
    assert boot[-1]["seq"] + 1 == rest[0]["seq"]
    assert rest[0]["kind"] not in SCHEDULING_ONLY
    assert rest[0]["t"] > 0  # past the t=0 build: the rule "t == 0" alone stops earlier


@pytest.mark.parametrize("name", preset_names())
def test_the_boot_does_not_change_the_run(name):
    """Revealing the boot at load is a view: the events are the model's, byte for byte."""
    sim = Simulation(load(name))
    boot, rest = sim.boot()
    got = boot + rest + sim.run(max_events=200)
    plain = Simulation(load(name))
    want = plain.trace.take() + plain.run(max_events=len(got))
    assert got == want[:len(got)]


def test_boot_until_build_ends_at_the_snapshot_event():
    boot, rest = Simulation(parse(SCENARIO + "boot_until: build\n")).boot()
    assert boot[-1]["kind"] == "sim.snapshot" and rest == []
    settled, _ = Simulation(parse(SCENARIO)).boot()
    assert len(settled) > len(boot)


def test_boot_until_a_kind_ends_just_before_it():
    boot, rest = Simulation(parse(SCENARIO + "boot_until: hvc\n")).boot()
    assert rest[0]["kind"] == "hvc" and all(e["kind"] != "hvc" for e in boot)
    assert any(e["kind"] == "msgq.send" for e in boot)  # past the first send


def test_a_boot_that_never_ends_falls_back_to_the_build():
    """A kind that never comes: the boot is the build alone, not the whole run."""
    boot, _ = Simulation(parse(SCENARIO + "boot_until: mem.fault\n")).boot()
    assert boot[-1]["kind"] == "sim.snapshot"
    events = Simulation(parse(SCENARIO)).run(max_events=BOOT_MAX_EVENTS + 200)
    built = next(i for i, e in enumerate(events) if e["kind"] == "sim.snapshot") + 1
    spinning = [*events[:built], *[{**events[built], "kind": "vcpu.state"}] * (BOOT_MAX_EVENTS + 5)]
    assert boot_length(spinning) == built
    assert boot_length(events[:built]) is None  # the run ends inside the boot


def test_boot_until_is_checked_strictly():
    message = str(pytest.raises(ScenarioError, parse, SCENARIO + "boot_until: msgq.sned\n").value)
    assert "boot_until" in message and "msgq.sned" in message
    allowed = set(schema()["properties"]["boot_until"]["enum"])
    assert allowed == {"build", "settled"} | (ALL_KINDS - {"sim.snapshot"})
    assert BOOT_SETTLE_KINDS < ALL_KINDS


def test_boot_until_reaches_the_snapshot_only_when_given():
    sim = Simulation(parse(SCENARIO + "boot_until: hvc\n"))
    assert sim.snapshot()["scenario"]["boot_until"] == "hvc"
    assert "boot_until" not in Simulation(parse(SCENARIO)).snapshot()["scenario"]
