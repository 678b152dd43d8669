"""The RM link on the wire (facts §5.1, §3.2, §5.4): packets are bytes on real queues.

Requests and replies are checked byte by byte from the ``msgq.send`` payloads; a long
message travels as a first packet plus continuations and, past the queue depth of 8,
the sender waits for its Tx vIRQ; malformed packets pushed raw into HLOS_to_RM with
HLOS's own ``msgqueue_send`` are dropped (``rm.packet``) and the RM keeps serving.
"""

from __future__ import annotations

import struct
from typing import Any

from gunyah_core import Simulation, load
from gunyah_core.consts import MSGQUEUE_SEND_FLAG_PUSH
from gunyah_core.rm.messages import RmError, RmMessageId
from gunyah_core.vm.vcpu import BLOCK_VCPU_WFI
from tests.core.rm_support import run_for, sim_of

MS = 1_000_000
HEADER = struct.Struct("<BBHI")  # facts §5.1
API_BYTE = 0x21
CONTINUATION, REQUEST, REPLY, NOTIFICATION = 0, 1, 2, 3
TYPE_MASK = 0x3
FRAGMENT_SHIFT = 2
PACKET_MAX = 240
CONTENT_MAX = 232
QUEUE_DEPTH = 8
ENTRY = struct.Struct("<BBHIIQIIQQ")  # VM_GET_HYP_RESOURCES entry, 44 bytes (facts §5.4)
RESOURCE_TYPE = {"DOORBELL_SRC": 0, "DOORBELL": 1, "MSG_QUEUE_SEND": 2, "MSG_QUEUE_RECV": 3,
                 "VIRTUAL_CPU": 4}
VMID_HLOS = 3
U32 = struct.Struct("<I")

HLOS_ONLY = """
name: rm-link
pcpus: 2
vms:
  - name: HLOS
    affinity: [0]
    program: vm-manager
    params: {step_ns: 10000}
images:
  - name: big
    program: idle
    vcpus: 4
    doorbell: true
    affinity: [1, 1, 1, 1]
"""


# -- helpers ---------------------------------------------------------------------------------
def header(raw: bytes) -> tuple[int, int, int, int, int]:
    """(api byte, type, fragments, seq, msg_id) of one packet."""
    api, kind, seq, msg_id = HEADER.unpack_from(raw)
    return api, kind & TYPE_MASK, kind >> FRAGMENT_SHIFT, seq, msg_id


def wire(events: list[dict[str, Any]], msgq: str) -> list[bytes]:
    return [bytes.fromhex(e["payload"]) for e in events
            if e["kind"] == "msgq.send" and e["msgq"] == msgq]


def rpc(sim: Simulation, msg_id: int, body: bytes) -> list:
    """A request from HLOS's own RmClient, as a job on its VM manager."""
    guest = sim.hyp.vms["HLOS"].guest
    box: list = []

    def job():
        box.append((yield from guest.rm.call(msg_id, body)))

    guest.jobs.append(job())
    vcpu = sim.hyp.vms["HLOS"].vcpus[0]
    vcpu.wfi_reason = "user"
    vcpu.unblock(BLOCK_VCPU_WFI)
    return box


def inject(sim: Simulation, packet: bytes):
    """HLOS's vCPU sends raw bytes into HLOS_to_RM with its own SEND cap, between steps."""
    hlos = sim.hyp.vms["HLOS"]
    args = {"capid": hlos.resources["rm:tx"]["capid"], "size": len(packet),
            "flags": MSGQUEUE_SEND_FLAG_PUSH, "payload": packet}
    return sim.hyp.hypercalls.call(hlos.vcpus[0], "msgqueue_send", args)


def packet(msg_type: int, fragments: int, seq: int, msg_id: int, body: bytes = b"",
           api: int = API_BYTE) -> bytes:
    return HEADER.pack(api, fragments << FRAGMENT_SHIFT | msg_type, seq, msg_id) + body


