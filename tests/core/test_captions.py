"""Every trace event explained (captions.py): each kind has a sentence, and the sentences
for representative events say what happened, why, and with which numbers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gunyah_core import Simulation, load, parse
from gunyah_core.consts import HVC_IMM_BASE, MSGQUEUE_SEND_FLAG_PUSH
from gunyah_core.core.hypercalls import _TABLE
from gunyah_core.core.trace import ALL_KINDS
from gunyah_core.mem.memparcel import PgtableAccess
from gunyah_core.rm.messages import RmMessageId
from gunyah_core.scenario import preset_names
from gunyah_core.teaching.captions import CAPTIONS, REAL, caption, explain, fields, real_gunyah

RUN_NS = 20_000_000
DEMAND_PAGING = """
name: demand
vms:
  - {name: HLOS, program: vmm, params: {peer: Guest}}
  - {name: Guest, proxy: true, program: page-toucher, demand_paging: {pages: 1}}
"""
RWX = int(PgtableAccess.R | PgtableAccess.W | PgtableAccess.X)
NOT_EMPTY_THD = 4
SHORT_PACKET = b"\x21\x01\x00"  # three bytes of an eight-byte header: the RM drops it


def call(sim: Simulation, vm: str, name: str, key: str, **args: Any) -> None:
    """Hypercall ``name`` from ``vm``'s vCPU 0 with the capid of its resource ``key``."""
    owner = sim.hyp.vms[vm]
    result = sim.hyp.hypercalls.call(owner.vcpus[0], name,
                                     {"capid": owner.resources[key]["capid"], **args})
    assert result.ok, (name, result)


def events_no_preset_makes() -> list[dict[str, Any]]:
    """The kinds only a person or a rare path makes, made for real on preset machines."""
    sim = Simulation(load("doorbell"))
    sim.trace.take()
    call(sim, "RM", "msgqueue_configure_receive", "rm:HLOS:rx", notempty_thd=NOT_EMPTY_THD)
    for _ in range(2):
        call(sim, "HLOS", "msgqueue_send", "rm:tx", size=8, flags=0, payload="x")
    call(sim, "HLOS", "msgqueue_push", "rm:tx")
    call(sim, "RM", "msgqueue_flush", "rm:HLOS:rx")
    call(sim, "VM_B", "doorbell_reset", "bell0:rx")
    sim.act("set_priority", {"vcpu": "VM_A.0", "priority": 40})
    events = sim.trace.take()

    link = Simulation(load("doorbell"))
    call(link, "HLOS", "msgqueue_send", "rm:tx", size=len(SHORT_PACKET),
         flags=MSGQUEUE_SEND_FLAG_PUSH, payload=SHORT_PACKET)
    events += link.run(until_ns=RUN_NS)

    mem = Simulation(load("mem-lend"))
    mem.trace.take()
    parcel = next(e for e in mem.run(until_ns=RUN_NS) if e["kind"] == "mem.lend")
    mem.hyp.memory.donate(parcel["owner_vmid"], [(parcel["vm_vmid"], RWX)],
                          [(parcel["base"], parcel["size"])])
    events += mem.trace.take()

    paging = Simulation(parse(DEMAND_PAGING))
    events += paging.run(until_ns=RUN_NS)
    mapped = next(e for e in events if e["kind"] == "mem.map")
    paging.hyp.memory.extent_unmap(mapped["vm_vmid"], mapped["base"], mapped["pa"])
    return events + paging.trace.take()


@pytest.fixture(scope="module")
def every_event() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for name in preset_names():
        events += Simulation(load(name)).run(until_ns=RUN_NS)
    return events + events_no_preset_makes()


def test_every_kind_has_its_own_caption_and_real_line() -> None:
    assert set(CAPTIONS) == ALL_KINDS
    assert set(REAL) | {"hvc", "rm.rpc"} == ALL_KINDS


