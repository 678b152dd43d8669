"""gunyah_core: a deterministic discrete-event model of the Gunyah hypervisor.

Pure Python, no web code: the browser app and the command line both drive it.
"""

from __future__ import annotations

from .consts import Error
from .errors import HypError, HypResult
from .hypervisor import Hypervisor
from .scenario import Scenario, ScenarioError, load, parse, preset_names
from .simulation import Simulation
from .trace import ALL_KINDS, EventKind

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
