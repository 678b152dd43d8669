"""gunyah_core: a deterministic discrete-event model of the Gunyah hypervisor.

Pure Python, no web code: the browser app and the command line both drive it. The
model is grouped by subsystem as the hypervisor's own tree is: ``core/`` (engine,
trace, scheduler, cspace, hypercalls), ``ipc/`` (msgq, doorbell), ``vm/`` (vm, vcpu,
vic, vcpu_run), ``mem/`` (memory, memparcels), ``rm/`` (the Resource Manager),
``guest/`` (the programs VMs run), ``teaching/`` (captions, lessons, invariants).
"""

from __future__ import annotations

import importlib
import sys

from .consts import Error
from .core.hypervisor import Hypervisor
from .core.trace import ALL_KINDS, EventKind
from .errors import HypError, HypResult
from .scenario import Scenario, ScenarioError, load, parse, preset_names
from .simulation import Simulation

__all__ = [
    "ALL_KINDS",
    "Error",
    "EventKind",
    "HypError",
    "HypResult",
    "Hypervisor",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "load",
    "parse",
    "preset_names",
]

# The module paths from before the grouping still import, as the same module objects
# (``gunyah_core.msgq`` is ``gunyah_core.ipc.msgq``). ``gunyah_core.vm`` is now the
# package; ``from gunyah_core.vm import Vm`` still works through its re-export.
FORMER_PATHS = {
    "engine": "core.engine", "trace": "core.trace", "scheduler": "core.scheduler",
    "cspace": "core.cspace", "kobject": "core.kobject", "hypercalls": "core.hypercalls",
    "executor": "core.executor", "hypervisor": "core.hypervisor",
    "msgq": "ipc.msgq", "doorbell": "ipc.doorbell",
    "vcpu": "vm.vcpu", "vic": "vm.vic", "vcpu_run": "vm.vcpu_run",
    "memory": "mem.memory", "memparcel": "mem.memparcel",
    "guests": "guest.programs", "vmm": "guest.vmm",
    "captions": "teaching.captions", "lessons": "teaching.lessons",
    "invariants": "teaching.invariants",
}
for _old, _new in FORMER_PATHS.items():
    _module = importlib.import_module(f"{__name__}.{_new}")
    sys.modules.setdefault(f"{__name__}.{_old}", _module)
    globals().setdefault(_old, _module)
del _old, _new, _module
