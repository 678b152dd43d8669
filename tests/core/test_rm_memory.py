"""Memory through the RM (facts §8.2-8.5): lend, share, accept, release, reclaim.

Runs the mem-lend and mem-share-doorbell presets (and variants) and checks what each
VM's own loads, stores and fetches did (``mem.access`` / ``mem.fault``), the RM replies,
and the notification bytes on the wire: MEM_SHARED carries region sizes, no addresses.
"""

from __future__ import annotations

import struct
from typing import Any

from gunyah_core import Simulation, load
from gunyah_core.guest.programs import mem
from gunyah_core.rm.mem_payloads import MemLendReq
from gunyah_core.rm.messages import RmError, RmMessageId
from gunyah_core.rm.sharing import MESSAGE_VALUE
from gunyah_core.vm.vcpu import BLOCK_VCPU_WFI

MS = 1_000_000
PAGE = 4096
HEADER = struct.Struct("<BBHI")  # facts §5.1
SHARED_HEAD = struct.Struct("<IBBBBH2sII")  # facts §8.4, up to mem_info_tag
LIST_HEAD = struct.Struct("<HH")  # count, pad
ACL_ENTRY = struct.Struct("<HBB")  # vmid, rights, res
SIZE_ENTRY = struct.Struct("<Q")  # sizes only
ATTR_ENTRY = struct.Struct("<HH")  # attr, vmid
OWNER_NOTE = struct.Struct("<IH2sI")  # handle, vmid, pad, mem_info_tag
TRANS_LEND, TRANS_SHARE = 1, 2
RIGHTS_RW = 6
RIGHTS_RWX = 7
BORROWER_VALUE = 0xB0B


def run(name: str, until_ns: int = 2 * MS) -> tuple[Simulation, list[dict[str, Any]]]:
    sim = Simulation(load(name))
    return sim, sim.run(until_ns=until_ns)


def accesses(events: list[dict[str, Any]], vm: str) -> list[tuple[str, bool, Any]]:
    return [(e["access"], e["ok"], e["value"]) for e in events
            if e["kind"] == "mem.access" and e["vm"] == vm]


def first(events: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any]:
    return next(e for e in events if e["kind"] == kind
                and all(e.get(k) == v for k, v in match.items()))


def reply_errors(events: list[dict[str, Any]], name: str) -> list[tuple[str, int]]:
    return [(e["error"], e["seq"]) for e in events if e["kind"] == "rm.rpc"
            and e["dir"] == "reply" and e["stage"] == "send" and e["name"] == name]


def bodies(events: list[dict[str, Any]], msgq: str, msg_id: int) -> list[bytes]:
    out = []
    for e in events:
        if e["kind"] == "msgq.send" and e["msgq"] == msgq:
            raw = bytes.fromhex(e["payload"])
            if HEADER.unpack_from(raw)[3] == msg_id:
                out.append(raw[HEADER.size:])
    return out


def parse_mem_shared(body: bytes) -> dict[str, Any]:
    """Decode MEM_SHARED by the facts-sheet layout; every byte must be accounted for."""
    (handle, mem_type, trans, flags, _res, owner, _res2, label,
     tag) = SHARED_HEAD.unpack_from(body)
    at = SHARED_HEAD.size
    lists = []
    for entry in (ACL_ENTRY, SIZE_ENTRY, ATTR_ENTRY):
        count, _pad = LIST_HEAD.unpack_from(body, at)
        at += LIST_HEAD.size
        lists.append([entry.unpack_from(body, at + i * entry.size) for i in range(count)])
        at += count * entry.size
    assert at == len(body), "MEM_SHARED has bytes the facts-sheet layout does not explain"
    return {"handle": handle, "mem_type": mem_type, "trans_type": trans, "flags": flags,
            "owner": owner, "label": label, "tag": tag, "acl": lists[0],
            "sizes": [s for (s,) in lists[1]], "attrs": lists[2]}


def queue_job(sim: Simulation, vm_name: str, job) -> None:
    """Hand a job to a program that serves jobs (the borrower) and wake its vCPU."""
    vm = sim.hyp.vms[vm_name]
    vm.guest.jobs.append(job)
    vcpu = vm.vcpus[0]
    vcpu.wfi_reason = "user"
    vcpu.unblock(BLOCK_VCPU_WFI)


