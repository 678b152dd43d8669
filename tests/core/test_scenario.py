"""Scenario files: presets run, JSON equals YAML, errors name the field and the line."""

from __future__ import annotations

import json

import pytest
import yaml

from gunyah_core import Simulation, load, parse, preset_names
from gunyah_core.scenario import ScenarioError
from tests.core.conftest import MS

RUN_NS = 5 * MS
EXPECTED_PRESETS = {"doorbell", "msgq-backpressure", "msgq-pingpong", "msgq-thresholds",
                    "priority-preemption"}


def preset_text(name: str) -> str:
    from importlib import resources
    return resources.files("gunyah_core").joinpath("presets", f"{name}.yaml").read_text()


def error_of(text: str, source: str = "s.yaml") -> str:
    with pytest.raises(ScenarioError) as info:
        Simulation(parse(text, source))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_presets_are_listed() -> None:
    assert EXPECTED_PRESETS <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_runs_5ms(name: str) -> None:
    sim = Simulation(load(name))
    events = sim.run(until_ns=RUN_NS)
    assert sim.now == RUN_NS
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all(e["t"] <= RUN_NS for e in events)
    hvcs = [e for e in events if e["kind"] == "hvc"]
    assert hvcs and any(e["result"] == "OK" for e in hvcs)
    assert {e["kind"] for e in events} >= {"sched.switch", "virq.assert", "virq.deliver"}


def test_json_text_works_like_yaml() -> None:
    text = preset_text("msgq-pingpong")
    as_json = json.dumps(yaml.safe_load(text))
    from_yaml, from_json = parse(text, "a.yaml"), parse(as_json, "a.json")
    assert from_json.config == from_yaml.config
    assert Simulation(from_json).run(until_ns=1 * MS) == Simulation(from_yaml).run(until_ns=1 * MS)


SCENARIO_PRIORITY_70 = """\
name: bad-priority
pcpus: 2
vms:
  - name: VM_A
    affinity: [0]
    priority: 70
"""


def test_schema_error_names_field_and_line() -> None:
    message = error_of(SCENARIO_PRIORITY_70, "bad.yaml")
    assert "vms[0].priority" in message
    assert "bad.yaml:6" in message
    assert "70" in message


def test_json_error_names_field_and_line() -> None:
    text = '{\n  "name": "x",\n  "vms": [\n    {"name": "A", "vcpus": 0}\n  ]\n}\n'
    message = error_of(text, "x.json")
    assert "vms[0].vcpus" in message and "x.json:4" in message


SCENARIO_BAD_SENDER = """\
name: bad-sender
vms:
  - name: VM_A
  - name: VM_B
msgqs:
  - name: q
    sender: VM_Z
    receiver: VM_B
"""


def test_unknown_msgq_sender() -> None:
    message = error_of(SCENARIO_BAD_SENDER)
    assert "msgqs[0].sender" in message and ":7" in message and "VM_Z" in message


def test_bad_yaml_names_the_line() -> None:
    message = error_of("name: x\nvms:\n  - name: [unclosed\n  - b\n")
    assert "not valid YAML" in message and "s.yaml:" in message


def test_not_a_mapping() -> None:
    assert "mapping" in error_of("- just\n- a list\n")


SCENARIO_PROGRAM_WITHOUT_QUEUE = """\
name: lonely
vms:
  - name: VM_A
    program: ping
  - name: VM_B
"""


def test_program_missing_its_queue() -> None:
    message = error_of(SCENARIO_PROGRAM_WITHOUT_QUEUE)
    assert "vms[0].program" in message
    assert "MSG_QUEUE_SEND" in message and "VM_A" in message


def test_program_param_naming_unknown_queue() -> None:
    text = SCENARIO_PROGRAM_WITHOUT_QUEUE.replace("program: ping",
                                                  "program: ping\n    params: {tx: nope}")
    message = error_of(text)
    assert "vms[0].params.tx" in message and ":5" in message


@pytest.mark.parametrize(("text", "field"), [
    ("name: d\nvms:\n  - name: A\n  - name: A\n", "vms[1].name"),
    ("name: d\nvms:\n  - name: RM\n", "vms[0].name"),
    ("name: d\npcpus: 2\nvms:\n  - name: A\n    affinity: [2]\n", "vms[0].affinity[0]"),
    ("name: d\nvms:\n  - name: A\n  - name: B\nmsgqs:\n"
     "  - {name: q, sender: A, receiver: A}\n", "msgqs[0].receiver"),
    ("name: d\nvms:\n  - name: A\n  - name: B\nmsgqs:\n"
     "  - {name: q, sender: A, receiver: B, depth: 4, notempty_thd: 5}\n",
     "msgqs[0].notempty_thd"),
    ("name: d\nvms:\n  - name: A\n  - name: B\nmsgqs:\n"
     "  - {name: q, sender: A, receiver: B, depth: 4, notfull_thd: 4}\n",
     "msgqs[0].notfull_thd"),
    ("name: d\nvms:\n  - name: A\n    colour: red\n", "vms[0]"),
    ("name: d\n", "vms"),
])
def test_reference_and_schema_errors_name_the_field(text: str, field: str) -> None:
    assert field in error_of(text)


def test_unknown_preset_or_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load("no-such-preset")
    assert "no-such-preset" in str(info.value) and "msgq-pingpong" in str(info.value)


def test_thresholds_from_scenario_are_applied() -> None:
    sim = Simulation(load("msgq-thresholds"))
    seed_q, source_q = sim.hyp.msgqs["Docs"], sim.hyp.msgqs["Source"]
    assert (seed_q.notempty_thd, seed_q.notfull_thd) == (8, 0)
    assert (source_q.notempty_thd, source_q.notfull_thd) == (1, 7)


def test_reserved_vms_always_exist() -> None:
    hyp = Simulation(load("msgq-pingpong")).hyp
    assert {name: vm.vmid for name, vm in hyp.vms.items()} == {
        "RM": 0xFF, "HLOS": 0x3, "VM_A": 0x80, "VM_B": 0x81}
    assert (hyp.msgqs["HLOS_to_RM"].depth, hyp.msgqs["HLOS_to_RM"].max_size) == (8, 240)


def test_focus_reaches_the_snapshot_and_is_checked() -> None:
    """`focus` is a view setting for the page: carried in the snapshot's scenario only
    when given, refused with its field named when its value is unknown."""
    text = "name: d\nvms:\n  - name: A\nfocus: {rm_links: unfolded}\n"
    assert Simulation(parse(text)).snapshot()["scenario"]["focus"] == {"rm_links": "unfolded"}
    assert "focus" not in Simulation(parse("name: d\nvms:\n  - name: A\n")).snapshot()["scenario"]
    assert load("rm-boot").config["focus"] == {"rm_links": "unfolded"}
    assert "focus.rm_links" in error_of("name: d\nvms:\n  - name: A\nfocus: {rm_links: open}\n")
    assert "focus" in error_of("name: d\nvms:\n  - name: A\nfocus: {subject: [A]}\n")