def test_every_kind_is_captioned_on_real_events(every_event: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for event in every_event:
        kind = event["kind"]
        seen[kind] = seen.get(kind, 0) + 1
        text = caption(event)
        # Specific: the kind's own sentence, not the fallback, and naming its subject.
        assert text != f"{kind} event.", event
        assert text.endswith(".") and len(text) > 30, (kind, text)
        assert "None" not in text and "?" not in text, (kind, text)
        assert real_gunyah(event) != "no Gunyah counterpart.", kind
    assert set(seen) == ALL_KINDS, sorted(ALL_KINDS - set(seen))


def test_an_unknown_or_broken_event_gets_a_fallback_not_an_error() -> None:
    assert caption({"seq": 0, "t": 0, "kind": "future.thing"}) == "future.thing event."
    assert caption({"kind": "msgq.send", "depth": "x", "notempty_thd": None})
    assert caption({"kind": "cap.create", "caps": 5}) == "cap.create event."
    huge = 10**400
    assert caption({"kind": "sched.switch", "reason": "preempt", "prev_left_ns": huge})
    assert dict(fields({"kind": "x", "t": huge}))["t"].startswith("1000")
    assert explain({"kind": "hvc", "name": "msgqueue_push", "call": None})["fields"] == [
        ["name", "msgqueue_push"], ["call", "msgqueue_push (no HVC number)"]]


EXAMPLES = [
    ({"kind": "msgq.send", "msgq": "A_to_B", "src": "VM_A", "dst": "VM_B", "size": 16,
      "msg": 3, "depth": 1, "push": True, "payload": "ping", "notempty_thd": 1},
     "VM_A sends message #3 (16 bytes) into A_to_B: it now holds 1 message, reaching its "
     "not-empty threshold (1), so VM_B's Rx vIRQ is raised; the send also carried PUSH."),
    ({"kind": "msgq.send", "msgq": "q", "src": "VM_A", "dst": "VM_B", "size": 8, "msg": 4,
      "depth": 2, "push": False, "payload": "", "notempty_thd": 4},
     "VM_A sends message #4 (8 bytes) into q: it now holds 2 messages, below its not-empty "
     "threshold (4): VM_B is not told yet."),
    ({"kind": "msgq.recv", "msgq": "q", "src": "VM_A", "dst": "VM_B", "size": 8, "msg": 4,
      "depth": 6, "notfull_thd": 6},
     "VM_B receives message #4 (8 bytes) from q: 6 left, down to its not-full threshold (6), "
     "so VM_A's Tx vIRQ is raised: there is room to send again."),
    ({"kind": "virq.assert", "vm": "VM_B", "virq": 962, "source": "msgq:A_to_B:rx",
      "trigger": "edge", "depth": 1, "notempty_thd": 1},
     "VM_B's Rx vIRQ 962 fires: A_to_B now holds 1 message, reaching its not-empty "
     "threshold (1)."),
    ({"kind": "virq.assert", "vm": "VM_A", "virq": 963, "source": "msgq:A_to_B:tx",
      "trigger": "edge", "depth": 7, "notfull_thd": 7},
     "VM_A's Tx vIRQ 963 fires: A_to_B is down to 7 messages, its not-full threshold (7), so "
     "there is room to send again."),
    ({"kind": "virq.deliver", "vm": "VM_B", "virq": 962, "source": "doorbell:bell0",
      "vcpu": "VM_B.0"},
     "VM_B.0 takes vIRQ 962 from doorbell bell0: pending becomes active and its handler runs."),
    ({"kind": "virq.eoi", "vm": "VM_B", "virq": 962, "source": "doorbell:bell0",
      "vcpu": "VM_B.0"},
     "VM_B.0 ends vIRQ 962 with an EOI: its handler is done and the vIRQ can fire again."),
    ({"kind": "sched.switch", "pcpu": 0, "prev": "Spin_A.0", "next": "Urgent.0",
      "reason": "preempt", "slice_ns": 5_000_000, "prio": 40, "prev_prio": 32,
      "prev_left_ns": 600_000},
     "Spin_A.0 is preempted: Urgent.0 (priority 40) woke on pCPU 0; Spin_A.0 goes back to "
     "the head of priority 32 with 0.6 ms of its slice left."),
    ({"kind": "sched.switch", "pcpu": 0, "prev": "P.0", "next": "Q.0", "reason": "timeslice",
      "slice_ns": 5_000_000, "prio": 32, "prev_prio": 32, "prev_left_ns": 0},
     "P.0's timeslice on pCPU 0 ran out: it goes to the tail of priority 32, and Q.0 "
     "(priority 32) runs with a 5 ms slice."),
    ({"kind": "sched.switch", "pcpu": 1, "prev": None, "next": "VM_B.0",
      "reason": "wake:vcpu_wfi", "slice_ns": 5_000_000, "prio": 32, "prev_prio": None,
      "prev_left_ns": None},
     "pCPU 1 was idle; VM_B.0 woke from WFI (an interrupt arrived): VM_B.0 (priority 32) "
     "runs with a 5 ms slice."),
    ({"kind": "sched.switch", "pcpu": 0, "prev": "VM_A.0", "next": None,
      "reason": "block:vcpu_wfi", "slice_ns": None, "prio": None, "prev_prio": 32,
      "prev_left_ns": 4_990_000},
     "VM_A.0 waits for an interrupt (WFI) on pCPU 0, so pCPU 0 goes idle."),
    ({"kind": "hvc", "vm": "P", "vcpu": "P.0", "name": "msgqueue_send", "call": 0x601B,
      "args": {"capid": 0xB7527A024204, "size": 128, "flags": 0, "payload": "item 5"},
      "result": "MSGQUEUE_FULL", "ret": {"not_full": False}},
     "P.0's msgqueue_send of 128 bytes fails with MSGQUEUE_FULL (61): the queue already "
     "holds as many messages as it can, so nothing was queued (not_full is false); the sender "
     "can wait for its Tx vIRQ, raised when the count falls to the not-full threshold."),
    ({"kind": "hvc", "vm": "VM_A", "vcpu": "VM_A.0", "name": "doorbell_mask", "call": 0x6015,
      "args": {"capid": 0x308DC17C092C, "enable_mask": 1, "ack_mask": 1}, "result": "OK",
      "ret": {}, "action": 3},
     "VM_A.0 calls doorbell_mask (capid 0x308DC17C092C, enable_mask 0x1, ack_mask 0x1): OK "
     "(your action 3)."),
    ({"kind": "rm.rpc", "dir": "request", "stage": "send", "msg_id": 0x51000012,
      "name": "MEM_LEND", "rpc_seq": 0, "fragments": 0, "src": "VM_A", "dst": "RM",
      "size": 40, "fields": {"to": "VM_B", "base": 0x40000000}},
     "VM_A sends RM a MEM_LEND request (to VM_B, base 0x40000000), 40 bytes in 1 packet "
     "over its RM message queue."),
    ({"kind": "rm.rpc", "dir": "reply", "stage": "send", "msg_id": 0x51000015,
      "name": "MEM_RECLAIM", "rpc_seq": 2, "fragments": 0, "src": "RM", "dst": "VM_A",
      "size": 8, "error": "MEM_INUSE"},
     "RM replies to VM_A's MEM_RECLAIM request: MEM_INUSE (0xB), 8 bytes in 1 packet."),
    ({"kind": "rm.rpc", "dir": "notification", "stage": "receive", "msg_id": 0x56100001,
      "name": "NOTIFY_VM_STATUS", "rpc_seq": 0, "fragments": 0, "src": "RM",
      "dst": "HLOS", "size": 12},
     "HLOS receives RM's NOTIFY_VM_STATUS notification whole (12 bytes in 1 packet)."),
    ({"kind": "vm.state", "vm": "VM_80", "vmid": 0x80, "state": "EXITED", "value": 9},
     "VM_80 (VMID 0x80) is now EXITED (9): it has stopped; its owner must reset or destroy "
     "it."),
    ({"kind": "mem.lend", "owner": "VM_A", "vm": "VM_B", "vms": ["VM_B"], "handle": 0,
      "base": 0x40000000, "size": 4096, "rights": "RW"},
     "VM_A lends 4 KiB at IPA 0x40000000 to VM_B (RW) as memparcel 0: VM_A loses access "
     "until it reclaims it."),
    ({"kind": "bell.send", "doorbell": "bell0", "src": "VM_A", "dst": "VM_B", "sent": 1,
      "old": 0, "flags": 1, "acked": 0, "enable_mask": 0xFFFFFFFFFFFFFFFF},
     "VM_A rings bell0 with flags 0x1: the flags go from 0x0 to 0x1; 0x1 is enabled (mask "
     "0xFFFFFFFFFFFFFFFF), so VM_B's vIRQ is raised."),
    ({"kind": "bell.send", "doorbell": "tick", "src": "T", "dst": "U", "sent": 6, "old": 0,
      "flags": 2, "acked": 4, "enable_mask": 4},
     "T rings tick with flags 0x6: the flags go from 0x0 to 0x2; 0x4 is enabled (mask 0x4), "
     "so U's vIRQ is raised, and the ack mask clears 0x4 at once."),
    ({"kind": "bell.send", "doorbell": "tick", "src": "T", "dst": "U", "sent": 2, "old": 0,
      "flags": 2, "acked": 0, "enable_mask": 4},
     "T rings tick with flags 0x2: the flags go from 0x0 to 0x2; none is in the enable mask "
     "(0x4), so the assert is edge-only: it raises U's vIRQ only if that is edge-triggered."),
    ({"kind": "vtimer.write", "vm": "S", "vcpu": "S.0", "reg": "CNTV_CVAL_EL0", "value": 19188,
      "by": "guest", "enable": False, "imask": False, "cval": 19188, "deadline": None,
      "istatus": False},
     "S.0 writes CNTV_CVAL_EL0 = 19188: its virtual timer will fire when the counter reaches "
     "19188 (at 0.307 ms)."),
    ({"kind": "vtimer.write", "vm": "S", "vcpu": "S.0", "reg": "CNTV_CTL_EL0", "value": 1,
      "by": "guest", "enable": True, "imask": False, "cval": 19188, "deadline": 307008,
      "istatus": False},
     "S.0 writes CNTV_CTL_EL0 = 0x1: its virtual timer is armed: it fires at 0.307 ms."),
    ({"kind": "vtimer.write", "vm": "S", "vcpu": "S.0", "reg": "CNTV_CTL_EL0", "value": 1,
      "by": "guest", "enable": True, "imask": False, "cval": 5, "deadline": 80,
      "istatus": True},
     "S.0 writes CNTV_CTL_EL0 = 0x1: its virtual timer is armed, and its compare value is "
     "already past: it fires at once."),
    ({"kind": "vtimer.write", "vm": "S", "vcpu": "S.0", "reg": "CNTV_CTL_EL0", "value": 7,
      "by": "guest", "enable": True, "imask": True, "cval": 5, "deadline": 80,
      "istatus": True},
     "S.0 writes CNTV_CTL_EL0 = 0x7: its virtual timer is armed but masked (IMASK): it will "
     "not interrupt."),
    ({"kind": "vtimer.write", "vm": "S", "vcpu": "S.0", "reg": "CNTV_CTL_EL0", "value": 0,
      "by": "guest", "enable": False, "imask": False, "cval": 5, "deadline": None,
      "istatus": False},
     "S.0 writes CNTV_CTL_EL0 = 0x0: its virtual timer is disabled."),
    ({"kind": "vtimer.write", "vm": "S", "vcpu": "S.0", "reg": "CNTV_CTL_EL0", "value": 0,
      "by": "vcpu_stopped", "enable": False, "imask": False, "cval": 5, "deadline": None,
      "istatus": False},
     "S.0 is stopped, so the hypervisor disables its virtual timer."),
    ({"kind": "vtimer.queue", "vm": "S", "vcpu": "S.0", "cval": 19188, "deadline": 307008},
     "S.0 sleeps in WFI with its timer armed: the hypervisor keeps the deadline (at "
     "0.307 ms) on its own timer to wake it then."),
    ({"kind": "vtimer.fire", "vm": "S", "vcpu": "S.0", "virq": 27, "cval": 19188,
      "masked": False, "path": "hyp_timer"},
     "S.0's virtual timer reaches 19188 (ISTATUS = 1): the hypervisor's own timer expires "
     "for the sleeping vCPU and injects its private vIRQ 27."),
    ({"kind": "vtimer.fire", "vm": "B", "vcpu": "B.0", "virq": 27, "cval": 9,
      "masked": False, "path": "running"},
     "B.0's virtual timer reaches 9 (ISTATUS = 1): the hardware timer interrupts the running "
     "vCPU and the hypervisor injects its private vIRQ 27."),
    ({"kind": "vtimer.fire", "vm": "B", "vcpu": "B.0", "virq": 27, "cval": 9,
      "masked": True, "path": "running"},
     "B.0's virtual timer reaches 9 (ISTATUS = 1) but IMASK is set: no vIRQ."),
    ({"kind": "virq.assert", "vm": "S", "virq": 27, "source": "vtimer:S.0",
      "trigger": "level", "vcpu": "S.0", "cval": 19188},
     "S's vIRQ 27 fires: S.0's virtual timer reached its compare value 19188 (private to "
     "S.0, level: it stays asserted until the guest masks, disables or re-arms the timer)."),
]


@pytest.mark.parametrize(("event", "text"), EXAMPLES, ids=[e["kind"] for e, _ in EXAMPLES])
def test_caption_text(event: dict[str, Any], text: str) -> None:
    assert caption(event) == text


def test_a_real_preemption_carries_what_its_caption_needs() -> None:
    events = Simulation(load("priority-preemption")).run(until_ns=RUN_NS)
    preempt = next(e for e in events if e["kind"] == "sched.switch" and e["reason"] == "preempt")
    assert preempt["prio"] > preempt["prev_prio"]
    assert 0 <= preempt["prev_left_ns"] <= preempt["slice_ns"]
    assert f"priority {preempt['prio']}" in caption(preempt)


def test_a_real_send_and_its_rx_assert_carry_the_threshold() -> None:
    events = Simulation(load("msgq-thresholds")).run(until_ns=RUN_NS)
    sends = [e for e in events if e["kind"] == "msgq.send" and e["src"] != "RM"]
    assert {e["notempty_thd"] for e in sends} - {1}, "the preset sets a threshold above 1"
    rx = [e for e in events if e["kind"] == "virq.assert" and e["source"].endswith(":rx")]
    assert rx and all(e["depth"] == e["notempty_thd"] or e["depth"] < e["notempty_thd"]
                      for e in rx)


def test_inspector_fields_read_as_an_engineer_reads_them() -> None:
    full = next(e for e, _ in EXAMPLES if e.get("result") == "MSGQUEUE_FULL")
    event = dict(full, seq=46, t=21000)
    shown = dict(fields(event))
    assert shown["call"] == "msgqueue_send (0x601B)"
    assert shown["result"] == "MSGQUEUE_FULL (61)"
    assert "capid 0xB7527A024204" in shown["args"]
    assert shown["t"] == "21000 ns (21 µs)"
    assert "HVC #0x601B (0x6000 + 0x1B)" in explain(event)["real"]
    rpc = dict(fields(next(e for e, _ in EXAMPLES if e.get("error") == "MEM_INUSE")))
    assert (rpc["msg_id"], rpc["error"]) == ("0x51000015", "MEM_INUSE (0xB)")


def test_fields_put_ids_in_hex_and_priorities_in_decimal() -> None:
    prio = dict(fields({"kind": "vcpu.priority", "vcpu": "A.0", "vm": "A", "old": 32,
                        "priority": 40}))
    assert (prio["old"], prio["priority"]) == ("32", "40")
    bell = dict(fields({"kind": "bell.recv", "old": 18, "clear": 2, "flags": 16}))
    assert (bell["old"], bell["clear"], bell["flags"]) == ("0x12", "0x2", "0x10")
    notify = dict(fields({"kind": "mem.notify", "targets": [129, 3]}))
    assert notify["targets"] == "0x81; 0x3"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "name", "call", "args", "ret", "depth",
                                        "notempty_thd", "caps", "fields", "state", "source",
                                        "old", "reason", "x"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                                    lambda inner: st.lists(inner) | st.dictionaries(
                                        st.text(max_size=8), inner), max_leaves=8)))
