"""The virtio presets move real bytes through the rings, both ways, with every live
invariant holding (facts §10.1; virtio 1.1 §2.6, §5.2, §5.3)."""

from __future__ import annotations

from gunyah_core import Simulation, load

MS = 1_000_000


def _run(preset: str, until_ns: int = 2 * MS) -> Simulation:
    sim = Simulation(load(preset), check_invariants=True)
    sim.run(until_ns=until_ns)
    return sim


def test_console_round_trip_and_reset():
    sim = _run("virtio-console")
    driver, device = sim.hyp.vms["VM_A"].guest, sim.hyp.vms["HLOS"].guest
    assert driver.resets == 1 and driver.sent > 20
    assert driver.mismatches == 0 and driver.faults == 0
    # Every line written since the reset came back, byte for byte, through the rings
    # (but for the last few still on their way).
    lines = [driver.line(n) for n in range(3, driver.sent)]
    assert bytes(driver.echoed) == b"".join(lines)[:len(driver.echoed)]
    assert len(driver.echoed) >= len(b"".join(lines[:-3]))
    assert device.received == driver.sent or device.received == driver.sent - 1
    assert sim.invariants.violation is None


def test_block_writes_then_reads_back_every_sector():
    sim = _run("virtio-block")
    driver = sim.hyp.vms["VM_A"].guest
    assert driver.round >= 2
    assert driver.verified >= 2 * driver.count
    assert driver.mismatches == 0
    disk = sim.hyp.vms["HLOS"].guest.disk
    assert disk and all(disk[s] == driver.written[s] for s in disk)
    assert sim.invariants.violation is None


def test_the_frontends_register_loads_are_plain_reads_of_the_page():
    events = Simulation(load("virtio-console")).run(until_ns=MS // 10)
    loads = [e for e in events if e["kind"] == "mem.access" and e.get("device") == "console"]
    assert loads[0]["reg"] == "MagicValue" and loads[0]["value"] == 0x74726976
    assert loads[1]["reg"] == "DeviceID" and loads[1]["value"] == 3  # VIRTIO_ID_CONSOLE
    # Stores are never mem.access: each traps and is emulated (virtio.write).
    assert not any(e["kind"] == "mem.access" and e["access"] == "W" for e in events)
    assert any(e["kind"] == "virtio.write" and e["reg"] == "QueueNotify" for e in events)
