"""PSCI power control against the facts (§6.3, §7.2, §9.1) and the hypervisor source
(hyp/interfaces/psci/psci.tc, hyp/vm/psci/src/psci_common.c, hyp/vm/vcpu_run/src/vcpu_run.c)
and the RM's exit report (vm_mgnt.c vcpu_halt_callback)."""

from __future__ import annotations

import pytest

from gunyah_core import Simulation, load
from gunyah_core.consts import (
    PSCI_REQUEST_SYSTEM_RESET,
    PSCI_REQUEST_SYSTEM_RESET2_64,
    RIGHTS_BY_TYPE,
    VM_EXIT_FLAG_SMC64,
    PsciFunction,
    PsciRet,
)
from gunyah_core.rm.messages import RmMessageId, VmExitCode, VmExitType
from gunyah_core.rm.payloads import NotifyVmExited
from gunyah_core.rm.vm_mgnt import exit_of_run_check
from gunyah_core.scenario import parse
from gunyah_core.vm import psci
from gunyah_core.vm.vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_SUSPEND, BLOCK_VCPU_WFI
from gunyah_core.vm.vcpu_run import VcpuRunState, state_of_stopped

MS = 1_000_000
RPC_HEADER = 8  # rm_rpc header: api, type/fragments, seq u16, msg_id u32 (facts §5.1)


def scenario(vcpus: int = 2, end: str = "off", proxy: bool = False, program: str = "psci",
             psci_on: bool = True) -> Simulation:
    hlos = ("  - name: HLOS\n    affinity: [0]\n    program: vmm\n    params: {peer: G}\n"
            if proxy else "")
    text = (f"name: t\npcpus: 2\nvms:\n{hlos}  - name: G\n    vcpus: {vcpus}\n"
            f"    program: {program}\n    psci: {str(psci_on).lower()}\n"
            f"    proxy: {str(proxy).lower()}\n    affinity: [1, 0]\n"
            f"    params: {{work_ns: 100000, suspend_ns: 200000, end: \"{end}\"}}\n")
    return Simulation(parse(text))


def idle(vcpus: int = 2) -> Simulation:
    """A PSCI VM whose program does nothing: the test makes the calls itself."""
    return scenario(vcpus, program="idle")


def of_kind(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["kind"] == kind]


def exited_notice(events: list[dict]) -> NotifyVmExited:
    """The NOTIFY_VM_EXITED packet the RM sent HLOS, decoded from its bytes."""
    for e in of_kind(events, "msgq.send"):
        packet = bytes.fromhex(e["payload"]) if e["msgq"] == "RM_to_HLOS" else b""
        if int.from_bytes(packet[4:8], "little") == RmMessageId.NOTIFY_VM_EXITED:
            return NotifyVmExited.decode(packet[RPC_HEADER:])
    raise AssertionError("no NOTIFY_VM_EXITED")


# -- the numbers -------------------------------------------------------------------------
def test_function_ids_are_smccc_standard_service_calls():
    assert psci.function_id(PsciFunction.PSCI_VERSION) == 0x8400_0000
    assert psci.function_id(PsciFunction.CPU_SUSPEND, smc64=True) == 0xC400_0001
    assert psci.function_id(PsciFunction.CPU_OFF) == 0x8400_0002
    assert psci.function_id(PsciFunction.CPU_ON) == 0x8400_0003
    assert psci.function_id(PsciFunction.CPU_ON, smc64=True) == 0xC400_0003
    assert psci.function_id(PsciFunction.AFFINITY_INFO) == 0x8400_0004
    assert psci.function_id(PsciFunction.SYSTEM_OFF) == 0x8400_0008
    assert psci.function_id(PsciFunction.SYSTEM_RESET) == 0x8400_0009
    assert psci.function_id(PsciFunction.SYSTEM_RESET2, smc64=True) == 0xC400_0012


def test_return_codes_and_run_states_are_the_sources():
    assert [(r.name, r.value) for r in PsciRet][:7] == [
        ("SUCCESS", 0), ("NOT_SUPPORTED", -1), ("INVALID_PARAMETERS", -2), ("DENIED", -3),
        ("ALREADY_ON", -4), ("ON_PENDING", -5), ("INTERNAL_FAILURE", -6)]
    assert VcpuRunState.POWERED_OFF == 2 and VcpuRunState.PSCI_SYSTEM_RESET == 0x100
    assert (VmExitType.PLATFORM_OFF, VmExitType.PLATFORM_RESET,
            VmExitType.PSCI_SYSTEM_RESET2) == (1, 2, 3)
    assert PSCI_REQUEST_SYSTEM_RESET == 1 << 63 and PSCI_REQUEST_SYSTEM_RESET2_64 == 1 << 62


