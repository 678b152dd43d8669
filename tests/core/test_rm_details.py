"""RM details the real RM and Linux's driver pin down (facts §5.1, §5.3, §6.1).

Sequence numbers start at 0 on both sides; VM_GET_HYP_RESOURCES of vmid 0 is refused;
VM_CONFIG_IMAGE naming a memparcel not lent to the VM is MEM_INVALID; VM_ALLOCATE of an
explicit vmid follows RM ``vm_mgnt.c`` ``vm_mgnt_handle_allocate``; the RM takes its own
link vIRQs Tx before Rx (``vm_config_add_rm_rpc``).
"""

from __future__ import annotations

import struct

from gunyah_core.rm.mem_payloads import MemLendReq
from gunyah_core.rm.messages import RmError, RmMessageId, VmAuthType
from gunyah_core.rm.payloads import VmConfigImageReq, VmidReq
from tests.core.rm_support import run_for, sim_of
from tests.core.test_rm_lifecycle import call, created, rpc, vm_state

MS = 1_000_000
HEADER = struct.Struct("<BBHI")  # api byte, type|fragments, seq, msg_id (facts §5.1)
TYPE_MASK = 0x3
REQUEST, NOTIFICATION = 1, 3
PAGE = 4096
RWX = 7
VMID_HLOS = 3
QEMU_SECONDARY_FIRST, QEMU_SECONDARY_LAST = 4, 31  # RM platform_qemu.c: 0xFFFFFFF0

# A guest with work of its own (it asks the RM things) next to HLOS's VM manager.
SCENARIO = """
name: rm-details
pcpus: 2
vms:
  - name: HLOS
    affinity: [0]
    program: vm-manager
    params: {step_ns: 10000}
  - name: Asker
    affinity: [1]
    program: mem-borrower  # serves jobs: the tests' requests run on its vCPU
images:
  - name: echo
    program: echo
    affinity: [1]
  - name: quiet
    program: idle
    affinity: [1]
"""


def seqs(events, msgq: str, kind: int) -> list[int]:
    out = []
    for e in events:
        if e["kind"] == "msgq.send" and e["msgq"] == msgq:
            _api, type_frags, seq, _mid = HEADER.unpack_from(bytes.fromhex(e["payload"]))
            if type_frags & TYPE_MASK == kind:
                out.append(seq)
    return out


def test_sequence_numbers_start_at_zero_for_requests_and_notifications():
    sim = sim_of(SCENARIO)
    boxes = [rpc(sim, "Asker", RmMessageId.VM_GET_VMID, b"") for _ in range(3)]
    events = run_for(sim, MS)
    assert [box[0][0] for box in boxes] == [RmError.OK] * 3
    # Linux's xa_alloc_cyclic over 0..65535 with next_seq = 0: 0, 1, 2.
    assert seqs(events, "Asker_to_RM", REQUEST) == [0, 1, 2]
    # The RM's notification counter (rm-rpc.c get_next_seq_num: seq_num++ from 0).
    events = created(sim)
    notes = seqs(events, "RM_to_HLOS", NOTIFICATION)
    assert notes and notes == list(range(len(notes)))


def test_hyp_resources_of_vmid_zero_is_argument_invalid():
    sim = sim_of(SCENARIO)
    for vm in ("HLOS", "Asker"):
        error, data = call(sim, vm, RmMessageId.VM_GET_HYP_RESOURCES, VmidReq(vmid=0).encode())
        assert (error, data) == (RmError.ARGUMENT_INVALID, b"")


def _allocated_with_parcel(sim, acl_vmid: int | None = None) -> tuple[int, int]:
    """VM_ALLOCATE(0) then MEM_LEND of one page to ``acl_vmid`` (default: the new VM)."""
    error, data = call(sim, "HLOS", RmMessageId.VM_ALLOCATE, VmidReq(vmid=0).encode())
    assert error is RmError.OK
    vmid = struct.unpack("<I", data)[0]
    base = sim.hyp.memory.view(VMID_HLOS)[0]["base"]
    sim.hyp.memory.write(VMID_HLOS, base, 1)  # image 1
    lend = MemLendReq(acl=[(acl_vmid or vmid, RWX)], sgl=[(base, PAGE)])
    error, data = call(sim, "HLOS", RmMessageId.MEM_LEND, lend.encode())
    assert error is RmError.OK
    return vmid, struct.unpack("<I", data)[0]


