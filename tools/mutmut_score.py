"""The mutation score per core module, from mutmut's results (``make mutate``).

mutmut (``[tool.mutmut]`` in pyproject.toml) keeps each module's verdicts in
``mutants/<path>.meta`` (JSON: mutant name -> the exit code of its test run). This reads
them and prints, per module, killed / mutants with the equivalent mutants listed below
(and in docs/testing.md, with the reason) left out. Mutants not run yet are counted apart.

Usage (from the repository root, after ``mutmut run``)::

    python tools/mutmut_score.py               # every module
    python tools/mutmut_score.py doorbell vic  # only these
    python tools/mutmut_score.py -v doorbell   # also name every survivor

``mutmut show NAME`` prints a survivor's diff.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"

# module -> its file; the same twelve as ``only_mutate`` in pyproject.toml
MODULES: dict[str, str] = {
    "msgq": "gunyah_core/ipc/msgq.py",
    "doorbell": "gunyah_core/ipc/doorbell.py",
    "cspace": "gunyah_core/core/cspace.py",
    "scheduler": "gunyah_core/core/scheduler.py",
    "vic": "gunyah_core/vm/vic.py",
    "rm/rpc": "gunyah_core/rm/rpc.py",
    "memparcel": "gunyah_core/mem/memparcel.py",
    "psci": "gunyah_core/vm/psci.py",
    "vtimer": "gunyah_core/vm/vtimer.py",
    "demand_paging": "gunyah_core/mem/demand_paging.py",
    "virtio_mmio": "gunyah_core/vm/virtio_mmio.py",
    "virtqueue": "gunyah_core/vm/virtqueue.py",
}

# mutmut's exit-code meanings (mutmut.stats.status_by_exit_code, 3.8): a test failed (1),
# pytest's internal error (3), the CPU-time cap (SIGXCPU: 24, -24, 152, 255; 36) or a kill
# (-9, e.g. the address-space cap) all mean the tests noticed the mutant.
KILLED = {1, 3, 24, -24, 152, 255, 36, -9, -11, 37}
SURVIVED = {0, 5, 33}  # passed, or no test calls the function (5, 33): nothing noticed it
NOT_RUN = {None, 2, 34}

# Left out of the score like an equivalent mutant, by pattern: a mutant that only changes
# the text of a raised error (its message string made None, dropped, "XX..XX" or upper
# case). tools/mutate.py does not mutate strings at all; the error code, which a
# hypercall returns, is mutated and counted.
MESSAGE_ONLY = "message-only"


def _without_raise_text(func: ast.AST) -> str:
    """``func`` dumped with its name and every str/None argument of a raised call gone."""
    func = ast.parse(ast.unparse(func)).body[0]
    func.name = "_"
    for node in ast.walk(func):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
            call.args = [a for a in call.args if not _is_text(a)]
            call.keywords = [k for k in call.keywords if not _is_text(k.value)]
    return ast.dump(func)


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str)))


def message_only(path: Path) -> set[str]:
    """Names (as in the .meta file) of ``path``'s mutants that change only error text."""
    tree = ast.parse(path.read_text())
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    prefix = ".".join(path.relative_to(MUTANTS).with_suffix("").parts) + "."
    found = set()
    originals = {}
    for name, func in funcs.items():
        base, sep, tag = name.rpartition("__mutmut_")
        if not sep or tag == "orig" or f"{base}__mutmut_orig" not in funcs:
            continue
        if base not in originals:
            originals[base] = _without_raise_text(funcs[f"{base}__mutmut_orig"])
        if _without_raise_text(func) == originals[base]:
            found.add(prefix + name)
    return found


# Not counted either, as tools/mutate.py does not mutate them: the inspector's views,
# presentation checked by the web tests. (Trace emission is not mutated at all: the
# do_not_mutate_patterns in pyproject.toml.)
VIEWS = {"snapshot", "table", "__repr__"}


def pattern(name: str) -> str:
    """'scheduler' -> 'gunyah_core.core.scheduler.*', the mutmut names of its mutants."""
    return MODULES[name].removesuffix(".py").replace("/", ".") + ".*"


