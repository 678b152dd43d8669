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


# --- what each preset exists to show, exactly ----------------------------------------------
def _sends(events, vm: str) -> list[tuple]:
    return [(e["result"], (e.get("ret") or {}).get("not_full")) for e in events
            if e["kind"] == "hvc" and e["name"] == "msgqueue_send" and e["vm"] == vm]


def claim_msgq_backpressure(events) -> None:
    """The send that fills the 4-deep queue says not_full=false, the next is
    MSGQUEUE_FULL, and each later send waits for the Tx vIRQ."""
    assert _sends(events, "Producer")[:8] == [
        ("OK", True), ("OK", True), ("OK", True), ("OK", True), ("OK", False),
        ("MSGQUEUE_FULL", False), ("OK", False), ("MSGQUEUE_FULL", False)]
    story = [e["kind"] if e["kind"] != "hvc" else e["result"] for e in events
             if (e["kind"] == "virq.assert" and e["source"] == "msgq:P_to_C:tx")
             or (e["kind"] == "hvc" and e["vm"] == "Producer")]
    full = [i for i, step in enumerate(story[:-1]) if step == "MSGQUEUE_FULL"]
    assert len(full) > 2 and {story[i + 1] for i in full} == {"virq.assert"}


def claim_msgq_thresholds(events) -> None:
    """Docs (not-empty 8, not-full 0): Rx only with 8 queued, Tx only when drained;
    Source (defaults): Rx at every first message."""
    count: dict[str, int] = {}
    seen = []
    for e in events:
        if e["kind"] in ("msgq.send", "msgq.recv"):
            count[e["msgq"]] = e["depth"]
        elif e["kind"] == "virq.assert" and e["source"].startswith("msgq:"):
            _, queue, side = e["source"].split(":")
            seen.append((queue, side, count[queue]))
    assert {s for s in seen if s[0] == "Docs"} == {("Docs", "rx", 8), ("Docs", "tx", 0)}
    assert {s for s in seen if s[0] == "Source"} == {("Source", "rx", 1)}


def claim_priority_preemption(events) -> None:
    """Urgent preempts at the instant its doorbell vIRQ is asserted, and the vCPU it
    preempted runs again when Urgent blocks (head of its list)."""
    rings = [e["t"] for e in events if e["kind"] == "virq.assert" and e["vm"] == "Urgent"]
    switches = [(e["t"], e["prev"], e["next"], e["reason"]) for e in events
                if e["kind"] == "sched.switch" and e["pcpu"] == 0]
    for t in rings[1:]:  # the first ring meets the boot, not a spinner
        (i, (_, prev, _, _)), = [(i, s) for i, s in enumerate(switches)
                                 if s[0] == t and s[2] == "Urgent.0"]
        assert switches[i][3] == "preempt"
        assert switches[i + 1][1:] == ("Urgent.0", prev, "block:vcpu_wfi")
    assert len(rings) == 2


def claim_proxy_scheduling(events) -> None:
    """vcpu_run returns READY when HLOS's 1 ms slice runs out inside Guest's handler,
    EXPECTS_WAKEUP when Guest waits, and runs Guest again after Ticker's doorbell."""
    assert [e["state"] for e in events if e["kind"] == "vcpu.run"] == [
        "running", "READY", "running", "EXPECTS_WAKEUP", "running"]


def claim_mem_lend(events) -> None:
    """VM_A's read of the lent page faults; VM_B's fetch faults (RW only); VM_A's reclaim
    is MEM_INUSE until VM_B releases."""
    assert [(e["vm"], e["access"], e["reason"]) for e in events if e["kind"] == "mem.fault"] \
        == [("VM_A", "R", "permission"), ("VM_B", "X", "permission")]
    replies = [(e["name"], e["error"]) for e in events if e["kind"] == "rm.rpc"
               and e["name"] in ("MEM_RECLAIM", "MEM_RELEASE") and e.get("error")]
    assert replies[:2] == [("MEM_RECLAIM", "MEM_INUSE"), ("MEM_RELEASE", "OK")]


def claim_mem_share_doorbell(events) -> None:
    """VM_B reads from the shared page exactly what VM_A wrote before each ring."""
    written = [e["value"] for e in events if e["kind"] == "mem.access"
               and (e["vm"], e["access"]) == ("VM_A", "W")]
    read = [e["value"] for e in events if e["kind"] == "mem.access"
            and (e["vm"], e["access"]) == ("VM_B", "R")]
    assert read == written and len(written) == 2  # both writes of the first 5 ms, each read


