"""VM_GET_HYP_RESOURCES answers for the caller (RM vm_config.c vm_config_get_resource_descs;
facts §5.4): the owner gets its caps to the VM's vCPUs, then its own channel ends, and
every capid resolves in the caller's CSpace. The owner then uses them: HLOS's VM manager
keeps the reply, and a proxy VMM takes its vcpu_run cap from it.
"""

from __future__ import annotations

import struct

from gunyah_core import Simulation, parse
from gunyah_core.consts import (
    MSGQUEUE_SEND_FLAG_PUSH,
    DoorbellRights,
    Error,
    MsgqueueRights,
    ObjectType,
    ThreadRights,
)
from gunyah_core.guest.programs import hvc
from gunyah_core.rm.messages import ResourceType, RmError, RmMessageId
from gunyah_core.rm.payloads import VmidReq, decode_hyp_resources
from tests.core.rm_support import run_for, sim_of
from tests.core.test_rm_lifecycle import call, created, kick

MS = 1_000_000
US = 1_000
VMID_HLOS = 3
OWNER_VCPU_RIGHTS = ThreadRights.AFFINITY | ThreadRights.YIELD_TO  # RM vm_config_add_vcpu

SCENARIO = """
name: rm-resources
pcpus: 2
vms:
  - name: HLOS
    affinity: [0]
    program: vm-manager
    params: {step_ns: 10000}
  - name: Stranger
    affinity: [1]
    program: mem-borrower
msgqs:
  - {name: Stranger_to_HLOS, sender: Stranger, receiver: HLOS}
images:
  - name: pair
    program: echo
    vcpus: 2
    doorbell: true
    affinity: [1, 1]
"""
NEW_VMID = 0x81  # Stranger has 0x80


def resources(sim, vm: str, vmid: int) -> tuple[RmError, tuple]:
    error, data = call(sim, vm, RmMessageId.VM_GET_HYP_RESOURCES, VmidReq(vmid=vmid).encode())
    return error, decode_hyp_resources(data) if error is RmError.OK else ()


def test_owner_gets_its_vcpu_caps_then_its_channel_ends_all_in_its_own_cspace():
    sim = sim_of(SCENARIO)
    created(sim, "pair", start=False)
    hyp, hlos = sim.hyp, sim.hyp.vms["HLOS"]
    guest = hyp.vm_by_id(NEW_VMID)
    entries = hlos.guest.hyp_resources[NEW_VMID]  # what the VM manager got back
    kinds = [ResourceType(e.resource_type) for e in entries]
    # (channels in the order the RM made them: the guest's queue to HLOS first)
    assert kinds == [ResourceType.VIRTUAL_CPU] * 2 + [
        ResourceType.MSG_QUEUE_RECV, ResourceType.MSG_QUEUE_SEND, ResourceType.DOORBELL_SRC]
    # vCPUs: label = index, the owner's cap (AFFINITY | YIELD_TO), no wakeup vIRQ (not
    # proxy-scheduled), partner_vmid left 0 as the RM leaves it.
    for index, entry in enumerate(entries[:2]):
        assert (entry.label, entry.virq, entry.partner_vmid) == (index, 0, 0)
        thread = hlos.cspace.lookup(entry.capid, ObjectType.THREAD, OWNER_VCPU_RIGHTS)
        assert thread is guest.vcpus[index]
        assert hlos.cspace.cap(entry.capid).rights == OWNER_VCPU_RIGHTS
    # Channels: HLOS's own ends, partner = the guest, HLOS's own vIRQs.
    recv, send, bell = entries[2:]
    assert {e.partner_vmid for e in entries[2:]} == {NEW_VMID}
    assert hlos.cspace.lookup(send.capid, ObjectType.MSGQUEUE, MsgqueueRights.SEND) \
        is hyp.msgqs[f"HLOS_to_{guest.name}"]
    assert hlos.cspace.lookup(recv.capid, ObjectType.MSGQUEUE, MsgqueueRights.RECEIVE) \
        is hyp.msgqs[f"{guest.name}_to_HLOS"]
    assert recv.virq == hlos.resources[f"{guest.name}_to_HLOS:rx"]["virq"] != 0
    assert hlos.cspace.lookup(bell.capid, ObjectType.DOORBELL, DoorbellRights.SEND) \
        is hyp.doorbells[f"HLOS_bell_{guest.name}"]
    assert bell.virq == 0  # a doorbell source has no vIRQ
    # The guest's own capids for the same objects are different numbers in its CSpace.
    theirs = {r["capid"] for r in guest.resources.values()}
    assert not theirs & {e.capid for e in entries}


