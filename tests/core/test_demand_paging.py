"""Demand paging: a proxy vCPU's first touch of a page stops it with vcpu_run state 7; its
owner donates and maps a page, then resumes it with RETRY (facts §7.2, §8.1, §10.2)."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load
from gunyah_core.consts import (
    MAP_ATTR_MEMTYPE_NORMAL_WB,
    MAP_ATTR_MEMTYPE_SHIFT,
    AddrspaceMapFlags,
    AddrspaceRights,
    Error,
    MemextentDonateType,
    MemextentRights,
    ObjectType,
    VcpuRunResume,
)
from gunyah_core.core.hypercalls import HypercallTable
from gunyah_core.guest.programs import TOUCH_LABEL_BASE
from gunyah_core.mem import demand_paging
from gunyah_core.mem.demand_paging import ACCESS
from gunyah_core.mem.memparcel import PAGE_SIZE, PgtableAccess
from gunyah_core.scenario import ScenarioError, parse
from gunyah_core.vm.vcpu_run import PAGE_FAULT_BLOCK, VcpuRunState
from tests.core.conftest import MS

SCENARIO = """
name: dp
pcpus: 1
vms:
  - {{name: HLOS, affinity: [0], timeslice_us: 1000, program: vmm, params: {{peer: Guest}}}}
  - {{name: Guest, proxy: true, program: page-toucher, params: {{work_ns: 50000}},
     demand_paging: {{pages: {pages}, transfer: {transfer}, writable: {writable}}}}}
