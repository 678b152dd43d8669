"""The hypercall console's ``hvc`` action: a call typed by its Gunyah name runs on the
VM's vCPU 0 with that VM's own CSpace, so its errors are the real ones; its arguments
are checked against the hypercall table's own argument list; a run with console calls
replays to the same trace."""

from __future__ import annotations

import json

import pytest

from gunyah_core import Simulation, load, parse
from gunyah_core.actions import ActionError
from gunyah_core.core.hypercalls import signatures
from gunyah_core.teaching.captions import caption

# VM_A holds a cap of every kind a hypercall takes: its own vCPU (thread), a queue it
# sends on and one it receives on, a doorbell it rings (and, source_can_clear, may mask)
# and one it receives, and the backend's cap to a virtio-MMIO device.
SCENARIO = """
name: console
pcpus: 2
vms:
  - {name: VM_A, affinity: [0], program: idle}
  - {name: VM_B, affinity: [1], program: idle}
msgqs:
  - {name: A_to_B, sender: VM_A, receiver: VM_B, depth: 2, max_size: 64}
  - {name: B_to_A, sender: VM_B, receiver: VM_A, depth: 2, max_size: 64}
doorbells:
  - {name: out, sender: VM_A, receiver: VM_B, source_can_clear: true}
  - {name: in, sender: VM_B, receiver: VM_A}
virtio_mmios:
  - {name: v, device: console, frontend: VM_B, backend: VM_A}
"""
# The address-space and memory-extent calls take caps only an owner given demand paging
# holds: HLOS, for its proxy-scheduled Guest (mem/demand_paging.py).
DEMAND_CALLS = {"addrspace_map", "addrspace_unmap", "memextent_donate"}
DEMAND_SCENARIO = """
name: console-demand
vms:
  - {name: HLOS, program: idle}
  - {name: Guest, proxy: true, demand_paging: {pages: 1}}
"""
BOOT_NS = 1_000_000
CSPACE_ERRORS = {"CSPACE_CAP_NULL", "CSPACE_CAP_REVOKED", "CSPACE_WRONG_OBJECT_TYPE",
                 "CSPACE_INSUFFICIENT_RIGHTS"}


def booted(text: str = SCENARIO) -> Simulation:
    sim = Simulation(parse(text))
    sim.run(until_ns=BOOT_NS)
    return sim


def cap(sim: Simulation, vm: str, obj_type: str, *rights: str, name: str = "") -> int:
    """A capid ``vm`` holds for an object of that type with those rights."""
    for entry in next(v for v in sim.snapshot()["vms"] if v["name"] == vm)["caps"]:
        if (entry["type"] == obj_type and set(rights) <= set(entry["rights_names"])
                and entry["object"].endswith(name)):
            return entry["capid"]
    raise AssertionError(f"{vm} holds no {obj_type} cap with {rights}")


def result_of(sim: Simulation, action_id: int) -> dict:
    """Run until the action's hvc event comes; return it."""
    for _ in range(1000):
        for event in sim.step():
            if event["kind"] == "hvc" and event.get("action") == action_id:
                return event
    raise AssertionError("the call never ran")


def console(sim: Simulation, call: str, vm: str = "VM_A", **args) -> dict:
    ack = sim.act("hvc", {"vm": vm, "call": call, "args": args})
    return result_of(sim, ack["action_id"])


def valid_args(sim: Simulation, call: str, vm: str = "VM_A") -> dict:
    """Every argument of ``call`` with a value of its kind; capids ``vm`` really holds."""
    args = {}
    for key, spec in signatures()[call]["args"].items():
        if spec["kind"] == "capid":
            args[key] = cap(sim, vm, spec["object"], *spec["rights"])
        elif spec["kind"] == "text":
            args[key] = "hello"
        else:
            args[key] = 1
    return args


@pytest.mark.parametrize("call", sorted(signatures()))
def test_every_hypercall_is_accepted_and_runs_with_the_vms_own_caps(call: str) -> None:
    vm = "HLOS" if call in DEMAND_CALLS else "VM_A"
    sim = booted(DEMAND_SCENARIO if call in DEMAND_CALLS else SCENARIO)
    event = console(sim, call, vm, **valid_args(sim, call, vm))
    assert event["vm"] == vm and event["vcpu"] == f"{vm}.0" and event["name"] == call
    assert event["result"] not in CSPACE_ERRORS, event


