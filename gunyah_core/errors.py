"""How a hypercall fails: ``HypError`` inside the model, ``HypResult`` at the ABI.

Object code raises ``HypError(Error.X)``; only ``hypercalls.py`` turns it into a
``HypResult`` (Gunyah's ``*_result_t``: an error plus return registers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .consts import Error


class HypError(Exception):
    """A Gunyah error raised by object code; carries the real ``error_t``."""

    def __init__(self, error: Error, detail: str = "") -> None:
        super().__init__(f"{error.name}{': ' + detail if detail else ''}")
        self.error = error
        self.detail = detail


@dataclass(frozen=True, slots=True)
class HypResult:
    """What a hypercall returns: X0 = error, then named output registers."""

    error: Error = Error.OK
    ret: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is Error.OK

    def __getitem__(self, name: str) -> Any:
        return self.ret[name]
