"""Mutation testing of the model's core modules: do the tests catch what they claim?

Each mutant is one small change to one module (a comparison turned, an operator
swapped, a constant off by one, a guard or call removed, a return value dropped). The
module's own test subset runs against it in a separate process, bounded in memory
(RLIMIT_AS) and in time (a mutant can loop forever, e.g. an interrupt storm). A failing
or timed-out run kills the mutant; a green run means it survived: the tests cannot
tell the mutant from the model.

The mutants are built with the standard library's ``ast`` (no third-party mutator):
parse, change one node, ``ast.unparse``. Docstrings, strings, annotations, trace
emission (``if ...trace.on:`` blocks) and the inspector's ``snapshot``/``table`` views
are not mutated: they are presentation, checked by the trace and web tests.

Usage (from the repository root; ``make mutate`` runs every module)::

    python tools/mutate.py                    # every module, one after the other
    python tools/mutate.py doorbell vic       # only these
    python tools/mutate.py --list doorbell    # print the mutants, run nothing

Survivors known to be equivalent are listed in ``EQUIVALENT`` below (and in
docs/testing.md, with the reason); they are reported apart and left out of the score.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> (file, the test files that exercise it)
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "msgq": ("gunyah_core/ipc/msgq.py", (
        "tests/core/test_msgq.py", "tests/core/test_hypercalls.py",
        "tests/core/test_properties.py", "tests/core/test_guests.py")),
    "doorbell": ("gunyah_core/ipc/doorbell.py", (
        "tests/core/test_doorbell.py", "tests/core/test_hypercalls.py",
        "tests/core/test_reference_models.py")),
    "cspace": ("gunyah_core/core/cspace.py", (
        "tests/core/test_cspace.py", "tests/core/test_hypercalls.py")),
    "scheduler": ("gunyah_core/core/scheduler.py", (
        "tests/core/test_scheduler.py", "tests/core/test_vcpu_run.py",
        "tests/core/test_hypercalls.py", "tests/core/test_guests.py",
        "tests/core/test_reference_models.py")),
    "vic": ("gunyah_core/vm/vic.py", (
        "tests/core/test_vic.py", "tests/core/test_doorbell.py", "tests/core/test_msgq.py",
        "tests/core/test_vcpu_run.py", "tests/core/test_reference_models.py",
        "tests/core/test_vtimer.py")),
    "rm/rpc": ("gunyah_core/rm/rpc.py", (
        "tests/core/test_rm_rpc.py", "tests/core/test_rm_link.py",
        "tests/core/test_rm_lifecycle.py")),
    "memparcel": ("gunyah_core/mem/memparcel.py", (
        "tests/core/test_memory.py", "tests/core/test_rm_memory.py",
        "tests/core/test_rm_mem_payloads.py")),
    "psci": ("gunyah_core/vm/psci.py", (
        "tests/core/test_psci.py", "tests/core/test_scenario.py")),
    "vtimer": ("gunyah_core/vm/vtimer.py", (
        "tests/core/test_vtimer.py", "tests/core/test_guests.py",
        "tests/core/test_scenario.py")),
    "demand_paging": ("gunyah_core/mem/demand_paging.py", (
        "tests/core/test_demand_paging.py", "tests/core/test_scenario.py")),
    "virtio_mmio": ("gunyah_core/vm/virtio_mmio.py", (
        "tests/core/test_virtio_mmio.py", "tests/core/test_virtio_presets.py")),
    "virtqueue": ("gunyah_core/vm/virtqueue.py", (
        "tests/core/test_virtqueue.py", "tests/core/test_virtio_presets.py")),
}

MEMORY_LIMIT_BYTES = 2 << 30  # per mutant run: a runaway mutant dies, not the machine
TIMEOUT_FACTOR = 4  # x the unmutated run's wall time ...
TIMEOUT_FLOOR_S = 20.0  # ... but never less than this (the machine is shared)

# Survivors that no test can kill because the program means the same: module ->
# {mutant key: reason}. The key is what ``--list`` prints after the line number.
EQUIVALENT: dict[str, dict[str, str]] = {
    "cspace": {
        "<module>: True -> False": "dataclass(slots=False) on Cap: memory layout only",
        "_decode: 0 <= capid < CSPACE_CAP_INVALID -> 0 <= capid <= CSPACE_CAP_INVALID":
            "CSPACE_CAP_INVALID (2**64 - 1) never decodes anyway: base < 2**48, so "
            "capid ^ base >= 2**64 - 2**48, far above any index * mult < 2**32",
    },
    "scheduler": {
        "__init__: 0 -> 1 #2": "slice_start is set by every _switch before it is read",
        "__init__: 0 -> 1 #3": "expiry_due is read only while an expiry is armed, and "
                               "_arm sets both together",
        "__init__: 0 -> 1 #4": "slice_end is read only while a thread runs, and every "
                               "_switch to a thread sets it (_arm)",
    },
    "vic": {
        "__init__: super().__init__(oid, vm_name) -> pass":
            "nothing reads a VIC's oid or name (no VIC capability is handed out) and "
            "activate() sets the only field a lookup would read",
    },
    "rm/rpc": {
        "__init__: super().__init__(reason) -> pass":
            "BaseException.__new__ already keeps the constructor's arguments, so str() of "
            "a MalformedPacket is its reason either way",
    },
    "memparcel": {
        "<module>: True -> False": "dataclass(slots=False) on Mapping: memory layout only",
        "<module>: True -> False #2": "dataclass(slots=False) on MemParcel: memory layout only",
        "<module>: 2 -> 3 #3": "ParcelState.SHARED's value: parcel states are compared by "
                               "identity and shown by name; the number never leaves the model",
        "check_lists: 0 -> 1 #3": "size <= 1 refuses only size 1 more, which the page "
                                  "alignment test of the same condition refuses with the same "
                                  "error and message",
        "notify_messages: 0 <= flags <= max(NOTIFY_NAMES) -> 0 < flags <= max(NOTIFY_NAMES)":
            "flags 0 is refused either way: MemNotifyFlags(0) is no single flag, so it fails "
            "the next check with the same error and message",
        "notify_messages: 0 -> 1":
            "the same change written 1 <= flags: flags 0 is refused either way",
    },
}

SKIPPED_FUNCTIONS = {"snapshot", "table", "__repr__"}

_COMPARE_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BINOP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}


@dataclass
class Mutant:
    module: str
    line: int
    key: str  # "function: before -> after", stable while the code around stays the same
    source: str  # the whole mutated module
    end_line: int = 0  # the last line of the mutated node

    @property
    def label(self) -> str:
        return f"{self.module}:{self.line} {self.key}"


def _show(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _is_trace_guard(node: ast.If) -> bool:
    """``if self.trace.on:`` / ``if trace.on:``: trace emission only."""
    test = node.test
    return isinstance(test, ast.Attribute) and test.attr == "on" and "trace" in ast.unparse(test)


def _is_docstring(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _mutation_sites(tree: ast.Module) -> Iterator[tuple[ast.AST, str, ast.AST | None, str]]:
    """(node, function, replacement-or-None-to-delete, parent field) for every site."""
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node.name
        return "<module>"

    def skipped(node: ast.AST) -> bool:
        while node in parents:
            if isinstance(node, ast.arg | ast.AnnAssign) or (
                    isinstance(node, ast.If) and _is_trace_guard(node)):
                return True
            parent = parents[node]
            if isinstance(parent, ast.FunctionDef) and (
                    parent.name in SKIPPED_FUNCTIONS or node is parent.returns):
                return True
            if isinstance(parent, ast.AnnAssign) and node is parent.annotation:
                return True
            node = parent
        return False

    for node in ast.walk(tree):
        if skipped(node) or (isinstance(node, ast.If) and _is_trace_guard(node)):
            continue
        func = function_of(node)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                swap = _COMPARE_SWAP.get(type(op))
                if swap:
                    new = copy.deepcopy(node)
                    new.ops[i] = swap()
                    yield node, func, new, ""
        elif isinstance(node, ast.BinOp | ast.AugAssign):
            swap = _BINOP_SWAP.get(type(node.op))
            if swap:
                new = copy.deepcopy(node)
                new.op = swap()
                yield node, func, new, ""
        elif isinstance(node, ast.BoolOp):
            new = copy.deepcopy(node)
            new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            yield node, func, new, ""
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert):
            yield node, func, copy.deepcopy(node.operand), ""
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            if isinstance(node.value, bool):
                yield node, func, ast.Constant(not node.value), ""
            else:
                yield node, func, ast.Constant(node.value + 1), ""
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            yield node, func, ast.Return(ast.Constant(None)), ""
        elif isinstance(node, ast.Raise) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and not _is_docstring(node)):
            yield node, func, ast.Pass(), ""


def _replace(tree: ast.Module, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return
    raise LookupError("node not found")


def mutants_of(module: str) -> list[Mutant]:
    path = ROOT / MODULES[module][0]
    tree = ast.parse(path.read_text())
    out = []
    for node, func, new, _ in list(_mutation_sites(tree)):
        key = f"{func}: {_show(node)} -> {_show(new)}"
        _replace(tree, node, new)
        try:
            source = ast.unparse(ast.fix_missing_locations(tree))
        finally:
            _replace(tree, new, node)
        out.append(Mutant(module, node.lineno, key, source, node.end_lineno or node.lineno))
    out.sort(key=lambda m: m.line)
    seen: dict[str, int] = {}
    for mutant in out:  # the same change twice in one function: number the later ones
        seen[mutant.key] = seen.get(mutant.key, 0) + 1
        if seen[mutant.key] > 1:
            mutant.key += f" #{seen[mutant.key]}"
    return out


# Imported once here, before any mutant, so that each forked test run starts warm. The
# model (gunyah_core) and the tests are never imported in this process: each child
# imports them afresh from the copy, mutated file included.
PREIMPORT = ("pytest", "hypothesis", "hypothesis.stateful", "hypothesis.strategies",
             "pytest_timeout", "yaml", "jsonschema", "json", "struct", "random")


def _warm_up() -> None:
    sys.dont_write_bytecode = True  # the copy never gets a __pycache__ to go stale
    for name in PREIMPORT:
        try:
            __import__(name)
        except ImportError:
            pass


class _LineRecorder:
    """pytest plugin: the lines of one file that each test executes (setup included)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[str, list[int]] = {}

    def pytest_runtest_protocol(self, item, nextitem):  # a hookwrapper, see register()
        hit: set[int] = set()
        filename = self.filename

        def local(frame, event, arg):
            if event == "line":
                hit.add(frame.f_lineno)
            return local

        def calls(frame, event, arg):
            if frame.f_code.co_filename == filename:
                hit.add(frame.f_lineno)
                return local
            return None

        previous = sys.gettrace()
        sys.settrace(calls)
        try:
            yield
        finally:
            sys.settrace(previous)
            self.lines[item.nodeid] = sorted(hit)

    def register(self, pytest_module) -> _LineRecorder:
        type(self).pytest_runtest_protocol = pytest_module.hookimpl(hookwrapper=True)(
            _LineRecorder.__dict__["pytest_runtest_protocol"])
        return self