def test_a_send_returns_ok_and_names_the_events_it_caused() -> None:
    sim = booted()
    capid = cap(sim, "VM_A", "MSGQUEUE", "SEND", name="A_to_B")
    ack = sim.act("hvc", {"vm": "VM_A", "call": "msgqueue_send",
                          "args": {"capid": hex(capid), "size": "16", "flags": 1}})
    events = []
    while not any(e.get("action") == ack["action_id"] for e in events):
        events.extend(sim.step())
    hvc = events[-1]
    assert hvc["result"] == "OK" and hvc["ret"] == {"not_full": True}
    assert hvc["args"] == {"capid": capid, "size": 16, "flags": 1}  # hex text parsed
    caused = [e for e in events if hvc["effects_from"] <= e["seq"] < hvc["seq"]]
    assert [e["kind"] for e in caused][:2] == ["msgq.send", "virq.assert"]


def test_a_wrong_capid_gets_the_real_error() -> None:
    sim = booted()
    capid = cap(sim, "VM_A", "MSGQUEUE", "SEND", name="A_to_B")
    # VM_B's capid for the same queue means nothing in VM_A's CSpace.
    other = cap(sim, "VM_B", "MSGQUEUE", "RECEIVE", name="A_to_B")
    # Neither number is (index * mult) ^ base of VM_A's CSpace: ARGUMENT_INVALID
    # (facts §1.2 step 2); one that decodes to an empty slot is CSPACE_CAP_NULL (step 3).
    cs = sim.hyp.vms["VM_A"].cspace
    for bogus in (capid + 1, other):
        assert (bogus ^ cs._base) % cs._mult  # premise (seed of the scenario)
        assert console(sim, "msgqueue_send", capid=bogus, size=8)["result"] == (
            "ARGUMENT_INVALID")
    empty = cs._encode(len(cs._slots))
    assert console(sim, "msgqueue_send", capid=empty, size=8)["result"] == "CSPACE_CAP_NULL"
    bell = cap(sim, "VM_A", "DOORBELL", "SEND", name="out")
    assert console(sim, "msgqueue_send", capid=bell, size=8)["result"] == \
        "CSPACE_WRONG_OBJECT_TYPE"


def test_a_missing_right_gets_cspace_insufficient_rights() -> None:
    sim = booted()
    send_only = cap(sim, "VM_A", "MSGQUEUE", "SEND", name="A_to_B")
    event = console(sim, "msgqueue_receive", capid=send_only)
    assert event["result"] == "CSPACE_INSUFFICIENT_RIGHTS"
    recv_only = cap(sim, "VM_A", "DOORBELL", "RECEIVE", name="in")
    assert console(sim, "doorbell_send", capid=recv_only, new_flags=4)["result"] == \
        "CSPACE_INSUFFICIENT_RIGHTS"


def test_bad_values_get_the_calls_own_errors() -> None:
    sim = booted()
    capid = cap(sim, "VM_A", "MSGQUEUE", "SEND", name="A_to_B")
    assert console(sim, "msgqueue_send", capid=capid, size=65)["result"] == "ARGUMENT_SIZE"
    thread = cap(sim, "VM_A", "THREAD", "PRIORITY")
    assert console(sim, "vcpu_set_priority", capid=thread, priority=63)["result"] == "DENIED"


def test_vcpu_run_from_the_console_runs_a_proxy_scheduled_vcpu() -> None:
    """HLOS holds Guest's vCPU cap with AFFINITY+YIELD_TO: Guest waits (WFI), so the call
    returns at once with vcpu_run's state; its own vCPU is not proxy-scheduled: BUSY."""
    sim = Simulation(load("proxy-scheduling"))
    sim.run(until_ns=3 * BOOT_NS)
    caps = {c["object"]: c["capid"]
            for c in next(v for v in sim.snapshot()["vms"] if v["name"] == "HLOS")["caps"]}
    ack = sim.act("hvc", {"vm": "HLOS", "call": "vcpu_run",
                          "args": {"capid": caps["thread:Guest.0"]}})
    event = result_of(sim, ack["action_id"])
    assert event["result"] == "OK" and event["ret"]["state"] == "EXPECTS_WAKEUP"
    ack = sim.act("hvc", {"vm": "HLOS", "call": "vcpu_run",
                          "args": {"capid": caps["thread:HLOS.0"]}})
    assert result_of(sim, ack["action_id"])["result"] == "BUSY"