"""


def machine(transfer: str = "lend", writable: bool = True, pages: int = 2) -> Simulation:
    return Simulation(parse(SCENARIO.format(transfer=transfer, writable=str(writable).lower(),
                                            pages=pages)))


def calls(events, name):
    return [e for e in events if e["kind"] == "hvc" and e["name"] == name]


def test_the_call_numbers_are_the_real_ones():
    names = HypercallTable.names()
    assert (names["addrspace_map"], names["addrspace_unmap"], names["memextent_donate"]) == (
        0x2B, 0x2C, 0x61)
    assert int(VcpuRunState.ADDRSPACE_VMMIO_READ) == 4
    assert int(VcpuRunState.ADDRSPACE_VMMIO_WRITE) == 5
    assert int(VcpuRunState.ADDRSPACE_PAGE_FAULT) == 7
    assert (int(VcpuRunResume.EMULATE), int(VcpuRunResume.RETRY), int(VcpuRunResume.FAULT)) == (
        0, 1, 2)
    assert int(MemextentDonateType.TO_SIBLING) == 2
    assert int(MemextentDonateType.TO_PROTECTED) == 3
    assert (int(AddrspaceMapFlags.PARTIAL), int(AddrspaceMapFlags.PRIVATE),
            int(AddrspaceMapFlags.VMMIO), int(AddrspaceMapFlags.NOSYNC)) == (1, 2, 4, 1 << 31)


def test_access_given_per_transfer_and_writability():
    assert ACCESS == {("lend", True): PgtableAccess.RWX, ("lend", False): PgtableAccess.RX,
                      ("share", True): PgtableAccess.RW, ("share", False): PgtableAccess.R}


def test_a_first_write_returns_page_fault_with_ipa_and_write_flag_then_retry_succeeds():
    sim = machine()
    events = sim.run(until_ns=5 * MS)
    window = sim.hyp.demand[sim.hyp.vms["Guest"].vmid]
    runs = calls(events, "vcpu_run")
    faults = [e["ret"] for e in runs if e["ret"].get("state") == "ADDRSPACE_PAGE_FAULT"]
    assert [(f["state_value"], f["data0"], f["data1"], f["data2"]) for f in faults] == [
        (7, window.base, 1, 0), (7, window.base + PAGE_SIZE, 1, 0)]
    # The call after a fault carries resume action RETRY in resume1; the first does not.
    assert "resume1" not in runs[0]["args"]
    after = [runs[i + 1]["args"].get("resume1") for i, e in enumerate(runs[:-1])
             if e["ret"].get("state") == "ADDRSPACE_PAGE_FAULT"]
    assert after == [int(VcpuRunResume.RETRY)] * 2
    # No abort: the fault is not a mem.fault; the write is retried and lands.
    assert not [e for e in events if e["kind"] == "mem.fault"]
    writes = [(e["addr"], e["ok"], e["value"]) for e in events
              if e["kind"] == "mem.access" and e["access"] == "W"]
    assert writes == [(window.base, True, TOUCH_LABEL_BASE),
                      (window.base + PAGE_SIZE, True, TOUCH_LABEL_BASE + 1)]
    reads = [(e["ok"], e["value"]) for e in events
             if e["kind"] == "mem.access" and e["access"] == "R"]
    assert reads == [(True, TOUCH_LABEL_BASE), (True, TOUCH_LABEL_BASE + 1)]
    sim.hyp.memory.check_invariants()


def test_the_owner_donates_to_protected_and_maps_partial_private_rwx_for_lend():
    sim = machine()
    events = sim.run(until_ns=5 * MS)
    hlos, guest = sim.hyp.vms["HLOS"], sim.hyp.vms["Guest"]
    entry = hlos.resources["demand:Guest"]
    donate = calls(events, "memextent_donate")[0]
    assert donate["result"] == "OK"
    assert donate["args"]["options"] == int(MemextentDonateType.TO_PROTECTED)
    assert donate["args"]["capid"] == entry["caps"]["host-private"]
    assert donate["args"]["to"] == entry["caps"]["guest-private"]
    pa = donate["args"]["offset"]
    mapped = calls(events, "addrspace_map")[0]
    assert mapped["result"] == "OK"
    assert mapped["args"]["map_flags"] == int(AddrspaceMapFlags.PARTIAL
                                              | AddrspaceMapFlags.PRIVATE)
    assert mapped["args"]["map_attrs"] == (int(PgtableAccess.RWX)
                                           | MAP_ATTR_MEMTYPE_NORMAL_WB << MAP_ATTR_MEMTYPE_SHIFT)
    assert mapped["args"]["offset"] == pa
    # The page is the guest's now and has left HLOS's stage-2.
    memory = sim.hyp.memory
    assert memory.owner_of(pa) == guest.vmid
    assert not memory.mapped(hlos.vmid, pa)
    assert memory.read(guest.vmid, mapped["args"]["base"]) == TOUCH_LABEL_BASE
    arrived = [e for e in events if e["kind"] == "mem.map"]
    assert (arrived[0]["vm"], arrived[0]["state"], arrived[0]["rights"]) == (
        "Guest", "donated-in", "RWX")


@pytest.mark.parametrize(("writable", "rights"), [(True, "RW"), (False, "R")])
def test_share_donates_to_sibling_maps_vmmio_and_the_host_keeps_its_page(writable, rights):
    sim = machine("share", writable)
    events = sim.run(until_ns=5 * MS)
    hlos = sim.hyp.vms["HLOS"]
    donate = calls(events, "memextent_donate")[0]
    assert donate["args"]["options"] == int(MemextentDonateType.TO_SIBLING)
    mapped = calls(events, "addrspace_map")[0]
    assert mapped["args"]["map_flags"] == int(AddrspaceMapFlags.PARTIAL
                                              | AddrspaceMapFlags.VMMIO)
    assert [e["rights"] for e in events if e["kind"] == "mem.map"][0] == rights
    pa = donate["args"]["offset"]
    assert sim.hyp.memory.owner_of(pa) == hlos.vmid
    assert sim.hyp.memory.access(hlos.vmid, pa, "W")
    sim.hyp.memory.check_invariants()


def test_a_read_only_page_faults_a_write_as_an_abort_not_again_as_a_page_fault():
    sim = machine("lend", writable=False, pages=1)
    events = sim.run(until_ns=5 * MS)
    faults = [e["ret"] for e in calls(events, "vcpu_run")
              if e["ret"].get("state") == "ADDRSPACE_PAGE_FAULT"]
    assert len(faults) == 1  # mapped RX: the retried write is a permission fault
    aborts = [e for e in events if e["kind"] == "mem.fault"]
    assert [(e["reason"], e["rights"]) for e in aborts] == [("permission", "RX")]


def test_the_owner_with_no_page_left_resumes_with_fault_and_the_guest_gets_an_abort():
    sim = machine(pages=2)
    del sim.hyp.vms["HLOS"].guest.pool[1:]  # one page left to give
    events = sim.run(until_ns=5 * MS)
    runs = calls(events, "vcpu_run")
    assert [e["args"].get("resume1") for e in runs[1:3]] == [int(VcpuRunResume.RETRY),
                                                             int(VcpuRunResume.FAULT)]
    writes = [(e["ok"], e["value"]) for e in events
              if e["kind"] == "mem.access" and e["access"] == "W"]
    assert writes == [(True, TOUCH_LABEL_BASE), (False, TOUCH_LABEL_BASE + 1)]


def vmm_caps(sim):
    return sim.hyp.vms["HLOS"].resources["demand:Guest"]["caps"]


def host_call(sim, name, **args):
    """Make a call as HLOS's vCPU directly (the table, not the console)."""
    return sim.hyp.hypercalls.call(sim.hyp.vms["HLOS"].vcpus[0], name, args)