def function_of(mutant: str) -> str:
    """'gunyah_core.ipc.doorbell.xǁDoorbellǁsend__mutmut_3' -> 'send'."""
    return mutant.rpartition(".")[2].rpartition("__mutmut_")[0].split("ǁ")[-1].removeprefix("x_")


# Survivors that no test can kill because the program means the same: mutant name ->
# reason. The same list, with the code, is in docs/testing.md ("Equivalent mutants").
EQUIVALENT: dict[str, str] = {
    "gunyah_core.ipc.doorbell.xǁDoorbellǁ__init____mutmut_1":
        'sender default "" -> "XXXX": never used, the one caller '
        "(Hypervisor.create_doorbell) passes both ends",
    "gunyah_core.ipc.doorbell.xǁDoorbellǁ__init____mutmut_2":
        'receiver default "" -> "XXXX": never used, as above',
    "gunyah_core.ipc.msgq.xǁMsgqǁ__init____mutmut_1":
        'sender default "" -> "XXXX": never used, the one caller '
        "(Hypervisor.create_msgq) passes both ends",
    "gunyah_core.ipc.msgq.xǁMsgqǁ__init____mutmut_2":
        'receiver default "" -> "XXXX": never used, as above',
    "gunyah_core.core.cspace.xǁCSpaceǁ__init____mutmut_2":
        "owner = None: nothing reads a CSpace's owner (it names the table in a debugger)",
    "gunyah_core.core.cspace.xǁCSpaceǁ__init____mutmut_17":
        "rng.randrange(0, N) -> rng.randrange(N): the same call, the same draw",
    "gunyah_core.core.cspace.xǁCSpaceǁ_decode__mutmut_4":
        "capid < CSPACE_CAP_INVALID -> <=: all ones never decodes anyway (base < 2**48, "
        "so capid ^ base >= 2**64 - 2**48: an index far above CSPACE_MAX_CAPS; with "
        "debug ids, mult 1 and base 0, the index is 2**64 - 1)",
    "gunyah_core.core.cspace.xǁCSpaceǁlookup__mutmut_2":
        "the fast path's dict hit made a miss (cap = None): self.cap(capid) finds the "
        "same cap and raises the same errors, only slower",
    "gunyah_core.core.cspace.xǁCSpaceǁlookup__mutmut_3":
        "_by_id.get(None): always a miss, as above",
    "gunyah_core.core.cspace.xǁCSpaceǁcap__mutmut_9":
        "a cap found but not VALID -> always CSPACE_CAP_REVOKED: the only other state is "
        "REVOKED (delete empties the slot and drops the capid from _by_id; no cap is "
        "ever made NULL in place), so the CAP_NULL branch is never taken",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ__init____mutmut_10":
        "slice_start 0 -> None: never read before a _switch to a thread sets it (it is "
        "read only about the current thread)",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ__init____mutmut_11":
        "slice_start 0 -> 1: as above",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ__init____mutmut_13":
        "expiry_due 0 -> None: read only while an expiry is armed, and _arm sets both",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ__init____mutmut_14": "expiry_due 0 -> 1: as above",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ__init____mutmut_15":
        "slice_end 0 -> None: read only while a thread runs, and the _switch to it sets "
        "it (_arm)",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ__init____mutmut_16": "slice_end 0 -> 1: as above",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ_place__mutmut_15":
        "_push(vcpu, head=False) -> head=None: _push tests its truth (the tail either way)",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ_place__mutmut_52":
        "the same in the plain queueing branch",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ_switch_out__mutmut_13":
        "current = None -> '': a dead store, every _switch_out is followed by the "
        "_switch that sets current; in between current is only compared by identity "
        "with a vCPU (end_proxy), which '' and None both fail",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁ_preempt_yield__mutmut_12":
        "current = None -> '': the same dead store before _switch(by)",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁend_proxy__mutmut_46":
        "the caller's ready reason when *not* expired made 'timeslice': that branch "
        "(a thread above the caller waiting while its directed yield runs) is never "
        "reached, a wake or a priority change above the caller preempts the yield at "
        "once (_place, set_priority -> _preempt_yield) and a suspended yield resumes "
        "only when its caller is the highest ready",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁend_proxy__mutmut_48":
        "_push(caller, head=not expired) -> head=None (the tail): differs only when not "
        "expired, the branch never reached (above)",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁend_proxy__mutmut_59":
        "the switch reason when not expired made 'timeslice': the same unreached branch",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁset_priority__mutmut_27":
        "wake(vcpu, 'priority') -> None: a waiting thread is already 'ready', so "
        "set_state emits nothing; if it preempts, the reason shown is 'preempt'",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁset_priority__mutmut_30":
        "'priority' -> 'XXpriorityXX': never shown, as above",
    "gunyah_core.core.scheduler.xǁPcpuSchedulerǁset_priority__mutmut_31":
        "'priority' -> 'PRIORITY': never shown, as above",
    "gunyah_core.mem.memparcel.x_check_lists__mutmut_86":
        "size <= 0 -> size <= 1: it refuses only size 1 more, which size % PAGE_SIZE in "
        "the same condition refuses with the same error and message",
    "gunyah_core.mem.memparcel.x_notify_messages__mutmut_5":
        "0 <= flags -> 1 <= flags: flags 0 is refused either way, MemNotifyFlags(0) is no "
        "single flag and fails the next check with the same error and message",
    "gunyah_core.mem.memparcel.x_notify_messages__mutmut_6": "0 <= flags -> 0 < flags: as above",
    "gunyah_core.vm.vic.xǁVicǁ__init____mutmut_1":
        "KObject oid None: nothing reads a VIC's oid (no VIC capability is handed out)",
    "gunyah_core.vm.vic.xǁVicǁ__init____mutmut_2":
        "KObject name None: nothing reads it; the VIC keeps vm_name in its own field",
    "gunyah_core.vm.vic.xǁVicǁeoi__mutmut_14":
        "edge_only=False -> None: assert_source only tests its truth",
    "gunyah_core.vm.psci.x_enable__mutmut_14":
        "vic.bind(halt, virq, EDGE) -> vic.bind(halt, virq): EDGE is bind's default",
    "gunyah_core.vm.vic.xǁVicǁunbind__mutmut_13":
        "table.pop(virq, None) -> pop(virq): a source bound here has virq in all three "
        "tables (bind fills them together), so the default is never used",
    "gunyah_core.vm.vic.xǁVicǁunbind__mutmut_6":
        "a private source's bank.pop(virq, None) -> pop(virq): bind_private fills both of "
        "the bank's tables together, so the default is never used",
    "gunyah_core.vm.vtimer.xǁVirtualTimerǁ__init____mutmut_16":
        "expired = False -> None: only its truth is read",
    "gunyah_core.vm.vtimer.xǁVirtualTimerǁ__init____mutmut_18":
        "asserted = False -> None: only its truth is read",
    "gunyah_core.vm.vtimer.xǁVirtualTimerǁ_set_line__mutmut_8":
        "asserted = False -> None: only its truth is read",
    "gunyah_core.mem.demand_paging.x_faults_to_owner__mutmut_3":
        "`if hyp.demand` made always true: .get on an empty dict is None as well",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_37":
        "Window.guest None: nothing reads a window's guest (hyp.demand is keyed by vmid)",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_38":
        "Window.host None: nothing reads a window's host (the VMM finds its entry by key)",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_41":
        "Window.transfer None: nothing reads a window's transfer (the VMM reads the entry's)",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_46":
        "Window.transfer left to its default: unread, as above",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_52":
        'entry "type" renamed: not a ResourceType nor a DT overlay type, so the hyp '
        "resources and the overlay skip it either way; the VMM finds it by its key",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_53":
        'entry "type" lower case: unread, as above',
    "gunyah_core.mem.demand_paging.x_setup__mutmut_54":
        'entry key "partner" renamed: only read for entries of a ResourceType, '
        "which this is not",
    "gunyah_core.mem.demand_paging.x_setup__mutmut_55":
        'entry key "partner" upper case: unread, as above',
    "gunyah_core.vm.virtqueue.x__align__mutmut_5":
        "value + to - 2: differs only for value = 1 mod to; Layout.at aligns only even "
        "values (a 16-aligned base plus even ring sizes)",
    "gunyah_core.vm.virtqueue.xǁVirtqueueǁadd__mutmut_49":
        "zip strict=None: descs and parts are always of one length (need = len(parts))",
    "gunyah_core.vm.virtqueue.xǁVirtqueueǁadd__mutmut_52":
        "zip without strict: as above",
    "gunyah_core.vm.virtqueue.xǁVirtqueueǁadd__mutmut_53":
        "zip strict=False: as above",
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_1":
        'frontend default "" -> "XXXX": never used, the one caller '
        "(Hypervisor.create_virtio_mmio) passes every argument",
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_2":
        'backend default "" -> "XXXX": never used, as above',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_3":
        'vqs_num default 1 -> 2: never used, as above',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_4":
        'device_id default 0 -> 1: never used, as above',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_5":
        "oid None: nothing reads a virtio-MMIO object's oid",
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_10":
        'frontend None: read only by snapshot (an inspector view, left out)',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_31":
        'config space longer: frontend accesses stay inside the register page '
        "(vdevice_access, _access_allowed), so the bytes past it are never reached",
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_62":
        '_kick = None: frontend_write sets it before any read; only its truth is read',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_63":
        '_kick = True: frontend_write sets it to False before any read',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_64":
        'ring_size None: set by the builder, read only by snapshot (left out)',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ__init____mutmut_65":
        'ring_size 1: as above',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ_access_allowed__mutmut_4":
        '0 <= offset made 1 <=: offset 0 is MagicValue, read-only, refused by _write either way',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁ_access_allowed__mutmut_5":
        '0 <= offset made 0 <: as above',
    "gunyah_core.vm.virtio_mmio.xǁVirtioMmioǁfrontend_write__mutmut_3":
        '_kick = False -> None: only its truth is read',
}


