"""How a hypercall fails: ``HypError`` inside the model, ``HypResult`` at the ABI.

Object code raises ``HypError(Error.X)``; only ``hypercalls.py`` turns it into a
``HypResult`` (Gunyah's ``*_result_t``: an error plus return registers).
"""

from __future__ import annotations

from typing import Any

from .consts import Error

# What each X0 value tells the caller, in a sentence (shown by the hypercall console).
MEANINGS: dict[Error, str] = {
    Error.OK: "the call succeeded; the other registers hold its results",
    Error.UNIMPLEMENTED: "no such call, or a feature this build of Gunyah does not have",
    Error.RETRY: "try again",
    Error.ARGUMENT_INVALID: "an argument is not a value this call takes (a capid that "
                            "cannot be one of this CSpace's, an unknown flag or hint)",
    Error.ARGUMENT_SIZE: "a size is out of range (e.g. more than the queue's max_msg_size, "
                         "or a receive buffer too small)",
    Error.ARGUMENT_ALIGNMENT: "an address or size is not aligned",
    Error.NOMEM: "the hypervisor ran out of memory",
    Error.NORESOURCES: "no free resource (e.g. vIRQ)",
    Error.DENIED: "not allowed (e.g. a vCPU priority above 62)",
    Error.BUSY: "the object is in use (e.g. a vCPU that is not proxy-scheduled or is "
                "being run already)",
    Error.IDLE: "nothing to do",
    Error.OBJECT_STATE: "the object is in the wrong state for this call (e.g. set before "
                        "activation only)",
    Error.CSPACE_CAP_NULL: "no capability at this capid in the caller's CSpace: capids "
                           "are per VM, another VM's capid means nothing here",
    Error.CSPACE_CAP_REVOKED: "the capability was revoked",
    Error.CSPACE_WRONG_OBJECT_TYPE: "the capid names an object of another type than the "
                                    "call needs",
    Error.CSPACE_INSUFFICIENT_RIGHTS: "the capability lacks the right this call needs "
                                      "(e.g. RECEIVE on a send-only queue cap)",
    Error.CSPACE_FULL: "the CSpace has no free slot",
    Error.MSGQUEUE_EMPTY: "the queue holds no message",
    Error.MSGQUEUE_FULL: "the queue is at its depth; wait for the Tx vIRQ",
}

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
