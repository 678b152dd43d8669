"""The browser <-> server wire contract: event names, payload schemas, error replies.

Every client event is validated here before a Session sees it, so handlers only
translate. Schemas are JSON Schema (draft 2020-12); a failed check becomes a structured
error `{"code", "message"}` whose code says what kind of mistake it was.
docs/protocol.md is the prose version of this file.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from gunyah_core import ALL_KINDS
from gunyah_core.scenario import MAX_SCENARIO_BYTES, StrictValidator
from gunyah_core.simulation import MAX_ACTIONS

# Limits (also sent to the client in the sim:hello ack).
MAX_PAYLOAD_BYTES = 300 * 1024        # a scenario file plus JSON overhead
MAX_TRANSPORT_BYTES = 1024 * 1024     # Engine.IO drops the connection above this
MAX_STEP_COUNT = 10_000
MAX_STEP_KIND_SCAN = 100_000          # events searched by sim:step {kind}
MIN_SPEED = 1e-7                      # simulated seconds per wall second
MAX_SPEED = 1.0
MAX_SPEED_NAME = "max"
MAX_SEED = 2**63 - 1
MAX_NAME_CHARS = 200
MAX_WINDOW = 64                       # flow-control window, in sim:trace batches

# Server -> client event names.
EV_TRACE = "sim:trace"
EV_STATUS = "sim:status"
EV_SNAPSHOT = "sim:snapshot"
EV_ERROR = "server:error"

# Error codes of the web layer (the model's ActionError codes pass through unchanged).
BAD_PAYLOAD = "BAD_PAYLOAD"
MISSING_FIELD = "MISSING_FIELD"
UNKNOWN_FIELD = "UNKNOWN_FIELD"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
TOO_LARGE = "TOO_LARGE"
UNKNOWN_EVENT = "UNKNOWN_EVENT"
UNKNOWN_SCENARIO = "UNKNOWN_SCENARIO"
SCENARIO_INVALID = "SCENARIO_INVALID"
NOT_FOUND = "NOT_FOUND"
NO_SESSION = "NO_SESSION"
INTERNAL = "INTERNAL"
REPLAY_ONLY = "REPLAY_ONLY"
UNKNOWN_BRANCH = "UNKNOWN_BRANCH"
TOO_MANY_BRANCHES = "TOO_MANY_BRANCHES"
INVALID_LINK = "INVALID_LINK"
INVALID_TIMELINE = "INVALID_TIMELINE"
BAD_PACKET = "BAD_PACKET"             # a Socket.IO packet that does not decode
NO_PROGRESS = "NO_PROGRESS"           # the model's clock stopped (engine.NoProgressError)
MEMORY_BUDGET = "MEMORY_BUDGET"
UNKNOWN_LESSON = "UNKNOWN_LESSON"     # sim:lesson names no shipped lesson
LESSON_INVALID = "LESSON_INVALID"     # a shipped lesson that does not check (lessons.py)
MAX_EVENTS_PER_REQUEST = 20_000       # sim:events
MAX_LINK_ACTIONS = MAX_ACTIONS       # a link carries a whole action log
MAX_LINK_EVENTS = 200_000             # a link replays at most this many events (a few s)

_SEED = {"type": "integer", "minimum": 0, "maximum": MAX_SEED}
_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}
_EMPTY: dict[str, Any] = {"type": "object", "additionalProperties": False}
_SEQ = {"type": "integer", "minimum": 0}
_LINK_SEQ = {"type": "integer", "minimum": 0, "maximum": MAX_LINK_EVENTS}
MAX_TIME_NS = 2**63 - 1               # simulated time as a signed 64-bit ns count (292 years)
_LINK_TIME = {"type": "integer", "minimum": 0, "maximum": MAX_TIME_NS}
_ACTIONS = {"type": "array", "maxItems": MAX_LINK_ACTIONS, "items": {
    "type": "object", "additionalProperties": False,
    "required": ["seq", "step", "t", "action", "args"],
    "properties": {"seq": _LINK_SEQ, "step": _LINK_SEQ, "t": _LINK_TIME, "action": _NAME,
                   "args": {"type": "object"}}}}


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False, **extra}


#: Client -> server events and the schema of their payload.
SCHEMAS: dict[str, dict[str, Any]] = {
    "sim:hello": _obj({"window": {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW}}),
    "sim:load": _obj({"scenario": _NAME, "text": {"type": "string"},
                      "filename": {"type": "string", "maxLength": MAX_NAME_CHARS},
                      "seed": _SEED, "actions": _ACTIONS, "through_seq": _LINK_SEQ},
                     oneOf=[{"required": ["scenario"], "not": {"required": ["text"]}},
                            {"required": ["text"], "not": {"required": ["scenario"]}}]),
    "sim:play": _EMPTY,
    "sim:pause": _EMPTY,
    "sim:step": _obj({"count": {"type": "integer", "minimum": 1, "maximum": MAX_STEP_COUNT},
                      "kind": {"enum": sorted(ALL_KINDS)}},
                     **{"not": {"required": ["count", "kind"]}}),
    "sim:speed": _obj({"speed": {"oneOf": [
        {"type": "number", "minimum": MIN_SPEED, "maximum": MAX_SPEED},
        {"const": MAX_SPEED_NAME}]}}, ("speed",)),
    "sim:reset": _obj({"seed": _SEED}),
    "sim:action": _obj({"action": _NAME, "args": {"type": "object"}, "at_seq": _SEQ},
                       ("action",)),
    "sim:snapshot": _EMPTY,
    "sim:branches": _EMPTY,
    "sim:branch": _obj({"id": {"type": "integer", "minimum": 0}}, ("id",)),
    "sim:fork": _obj({"at_seq": _SEQ}),
    "sim:events": _obj({"from_seq": _SEQ, "count": {"type": "integer", "minimum": 1,
                                                    "maximum": MAX_EVENTS_PER_REQUEST},
                        "branch": {"type": "integer", "minimum": 0}}, ("from_seq", "count")),
    "sim:link": _EMPTY,
    # A lesson's file name (GET /api/lessons lists them) and a step, 1-based.
    "sim:lesson": _obj({"lesson": _NAME, "step": {"type": "integer", "minimum": 1}},
                       ("lesson",)),
    # Any event dict (from the page's history or an imported timeline): captions.explain
    # never raises on a strange one.
    "sim:explain": _obj({"event": {"type": "object"}}, ("event",)),
}

_VALIDATORS = {name: StrictValidator(schema) for name, schema in SCHEMAS.items()}

LIMITS = {
    "max_payload_bytes": MAX_PAYLOAD_BYTES,
    "max_scenario_bytes": MAX_SCENARIO_BYTES,
    "max_step_count": MAX_STEP_COUNT,
    "max_step_kind_scan": MAX_STEP_KIND_SCAN,
    "max_link_events": MAX_LINK_EVENTS,
    "min_speed": MIN_SPEED,
    "max_speed": MAX_SPEED,
}


class ProtocolError(Exception):
    """A refused request; becomes `{"ok": false, "error": {"code", "message"}}`, with
    `"field"` naming the payload field at fault when there is one."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The error object, as sent in acks and in server:error."""
    out = {"code": code, "message": message}
    if field is not None:
        out["field"] = field
    return out