def drops(events: list[dict[str, Any]]) -> list[str]:
    return [e["dropped"] for e in events if e["kind"] == "rm.packet"]


def replies_on_wire(events: list[dict[str, Any]]) -> list[tuple[int, int, bytes]]:
    """(seq, msg_id, payload) of every single-packet reply the RM sent to HLOS."""
    out = []
    for raw in wire(events, "RM_to_HLOS"):
        _api, kind, _frags, seq, msg_id = header(raw)
        if kind == REPLY:
            out.append((seq, msg_id, raw[HEADER.size:]))
    return out


# -- packets on the wire -------------------------------------------------------------------
def test_rm_boot_packets_are_byte_exact_and_replies_echo_seq_and_id():
    sim = Simulation(load("rm-boot"))
    events = sim.run(until_ns=2 * MS)
    requests = wire(events, "HLOS_to_RM")
    answers = wire(events, "RM_to_HLOS")
    assert requests and answers
    # VM_ALLOCATE(0): 0x21, type 1 with no fragments, seq 0 (Linux's cyclic allocator
    # starts at 0), id 0x56000001, vmid 0 + pad.
    assert requests[0] == bytes.fromhex("21" "01" "0000" "01000056" "00000000")
    # The reply: type 2, the request's seq and id, OK, then the new vmid 0x80 as a u32.
    # LOAD is set silently (RM vm_mgnt_new_vm): no NOTIFY_VM_STATUS before it.
    assert answers[0] == bytes.fromhex("21" "02" "0000" "01000056" "00000000" "80000000")
    # The first notification is INIT, after VM_CONFIG_IMAGE (NOTIFY_VM_STATUS, type 3, RM
    # seq 0: vmid 0x80, res, vm_status 1, os 0, app 0).
    first_note = next(raw for raw in answers if header(raw)[1] == NOTIFICATION)
    assert first_note == bytes.fromhex("21" "03" "0000" "08001056" "8000" "0000" "01" "00"
                                       "0000")
    sent = [header(raw) for raw in requests]
    assert {(api, kind, frags) for api, kind, frags, _, _ in sent} == {(API_BYTE, REQUEST, 0)}
    seqs = [seq for *_, seq, _ in sent]
    assert seqs == list(range(len(seqs)))  # Linux's cyclic allocator from 0
    got = [header(raw) for raw in answers]
    assert {api for api, *_ in got} == {API_BYTE}
    assert max(len(raw) for raw in answers) <= PACKET_MAX
    reply_keys = [(seq, mid) for _, kind, _, seq, mid in got if kind == REPLY]
    assert reply_keys == [(seq, mid) for *_, seq, mid in sent]
    names = [RmMessageId(mid).name for *_, mid in sent]
    assert names == ["VM_ALLOCATE", "MEM_LEND", "VM_CONFIG_IMAGE", "VM_INIT",
                     "VM_GET_HYP_RESOURCES", "VM_START"]
    # Every reply starts with the RM error word: all OK here.
    assert all(raw[HEADER.size:HEADER.size + 4] == bytes(4)
               for raw, (_, kind, *_) in zip(answers, got, strict=True) if kind == REPLY)
    # Notifications are type 3 and numbered by the RM's own counter.
    notes = [(seq, mid) for _, kind, _, seq, mid in got if kind == NOTIFICATION]
    assert [seq for seq, _ in notes] == list(range(len(notes)))  # RM counter from 0
    assert {mid for _, mid in notes} == {RmMessageId.NOTIFY_VM_STATUS}
    # Linux pushes its requests; the RM sends without PUSH.
    pushes = {(e["msgq"], e["push"]) for e in events if e["kind"] == "msgq.send"
              and e["msgq"] in ("HLOS_to_RM", "RM_to_HLOS")}
    assert pushes == {("HLOS_to_RM", True), ("RM_to_HLOS", False)}


