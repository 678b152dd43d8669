"""gunyah_core stays free of web code: no Flask/Socket.IO/eventlet import anywhere in it."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "gunyah_core"
WEB_MODULES = ("flask", "flask_socketio", "socketio", "eventlet", "engineio")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_scan_finds_the_package_files() -> None:
    files = list(PACKAGE.rglob("*.py"))
    assert len(files) >= 20
    assert "heapq" in imported_roots(PACKAGE / "core" / "engine.py")  # the scanner does see imports


def test_no_web_imports_in_source() -> None:
    offenders = {str(path.relative_to(REPO)): sorted(imported_roots(path) & set(WEB_MODULES))
                 for path in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_model_loads_no_web_module() -> None:
    code = ("import sys, gunyah_core, gunyah_core.simulation, gunyah_core.builder\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {WEB_MODULES!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


SUBSYSTEMS = ("core", "ipc", "vm", "mem", "rm", "guest", "teaching", "exporters")


def test_the_model_is_grouped_by_subsystem() -> None:
    """Only the scenario, the simulation and shared vocabulary stay at the top."""
    top = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert top == ["__init__", "__main__", "actions", "builder", "consts", "errors",
                   "scenario", "simulation"]
    assert all((PACKAGE / sub / "__init__.py").is_file() for sub in SUBSYSTEMS)


def test_former_flat_module_paths_import_the_same_modules() -> None:
    from gunyah_core.msgq import Msgq as FormerMsgq

    import gunyah_core
    from gunyah_core.ipc.msgq import Msgq
    from gunyah_core.vm import Vm
    from gunyah_core.vm.vm import Vm as VmClass

    assert FormerMsgq is Msgq and Vm is VmClass
    for old, new in gunyah_core.FORMER_PATHS.items():
        module = importlib.import_module(f"gunyah_core.{old}")
        assert module is importlib.import_module(f"gunyah_core.{new}"), old
        assert getattr(gunyah_core, old) is module, old