def error_ack(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": error(code, message)}


def _code_for(err: jsonschema.ValidationError) -> str:
    if err.validator == "required":
        return MISSING_FIELD
    if err.validator == "additionalProperties":
        return UNKNOWN_FIELD
    return INVALID_ARGUMENT


def _message_for(event: str, err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path)
    if err.validator in ("oneOf", "not") and not where:
        if event == "sim:load":
            return "give exactly one of 'scenario' (a preset name) or 'text' (a file's text)"
        return "give at most one of 'count' or 'kind'"
    if err.validator == "oneOf" and where == "speed":
        return f"'speed' must be a number {MIN_SPEED}..{MAX_SPEED} or \"{MAX_SPEED_NAME}\""
    message = err.message if len(err.message) <= MAX_NAME_CHARS else err.message[:MAX_NAME_CHARS]
    return f"{where}: {message}" if where else message


def validate(event: str, payload: Any) -> dict[str, Any]:
    """Check one client payload; return it as a dict or raise ProtocolError."""
    if event not in _VALIDATORS:
        raise ProtocolError(UNKNOWN_EVENT, f"unknown event {event[:MAX_NAME_CHARS]!r}; "
                                           f"known: {', '.join(SCHEMAS)}")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ProtocolError(BAD_PAYLOAD, f"{event} payload must be an object, "
                                         f"not {type(payload).__name__}")
    size = len(json.dumps(payload, separators=(",", ":")))
    if size > MAX_PAYLOAD_BYTES:
        raise ProtocolError(TOO_LARGE, f"payload is {size} bytes; limit {MAX_PAYLOAD_BYTES}")
    text = payload.get("text")
    if isinstance(text, str) and len(text.encode("utf-8", "replace")) > MAX_SCENARIO_BYTES:
        raise ProtocolError(TOO_LARGE, f"scenario text larger than {MAX_SCENARIO_BYTES} bytes")
    if event == "sim:load" and "scenario" not in payload and "text" not in payload:
        raise ProtocolError(MISSING_FIELD, "give 'scenario' (a preset name) or 'text'")
    err = jsonschema.exceptions.best_match(_VALIDATORS[event].iter_errors(payload))
    if err is not None:
        raise ProtocolError(_code_for(err), _message_for(event, err), _field_of(err))
    return payload


def _field_of(err: jsonschema.ValidationError) -> str | None:
    """The top-level payload field a schema error is about (a missing one included)."""
    if err.absolute_path:
        return str(err.absolute_path[0])
    if not isinstance(err.instance, dict):
        return None
    if err.validator == "required":
        return next((f for f in err.validator_value if f not in err.instance), None)
    if err.validator == "additionalProperties":
        known = err.schema.get("properties", {})
        return next((str(f) for f in err.instance if f not in known), None)
    return None


# -- connections: the connect `auth` payload (resume a detached session) and their errors ---
RESERVED_EVENT = "RESERVED_EVENT"
SERVER_FULL = "SERVER_FULL"                    # docs/limits.md, "Connections"
TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
RESUME_EXPIRED = "RESUME_EXPIRED"
TAKEN_OVER = "TAKEN_OVER"
#: Event names Socket.IO keeps for itself: a client may not send them (they would reach the
#: connection lifecycle handlers).
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "newListener", "removeListener"})
MAX_RESUME_KEY_CHARS = 100
AUTH_SCHEMA = _obj({"resume": {"type": "string", "minLength": 1,
                               "maxLength": MAX_RESUME_KEY_CHARS},
                    "seq": {"type": "integer", "minimum": -1}})
_AUTH_VALIDATOR = StrictValidator(AUTH_SCHEMA)


def validate_auth(auth: Any) -> dict[str, Any]:
    """Check the connect `auth` payload (absent = {}); ProtocolError names the field."""
    if auth is None:
        return {}
    if not isinstance(auth, dict):
        raise ProtocolError(BAD_PAYLOAD, f"connect auth must be an object, "
                                         f"not {type(auth).__name__}")
    err = jsonschema.exceptions.best_match(_AUTH_VALIDATOR.iter_errors(auth))
    if err is not None:
        where = "auth." if err.absolute_path else "auth: "
        raise ProtocolError(_code_for(err), where + _message_for("connect", err))
    return auth