def run_until_event(sim: Simulation, kind: str, limit_ns: int = MS) -> list[dict[str, Any]]:
    """Step until an event of ``kind`` appears; return everything seen so far."""
    seen: list[dict[str, Any]] = []
    while sim.now < limit_ns:
        seen += sim.step()
        if any(e["kind"] == kind for e in seen):
            return seen
    raise AssertionError(f"no {kind} before {limit_ns} ns")


# -- lend -------------------------------------------------------------------------------------
def test_lend_takes_the_page_from_the_lender_at_once():
    sim, events = run("mem-lend")
    lend = first(events, "mem.lend")
    accept = first(events, "mem.accept")
    fault = first(events, "mem.fault", vm="VM_A")
    # The lender's read faults after MEM_LEND and before anyone accepted.
    assert lend["seq"] < fault["seq"] < accept["seq"]
    assert (fault["access"], fault["rights"], fault["addr"]) == ("R", "NONE", lend["base"])
    assert accesses(events, "VM_A")[:2] == [("W", True, MESSAGE_VALUE), ("R", False, None)]
    assert lend["acl"] == [{"vmid": sim.hyp.vms["VM_B"].vmid, "rights": "RW"}]  # owner not listed


def test_borrower_sees_the_page_only_after_accept_and_only_with_acl_rights():
    sim = Simulation(load("mem-lend"))
    seen = run_until_event(sim, "mem.lend")
    base = first(seen, "mem.lend")["base"]
    box: list = []

    def early_read():
        box.append((yield mem("R", base)))

    queue_job(sim, "VM_B", early_read())
    events = seen + sim.run(until_ns=2 * MS)
    accept = first(events, "mem.accept")
    reads = [e for e in events if e["kind"] == "mem.access" and e["vm"] == "VM_B"]
    early = reads[0]
    assert box == [None]
    assert not early["ok"] and early["seq"] < accept["seq"]
    early_fault = first(events, "mem.fault", vm="VM_B")
    assert early_fault["reason"] == "translation"
    # After accept: the read sees the lender's data; the fetch faults (ACL gave RW only).
    after = [(e["access"], e["ok"], e["value"]) for e in reads if e["seq"] > accept["seq"]]
    assert after[:2] == [("R", True, MESSAGE_VALUE), ("X", False, None)]
    x_fault = [e for e in events if e["kind"] == "mem.fault" and e["vm"] == "VM_B"
               and e["access"] == "X"]
    assert [(f["rights"], f["reason"]) for f in x_fault] == [("RW", "permission")]


def test_borrower_can_write_with_rw_and_the_lender_gets_it_back():
    sim = Simulation(load("mem-lend"))
    seen = run_until_event(sim, "mem.accept")
    base = first(seen, "mem.accept")["base"]
    vmid_b = sim.hyp.vms["VM_B"].vmid
    assert sim.hyp.memory.write(vmid_b, base, BORROWER_VALUE)  # a store through VM_B's stage-2
    events = sim.run(until_ns=2 * MS)
    # After reclaim the lender reads what the borrower left (no SANITIZE asked for).
    assert accesses(events, "VM_A")[-1] == ("R", True, BORROWER_VALUE)


def test_reclaim_is_mem_inuse_while_borrowed_then_ok_after_release():
    sim, events = run("mem-lend")
    accept = first(events, "mem.accept")
    release = first(events, "mem.release")
    reclaims = reply_errors(events, "MEM_RECLAIM")
    assert [err for err, _ in reclaims] == ["MEM_INUSE", "OK"]
    assert accept["seq"] < reclaims[0][1] < release["seq"] < reclaims[1][1]
    wire = bodies(events, "RM_to_VM_A", RmMessageId.MEM_RECLAIM)
    assert wire == [struct.pack("<I", RmError.MEM_INUSE), struct.pack("<I", RmError.OK)]
    reclaim = first(events, "mem.reclaim")
    assert reclaim["seq"] > release["seq"]
    # The page is the lender's again: its last read works, and no parcel is left.
    assert accesses(events, "VM_A")[-1] == ("R", True, MESSAGE_VALUE)
    assert sim.snapshot()["memparcels"] == []


def test_owner_hears_accepted_and_released_from_the_borrower():
    sim, events = run("mem-lend")
    vmid_b = sim.hyp.vms["VM_B"].vmid
    handle = first(events, "mem.lend")["handle"]
    for msg_id in (RmMessageId.MEM_ACCEPTED, RmMessageId.MEM_RELEASED):
        notes = [OWNER_NOTE.unpack(b) for b in bodies(events, "RM_to_VM_A", msg_id)]
        assert notes == [(handle, vmid_b, bytes(2), 0)], msg_id.name