def test_memextent_donate_refusals():
    sim = machine()
    caps = vmm_caps(sim)
    pool = sim.hyp.vms["HLOS"].resources["demand:Guest"]["pool"]
    base = dict(capid=caps["host-private"], to=caps["guest-private"], offset=pool[0],
                size=PAGE_SIZE)
    assert host_call(sim, "memextent_donate", options=1 << 8, **base).error is (
        Error.ARGUMENT_INVALID)  # reserved options bits
    assert host_call(sim, "memextent_donate", options=int(MemextentDonateType.TO_SIBLING),
                     **base).error is Error.ARGUMENT_INVALID  # private extents, type 2
    wrong = {**base, "to": caps["addrspace"]}
    assert host_call(sim, "memextent_donate", options=3, **wrong).error is (
        Error.CSPACE_WRONG_OBJECT_TYPE)
    rm_page = {**base, "offset": 0xF000_0000}  # the RM's page: not HLOS's to give
    assert host_call(sim, "memextent_donate", options=3, **rm_page).error is (
        Error.MEMDB_NOT_OWNER)
    assert host_call(sim, "memextent_donate", options=3, **base).error is Error.OK
    assert host_call(sim, "memextent_donate", options=3, **base).error is (
        Error.MEMDB_NOT_OWNER)  # already given


def test_addrspace_map_and_unmap_checks():
    sim = machine()
    caps = vmm_caps(sim)
    entry = sim.hyp.vms["HLOS"].resources["demand:Guest"]
    pa, ipa = entry["pool"][0], entry["base"]
    args = dict(capid=caps["addrspace"], memextent=caps["guest-private"], base=ipa,
                map_attrs=int(PgtableAccess.RW), offset=pa, size=PAGE_SIZE)
    partial = int(AddrspaceMapFlags.PARTIAL)
    assert host_call(sim, "addrspace_map", map_flags=1 << 5, **args).error is (
        Error.ARGUMENT_INVALID)  # reserved flag bits
    assert host_call(sim, "addrspace_map", map_flags=partial,
                     **{**args, "map_attrs": 1 << 30}).error is Error.ARGUMENT_INVALID
    assert host_call(sim, "addrspace_map", map_flags=partial, **args).error is (
        Error.MEMDB_NOT_OWNER)  # not donated yet
    host_call(sim, "memextent_donate", options=3, capid=caps["host-private"],
              to=caps["guest-private"], offset=pa, size=PAGE_SIZE)
    host_side = {**args, "memextent": caps["host-private"]}
    assert host_call(sim, "addrspace_map", map_flags=partial, **host_side).error is (
        Error.ARGUMENT_INVALID)  # HLOS's extent into the guest's address space
    assert host_call(sim, "addrspace_map", map_flags=partial, **args).error is Error.OK
    guest = sim.hyp.vms["Guest"].vmid
    assert sim.hyp.memory.access(guest, ipa, "W")
    assert not sim.hyp.memory.access(guest, ipa, "X")  # user access bits 2:0 = RW
    unmap = {k: v for k, v in args.items() if k != "map_attrs"}
    assert host_call(sim, "addrspace_unmap", map_flags=partial, **unmap).error is Error.OK
    assert not sim.hyp.memory.mapped(guest, ipa)
    sim.hyp.memory.check_invariants()


def test_the_host_caps_carry_the_rights_the_calls_need_and_no_more():
    sim = machine()
    hlos = sim.hyp.vms["HLOS"]
    caps = vmm_caps(sim)
    space = hlos.cspace.cap(caps["addrspace"])
    assert space.obj.obj_type is ObjectType.ADDRSPACE
    assert space.rights == int(AddrspaceRights.MAP | AddrspaceRights.LOOKUP)
    extent = hlos.cspace.cap(caps["guest-private"])
    assert extent.rights == int(MemextentRights.MAP | MemextentRights.DONATE
                                | MemextentRights.LOOKUP)