def _config(vmid: int, handle: int) -> bytes:
    return VmConfigImageReq(vmid=vmid, auth_type=VmAuthType.NONE, mem_handle=handle,
                            image_offset=0, image_size=PAGE, dtb_offset=0,
                            dtb_size=0).encode()


def test_config_image_with_an_unknown_memparcel_is_mem_invalid():
    sim = sim_of(SCENARIO)
    vmid, handle = _allocated_with_parcel(sim)
    name = sim.hyp.vm_by_id(vmid).name
    error, _ = call(sim, "HLOS", RmMessageId.VM_CONFIG_IMAGE, _config(vmid, handle + 7))
    assert error is RmError.MEM_INVALID
    assert vm_state(sim, name) == "LOAD"
    error, _ = call(sim, "HLOS", RmMessageId.VM_CONFIG_IMAGE, _config(vmid, handle))
    assert error is RmError.OK
    assert vm_state(sim, name) == "INIT"


def test_config_image_with_a_memparcel_lent_to_another_vm_is_mem_invalid():
    sim = sim_of(SCENARIO)
    asker = sim.hyp.vms["Asker"].vmid
    vmid, handle = _allocated_with_parcel(sim, acl_vmid=asker)
    error, _ = call(sim, "HLOS", RmMessageId.VM_CONFIG_IMAGE, _config(vmid, handle))
    assert error is RmError.MEM_INVALID
    assert vm_state(sim, sim.hyp.vm_by_id(vmid).name) == "LOAD"


def test_allocate_explicit_vmid_takes_only_a_free_platform_secondary_vmid():
    sim = sim_of(SCENARIO)
    before = sorted(sim.hyp.vms)
    asker = sim.hyp.vms["Asker"].vmid  # a dynamic vmid, in use
    for vmid in (VMID_HLOS, asker, 0x90, 2, QEMU_SECONDARY_LAST + 1):
        error, data = call(sim, "HLOS", RmMessageId.VM_ALLOCATE, VmidReq(vmid=vmid).encode())
        assert (error, data) == (RmError.NORESOURCE, b""), hex(vmid)
    assert sorted(sim.hyp.vms) == before
    error, data = call(sim, "HLOS", RmMessageId.VM_ALLOCATE,
                       VmidReq(vmid=QEMU_SECONDARY_FIRST).encode())
    assert (error, data) == (RmError.OK, b"")  # a named vmid: no reply data
    vm = sim.hyp.vm_by_id(QEMU_SECONDARY_FIRST)
    assert vm is not None and vm.state == "LOAD" and vm.owner == VMID_HLOS
    error, _ = call(sim, "HLOS", RmMessageId.VM_ALLOCATE,
                    VmidReq(vmid=QEMU_SECONDARY_FIRST).encode())
    assert error is RmError.NORESOURCE  # now in use


def test_rm_takes_its_link_virqs_tx_before_rx_and_the_vm_too():
    sim = sim_of(SCENARIO)
    created(sim, "quiet", start=False)
    rm = sim.hyp.vms["RM"]
    peers = [vm for vm in sim.hyp.vms.values() if vm is not rm]
    assert {vm.name for vm in peers} == {"HLOS", "Asker", "VM_81"}  # Asker is 0x80
    for vm in peers:
        rm_tx, rm_rx = rm.resources[f"rm:{vm.name}:tx"], rm.resources[f"rm:{vm.name}:rx"]
        assert rm_rx["virq"] == rm_tx["virq"] + 1, vm.name
        assert vm.resources["rm:rx"]["virq"] == vm.resources["rm:tx"]["virq"] + 1, vm.name
    run_for(sim, MS)
