"""How a hypercall fails: ``HypError`` inside the model, ``HypResult`` at the ABI.

Object code raises ``HypError(Error.X)``; only ``hypercalls.py`` turns it into a
``HypResult`` (Gunyah's ``*_result_t``: an error plus return registers).
"""

from __future__ import annotations

from typing import Any

from .consts import Error

# Success as a plain name: on the hot path an Enum attribute costs an Enum lookup each time.
ERROR_OK = Error.OK


class HypError(Exception):
    """A Gunyah error raised by object code; carries the real ``error_t``."""

    def __init__(self, error: Error, detail: str = "", ret: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error.name}{': ' + detail if detail else ''}")
        self.error = error
        self.detail = detail
        self.ret = ret  # output registers the call still returns with this error


class HypResult:
    """What a hypercall returns: X0 = error, then named output registers.

    A plain slotted class rather than a dataclass: one is built per hypercall.
    """

    __slots__ = ("error", "ret")

    def __init__(self, error: Error = Error.OK, ret: dict[str, Any] | None = None) -> None:
        self.error = error
        self.ret = {} if ret is None else ret

    def __repr__(self) -> str:
        return f"HypResult({self.error.name}, {self.ret})"

    @property
    def ok(self) -> bool:
        return self.error is Error.OK

    def __getitem__(self, name: str) -> Any:
        return self.ret[name]