def test_long_reply_travels_as_first_packet_plus_continuation():
    sim = sim_of(HLOS_ONLY)
    sim.act("rm_vm_create", {"image": "big", "start": False})
    events = run_for(sim, MS)
    seq_of = next(e["rpc_seq"] for e in events if e["kind"] == "rm.rpc"
                  and e["name"] == "VM_GET_HYP_RESOURCES" and e["dir"] == "request")
    parts = [raw for raw in wire(events, "RM_to_HLOS")
             if header(raw)[4] == RmMessageId.VM_GET_HYP_RESOURCES]
    assert [header(raw) for raw in parts] == [
        (API_BYTE, REPLY, 1, seq_of, RmMessageId.VM_GET_HYP_RESOURCES),
        (API_BYTE, CONTINUATION, 1, seq_of, RmMessageId.VM_GET_HYP_RESOURCES),
    ]
    assert len(parts[0]) == PACKET_MAX
    payload = b"".join(raw[HEADER.size:] for raw in parts)
    assert len(payload) > CONTENT_MAX
    error, count = struct.unpack_from("<II", payload)
    assert error == RmError.OK
    assert len(payload) == 8 + count * ENTRY.size
    entries = [ENTRY.unpack_from(payload, 8 + i * ENTRY.size) for i in range(count)]
    guest = sim.hyp.vm_by_id(0x80)
    hlos = sim.hyp.vms["HLOS"]
    # HLOS's view (RM vm_config_get_resource_descs): first its caps to the guest's four
    # vCPUs, label = vCPU index, then its own ends of the channels to the guest.
    vcpu_entries = [(label, capid) for rtype, _r, _p, _h, label, capid, *_ in entries
                    if rtype == RESOURCE_TYPE["VIRTUAL_CPU"]]
    assert [rtype for rtype, *_ in entries[:4]] == [RESOURCE_TYPE["VIRTUAL_CPU"]] * 4
    assert vcpu_entries == [(v.index, v.owner_capid) for v in guest.vcpus]
    expected = sorted((RESOURCE_TYPE[r["type"]], r["capid"]) for k, r in hlos.resources.items()
                      if r.get("partner") == guest.name and not k.startswith("rm"))
    got = sorted((rtype, capid) for rtype, _res, _partner, _h, _label, capid, *_ in entries[4:])
    assert got == expected and len(got) == 3  # send, receive, doorbell source
    # The channel entries name the guest as the partner and carry HLOS's own vIRQ.
    for _rtype, _res, partner, _h, _label, capid, _vh, virq, _base, _size in entries[4:]:
        assert partner == guest.vmid
        res = next(r for r in hlos.resources.values() if r["capid"] == capid)
        assert virq == res.get("virq", 0)
    # Every capid is one of HLOS's; none is one of the guest's own.
    # Each one resolves there to the very object it describes.
    named = {r["capid"]: sim.hyp.msgqs.get(r.get("msgq")) or sim.hyp.doorbells[r["doorbell"]]
             for k, r in hlos.resources.items() if r.get("partner") == guest.name}
    assert [hlos.cspace.cap(capid).obj for _t, _r, _p, _h, _l, capid, *_ in entries] == [
        *guest.vcpus, *(named[capid] for _t, _r, _p, _h, _l, capid, *_ in entries[4:])]
    assert not {capid for *_, capid, _vh, _v, _b, _s in entries} & {
        r["capid"] for r in guest.resources.values()}
    # HLOS's RmClient reassembled it: one rm.rpc receive with fragments=1.
    received = [e for e in events if e["kind"] == "rm.rpc" and e["stage"] == "receive"
                and e["name"] == "VM_GET_HYP_RESOURCES" and e["dir"] == "reply"]
    assert [(e["fragments"], e["size"]) for e in received] == [(1, len(payload))]