def claim_virtual_timer(events) -> None:
    """Sleeper arms CNTV_CVAL_EL0 then CNTV_CTL_EL0, sleeps in WFI with the deadline on
    the hypervisor's timer, is woken by its PPI 27 (level) at that deadline, masks it
    and rings; Busy's ticks fire while it runs."""
    mine = [e for e in events if e.get("vcpu") == "Sleeper.0" and e["kind"] in (
        "vtimer.write", "vtimer.queue", "vtimer.fire", "virq.assert", "virq.deliver")]
    story = [(e["kind"], e.get("reg") or e.get("path") or e.get("virq")) for e in mine]
    assert story[:8] == [
        ("vtimer.write", "CNTV_CVAL_EL0"), ("vtimer.write", "CNTV_CTL_EL0"),
        ("vtimer.queue", None), ("vtimer.fire", "hyp_timer"), ("virq.assert", 27),
        ("virq.deliver", 27), ("vtimer.write", "CNTV_CTL_EL0"),
        ("vtimer.write", "CNTV_CVAL_EL0")]
    assert mine[3]["t"] == mine[2]["deadline"] and mine[6]["imask"] is True
    assert mine[4]["trigger"] == "level"
    busy = {e["path"] for e in events if e["kind"] == "vtimer.fire" and e["vcpu"] == "Busy.0"}
    assert busy == {"running"}
    rings = [e for e in events if e["kind"] == "bell.send" and e["src"] == "Sleeper"]
    assert len(rings) >= 10


def _vm_states(events) -> list[str]:
    return [e["state"] for e in events if e["kind"] == "vm.state" and e["vm"] == "VM_80"]


def claim_psci_power(events: list[dict]) -> None:
    """vCPU 1 comes on with CPU_ON, is refused a second one, suspends and turns itself
    off; vCPU 0 may not be the last off; SYSTEM_OFF reaches HLOS as PLATFORM_OFF."""
    calls = [(e["vcpu"], e["function"], e["ret"]) for e in events if e["kind"] == "psci.call"]
    assert calls[:4] == [("VM_80.0", "PSCI_VERSION", "1.1"), ("VM_80.0", "CPU_ON", "SUCCESS"),
                         ("VM_80.0", "CPU_ON", "ALREADY_ON"),
                         ("VM_80.0", "CPU_ON", "INVALID_PARAMETERS")]
    assert ("VM_80.1", "CPU_SUSPEND", "SUCCESS") in calls
    assert ("VM_80.1", "CPU_OFF", None) in calls
    assert ("VM_80.0", "CPU_OFF", "DENIED") in calls
    assert calls[-1] == ("VM_80.0", "SYSTEM_OFF", None)
    powers = [(e["vcpu"], e["power"]) for e in events if e["kind"] == "vcpu.power"]
    assert powers[:2] == [("VM_80.0", "off"), ("VM_80.1", "off")]  # the RM made them
    assert powers[2:6] == [("VM_80.0", "on"), ("VM_80.1", "on"), ("VM_80.1", "suspended"),
                          ("VM_80.1", "on")]
    exited = [e for e in events if e["kind"] == "rm.rpc" and e["name"] == "NOTIFY_VM_EXITED"]
    assert exited[0]["fields"]["exit_type"] == "PLATFORM_OFF"
    assert _vm_states(events)[-4:] == ["EXITED", "RESETTING", "RESET", "NONE"]


def claim_demand_paging(events: list[dict]) -> None:
    """Each first write to Guest's four window pages makes HLOS's vcpu_run return state 7
    with the IPA; HLOS donates (type 3), maps (PARTIAL|PRIVATE, RWX) and resumes with
    RETRY; the write then succeeds, and the reads after, and every later round of
    reads, hit at once."""
    runs = [e for e in events if e["kind"] == "hvc" and e["name"] == "vcpu_run"]
    faults = [e["ret"]["data0"] for e in runs if e["ret"].get("state_value") == 7]
    assert len(faults) == 4 and all(e["ret"]["data1"] == 1 for e in runs
                                    if e["ret"].get("state_value") == 7)
    donates = [e["args"]["options"] for e in events if e["kind"] == "hvc"
               and e["name"] == "memextent_donate" and e["result"] == "OK"]
    maps = [(e["args"]["base"], e["args"]["map_flags"], e["args"]["map_attrs"] & 7)
            for e in events if e["kind"] == "hvc" and e["name"] == "addrspace_map"]
    assert donates == [3] * 4 and maps == [(ipa, 3, 7) for ipa in faults]
    assert [e["args"].get("resume1") for e in runs[1:5]] == [1] * 4
    hits = [(e["addr"], e["access"]) for e in events if e["kind"] == "mem.access" and e["ok"]]
    # In the claim's 5 ms: the read-back, then six more rounds one period (0.5 ms) apart,
    # each woken by the guest's virtual timer
    rounds = 7
    assert hits == [(ipa, "W") for ipa in faults] + [(ipa, "R") for ipa in faults] * rounds
    assert sum(e["kind"] == "vtimer.fire" for e in events) == rounds - 1


def _ring_depths(ev: list[dict]) -> dict[str, int]:
    rings = [e for e in ev if e["kind"].startswith("virtq.")]
    return {key: max(e[key] for e in rings) for key in ("avail_depth", "used_depth")}