def test_mem_shared_carries_sizes_but_no_addresses():
    sim, events = run("mem-lend")
    lend = first(events, "mem.lend")
    (body,) = bodies(events, "RM_to_VM_B", RmMessageId.MEM_SHARED)
    shared = parse_mem_shared(body)
    assert shared["sizes"] == [PAGE]
    assert shared["trans_type"] == TRANS_LEND
    assert shared["owner"] == sim.hyp.vms["VM_A"].vmid
    assert shared["handle"] == lend["handle"]
    assert [(vmid, rights) for vmid, rights, _ in shared["acl"]] == [
        (sim.hyp.vms["VM_B"].vmid, RIGHTS_RW)]
    assert struct.pack("<Q", lend["base"]) not in body
    assert struct.pack("<I", lend["base"]) not in body
    # It is sent only after the owner's MEM_NOTIFY(SHARED), never at MEM_LEND.
    notify = first(events, "mem.notify", flags="SHARED")
    shared_send = first(events, "rm.rpc", name="MEM_SHARED", stage="send")
    assert lend["seq"] < notify["seq"] < shared_send["seq"]


def test_lend_listing_the_owner_is_argument_invalid():
    sim, _ = run("mem-lend", until_ns=MS // 10)
    vm_b = sim.hyp.vms["VM_B"]
    base = next(r["base"] for r in sim.hyp.memory.view(vm_b.vmid) if r["state"] == "owned")
    vm_a = sim.hyp.vms["VM_A"]
    request = MemLendReq(acl=[(vm_a.vmid, RIGHTS_RW), (vm_b.vmid, RIGHTS_RWX)],
                         sgl=[(base, PAGE)])
    box: list = []

    def job():
        box.append((yield from vm_b.guest.rm.call(RmMessageId.MEM_LEND, request.encode())))

    before = sim.hyp.memory.read(vm_b.vmid, base)
    queue_job(sim, "VM_B", job())
    events = sim.run(until_ns=sim.now + MS)
    assert box == [(RmError.ARGUMENT_INVALID, b"")]
    assert not [e for e in events if e["kind"] == "mem.lend" and e["owner"] == "VM_B"]
    assert [r["state"] for r in sim.hyp.memory.view(vm_b.vmid) if r["base"] == base] == [
        "owned"]  # still the owner's ...
    assert sim.hyp.memory.read(vm_b.vmid, base) == before  # ... contents untouched
    # The same lend without the owner in the ACL is accepted, and the page leaves VM_B.
    request = MemLendReq(acl=[(vm_a.vmid, RIGHTS_RW)], sgl=[(base, PAGE)])
    box.clear()
    queue_job(sim, "VM_B", job())
    sim.run(until_ns=sim.now + MS)
    assert [err for err, _ in box] == [RmError.OK]
    assert sim.hyp.memory.read(vm_b.vmid, base) is None


# -- share ------------------------------------------------------------------------------------
def test_share_keeps_the_owners_access_and_the_doorbell_reader_sees_new_data():
    sim, events = run("mem-share-doorbell")
    share = first(events, "mem.share")
    assert share["trans_type"] == "SHARE"
    vmids = {sim.hyp.vms[n].vmid for n in ("VM_A", "VM_B")}
    assert {e["vmid"] for e in share["acl"]} == vmids  # the owner is listed for SHARE
    assert not [e for e in events if e["kind"] == "mem.fault" and e["vm"] == "VM_A"]
    assert ("R", True, MESSAGE_VALUE) in accesses(events, "VM_A")
    # VM_B read the first value after accept, then the one written before the doorbell.
    assert sim.hyp.vms["VM_B"].guest.values[:2] == [MESSAGE_VALUE, MESSAGE_VALUE + 1]
    bell = first(events, "bell.send")
    late_read = [e for e in events if e["kind"] == "mem.access" and e["vm"] == "VM_B"
                 and e["access"] == "R" and e["value"] == MESSAGE_VALUE + 1]
    assert late_read and late_read[0]["seq"] > bell["seq"]
    (body,) = bodies(events, "RM_to_VM_B", RmMessageId.MEM_SHARED)
    shared = parse_mem_shared(body)
    assert shared["trans_type"] == TRANS_SHARE and shared["sizes"] == [PAGE]
    assert struct.pack("<Q", share["base"]) not in body
    assert [err for err, _ in reply_errors(events, "MEM_RECLAIM")] == ["MEM_INUSE", "OK"]