# -- power on -----------------------------------------------------------------------------
def test_secondaries_start_off_and_only_cpu_on_starts_them():
    sim = idle()
    g0, g1 = sim.hyp.vms["G"].vcpus
    sim.run(until_ns=MS // 10)
    assert BLOCK_VCPU_OFF not in g0.blocked and g1.blocked == {BLOCK_VCPU_OFF}
    assert [v["power"] for v in sim.snapshot()["vms"][-1]["vcpus"]] == ["on", "off"]
    result = sim.hyp.vms["G"].vpm.call(g0, "CPU_ON", {"target": 1, "entry": 0x8_0000,
                                                      "context": 7})
    assert result == (0, "SUCCESS")
    assert g1.entry == (0x8_0000, 7) and BLOCK_VCPU_OFF not in g1.blocked


def test_cpu_on_of_a_vcpu_already_on_is_already_on_never_on_pending():
    sim = idle()
    g0, _ = sim.hyp.vms["G"].vcpus
    vpm = sim.hyp.vms["G"].vpm
    assert vpm.call(g0, "CPU_ON", {"target": 0}) == (int(PsciRet.ALREADY_ON), "ALREADY_ON")
    vpm.call(g0, "CPU_ON", {"target": 1})
    assert vpm.call(g0, "CPU_ON", {"target": 1}).x0 == PsciRet.ALREADY_ON == -4


def test_cpu_on_to_a_bad_target():
    sim = idle(vcpus=1)
    g0 = sim.hyp.vms["G"].vcpus[0]
    vpm = sim.hyp.vms["G"].vpm
    # Not an MPIDR of the platform (Aff1 set, or past its cores): INVALID_PARAMETERS.
    assert vpm.call(g0, "CPU_ON", {"target": 0x100}).name == "INVALID_PARAMETERS"
    assert vpm.call(g0, "CPU_ON", {"target": 7}).x0 == -2
    assert vpm.call(g0, "CPU_ON", {"target": 1 << 40}).name == "INVALID_PARAMETERS"
    # A core of the platform, but the VM has no vCPU there: INTERNAL_FAILURE.
    assert vpm.call(g0, "CPU_ON", {"target": 1}) == (-6, "INTERNAL_FAILURE")


def test_cpu_on_of_an_exited_vcpu_is_internal_failure():
    sim = idle()
    g0, g1 = sim.hyp.vms["G"].vcpus
    g1.exited = True
    assert sim.hyp.vms["G"].vpm.call(g0, "CPU_ON", {"target": 1}).name == "INTERNAL_FAILURE"
    assert BLOCK_VCPU_OFF in g1.blocked


# -- off, suspend -------------------------------------------------------------------------
def test_cpu_off_of_the_last_vcpu_on_is_denied_and_of_another_blocks_vcpu_off():
    sim = idle()
    g0, g1 = sim.hyp.vms["G"].vcpus
    vpm = sim.hyp.vms["G"].vpm
    assert vpm.call(g0, "CPU_OFF", {}) == (-3, "DENIED")
    vpm.call(g0, "CPU_ON", {"target": 1})
    assert vpm.call(g1, "CPU_OFF", {}) is None  # it does not return
    assert g1.blocked == {BLOCK_VCPU_OFF} and g1.power == "off"
    assert vpm.call(g0, "AFFINITY_INFO", {"target": 1}) == (1, "OFF")
    assert vpm.call(g0, "AFFINITY_INFO", {"target": 0}) == (0, "ON")
    assert vpm.call(g0, "AFFINITY_INFO", {"target": 0, "level": 1}).name == "INVALID_PARAMETERS"


def test_cpu_suspend_blocks_vcpu_suspend_until_the_timer_or_a_virq():
    sim = scenario()
    events = sim.run(until_ns=3 * MS)
    suspend = next(e for e in of_kind(events, "vcpu.state") if e["state"] == "suspended")
    assert suspend["vcpu"] == "G.1" and suspend["reason"] == BLOCK_VCPU_SUSPEND
    woke = [e for e in of_kind(events, "vcpu.power") if e["vcpu"] == "G.1"]
    assert [(e["power"], e["reason"]) for e in woke][:3] == [
        ("on", "CPU_ON from G.0"), ("suspended", "CPU_SUSPEND"), ("on", "wake:timer")]
    assert woke[2]["t"] - woke[1]["t"] == 200_000  # suspend_ns


def test_a_virq_wakes_a_suspended_vcpu():
    sim = idle(vcpus=1)
    g0 = sim.hyp.vms["G"].vcpus[0]
    sim.run(until_ns=MS // 10)
    sim.hyp.vms["G"].vpm.call(g0, "CPU_SUSPEND", {"power_state": 0})
    assert BLOCK_VCPU_SUSPEND in g0.blocked
    g0.virq_pending()
    assert BLOCK_VCPU_SUSPEND not in g0.blocked and g0.power == "on"


def test_a_vm_without_psci_gets_not_supported():
    sim = scenario(program="idle", psci_on=False)
    g0 = sim.hyp.vms["G"].vcpus[0]
    assert psci.call(sim.hyp, g0, "CPU_ON", {"target": 1}) == (-1, "NOT_SUPPORTED")
    assert [v.blocked for v in sim.hyp.vms["G"].vcpus] == [set(), set()]  # both started
    assert "power" not in sim.snapshot()["vms"][-1]["vcpus"][0]


# -- the VM ends: the RM hears of it --------------------------------------------------------
@pytest.mark.parametrize(("end", "exit_type", "words"), [
    ("off", VmExitType.PLATFORM_OFF, 1),
    ("reset", VmExitType.PLATFORM_RESET, 1),
    ("reset2", VmExitType.PSCI_SYSTEM_RESET2, 4),
])
def test_system_off_and_reset_reach_the_owner_as_their_exit_type(end, exit_type, words):
    sim = scenario(end=end)
    events = sim.run(until_ns=5 * MS)
    halt = [e for e in of_kind(events, "virq.assert") if e["source"].endswith(":halt")]
    assert [(e["vm"], e["source"]) for e in halt] == [("RM", "vcpu:G.0:halt")]
    check = next(e for e in of_kind(events, "hvc") if e["name"] == "vcpu_run_check")
    assert check["vm"] == "RM" and check["call"] == 0x6068 and check["result"] == "OK"
    states = [e["state"] for e in of_kind(events, "vm.state") if e["vm"] == "G"]
    assert states[-1] == "EXITED"
    notice = exited_notice(events)
    assert notice.exit_type == exit_type and len(notice.reason) == words
    assert notice.exit_code == VmExitCode.NORMAL
    assert all(v.blocked == {BLOCK_VCPU_OFF} for v in sim.hyp.vms["G"].vcpus)
    assert sim.hyp.vms["G"].vcpus[1].exited and not sim.hyp.vms["G"].vcpus[0].exited


def test_run_check_of_a_halted_vcpu_reports_the_psci_request():
    sim = scenario(end="reset")
    events = sim.run(until_ns=5 * MS)
    check = next(e for e in of_kind(events, "hvc") if e["name"] == "vcpu_run_check")
    assert check["ret"]["state"] == "PSCI_SYSTEM_RESET"
    assert check["ret"]["state_value"] == 0x100
    assert check["ret"]["data0"] == PSCI_REQUEST_SYSTEM_RESET and check["ret"]["data1"] == 0


def test_exit_of_run_check_follows_vcpu_halt_callback():
    assert exit_of_run_check({"state": "POWERED_OFF", "data0": 0}) == (
        VmExitType.PLATFORM_OFF, 0, VmExitCode.NORMAL, ())
    assert exit_of_run_check({"state": "PSCI_SYSTEM_RESET", "data0": 1 << 63})[0] == (
        VmExitType.PLATFORM_RESET)
    cookie = 0x1234_5678_9ABC_DEF0
    assert exit_of_run_check({"state": "PSCI_SYSTEM_RESET",
                              "data0": PSCI_REQUEST_SYSTEM_RESET2_64 | 5, "data1": cookie}) == (
        VmExitType.PSCI_SYSTEM_RESET2, VM_EXIT_FLAG_SMC64, VmExitCode.NORMAL,
        (5, 0x9ABC_DEF0, 0x1234_5678))
    # An SMC32 SYSTEM_RESET2 keeps only the cookie's low word, and no SMC64 flag.
    assert exit_of_run_check({"state": "PSCI_SYSTEM_RESET", "data0": 5, "data1": cookie}) == (
        VmExitType.PSCI_SYSTEM_RESET2, 0, VmExitCode.NORMAL, (5, 0x9ABC_DEF0, 0))
    assert exit_of_run_check({"state": "FAULT"})[:3] == (
        VmExitType.SOFTWARE_ERROR, 0, VmExitCode.NORMAL)
    assert exit_of_run_check({"state": "READY"})[:3] == (
        VmExitType.SOFTWARE_ERROR, 0, VmExitCode.UNKNOWN_ERROR)


def test_system_reset2_smc64_sets_bit_62_and_keeps_the_whole_cookie():
    sim = idle(vcpus=1)
    g0 = sim.hyp.vms["G"].vcpus[0]
    sim.run(until_ns=MS // 10)
    sim.hyp.vms["G"].vpm.call(g0, "SYSTEM_RESET2", {"reset_type": 0x8000_0001,
                                                    "cookie": 1 << 40, "smc64": True})
    assert g0.system_reset == (PSCI_REQUEST_SYSTEM_RESET2_64 | 0x8000_0001, 1 << 40)
    ret = state_of_stopped(g0, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret
    assert (ret["state"], ret["data0"], ret["data1"]) == (
        "PSCI_SYSTEM_RESET", (1 << 62) | 0x8000_0001, 1 << 40)


def test_run_check_of_an_exited_vcpu_is_powered_off_with_the_exited_flag():
    sim = idle()
    g1 = sim.hyp.vms["G"].vcpus[1]
    assert state_of_stopped(g1, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret["data0"] == 0
    g1.exited = True
    ret = state_of_stopped(g1, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret
    assert (ret["state"], ret["data0"]) == ("POWERED_OFF", 1)


# -- a proxy-scheduled VM: vcpu_run tells its owner ------------------------------------------
@pytest.mark.parametrize(("end", "state", "data0"), [
    ("off", "POWERED_OFF", 0),
    ("reset", "PSCI_SYSTEM_RESET", PSCI_REQUEST_SYSTEM_RESET),
])
def test_vcpu_run_of_a_proxy_vm_returns_its_power_state(end, state, data0):
    sim = scenario(vcpus=1, end=end, proxy=True)
    events = sim.run(until_ns=5 * MS)
    runs = [e for e in of_kind(events, "hvc") if e["name"] == "vcpu_run"]
    last = runs[-1]["ret"]
    assert (last["state"], last["data0"], last["data1"]) == (state, data0, 0)
    assert last["state_value"] == VcpuRunState[state]
    assert exited_notice(events).exit_type == (
        VmExitType.PLATFORM_OFF if end == "off" else VmExitType.PLATFORM_RESET)


def test_vcpu_run_of_a_suspended_proxy_vcpu_expects_wakeup_with_the_suspend_state():
    sim = scenario(vcpus=1, proxy=True, program="idle")
    g0 = sim.hyp.vms["G"].vcpus[0]
    g0.suspend_state = 0x4000_0003
    g0.blocked.add(BLOCK_VCPU_SUSPEND)
    ret = state_of_stopped(g0, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret
    assert (ret["state"], ret["data0"], ret["data1"]) == ("EXPECTS_WAKEUP", 0x4000_0003, 2)


def test_preset_psci_power_has_power_state_in_the_snapshot_and_ends_platform_off():
    sim = Simulation(load("psci-power"))
    events = sim.run(until_ns=5 * MS)
    assert exited_notice(events).exit_type == VmExitType.PLATFORM_OFF
    calls = of_kind(events, "psci.call")
    assert calls[1]["fid"] == 0x8400_0003 and calls[1]["args"]["entry"] == 0x8_0000


def test_reset_unbinds_the_halt_virqs_from_the_rms_vic():
    sim = Simulation(load("psci-power"))
    rm = sim.hyp.vms["RM"]
    events = sim.run(until_ns=5 * MS)
    bound = [e for e in of_kind(events, "virq.bind") if e["source"].endswith(":halt")]
    unbound = [e for e in of_kind(events, "virq.unbind") if e["source"].endswith(":halt")]
    assert [(e["vm"], e["virq"]) for e in bound] == [(e["vm"], e["virq"]) for e in unbound]
    assert len(bound) == 2 and all(e["vm"] == "RM" for e in bound)
    assert not any(s.ref.endswith(":halt") for s in rm.vic.sources.values())
    assert rm.guest.halts == {} and not any(k.startswith("halt:") for k in rm.resources)
    caps = [c["object"] for c in rm.cspace.table(RIGHTS_BY_TYPE)]
    assert [c for c in caps if c.startswith("thread:")] == ["thread:RM.0"]  # run-check caps gone


def test_vcpu_run_check_of_a_runnable_vcpu_is_busy_and_needs_bind_virq_and_state():
    sim = idle()
    rm = sim.hyp.vms["RM"]
    g0 = sim.hyp.vms["G"].vcpus[0]
    capid = rm.resources["halt:G.0"]["capid"]
    result = sim.hyp.hypercalls.call(rm.vcpus[0], "vcpu_run_check", {"capid": capid})
    assert result.error.name == "BUSY"  # G.0 is on and runnable
    g1_capid = rm.resources["halt:G.1"]["capid"]
    off = sim.hyp.hypercalls.call(rm.vcpus[0], "vcpu_run_check", {"capid": g1_capid})
    assert (off.error.name, off.ret["state"], off.ret["data0"]) == ("OK", "POWERED_OFF", 0)
    # HLOS's cap to G.0 (AFFINITY | YIELD_TO, for vcpu_run) is not enough.
    hlos = sim.hyp.vms["HLOS"]
    owner = sim.hyp.hypercalls.call(hlos.vcpus[0], "vcpu_run_check",
                                    {"capid": g0.owner_capid})
    assert owner.error.name == "CSPACE_INSUFFICIENT_RIGHTS"


def test_scenario_fields_for_psci_are_validated_by_name():
    from gunyah_core.scenario import ScenarioError
    bad = ("name: t\nvms:\n  - name: G\n    program: psci\n    psci: yes please\n"
           "    params: {end: halt, suspend_ns: 0}\n")
    with pytest.raises(ScenarioError) as err:
        parse(bad)
    text = str(err.value) + " ".join(str(p) for p in getattr(err.value, "problems", []))
    assert "vms[0].psci" in text and "vms[0].params.end" in text
    assert "vms[0].params.suspend_ns" in text


# -- suspend in detail --------------------------------------------------------------------
def on_and_running(sim: Simulation):
    """G.0 and G.1 both on (G.1 by CPU_ON), the run advanced a little."""
    g0, g1 = sim.hyp.vms["G"].vcpus
    sim.hyp.vms["G"].vpm.call(g0, "CPU_ON", {"target": 1, "entry": 0x8_0000, "context": 1})
    sim.run(until_ns=MS // 10)
    return g0, g1


def test_cpu_suspend_keeps_the_requested_state_for_the_run_check():
    sim = idle()
    _, g1 = on_and_running(sim)
    sim.hyp.vms["G"].vpm.call(g1, "CPU_SUSPEND", {"power_state": 0x0000_0002})
    assert g1.suspend_state == 2 and g1.entry == (0x8_0000, 1)  # standby: entry not taken
    ret = state_of_stopped(g1, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI).ret
    assert (ret["state"], ret["data0"], ret["data1"]) == ("EXPECTS_WAKEUP", 2, 2)


def test_cpu_suspend_with_a_virq_pending_returns_at_once():
    sim = idle()
    _, g1 = on_and_running(sim)
    vic = sim.hyp.vms["G"].vic
    vic.pending.add(1000)
    vic.route[1000] = 1  # pending for vCPU 1
    assert vic.has_pending(1)
    result = sim.hyp.vms["G"].vpm.call(g1, "CPU_SUSPEND", {"power_state": 0})
    assert result == (0, "SUCCESS") and BLOCK_VCPU_SUSPEND not in g1.blocked
    assert g1.power == "on"


def test_a_powerdown_suspend_restarts_the_vcpu_at_its_entry_point():
    import inspect
    sim = idle()
    _, g1 = on_and_running(sim)
    powerdown = 1 << 30  # psci_suspend_powerstate StateType
    sim.hyp.vms["G"].vpm.call(g1, "CPU_SUSPEND", {"power_state": powerdown | 3,
                                                  "entry": 0x9_0000, "context": 5})
    assert g1.entry == (0x9_0000, 5)
    before = g1.stack[0][0]
    g1.result = "stale"
    g1.virq_pending()
    assert len(g1.stack) == 1 and g1.result is None and g1.stack[0][0] is not before
    assert inspect.getgeneratorstate(g1.stack[0][0]) == inspect.GEN_CREATED
    sim.run(until_ns=sim.hyp.engine.now + MS // 10)  # it runs its program again: idle, WFI
    assert g1.blocked == {BLOCK_VCPU_WFI}


def test_a_stale_suspend_timer_does_not_wake_a_later_suspend():
    sim = idle()
    _, g1 = on_and_running(sim)
    vpm = sim.hyp.vms["G"].vpm
    start = sim.hyp.engine.now
    vpm.call(g1, "CPU_SUSPEND", {"power_state": 0, "wake_ns": 100_000})
    g1.virq_pending()  # a vIRQ wakes it first
    assert g1.power == "on"
    vpm.call(g1, "CPU_SUSPEND", {"power_state": 0})  # no timer this time
    sim.run(until_ns=start + 300_000)
    assert BLOCK_VCPU_SUSPEND in g1.blocked and g1.power == "suspended"
    g1.virq_pending()
    again = sim.hyp.engine.now
    vpm.call(g1, "CPU_SUSPEND", {"power_state": 0, "wake_ns": 200_000})
    g1.virq_pending()
    vpm.call(g1, "CPU_SUSPEND", {"power_state": 0, "wake_ns": 500_000})
    sim.run(until_ns=again + 400_000)  # the 200 µs timer is stale: still asleep
    assert g1.power == "suspended"
    events = sim.run(until_ns=again + 600_000)
    woke = [e for e in of_kind(events, "vcpu.power") if e["vcpu"] == "G.1"]
    assert [(e["t"] - again, e["reason"]) for e in woke] == [(500_000, "wake:timer")]


def test_a_suspended_vcpu_stopped_by_system_off_stays_off_when_its_timer_fires():
    sim = idle()
    g0, g1 = on_and_running(sim)
    vpm = sim.hyp.vms["G"].vpm
    vpm.call(g1, "CPU_SUSPEND", {"power_state": 0, "wake_ns": 100_000})
    vpm.call(g0, "SYSTEM_OFF", {})
    sim.run(until_ns=sim.hyp.engine.now + 200_000)
    assert g1.power == "off" and g1.blocked == {BLOCK_VCPU_OFF} and g1.exited


def test_unset_registers_read_as_zero():
    sim = idle()
    g0, g1 = on_and_running(sim)
    vpm = sim.hyp.vms["G"].vpm
    assert vpm.call(g0, "AFFINITY_INFO", {}) == (0, "ON")  # MPIDR 0: G.0 itself
    vpm.call(g1, "CPU_OFF", {})
    assert vpm.call(g0, "CPU_ON", {"target": 1}) == (0, "SUCCESS")
    assert g1.entry == (0, 0)
    vpm.call(g0, "SYSTEM_RESET2", {})
    assert g0.system_reset == (0, 0)


def test_system_off_powers_every_vcpu_off_with_the_call_as_reason():
    for function in ("SYSTEM_OFF", "SYSTEM_RESET", "SYSTEM_RESET2"):
        sim = idle()
        g0, g1 = on_and_running(sim)
        sim.trace.take()
        sim.hyp.vms["G"].vpm.call(g0, function, {})
        power = [(e["vcpu"], e["power"], e["reason"])
                 for e in sim.trace.take() if e["kind"] == "vcpu.power"]
        assert power == [("G.1", "off", function), ("G.0", "off", function)]


def test_system_reset2_smc32_keeps_the_cookie_low_word_only():
    sim = idle(vcpus=1)
    g0 = sim.hyp.vms["G"].vcpus[0]
    sim.hyp.vms["G"].vpm.call(g0, "SYSTEM_RESET2", {"reset_type": (1 << 40) | 0x8000_0002,
                                                    "cookie": (1 << 40) | 5})
    assert g0.system_reset == (0x8000_0002, 5)


def test_psci_version_is_1_1():
    sim = idle(vcpus=1)
    g0 = sim.hyp.vms["G"].vcpus[0]
    assert sim.hyp.vms["G"].vpm.call(g0, "PSCI_VERSION", {}) == (0x10001, "1.1")
    assert sim.hyp.vms["G"].vpm.call(g0, "MIGRATE", {}) == (-1, "NOT_SUPPORTED")


def test_a_virq_pending_for_another_vcpu_does_not_stop_a_suspend():
    sim = idle()
    _, g1 = on_and_running(sim)
    vic = sim.hyp.vms["G"].vic
    vic.pending.add(1000)
    vic.route[1000] = 0  # for vCPU 0
    sim.hyp.vms["G"].vpm.call(g1, "CPU_SUSPEND", {"power_state": 0})
    assert BLOCK_VCPU_SUSPEND in g1.blocked


def test_a_call_without_psci_is_traced_with_its_function_id():
    sim = scenario(program="idle", psci_on=False)
    g0 = sim.hyp.vms["G"].vcpus[0]
    sim.trace.take()
    psci.call(sim.hyp, g0, "CPU_ON", {"target": 1, "smc64": True})
    psci.call(sim.hyp, g0, "NO_SUCH_CALL", {})
    calls = [(e["function"], e["fid"], e["ret"], e["x0"]) for e in sim.trace.take()]
    assert calls == [("CPU_ON", 0xC400_0003, "NOT_SUPPORTED", -1),
                     ("NO_SUCH_CALL", None, "NOT_SUPPORTED", -1)]


def test_disable_forgets_every_halt_line():
    sim = idle()
    vm, rm = sim.hyp.vms["G"], sim.hyp.vms["RM"]
    psci.disable(sim.hyp, vm, rm.guest)
    assert [v.halt for v in vm.vcpus] == [None, None]
    assert not any(s.ref.endswith(":halt") for s in rm.vic.sources.values())
    psci.disable(sim.hyp, vm, rm.guest)  # twice is harmless


def test_psci_calls_are_traced_with_their_function_id_and_x0():
    sim = idle()
    g0, g1 = sim.hyp.vms["G"].vcpus
    vpm = sim.hyp.vms["G"].vpm
    sim.trace.take()
    vpm.call(g0, "CPU_ON", {"target": 1, "smc64": True})
    vpm.call(g0, "PSCI_FEATURES", {})  # a PSCI function the model does not answer
    vpm.call(g0, "AFFINITY_INFO", {"target": 1})
    vpm.call(g1, "CPU_OFF", {})
    events = sim.trace.take()
    calls = [(e["function"], e["fid"], e["ret"], e["x0"]) for e in of_kind(events, "psci.call")]
    assert calls == [("CPU_ON", 0xC400_0003, "SUCCESS", 0),
                     ("PSCI_FEATURES", 0x8400_000A, "NOT_SUPPORTED", -1),
                     ("AFFINITY_INFO", 0x8400_0004, "ON", 0),
                     ("CPU_OFF", 0x8400_0002, None, None)]
    power = [(e["vcpu"], e["power"], e["reason"]) for e in of_kind(events, "vcpu.power")]
    assert power == [("G.1", "on", "CPU_ON from G.0"), ("G.1", "off", "CPU_OFF")]


def test_cpu_on_of_the_first_mpidr_past_the_platforms_cores_is_invalid():
    sim = idle(vcpus=1)  # a 2-pCPU machine: MPIDRs 0 and 1 are cores
    g0 = sim.hyp.vms["G"].vcpus[0]
    assert sim.hyp.vms["G"].vpm.call(g0, "CPU_ON", {"target": 2}).name == "INVALID_PARAMETERS"


def test_each_halt_line_is_an_edge_vIRQ_in_the_rms_vic_with_its_resource():
    sim = idle()
    rm = sim.hyp.vms["RM"]
    binds = [e for e in sim.trace.take() if e["kind"] == "virq.bind"
             and e["source"].endswith(":halt")]
    assert [(e["vm"], e["source"], e["trigger"]) for e in binds] == [
        ("RM", "vcpu:G.0:halt", "edge"), ("RM", "vcpu:G.1:halt", "edge")]
    entry = rm.resources["halt:G.1"]
    assert entry == {"type": "VCPU_HALT", "capid": entry["capid"], "virq": binds[1]["virq"],
                     "vcpu": "G.1", "partner": "G"}
    assert rm.vic.trigger[entry["virq"]] == "edge"