def claim_virtio_console(ev: list[dict]) -> None:
    """Notify -> the backend's vIRQ; the reset handshake; both rings fill and drain."""
    notified = [(after["kind"], after.get("vm")) for e, after in zip(ev, ev[1:], strict=False)
                if e["kind"] == "virtio.write" and e["reg"] == "QueueNotify"]
    assert ("virq.assert", "HLOS") in notified
    taken = [e["taken_reason"] for e in ev if e["kind"] == "virtio.backend"
             and e["op"] == "get_notification"]
    assert (any(r & 0x2 for r in taken) and any(r & 0x8 for r in taken)
            and any(r & 0x1 for r in taken))
    assert [e["op"] for e in ev if e["kind"] == "virtio.backend"].count("acknowledge_reset") == 1
    assert all(v >= 2 for v in _ring_depths(ev).values())


def claim_virtio_block(ev: list[dict]) -> None:
    """Requests pile up in the available ring, then complete through the used ring."""
    depths = _ring_depths(ev)
    assert depths["avail_depth"] >= 3 and depths["used_depth"] >= 2
    drained = [e for e in ev if e["kind"] == "virtq.reclaim"
               and (e["avail_depth"], e["in_device"], e["used_depth"]) == (0, 0, 0)]
    assert len(drained) >= 2  # every round ends with both rings empty
    assert sum(e["kind"] == "virtq.reclaim" for e in ev) >= 12


CLAIMS = {
    "demand-paging": claim_demand_paging,
    "virtio-console": claim_virtio_console,
    "virtio-block": claim_virtio_block,
    "msgq-backpressure": claim_msgq_backpressure,
    "msgq-thresholds": claim_msgq_thresholds,
    "priority-preemption": claim_priority_preemption,
    "proxy-scheduling": claim_proxy_scheduling,
    "mem-lend": claim_mem_lend,
    "mem-share-doorbell": claim_mem_share_doorbell,
    "virtual-timer": claim_virtual_timer,
    "rm-boot": lambda ev: _vm_states(ev) == ["LOAD", "INIT", "READY", "RUNNING"] or (
        pytest.fail(f"rm-boot states {_vm_states(ev)}")),
    "vm-exit": lambda ev: _vm_states(ev) == [
        "LOAD", "INIT", "READY", "RUNNING", "EXITED", "RESETTING", "RESET", "NONE"] or (
        pytest.fail(f"vm-exit states {_vm_states(ev)}")),
    "psci-power": lambda ev: claim_psci_power(ev),
    # msgq-pingpong and doorbell: test_guests (echo order and round trip, ring period)
}


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_each_preset_shows_what_its_description_says(name: str) -> None:
    until = 12 * MS if name == "msgq-thresholds" else RUN_NS  # Docs runs after a 5 ms slice
    CLAIMS[name](Simulation(load(name)).run(until_ns=until))


def test_every_preset_has_its_claim_checked() -> None:
    assert set(preset_names()) == set(CLAIMS) | {"msgq-pingpong", "doorbell"}

def test_focus_reaches_the_snapshot_and_is_checked() -> None:
    """`focus` is a view setting for the page: carried in the snapshot's scenario only
    when given, refused with its field named when its value is unknown."""
    text = "name: d\nvms:\n  - name: A\nfocus: {rm_links: unfolded}\n"
    assert Simulation(parse(text)).snapshot()["scenario"]["focus"] == {"rm_links": "unfolded"}
    assert "focus" not in Simulation(parse("name: d\nvms:\n  - name: A\n")).snapshot()["scenario"]
    assert load("rm-boot").config["focus"] == {"rm_links": "unfolded"}
    assert "focus.rm_links" in error_of("name: d\nvms:\n  - name: A\nfocus: {rm_links: open}\n")
    assert "focus" in error_of("name: d\nvms:\n  - name: A\nfocus: {subject: [A]}\n")


SCENARIO_THREE_SCHEMA_MISTAKES = """\
name: three
vms:
  - name: VM_A
    bogus: 1
  - name: VM_B
    program: nope
msgqs:
  - {name: q, sender: VM_A, receiver: VM_B, depth: "x"}
"""

SCENARIO_THREE_REFERENCE_MISTAKES = """\
name: three
pcpus: 2
vms:
  - name: VM_A
    affinity: [5]
  - name: VM_A
msgqs:
  - {name: q, sender: VM_A, receiver: VM_Z}
"""


@pytest.mark.parametrize("text, fields", [
    (SCENARIO_THREE_SCHEMA_MISTAKES, ["vms[0]", "vms[1].program", "msgqs[0].depth"]),
    (SCENARIO_THREE_REFERENCE_MISTAKES, ["vms[0].affinity[0]", "vms[1].name", "msgqs[0].receiver"]),
])
def test_every_mistake_is_listed_not_only_the_first(text: str, fields: list[str]) -> None:
    with pytest.raises(ScenarioError) as info:
        parse(text, "s.yaml")
    err = info.value
    assert [p.path for p in err.problems] == fields
    assert all(p.line for p in err.problems)
    assert [d["path"] for d in err.as_dicts()] == fields
    assert str(err).startswith("3 mistakes") and all(f in str(err) for f in fields)
    assert (err.path, err.line) == (fields[0], err.problems[0].line)  # the first, as before