def test_explain_never_raises_on_a_strange_event(event: dict[str, Any]) -> None:
    for kind in [event.get("kind"), *sorted(ALL_KINDS)[::5]]:
        info = explain({**event, "kind": kind})
        assert info["caption"] and info["real"]
        assert all(len(text) <= 400 for _, text in info["fields"])


def test_deep_nesting_is_elided() -> None:
    deep: Any = 1
    for _ in range(2_000):
        deep = [deep]
    assert dict(fields({"kind": "x", "args": deep}))["args"] == "…"


def test_real_gunyah_lines_quote_the_models_own_numbers() -> None:
    """Every ``name (0x....)`` a real-Gunyah line quotes is that call's or message's number."""
    quoted = [m for line in REAL.values()
              for m in re.finditer(r"(?:RM )?(\w+) \((0x[0-9A-F]+)\)", line)]
    assert len(quoted) >= 15
    for match in quoted:
        name, number = match.group(1), int(match.group(2), 16)
        if name in RmMessageId.__members__:
            assert RmMessageId[name] == number, match.group(0)
        else:
            assert _TABLE[name][0] + HVC_IMM_BASE == number, match.group(0)


def test_psci_events_say_what_happened_with_their_numbers() -> None:
    from gunyah_core.teaching.captions import caption, real_gunyah
    on = {"kind": "psci.call", "vm": "G", "vcpu": "G.0", "function": "CPU_ON",
          "fid": 0x84000003, "args": {"target": 1, "entry": 0x80000}, "ret": "ALREADY_ON",
          "x0": -4}
    assert caption(on) == ("G.0 calls PSCI CPU_ON (0x84000003, target=0x1, entry=0x80000): "
                           "X0 = ALREADY_ON (-4): that vCPU is already on (Gunyah never "
                           "answers ON_PENDING: CPU_ON is synchronous).")
    off = {**on, "function": "SYSTEM_OFF", "fid": 0x84000008, "args": {}, "ret": None,
           "x0": None}
    assert caption(off) == "G.0 calls PSCI SYSTEM_OFF (0x84000008): it does not return."
    power = {"kind": "vcpu.power", "vcpu": "G.1", "vm": "G", "power": "suspended",
             "reason": "CPU_SUSPEND"}
    assert caption(power).startswith("G.1 is now powered suspended (CPU_SUSPEND): it sleeps")
    assert "psci_common.c" in real_gunyah(on) and "vcpu_suspend" in real_gunyah(power)
    state = {"kind": "vcpu.state", "vcpu": "G.1", "vm": "G", "state": "suspended",
             "reason": "vcpu_suspend"}
    assert caption(state).startswith("G.1 is suspended (vcpu_suspend): PSCI CPU_SUSPEND")
