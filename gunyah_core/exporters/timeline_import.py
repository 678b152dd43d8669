"""Load a JSONL timeline back, validating it line by line.

A timeline file comes from outside (an upload, a saved run), so nothing is trusted:
each line must be a JSON object with an integer `seq` and `t` and a `kind` spelled
like the model's (`area.verb`); a kind the model emits (trace.EventKind) must have
its fields with their types (docs/trace.md), since exporters and the page read them,
while other kinds (a newer model's) pass through as opaque events; `seq` must count up
by one from the first line and `t` must never go back. Size, event count and nesting
depth are capped so a hostile file cannot exhaust memory or the stack.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

import jsonschema

from ..core.trace import ALL_KINDS

#: Largest timeline accepted, in bytes of UTF-8 text.
MAX_TIMELINE_BYTES = 64 * 1024 * 1024
#: Most events accepted from one file.
MAX_TIMELINE_EVENTS = 1_000_000
#: A value (a kind, a field) quoted in an error, at most this many characters.
MAX_SHOWN_CHARS = 60
#: How a kind is spelled: ``area.verb``, lower case.
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){0,3}")

_STR, _INT, _DICT, _LIST = (str,), (int,), (dict,), (list,)
_NAME_OR_NONE = (str, type(None))
_INT_OR_NONE = (int, type(None))
_MSGQ = {"msgq": _STR}
_MSG = {**_MSGQ, "src": _STR, "dst": _STR, "size": _INT, "msg": _INT, "depth": _INT}
_VIRQ = {"vm": _STR, "virq": _INT, "source": _STR}
_BELL = {"doorbell": _STR, "flags": _INT}
#: Fields every event of a kind has (docs/trace.md) that readers rely on, and their types.
REQUIRED_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "hvc": {"vm": _STR, "vcpu": _STR, "name": _STR, "call": _INT_OR_NONE, "args": _DICT,
            "result": _STR, "ret": _DICT},
    "msgq.send": _MSG, "msgq.recv": _MSG,
    "msgq.flush": _MSGQ, "msgq.push": _MSGQ, "msgq.config": _MSGQ,
    "virq.assert": _VIRQ, "virq.clear": _VIRQ, "virq.bind": _VIRQ, "virq.unbind": _VIRQ,
    "virq.deliver": {**_VIRQ, "vcpu": _STR}, "virq.eoi": {**_VIRQ, "vcpu": _STR},
    "bell.send": _BELL, "bell.recv": _BELL, "bell.mask": _BELL, "bell.reset": _BELL,
    "sched.switch": {"pcpu": _INT, "prev": _NAME_OR_NONE, "next": _NAME_OR_NONE,
                     "reason": _STR},
    "vcpu.state": {"vcpu": _STR, "vm": _STR, "state": _STR, "reason": _STR},
    "vcpu.priority": {"vcpu": _STR, "vm": _STR, "old": _INT, "priority": _INT},
    "vcpu.run": {"vm": _STR, "vcpu": _STR, "pcpu": _INT, "stage": _STR},
    "cap.create": {"vm": _STR, "caps": _LIST},
    "cap.revoke": {"object": _STR, "count": _INT},
    "rm.rpc": {"dir": _STR, "name": _STR, "src": _STR, "dst": _STR},
    "rm.packet": {"src": _STR, "dst": _STR},
    "vm.state": {"vm": _STR, "state": _STR},
    "obj.create": {"type": _STR, "name": _STR},
    "obj.destroy": {"type": _STR, "name": _STR},
    "sim.snapshot": {"scenario": _DICT, "state": _DICT},
    "user.action": {"action": _STR, "args": _DICT},
    **{kind: {"vm": _STR} for kind in ALL_KINDS if kind.startswith("mem.")},
}


class TimelineError(ValueError):
    """A timeline that cannot be loaded; `line_no` is 1-based (0 = the file as a whole)."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _byte_lines(data: bytes, limit: int) -> Iterator[str]:
    """The lines of ``data`` decoded one at a time: a whole upload is never turned into one
    text object (a 30 MB upload's text and ``StringIO`` held a server's event loop for 56 ms), and a
    line is cut after ``limit`` bytes, as ``readline(limit)`` would."""
    start, size = 0, len(data)
    view = memoryview(data)
    while start < size:
        end = data.find(b"\n", start, start + limit)
        end = min(size, start + limit) if end < 0 else end + 1
        line = view[start:end]
        start = end
        yield str(line, "utf-8")


def _lines(source: str | bytes | TextIO | BinaryIO, max_bytes: int) -> Iterator[str]:
    """The lines of a timeline; never reads much more than ``max_bytes`` in all (a
    character is at least one byte), even when the file is one enormous line."""
    if not isinstance(source, str | io.TextIOBase):  # bytes, or a binary file
        data = source if isinstance(source, bytes) else source.read(max_bytes + 1)
        yield from _byte_lines(data, max_bytes + 1)
        return
    text, used = io.StringIO(source) if isinstance(source, str) else source, 0
    while line := text.readline(max_bytes - used + 1):
        used += len(line)
        yield line


_S = {"type": "string", "maxLength": 200}
_I = {"type": "integer"}
_LIST = {"type": "array", "maxItems": 4096}