def _pytest(copy_root: Path, tests: list[str], timeout: float,
            record: tuple[str, Path] | None = None) -> str:
    """'passed', 'failed' or 'timeout' for one run of ``tests`` in ``copy_root``.

    The run is a forked child of this (warm) process, in its own process group, with
    its address space capped (RLIMIT_AS) and killed with its group after ``timeout``.
    ``record`` = (file, out.json): also write which lines of ``file`` each test ran.
    """
    # Plugins imported by the warm-up cannot be assertion-rewritten; only their own
    # asserts lose detail, so the warning that says so is silenced (the suite errors on it).
    args = ["-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0", "-o", "addopts=",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", "--rootdir", str(copy_root),
            *tests]
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            os.setpgid(0, 0)
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
            os.chdir(copy_root)
            sys.path.insert(0, str(copy_root))
            # MUTATE_LOG=file keeps every run's pytest output (for debugging the tool)
            log = os.open(os.environ.get("MUTATE_LOG", os.devnull),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(log, 1)
            os.dup2(log, 2)
            import pytest
            from hypothesis import HealthCheck, Phase, settings

            # A failing example is enough to kill: no shrinking, no shared database. No
            # deadline either: on a loaded machine it fails runs the mutant did not slow.
            settings.register_profile("mutate", database=None, deadline=None,
                                      suppress_health_check=list(HealthCheck),
                                      phases=[Phase.explicit, Phase.reuse, Phase.generate])
            settings.load_profile("mutate")
            plugins = []
            if record is not None:
                plugins.append(_LineRecorder(record[0]).register(pytest))
            code = int(pytest.main(args, plugins=plugins))
            if record is not None:
                record[1].write_text(json.dumps(plugins[0].lines))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


def _tests_reaching(mutant: Mutant, coverage: dict[str, list[int]], everything: list[str]
                    ) -> list[str]:
    """The tests that run a line of the mutant; all of them when none does (module-level
    code runs at import, outside any test)."""
    span = set(range(mutant.line, mutant.end_line + 1))
    chosen = [test for test, lines in coverage.items() if span.intersection(lines)]
    return chosen or everything


def run_module(module: str, copy_root: Path, verbose: bool) -> tuple[int, int, list[Mutant]]:
    """(killed, counted, surviving non-equivalent mutants) for one module."""
    rel, files = MODULES[module]
    tests = list(files)
    target = copy_root / rel
    original = target.read_text()
    start = time.monotonic()
    coverage_file = copy_root / ".mutate-coverage.json"
    if _pytest(copy_root, tests, 600, record=(str(target), coverage_file)) != "passed":
        sys.exit(f"{module}: the tests fail on the unmutated model; fix that first")
    # The traced run is slower than a plain one, so the timeout is generous.
    timeout = max(TIMEOUT_FLOOR_S, TIMEOUT_FACTOR * (time.monotonic() - start))
    coverage = json.loads(coverage_file.read_text())
    equivalent = EQUIVALENT.get(module, {})
    killed, counted, survivors, equivalent_seen = 0, 0, [], []
    mutants = mutants_of(module)
    try:
        for n, mutant in enumerate(mutants, 1):
            target.write_text(mutant.source)
            outcome = _pytest(copy_root, _tests_reaching(mutant, coverage, tests), timeout)
            if mutant.key in equivalent:
                equivalent_seen.append(mutant)
                if outcome != "passed":
                    print(f"  note: listed as equivalent but killed: {mutant.label}")
                continue
            counted += 1
            if outcome == "passed":
                survivors.append(mutant)
            else:
                killed += 1
            if verbose:
                print(f"  [{n}/{len(mutants)}] {outcome:8} {mutant.label}", flush=True)
    finally:
        target.write_text(original)
    for mutant in survivors:
        print(f"  SURVIVED {mutant.label}")
    for mutant in equivalent_seen:
        print(f"  equivalent {mutant.label}: {equivalent[mutant.key]}")
    return killed, counted, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every outcome")
    args = parser.parse_args(argv)
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if args.list:
        for module in modules:
            for mutant in mutants_of(module):
                print(mutant.label)
        return 0
    _warm_up()
    scores = []
    with tempfile.TemporaryDirectory(prefix="gunyah-mutate-") as tmp:
        copy_root = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy_root, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
            "artifacts", "node_modules"))
        for module in modules:
            print(f"{module}: {MODULES[module][0]} against {len(MODULES[module][1])} test files",
                  flush=True)
            killed, counted, _ = run_module(module, copy_root, args.verbose)
            scores.append((module, killed, counted))
            print(f"{module}: {killed}/{counted} killed", flush=True)
    print("\nmutation score per module (killed / mutants, equivalent ones left out)")
    for module, killed, counted in scores:
        print(f"  {module:10} {killed:4}/{counted:<4} {100 * killed / max(counted, 1):5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