def test_owner_talks_to_the_guest_with_the_capids_from_the_reply():
    sim = sim_of(SCENARIO)
    created(sim, "pair")
    manager = sim.hyp.vms["HLOS"].guest
    tx = manager.capid_for(NEW_VMID, ResourceType.MSG_QUEUE_SEND)
    rx = manager.capid_for(NEW_VMID, ResourceType.MSG_QUEUE_RECV)
    # The very capids of the RM's VM_GET_HYP_RESOURCES reply to HLOS for that VM.
    error, entries = resources(sim, "HLOS", NEW_VMID)
    assert error is RmError.OK
    assert [tx, rx] == [e.capid for t in (ResourceType.MSG_QUEUE_SEND, ResourceType.MSG_QUEUE_RECV)
                        for e in entries if e.resource_type == t]
    box: list = []

    def job():
        box.append((yield hvc("msgqueue_send", capid=tx, size=5,
                              flags=MSGQUEUE_SEND_FLAG_PUSH, payload="hello")))
        yield from manager.timer_sleep(manager.vm.vcpus[0], 300 * US)
        box.append((yield hvc("msgqueue_receive", capid=rx)))

    manager.jobs.append(job())
    kick(sim, "HLOS")
    run_for(sim, MS)
    sent, got = box
    assert sent.error is Error.OK
    assert got.error is Error.OK and got.ret["payload"] == "echo hello"


def test_a_guest_sees_only_its_own_ends_and_nothing_of_strangers():
    sim = sim_of(SCENARIO)
    created(sim, "pair")
    stranger = sim.hyp.vms["Stranger"]
    # Its owner: no vCPU entries (it does not own HLOS), its send end to HLOS.
    error, entries = resources(sim, "Stranger", VMID_HLOS)
    assert error is RmError.OK
    assert [(e.resource_type, e.partner_vmid) for e in entries] == [
        (ResourceType.MSG_QUEUE_SEND, VMID_HLOS)]
    assert stranger.cspace.lookup(entries[0].capid, ObjectType.MSGQUEUE,
                                  MsgqueueRights.SEND) is sim.hyp.msgqs["Stranger_to_HLOS"]
    # Itself, and a VM it has nothing to do with: empty lists, not DENIED.
    for vmid in (stranger.vmid, NEW_VMID):
        assert resources(sim, "Stranger", vmid) == (RmError.OK, ())
    # HLOS about Stranger (a scenario guest it owns): the vCPU, then its receive end.
    error, entries = resources(sim, "HLOS", stranger.vmid)
    assert [e.resource_type for e in entries] == [ResourceType.VIRTUAL_CPU,
                                                  ResourceType.MSG_QUEUE_RECV]


def test_no_such_vm_is_argument_invalid_and_a_vm_in_load_has_no_resources_yet():
    sim = sim_of(SCENARIO)
    assert resources(sim, "HLOS", 0x99) == (RmError.ARGUMENT_INVALID, ())
    error, data = call(sim, "HLOS", RmMessageId.VM_ALLOCATE, VmidReq(vmid=0).encode())
    vmid = struct.unpack("<I", data)[0]
    assert resources(sim, "HLOS", vmid) == (RmError.NORESOURCE, ())


PROXY = """
name: rm-resources-proxy
pcpus: 2
vms:
  - name: HLOS
    affinity: [0]
    timeslice_us: 1000
    program: vmm
    params: {peer: Runner}
  - name: Runner
    proxy: true
    program: spin
    params: {work_ns: 20000}
"""


def test_proxy_vmm_takes_its_vcpu_run_cap_from_the_rm():
    sim = Simulation(parse(PROXY))
    events = sim.run(until_ns=3 * MS)
    hlos, runner = sim.hyp.vms["HLOS"], sim.hyp.vms["Runner"]
    answered = next(e for e in events if e["kind"] == "rm.rpc" and e["stage"] == "receive"
                    and e["name"] == "VM_GET_HYP_RESOURCES" and e["dst"] == "HLOS")
    enter = next(e for e in events if e["kind"] == "vcpu.run" and e["stage"] == "enter")
    assert answered["seq"] < enter["seq"]  # no vcpu_run before the RM has answered
    # (a vcpu_run's hvc event is traced when the call returns: READY at HLOS's slice end)
    first_run = next(e for e in events if e["kind"] == "hvc" and e["name"] == "vcpu_run")
    vcpu = runner.vcpus[0]
    assert hlos.guest.target == {"capid": vcpu.owner_capid, "virq": vcpu.wakeup.virq}
    assert first_run["args"]["capid"] == vcpu.owner_capid and first_run["result"] == "OK"
    # The reply's entry is the one Linux's vCPU ticket matches: VIRTUAL_CPU, label 0.
    reply = next(e for e in events if e["kind"] == "rm.rpc" and e["stage"] == "send"
                 and e["name"] == "VM_GET_HYP_RESOURCES" and e["dir"] == "reply")
    assert reply["error"] == "OK" and reply["dst"] == "HLOS"


def test_hlos_alone_is_told_of_its_cap_to_the_rm_vcpu():
    sim = sim_of(SCENARIO)
    rm, hlos = sim.hyp.vms["RM"], sim.hyp.vms["HLOS"]
    error, entries = resources(sim, "HLOS", rm.vmid)  # RM rm_caps_for_hlos
    assert error is RmError.OK
    assert [(e.resource_type, e.label, e.virq) for e in entries] == [
        (ResourceType.VIRTUAL_CPU, 0, 0)]
    assert hlos.cspace.lookup(entries[0].capid, ObjectType.THREAD,
                              ThreadRights.AFFINITY) is rm.vcpus[0]
    assert hlos.cspace.cap(entries[0].capid).rights == ThreadRights.AFFINITY  # hlos_vm.c
    assert resources(sim, "Stranger", rm.vmid) == (RmError.OK, ())
