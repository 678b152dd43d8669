"""The virtio presets move real bytes through the rings, both ways, with every live
invariant holding (facts §10.1; virtio 1.1 §2.6, §5.2, §5.3)."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load, parse
from gunyah_core.scenario import ScenarioError

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


BASE_SCENARIO = """
name: v
vms:
  - {name: VM_A, program: virtio-console, params: {virtio: console}}
virtio_mmios:
  - {name: console, device: console, frontend: VM_A%s}
"""


@pytest.mark.parametrize(("extra", "field"), [
    (", backend: VM_Z", "virtio_mmios[0].backend"),
    (", backend: VM_A", "virtio_mmios[0].frontend"),
    (", queues: 17", "virtio_mmios[0].queues"),
    (", queue_size: 1", "virtio_mmios[0].queue_size"),
])
def test_a_wrong_virtio_device_is_refused_naming_its_field(extra: str, field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse(BASE_SCENARIO % extra)
    assert field in str(err.value)


def test_a_driver_without_its_device_is_refused_naming_the_program() -> None:
    text = "name: v\nvms:\n  - {name: VM_A, program: virtio-blk}\n"
    with pytest.raises(ScenarioError) as err:
        Simulation(parse(text))
    assert "vms[0].program" in str(err.value) and "virtio-MMIO device" in str(err.value)


def test_rings_too_big_for_the_frontends_memory_are_refused_naming_the_device() -> None:
    """16 queues of 16 descriptors with 512-byte buffers need 48 pages; a guest has 16."""
    text = BASE_SCENARIO % ", queues: 16, queue_size: 16, buf_size: 512"
    with pytest.raises(ScenarioError) as err:
        Simulation(parse(text, "big.yaml"))
    assert "virtio_mmios[0]" in str(err.value) and "48 pages" in str(err.value)


def test_two_devices_on_one_frontend_get_rings_of_their_own() -> None:
    text = (BASE_SCENARIO % "") + "  - {name: disk, device: block, frontend: VM_A}\n"
    sim = Simulation(parse(text))
    fe = sim.hyp.vms["VM_A"].resources
    a, b = fe["console:frontend"], fe["disk:frontend"]
    assert a["ring_base"] >= b["ring_base"] + b["ring_stride"]  # the second below the first
    assert a["base"] != b["base"]  # and its own register page
