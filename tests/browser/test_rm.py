"""The Resource Manager on the page, in real Chromium against a real server: VMs the RM
creates appear with their RM state badge, lifecycle buttons send real RPCs, RM packets
decode like a protocol analyser, and memory lent through the RM shows on both VMs."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import Page, expect

from gunyah_core import load
from gunyah_core.simulation import Simulation
from tests.browser.conftest import step_to

BOOT_STATES = ["LOAD", "INIT", "READY", "RUNNING"]
MAX_STATE_STEPS = 12
MAX_STEPS_TO_EXIT = 30
LENT_BASE = 0x40000000  # mem-lend: VM_A's first page
PAGE = 4096
VM_ALLOCATE_ID = "0x56000001"
NOTIFY_VM_EXITED_ID = "0x56100001"


def open_scenario(page: Page, name: str, vm: str) -> None:
    page.get_by_test_id("scenario").select_option(name)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(name).config["title"])
    page.wait_for_selector(f"[data-vm='{vm}']")
    # The load revealed the scenario's boot: steps go on from its last event.
    page.wait_for_function("() => window.__gunyah.bootSeq > 0"
                           " && window.__gunyah.headSeq === window.__gunyah.bootSeq")



def badge(page: Page, vm: str) -> str:
    return (page.get_by_test_id(f"vm-state-{vm}").text_content() or "").strip()


def boot_vm_80(page: Page) -> list[str]:
    """Step rm-boot from vm.state to vm.state until VM_80 runs; the badge texts seen."""
    seen: list[str] = []
    for _ in range(MAX_STATE_STEPS):
        step_to(page, "vm.state")
        if page.locator("[data-vm='VM_80']").count():
            text = badge(page, "VM_80")
            if not seen or seen[-1] != text:
                seen.append(text)
            if text == "RUNNING":
                break
    return seen


def log_row(page: Page, kind: str, text: str):
    return page.locator(f"[data-testid=log-entry][data-kind='{kind}']", has_text=text).first


def test_rm_names_come_from_the_model(live_server: str) -> None:
    with urllib.request.urlopen(live_server + "/api/rm-names") as res:
        names = json.load(res)
    assert names["messages"][str(0x56000001)] == "VM_ALLOCATE"
    assert names["messages"][str(0x56100001)] == "NOTIFY_VM_EXITED"
    assert names["errors"][str(0x14)] == "VM_STATE"
    assert names["errors"][str(0xFFFFFFFF)] == "UNIMPLEMENTED"
    assert names["exit_types"]["7"] == "VM_STOP_FORCED"
    assert names["vm_states"]["5"] == "LOAD"


def test_rm_boot_new_vm_appears_and_passes_its_states(page: Page, shot) -> None:
    open_scenario(page, "rm-boot", "HLOS")
    assert page.locator("[data-vm='VM_80']").count() == 0
    expect(page.get_by_test_id("vm-state-HLOS")).to_have_text("RUNNING")
    seen = boot_vm_80(page)
    assert seen == BOOT_STATES
    for q in ("VM_80_to_RM", "RM_to_VM_80", "VM_80_to_HLOS", "HLOS_to_VM_80"):
        expect(page.locator(f"[data-msgq='{q}']")).to_be_visible()
    expect(page.locator("[data-vm='VM_80'] [data-vcpu='VM_80.0']")).to_have_count(1)
    expect(page.get_by_test_id("rpc-caption")).to_contain_text("VM_START")
    # The borrower maps the image region HLOS lent it; HLOS shows it lent out.
    expect(page.locator("[data-testid=memstrip-VM_80] .ms-borrowed")).to_have_count(1)
    expect(page.locator("[data-testid=memstrip-HLOS] .ms-lent")).to_have_count(1)
    page.locator("[data-vm='VM_80']").click()
    expect(page.get_by_test_id("insp-vm-state")).to_have_text("RUNNING")
    expect(page.locator("[data-testid=insp-caps] tbody tr")).to_have_count(5)
    page.get_by_test_id("insp-dts").locator("summary").click()
    expect(page.get_by_test_id("insp-dts")).to_contain_text("qcom,vmid = <128>")
    shot(page, "rm-boot")


def test_forced_stop_tells_the_owner_and_decodes(page: Page, shot) -> None:
    open_scenario(page, "rm-boot", "HLOS")
    assert boot_vm_80(page)[-1] == "RUNNING"
    page.locator("[data-vm='VM_80']").click()
    expect(page.get_by_test_id("rm-stop-force")).to_contain_text("HLOS asks the RM: VM_STOP")
    page.get_by_test_id("rm-stop-force").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    for _ in range(MAX_STEPS_TO_EXIT):
        step_to(page, "vm.state")
        if badge(page, "VM_80") == "EXITED":
            break
    expect(page.get_by_test_id("vm-state-VM_80")).to_have_text("EXITED")
    # The packets leave the RM after the change: NOTIFY_VM_STATUS(EXITED) first, then
    # NOTIFY_VM_EXITED (RM vm_mgnt.c), so step to the second send on RM_to_HLOS.
    to_hlos = 0
    for _ in range(MAX_STEPS_TO_EXIT):
        at = step_to(page, "msgq.send")
        if "RM_to_HLOS" in page.locator(f"[data-testid=log-entry][data-seq='{at}']").text_content():
            to_hlos += 1
            if to_hlos == 2:
                break
    row = log_row(page, "rm.rpc", "NOTIFY_VM_EXITED")
    expect(row).to_contain_text("RM → HLOS")
    row.click()
    expect(page.get_by_test_id("pkt-api")).to_contain_text("0x21: version 1, 2 header words")
    expect(page.get_by_test_id("pkt-type")).to_have_text("3 NOTIFICATION")
    expect(page.get_by_test_id("pkt-msgid")).to_have_text(f"{NOTIFY_VM_EXITED_ID} NOTIFY_VM_EXITED")
    expect(page.get_by_test_id("pkt-payload")).to_contain_text("7 VM_STOP_FORCED")
    expect(page.get_by_test_id("pkt-payload")).to_contain_text("0x80")
    shot(page, "rm-exited-packet")


def test_packet_inspector_decodes_request_and_reply(page: Page, shot) -> None:
    open_scenario(page, "rm-boot", "HLOS")
    step_to(page, "vm.state")  # VM_80 in LOAD: the RM has allocated it, telling nobody...
    step_to(page, "msgq.send")  # ...and its reply is on the way back to HLOS
    # The reply waits in RM_to_HLOS, alone (no NOTIFY_VM_STATUS for LOAD): click it.
    page.locator("[data-msgq='RM_to_HLOS']").click()
    expect(page.locator("[data-testid=insp-items] tbody tr")).to_have_count(1)
    page.locator("[data-testid=insp-items] tbody tr").nth(0).click()
    expect(page.get_by_test_id("pkt-type")).to_have_text("2 REPLY")
    expect(page.get_by_test_id("pkt-payload")).to_contain_text("0x00000000 OK")
    expect(page.get_by_test_id("pkt-payload")).to_contain_text("new vmid")
    expect(page.get_by_test_id("pkt-hex").locator(".f-err")).to_have_count(4)
    # The request, from the log (clicking a row also moves the view back to it).
    log_row(page, "rm.rpc", "VM_ALLOCATE #0 request").click()
    expect(page.get_by_test_id("pkt-api")).to_contain_text("0x21")
    expect(page.get_by_test_id("pkt-type")).to_have_text("1 REQUEST")
    expect(page.get_by_test_id("pkt-seq")).to_have_text("0")  # Linux's first seq
    expect(page.get_by_test_id("pkt-msgid")).to_have_text(f"{VM_ALLOCATE_ID} VM_ALLOCATE")
    expect(page.get_by_test_id("pkt-payload")).to_contain_text("0 (RM picks one)")
    hexdump = page.get_by_test_id("pkt-hex")
    expect(hexdump.locator(".hx-b")).to_have_count(12)
    expect(hexdump.locator(".f-id")).to_have_count(4)
    assert hexdump.locator(".hx-b").first.inner_text() == "21"
    # The same packet from the queue's side: the msgq.send on HLOS_to_RM.
    log_row(page, "msgq.send", "HLOS → HLOS_to_RM").click()
    expect(page.get_by_test_id("pkt-msgid")).to_contain_text("VM_ALLOCATE")
    shot(page, "rm-packet")


def test_hyp_resources_reply_decodes_the_owners_caps(page: Page, shot) -> None:
    """VM_GET_HYP_RESOURCES answers for the caller: the decoded entries are HLOS's own
    capids (its cap to VM_80's vCPU first), with partner and vIRQ (facts §5.4)."""
    model = Simulation(load("rm-boot"))
    model.run(until_ns=2_000_000)
    guest, hlos = model.hyp.vm_by_id(0x80), model.hyp.vms["HLOS"]
    recv = hlos.resources["VM_80_to_HLOS:rx"]
    open_scenario(page, "rm-boot", "HLOS")
    reply = log_row(page, "rm.rpc", "VM_GET_HYP_RESOURCES #4 reply")
    for _ in range(MAX_STEPS_TO_EXIT * 2):
        step_to(page, "rm.rpc")
        if reply.count():
            break
    for _ in range(MAX_STEPS_TO_EXIT):  # until its packet has left the RM
        at = step_to(page, "msgq.send")
        if "RM_to_HLOS" in page.locator(f"[data-testid=log-entry][data-seq='{at}']").text_content():
            break
    reply.click()
    payload = page.get_by_test_id("pkt-payload")
    expect(payload).to_contain_text("entries")
    expect(payload).to_contain_text("4 VIRTUAL_CPU")
    expect(payload).to_contain_text(f"0x{guest.vcpus[0].owner_capid:x}")
    expect(payload).to_contain_text(f"0x{recv['capid']:x}")
    expect(payload).to_contain_text("[1] partner_vmid")
    expect(payload).to_contain_text(str(recv["virq"]))
    shot(page, "rm-hyp-resources")


def model_memory_after(scenario: str, last_seq: int) -> dict:
    """The model's own memory map once every event up to last_seq has happened."""
    sim = Simulation(load(scenario))
    while sim.trace.seq <= last_seq:
        sim.step()
    return sim.snapshot()["memory"]


def test_mem_lend_shows_lent_borrowed_and_faults(page: Page, shot) -> None:
    open_scenario(page, "mem-lend", "VM_A")
    step_to(page, "mem.lend")
    expect(page.locator("[data-testid=memstrip-VM_A] .ms-lent")).to_have_count(1)
    at = step_to(page, "mem.fault")  # VM_A reads the page it lent
    fault = page.get_by_test_id("mem-fault-VM_A")
    expect(fault).to_be_visible()
    expect(fault).to_contain_text(hex(LENT_BASE))
    expect(fault).to_have_attribute("data-addr", hex(LENT_BASE))
    assert page.evaluate("window.__gunyah.memory") == model_memory_after("mem-lend", at)
    at = step_to(page, "mem.fault")  # VM_B, after accepting, fetches from RW memory
    expect(page.get_by_test_id("mem-fault-VM_B")).to_contain_text("X at")
    expect(page.locator("[data-testid=memstrip-VM_B] .ms-borrowed")).to_have_count(1)
    memory = page.evaluate("window.__gunyah.memory")
    assert memory == model_memory_after("mem-lend", at)
    lent = [r for r in memory["VM_A"] if r["state"] == "lent"]
    borrowed = [r for r in memory["VM_B"] if r["state"] == "borrowed"]
    assert lent == [{"base": LENT_BASE, "size": PAGE, "pa": LENT_BASE, "rights": "NONE",
                     "state": "lent", "handle": 0}]
    assert borrowed[0]["base"] == LENT_BASE and borrowed[0]["rights"] == "RW"
    page.locator("[data-vm='VM_B']").click()
    borrowed_row = page.locator("[data-testid=insp-mem] tr[data-state=borrowed]")
    expect(borrowed_row).to_contain_text("from VM_A")
    shot(page, "rm-mem-lend")


def test_hlos_creates_then_destroys_a_vm(page: Page, shot) -> None:
    open_scenario(page, "rm-boot", "HLOS")
    assert boot_vm_80(page)[-1] == "RUNNING"
    page.locator("[data-vm='HLOS']").click()
    page.get_by_test_id("rm-image").select_option("echo")
    page.get_by_test_id("rm-create").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    shot(page, "rm-create")
    for _ in range(MAX_STATE_STEPS):
        step_to(page, "vm.state")
        if page.locator("[data-vm='VM_81']").count() and badge(page, "VM_81") == "RUNNING":
            break
    expect(page.get_by_test_id("vm-state-VM_81")).to_have_text("RUNNING")
    expect(page.locator("[data-msgq='VM_81_to_RM']")).to_have_count(1)
    page.locator("[data-vm='VM_81']").click()
    page.get_by_test_id("rm-destroy").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    seen = []
    for _ in range(MAX_STEPS_TO_EXIT):
        step_to(page, "vm.state")
        seen.append(badge(page, "VM_81"))
        if seen[-1] == "NONE":  # deallocated: its owner is told, then the VM object goes
            step_to(page, "obj.destroy")
            break
    expect(page.locator("[data-vm='VM_81']")).to_have_count(0)
    expect(page.locator("[data-msgq='VM_81_to_RM']")).to_have_count(0)
    assert seen == ["EXITED", "RESETTING", "RESET", "NONE"]
    expect(page.get_by_test_id("insp-title")).to_have_text("VM_81")
    expect(page.get_by_test_id("inspector")).to_contain_text("no longer exists")
    expect(page.locator("[data-vm='VM_80']")).to_have_count(1)