def module_rows(names: list[str]) -> list[tuple[str, int, int, list[str], list[str], int, int]]:
    """Per module: (name, killed, counted, survivors, equivalents, message-only, not run)."""
    rows = []
    for name in names:
        meta = MUTANTS / (MODULES[name] + ".meta")
        if not meta.exists():
            sys.exit(f"{meta} missing: run `make mutate MODULES={name}` first")
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        killed, survivors, equivalent, not_run = 0, [], [], 0
        text_only = message_only(MUTANTS / MODULES[name])
        messages = 0
        for mutant, code in sorted(codes.items()):
            if function_of(mutant) in VIEWS:
                continue
            if code in NOT_RUN:
                not_run += 1
            elif mutant in text_only:
                messages += 1
            elif mutant in EQUIVALENT:
                equivalent.append(mutant)
            elif code in KILLED:
                killed += 1
            elif code in SURVIVED:
                survivors.append(mutant)
            else:  # mutmut's "suspicious": counted as not killed, named with the survivors
                survivors.append(f"{mutant} (exit code {code})")
        counted = killed + len(survivors)
        rows.append((name, killed, counted, survivors, equivalent, messages, not_run))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="name every survivor")
    parser.add_argument("--patterns", action="store_true",
                        help="only print the modules' mutant name patterns for `mutmut run`")
    args = parser.parse_args(argv)
    names = args.modules or list(MODULES)
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    if args.patterns:
        print(" ".join(pattern(name) for name in args.modules))
        return 0
    rows = module_rows(names)
    if args.verbose:
        for name, _, _, survivors, _, _, _ in rows:
            for mutant in survivors:
                print(f"  SURVIVED {name}: {mutant}")
    print("mutation score per module (killed / mutants, equivalent ones left out)")
    for name, killed, counted, _survivors, equivalent, messages, not_run in rows:
        score = f"{100.0 * killed / counted:5.1f} %" if counted else "    - "
        extra = []
        if equivalent:
            extra.append(f"{len(equivalent)} equivalent")
        if messages:
            extra.append(f"{messages} {MESSAGE_ONLY}")
        if not_run:
            extra.append(f"{not_run} not run")
        note = f"  ({', '.join(extra)})" if extra else ""
        print(f"  {name:<10} {killed:>4}/{counted:<4} {score}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