def _objects(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A bounded list of objects that have ``props``."""
    return {**_LIST, "items": {"type": "object", "required": list(props), "properties": props},
            **extra}


#: What a reader draws a machine from (the page's state.js reads exactly these): a
#: sim.snapshot's ``state`` must have them, so a forged one is refused here, with its
#: line, rather than thrown in a browser.
SNAPSHOT_STATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["now_ns", "trace_seq", "pcpus", "vms", "msgqs", "doorbells"],
    "properties": {
        "now_ns": _I, "trace_seq": _I,
        "pcpus": _objects({"pcpu": _I, "current": {"type": ["string", "null"]}}),
        "vms": _objects({"name": _S, "vcpus": _objects({"id": _S}), "virqs": _objects({}),
                         "caps": _objects({"capid": _I, "object": _S})}),
        "msgqs": _objects({"name": _S, "depth": _I, "items": _objects({})}),
        "doorbells": _objects({"name": _S}),
        "memory": {"type": "object", "additionalProperties": _objects({})},
        "memparcels": _LIST,
    },
}
_SNAPSHOT_VALIDATOR = jsonschema.Draft202012Validator(SNAPSHOT_STATE_SCHEMA)


def _short(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}..."


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", dict: "an object", list: "a list",
             type(None): "null"}
    return " or ".join(names[t] for t in types)


def parse_event(line: str, line_no: int) -> dict[str, Any]:
    """One line -> one event dict with its required fields checked."""
    try:
        event = json.loads(line, parse_constant=_reject_constant)
    except RecursionError:
        raise TimelineError(line_no, "nested too deeply") from None
    except ValueError as exc:  # also an integer beyond CPython's 4300 digits
        raise TimelineError(line_no, f"not valid JSON ({_short(str(exc))})") from None
    if not isinstance(event, dict):
        raise TimelineError(line_no, f"expected a JSON object, got {type(event).__name__}")
    for field in ("seq", "t"):
        if field not in event:
            raise TimelineError(line_no, f"missing required field {field!r}")
        if not _is_int(event[field]) or event[field] < 0:
            raise TimelineError(line_no, f"{field!r} must be a non-negative integer")
    kind = event.get("kind")
    if not isinstance(kind, str) or not kind:
        raise TimelineError(line_no, "'kind' must be a non-empty string")
    if not KIND_PATTERN.fullmatch(kind):
        raise TimelineError(line_no, f"kind {_short(kind)!r} is not spelled area.verb")
    for field, types in REQUIRED_FIELDS.get(kind, {}).items():
        if field not in event:
            raise TimelineError(line_no, f"{kind} event without its field {field!r}")
        value = event[field]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise TimelineError(line_no, f"{kind} field {field!r} must be {_type_names(types)}")
    if kind == "sim.snapshot":
        err = jsonschema.exceptions.best_match(_SNAPSHOT_VALIDATOR.iter_errors(event["state"]))
        if err is not None:
            where = ".".join(str(p) for p in err.absolute_path)
            raise TimelineError(line_no, f"sim.snapshot state{'.' if where else ''}"
                                         f"{_short(where)}: {_short(err.message)}")
    return event


def load_jsonl(
    source: str | bytes | TextIO | BinaryIO,
    max_bytes: int = MAX_TIMELINE_BYTES,
    max_events: int = MAX_TIMELINE_EVENTS,
) -> list[dict[str, Any]]:
    """Read a JSONL timeline (text, bytes or an open file) into a list of events.

    Blank lines are ignored. Raises TimelineError naming the first bad line: invalid JSON,
    a missing or mistyped seq/t/kind, a seq gap, time going backwards, or a file over
    `max_bytes` / `max_events`.
    """
    return list(iter_jsonl(source, max_bytes, max_events))


def iter_jsonl(
    source: str | bytes | TextIO | BinaryIO,
    max_bytes: int = MAX_TIMELINE_BYTES,
    max_events: int = MAX_TIMELINE_EVENTS,
) -> Iterator[dict[str, Any]]:
    """``load_jsonl`` one event at a time, so a caller can store events as they are read
    (and pause between them); the same checks, raised when the bad line is reached."""
    prev: dict[str, Any] | None = None
    count = 0
    used = 0
    line_no = 0
    lines = _lines(source, max_bytes)
    while True:
        try:
            line = next(lines, None)
        except UnicodeDecodeError as err:
            raise TimelineError(line_no + 1, f"not UTF-8 text ({err.reason})") from None
        if line is None:
            break
        line_no += 1
        used += len(line.encode("utf-8"))
        if used > max_bytes:
            raise TimelineError(line_no, f"timeline is larger than {max_bytes} bytes")
        if not line.strip():
            continue
        event = parse_event(line, line_no)
        if prev is not None:
            if event["seq"] != prev["seq"] + 1:
                raise TimelineError(
                    line_no, f"seq {event['seq']} does not follow {prev['seq']} (gap or repeat)"
                )
            if event["t"] < prev["t"]:
                raise TimelineError(
                    line_no, f"t {event['t']} is earlier than the previous event's {prev['t']}"
                )
        if count >= max_events:
            raise TimelineError(line_no, f"more than {max_events} events")
        count += 1
        prev = event
        yield event