def test_resume_actions_apply_only_to_a_page_fault_and_must_be_known():
    first = next(e["t"] for e in machine().run(until_ns=MS) if e["kind"] == "vcpu.run"
                 and e["state"] == "ADDRSPACE_PAGE_FAULT")
    sim = machine()
    sim.run(until_ns=first + 1)  # stopped at the first fault, HLOS about to provide
    guest = sim.hyp.vms["Guest"].vcpus[0]
    assert PAGE_FAULT_BLOCK in guest.blocked
    target = sim.hyp.vms["HLOS"].resources["proxy:Guest.0"]["capid"]
    refused = host_call(sim, "vcpu_run", capid=target, resume1=7)
    assert refused.error is Error.ARGUMENT_INVALID
    assert PAGE_FAULT_BLOCK in guest.blocked and guest.page_fault is not None


def test_a_non_proxy_vm_cannot_have_demand_paging():
    with pytest.raises(ScenarioError, match="proxy"):
        parse("""
name: bad
vms:
  - {name: Guest, program: page-toucher, demand_paging: {pages: 1}}
""")



def test_the_preset_shows_four_pages_arriving_and_hlos_losing_four():
    sim = Simulation(load("demand-paging"))
    events = sim.run(until_ns=5 * MS)
    arrived = [e for e in events if e["kind"] == "mem.map"]
    donated = [e for e in events if e["kind"] == "mem.extent_donate"]
    assert len(arrived) == len(donated) == 4
    assert all(e["vm"] == "Guest" and e["state"] == "donated-in" for e in arrived)
    assert all(e["owner"] == "HLOS" and not e["kept"] for e in donated)
    sim.hyp.memory.check_invariants()


def test_only_an_unmapped_page_of_the_window_of_a_proxy_vcpu_goes_to_the_owner():
    sim = machine(pages=2)
    hyp = sim.hyp
    guest, hlos = hyp.vms["Guest"].vcpus[0], hyp.vms["HLOS"].vcpus[0]
    window = hyp.demand[guest.vm.vmid]
    end = window.base + window.size
    assert [demand_paging.faults_to_owner(hyp, guest, a) for a in (
        window.base - PAGE_SIZE, window.base, end - 1, end)] == [False, True, True, False]
    assert not demand_paging.faults_to_owner(hyp, hlos, window.base)  # not its window
    guest.proxy_owner = None  # the same VM, not proxy-scheduled: an abort as before
    assert not demand_paging.faults_to_owner(hyp, guest, window.base)


def test_the_host_cap_table_names_the_guest_space_and_each_extent_by_its_owner():
    """The inspector's cap table names each object (kobject.ref): the guest's address
    space, the two guest extents by the guest and the two host extents by HLOS."""
    sim = machine()
    caps = vmm_caps(sim)
    objects = {row["capid"]: row["object"] for row in sim.hyp.vms["HLOS"].cspace.table({})}
    assert {name: objects[capid] for name, capid in caps.items()} == {
        "addrspace": "addrspace:Guest",
        "guest-private": "memextent:Guest:guest-private",
        "host-shared": "memextent:HLOS:host-shared",
        "host-private": "memextent:HLOS:host-private",
        "guest-shared": "memextent:Guest:guest-shared",
    }


def test_the_space_and_extents_get_their_own_object_ids():
    """Each new object takes the next id from the hypervisor's counter: five ints, none
    shared with another object of the machine (the VMs' VICs)."""
    sim = machine()
    hlos = sim.hyp.vms["HLOS"]
    oids = [hlos.cspace.cap(capid).obj.oid for capid in vmm_caps(sim).values()]
    assert all(isinstance(oid, int) for oid in oids)
    vics = {vm.vic.oid for vm in sim.hyp.vms.values()}
    assert len(set(oids)) == 5 and not set(oids) & vics


def test_setup_after_boot_defaults_to_writable_lent_memory_and_traces_the_host_caps():
    """Called on a booted machine, setup's defaults are lent, writable memory (RWX for the
    guest) and the caps copied to the host are traced (hypervisor._copied_caps)."""
    sim = machine()
    hyp = sim.hyp
    guest, hlos = hyp.vms["Guest"], hyp.vms["HLOS"]
    hyp.trace.take()
    entry = demand_paging.setup(hyp, guest, hlos, 0x9000_0000, 1)
    assert (entry["transfer"], entry["writable"]) == ("lend", True)
    assert ACCESS[(entry["transfer"], entry["writable"])] is PgtableAccess.RWX
    traced = [e for e in hyp.trace.take() if e["kind"] == "cap.create"]
    assert [e["vm"] for e in traced] == ["HLOS"]
    listed = {row["capid"] for row in traced[0]["caps"]}
    assert set(entry["caps"].values()) <= listed