def test_request_longer_than_the_queue_waits_for_the_tx_virq():
    sim = sim_of(HLOS_ONLY)
    body = bytes(range(256)) * 9  # 2304 bytes: 10 packets, more than the queue holds
    box = rpc(sim, RmMessageId.VM_GET_VMID, body)
    events = run_for(sim, MS)
    assert box == [(RmError.OK, U32.pack(VMID_HLOS))]
    sends = [e for e in events if e["kind"] == "hvc" and e["name"] == "msgqueue_send"
             and e["vm"] == "HLOS"]
    parts = [bytes.fromhex(e["payload"]) for e in events
             if e["kind"] == "msgq.send" and e["msgq"] == "HLOS_to_RM"]
    frags = len(body) // CONTENT_MAX
    assert len(parts) == frags + 1 > QUEUE_DEPTH
    assert [header(p)[1] for p in parts] == [REQUEST] + [CONTINUATION] * frags
    assert {header(p)[2:] for p in parts} == {(frags, header(parts[0])[3],
                                               RmMessageId.VM_GET_VMID)}
    assert b"".join(p[HEADER.size:] for p in parts) == body
    # The 8th send fills the queue (OK, not_full false); HLOS stops until its Tx vIRQ.
    results = [(e["result"], e["ret"].get("not_full")) for e in sends]
    stall = results.index(("OK", False))
    assert stall == QUEUE_DEPTH - 1
    tx_virq = sim.hyp.vms["HLOS"].resources["rm:tx"]["virq"]
    ninth = sends[stall + 1]
    tx = [e for e in events if e["kind"] == "virq.assert" and e["vm"] == "HLOS"
          and e["virq"] == tx_virq]
    assert tx and sends[stall]["seq"] < tx[0]["seq"] < ninth["seq"]
    # PUSH only on the last fragment (Linux).
    pushes = [e["push"] for e in events if e["kind"] == "msgq.send" and e["msgq"] == "HLOS_to_RM"]
    assert pushes == [False] * frags + [True]
    received = [e for e in events if e["kind"] == "rm.rpc" and e["stage"] == "receive"
                and e["dst"] == "RM"]
    assert [(e["name"], e["fragments"], e["size"]) for e in received] == [
        ("VM_GET_VMID", frags, len(body))]


# -- malformed packets ---------------------------------------------------------------------
def test_malformed_packets_are_dropped_and_rm_keeps_serving():
    sim = sim_of(HLOS_ONLY)
    vmid = RmMessageId.VM_GET_VMID
    bad = [
        (b"\x21\x01\x00", "short packet"),
        (packet(REQUEST, 0, 0x700, vmid, api=0x22), "API version 2"),
        (packet(REQUEST, 0, 0x701, vmid, api=0x31), "header words 3"),
        (packet(REQUEST, 63, 0x702, vmid), "fragment count 63"),
        (packet(CONTINUATION, 0, 0x703, vmid), "no message in progress"),
    ]
    for raw, _ in bad:
        assert inject(sim, raw).error.name == "OK"
    events = run_for(sim, MS)
    reasons = drops(events)
    assert len(reasons) == len(bad)
    for reason, (_, expected) in zip(reasons, bad, strict=True):
        assert expected in reason
    assert {(e["src"], e["dst"]) for e in events if e["kind"] == "rm.packet"} == {("HLOS", "RM")}
    assert replies_on_wire(events) == []  # nothing was answered
    box = rpc(sim, vmid, b"")
    events = run_for(sim, MS)
    assert box == [(RmError.OK, U32.pack(VMID_HLOS))]
    assert drops(events) == []


def test_mismatched_continuation_is_dropped_and_the_partial_survives():
    sim = sim_of(HLOS_ONLY)
    vmid = RmMessageId.VM_GET_VMID
    inject(sim, packet(REQUEST, 1, 0x200, vmid, bytes(CONTENT_MAX)))
    inject(sim, packet(CONTINUATION, 1, 0x201, vmid, b"x"))  # wrong seq
    inject(sim, packet(CONTINUATION, 2, 0x200, vmid, b"x"))  # wrong fragment count
    inject(sim, packet(CONTINUATION, 1, 0x200, vmid, b"x"))  # the real one
    events = run_for(sim, MS)
    assert [("does not match" in r) for r in drops(events)] == [True, True]
    assert replies_on_wire(events) == [(0x200, vmid, U32.pack(RmError.OK) + U32.pack(VMID_HLOS))]