def refused(sim: Simulation, args: dict) -> ActionError:
    seq, log = sim.trace.seq, len(sim.action_log)
    with pytest.raises(ActionError) as info:
        sim.act("hvc", args)
    assert sim.trace.seq == seq and len(sim.action_log) == log  # nothing stored
    return info.value


def test_an_unknown_call_is_refused_naming_it() -> None:
    err = refused(booted(), {"vm": "VM_A", "call": "msgqueue_sned", "args": {}})
    assert err.code == "UNKNOWN_HYPERCALL" and "'msgqueue_sned'" in err.message
    assert "msgqueue_send" in err.message


def test_an_unknown_argument_is_refused_naming_it() -> None:
    err = refused(booted(), {"vm": "VM_A", "call": "doorbell_send",
                             "args": {"capid": 1, "new_flags": 1, "push": 1}})
    assert err.code == "UNKNOWN_FIELD" and "'push'" in err.message
    assert "arguments: capid, new_flags" in err.message


@pytest.mark.parametrize(("args", "code", "named"), [
    ({"capid": 1}, "MISSING_FIELD", "new_flags"),
    ({"capid": -1, "new_flags": 1}, "INVALID_ARGUMENT", "capid"),
    ({"capid": 1 << 64, "new_flags": 1}, "INVALID_ARGUMENT", "capid"),
    ({"capid": "0x1g", "new_flags": 1}, "INVALID_ARGUMENT", "capid"),
    ({"capid": True, "new_flags": 1}, "INVALID_ARGUMENT", "capid"),
    ({"capid": 1.0, "new_flags": 1}, "INVALID_ARGUMENT", "capid"),
    ({"capid": "1" * 21, "new_flags": 1}, "INVALID_ARGUMENT", "capid"),
])
def test_registers_must_be_u64_and_present(args, code, named) -> None:
    err = refused(booted(), {"vm": "VM_A", "call": "doorbell_send", "args": args})
    assert err.code == code and repr(named) in err.message


def test_text_and_shape_are_checked() -> None:
    sim = booted()
    err = refused(sim, {"vm": "VM_A", "call": "msgqueue_send",
                        "args": {"capid": 1, "size": 1, "payload": "x" * 5000}})
    assert err.code == "TOO_LARGE" and "'payload'" in err.message
    assert refused(sim, {"vm": "VM_A", "call": "msgqueue_send", "args": [1]}).code == \
        "INVALID_ARGUMENT"
    assert refused(sim, {"vm": "VM_Z", "call": "hypervisor_identify"}).code == "UNKNOWN_VM"


def test_a_run_with_console_calls_replays_to_the_same_trace() -> None:
    sim = Simulation(parse(SCENARIO), seed=7)
    events = sim.run(until_ns=BOOT_NS)
    send = cap(sim, "VM_A", "MSGQUEUE", "SEND", name="A_to_B")
    bell = cap(sim, "VM_A", "DOORBELL", "SEND", name="out")
    for call, args in [("msgqueue_send", {"capid": hex(send), "size": 8, "flags": 1}),
                       ("doorbell_send", {"capid": bell, "new_flags": "0x4"}),
                       ("msgqueue_receive", {"capid": send}),
                       ("hypervisor_identify", {})]:
        sim.act("hvc", {"vm": "VM_A", "call": call, "args": args})
        events.extend(sim.run(max_events=5))
    events.extend(sim.run(until_ns=2 * BOOT_NS))
    last = events[-1]["seq"]
    log = json.loads(json.dumps(sim.action_log))  # as a link carries it
    _, replayed = Simulation.replay(parse(SCENARIO), 7, log, through_seq=last)
    assert json.dumps(replayed[:len(events)]) == json.dumps(events)
    assert sum(e["kind"] == "hvc" and "action" in e for e in events) == 4


def test_the_console_call_is_captioned_as_typed() -> None:
    sim = booted()
    bell = cap(sim, "VM_A", "DOORBELL", "SEND", name="out")
    sim.act("hvc", {"vm": "VM_A", "call": "doorbell_send",
                    "args": {"capid": hex(bell), "new_flags": "0x4"}})
    sim.act("hvc", {"vm": "VM_A", "call": "hypervisor_identify"})
    said = [caption(e) for e in sim.trace.take() if e["kind"] == "user.action"]
    assert said == [f"You typed in VM_A's console: doorbell_send capid={hex(bell)} "
                    "new_flags=0x4; its vCPU 0 makes the call (action 1).",
                    "You typed in VM_A's console: hypervisor_identify; its vCPU 0 makes "
                    "the call (action 2)."]