def test_new_first_packet_discards_a_partial_message():
    sim = sim_of(HLOS_ONLY)
    vmid = RmMessageId.VM_GET_VMID
    inject(sim, packet(REQUEST, 2, 0x300, vmid, bytes(CONTENT_MAX)))
    inject(sim, packet(REQUEST, 0, 0x301, vmid))
    events = run_for(sim, MS)
    reasons = drops(events)
    assert len(reasons) == 1 and "discarded" in reasons[0]
    assert [seq for seq, *_ in replies_on_wire(events)] == [0x301]


def test_non_request_packets_to_the_rm_are_ignored():
    sim = sim_of(HLOS_ONLY)
    inject(sim, packet(REPLY, 0, 0x400, RmMessageId.VM_GET_VMID, bytes(4)))
    inject(sim, packet(NOTIFICATION, 0, 0x401, RmMessageId.NOTIFY_VM_STATUS, bytes(8)))
    events = run_for(sim, MS)
    assert drops(events) == []  # well formed, just not requests
    assert wire(events, "RM_to_HLOS") == []
    box = rpc(sim, RmMessageId.VM_GET_VMID, b"")
    run_for(sim, MS)
    assert box == [(RmError.OK, U32.pack(VMID_HLOS))]


def test_a_text_message_sent_by_a_person_onto_the_rm_link_is_dropped_not_fatal():
    """The page lets anyone send text on VM_A_to_RM: to the RM that is a malformed packet."""
    sim = Simulation(load("msgq-pingpong"))
    run_for(sim, MS // 10)
    sim.act("msgq_send", {"vm": "VM_A", "msgq": "VM_A_to_RM", "payload": "fork-here"})
    sim.act("msgq_send", {"vm": "VM_A", "msgq": "VM_A_to_RM", "payload": "hello"})
    events = run_for(sim, MS // 5)
    # "f" = 0x66: API version 6; "hello" is shorter than a header.
    assert drops(events) == ["API version 6, expected 1", "short packet: 5 bytes, header needs 8"]
    sent = [e for e in events if e["kind"] == "hvc" and e["name"] == "msgqueue_send"
            and e["vm"] == "VM_A" and "action" in e]
    assert [e["result"] for e in sent] == ["OK", "OK"]
    # The RM still serves: HLOS's next request gets its reply.
    box = rpc(sim, RmMessageId.VM_GET_VMID, b"")
    run_for(sim, MS // 5)
    assert box and box[0][0] is RmError.OK and U32.unpack(box[0][1]) == (VMID_HLOS,)


def test_a_tx_virq_during_a_send_does_not_send_the_packet_twice():
    """HLOS at a higher priority takes its Tx vIRQ while its own send is under way: the
    handler must leave the packet to that send (it used to pop an emptied outbox)."""
    sim = Simulation(load("vm-exit"))
    for _ in range(92):
        sim.step()
    sim.act("set_priority", {"vcpu": "HLOS.0", "priority": 40})
    events = sim.run(until_ns=50_000_000)
    replies = [(e["name"], e["error"]) for e in events
               if e["kind"] == "rm.rpc" and e["dir"] == "reply" and e["stage"] == "send"]
    assert replies[-4:] == [("MEM_RECLAIM", "MEM_INUSE"), ("VM_RESET", "OK"),
                            ("MEM_RECLAIM", "OK"), ("VM_DEALLOCATE", "OK")]
    sent = [e["rpc_seq"] for e in events if e["kind"] == "rm.rpc" and e["stage"] == "send"
            and e["dir"] == "request" and e["src"] == "HLOS"]
    assert len(sent) == len(set(sent))  # each request once
