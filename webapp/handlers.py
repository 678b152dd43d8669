"""Socket.IO handlers: validate, call one Session method, ack the result.

Each handler only translates (see docs/protocol.md). Refusals become
`{"ok": false, "error": {...}}` acks, or a `server:error` event when the client sent no
ack callback; no exception escapes to the Socket.IO server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import current_app, request

from gunyah_core import ALL_KINDS, ScenarioError
from gunyah_core.actions import ActionError
from gunyah_core.exporters import EXPORTERS

from . import BUDGET_KEY, EXTENSION_KEY, socketio
from .http import preset_list
from .protocol import (
    BAD_PAYLOAD,
    EV_ERROR,
    INTERNAL,
    LIMITS,
    NO_SESSION,
    SCENARIO_INVALID,
    UNKNOWN_EVENT,
    ProtocolError,
    error,
    validate,
)
from .session import DEFAULT_SPEED, MAX_HISTORY_EVENTS, TICK_S, Session

NAMESPACE = "/"
_request_state = threading.local()  # green-local under eventlet


def track_acks(server: Any) -> None:
    """Note whether each incoming event carries an ack id, so errors without one can be
    sent as server:error instead. python-socketio does not pass the id to handlers."""
    original = getattr(server, "_handle_event_internal", None)
    if original is None or getattr(original, "tracks_acks", False):
        return

    def handle(srv, sid, eio_sid, data, namespace, ack_id):
        _request_state.wants_ack = ack_id is not None
        return original(srv, sid, eio_sid, data, namespace, ack_id)

    handle.tracks_acks = True
    server._handle_event_internal = handle


class SessionStore:
    """Live sessions by connection id and by export token; bounded in number."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._by_sid: dict[str, Session] = {}
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def add(self, sid: str, session: Session) -> None:
        with self._lock:
            self._by_sid[sid] = session
            self._by_token[session.token] = session

    def full(self) -> bool:
        return len(self._by_sid) >= self.max_sessions

    def get(self, sid: str) -> Session | None:
        return self._by_sid.get(sid)

    def by_token(self, token: str) -> Session | None:
        return self._by_token.get(token)

    def remove(self, sid: str) -> None:
        with self._lock:
            session = self._by_sid.pop(sid, None)
            if session is not None:
                self._by_token.pop(session.token, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for sid in list(self._by_sid):
            self.remove(sid)


def _store() -> SessionStore:
    return current_app.extensions[EXTENSION_KEY]


def _fail(code: str, message: str, **details: Any) -> dict[str, Any]:
    err = {**error(code, message), **details}
    if not getattr(_request_state, "wants_ack", True):
        socketio.emit(EV_ERROR, err, to=request.sid, namespace=NAMESPACE)
    return {"ok": False, "error": err}


def respond(event: str, payload: Any, extra: tuple, call: Callable[[Session, dict], dict]):
    """Validate `payload`, run `call(session, payload)`, and turn the outcome into an ack."""
    try:
        if extra:
            raise ProtocolError(BAD_PAYLOAD, f"{event} takes one payload object")
        args = validate(event, payload)
        session = _store().get(request.sid)
        if session is None:
            raise ProtocolError(NO_SESSION, "this connection has no session; reconnect")
        return {"ok": True, **call(session, args)}
    except (ProtocolError, ActionError) as err:
        return _fail(err.code, err.message)
    except ScenarioError as err:
        return _fail(SCENARIO_INVALID, str(err), line=err.line, path=err.path)
    except Exception:  # the server must survive anything a client sends
        current_app.logger.exception("handler for %s failed", event)
        return _fail(INTERNAL, "internal error; the session may need sim:reset")


# -- connection lifecycle ----------------------------------------------------------------------
def _emit_to(sid: str, event: str, data: Any, callback: Callable | None = None) -> None:
    socketio.emit(event, data, to=sid, namespace=NAMESPACE, callback=callback)


def _backlog(sid: str) -> int:
    """Packets queued for this client but not yet written (0 when unknown)."""
    try:
        server = socketio.server
        sock = server.eio.sockets.get(server.manager.eio_sid_from_sid(sid, NAMESPACE))
        return sock.queue.qsize() if sock is not None else 0
    except Exception:  # internals differ between transports and test clients
        return 0


@socketio.on("connect")
def on_connect(auth: Any = None) -> bool:
    store = _store()
    if store.full():
        return False
    budget = current_app.extensions[BUDGET_KEY]
    try:
        budget.admit("session", MAX_HISTORY_EVENTS)
    except ProtocolError as err:  # the client's connect_error carries the structured error
        raise ConnectionRefusedError(error(err.code, err.message)) from None
    sid = request.sid
    store.add(sid, Session(current_app.config["DEFAULT_SCENARIO"], partial(_emit_to, sid),
                           socketio, partial(_backlog, sid), budget=budget))
    return True


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    _store().remove(request.sid)


# -- client events ------------------------------------------------------------------------------
def _hello(session: Session, args: dict) -> dict:
    if "window" in args:
        session.set_window(args["window"])
    limits = {**LIMITS, "max_history_events": MAX_HISTORY_EVENTS,
              "default_speed": DEFAULT_SPEED, "tick_ms": round(TICK_S * 1000, 1)}
    return {"session": session.token, "presets": preset_list(),
            "actions": session.sim.actions.names, "kinds": sorted(ALL_KINDS),
            "export_formats": list(EXPORTERS), "limits": limits,
            "window": session.window, "status": session.status(),
            "snapshot": session.snapshot()}


@socketio.on("sim:hello")
def on_hello(payload: Any = None, *extra: Any):
    return respond("sim:hello", payload, extra, _hello)


@socketio.on("sim:load")
def on_load(payload: Any = None, *extra: Any):
    return respond("sim:load", payload, extra, lambda s, a: s.load(**a))


@socketio.on("sim:play")
def on_play(payload: Any = None, *extra: Any):
    return respond("sim:play", payload, extra, lambda s, a: s.play())


@socketio.on("sim:pause")
def on_pause(payload: Any = None, *extra: Any):
    return respond("sim:pause", payload, extra, lambda s, a: s.pause())


@socketio.on("sim:step")
def on_step(payload: Any = None, *extra: Any):
    return respond("sim:step", payload, extra, lambda s, a: s.step(**a))


@socketio.on("sim:speed")
def on_speed(payload: Any = None, *extra: Any):
    return respond("sim:speed", payload, extra, lambda s, a: s.set_speed(a["speed"]))


@socketio.on("sim:reset")
def on_reset(payload: Any = None, *extra: Any):
    return respond("sim:reset", payload, extra, lambda s, a: s.reset(**a))


@socketio.on("sim:action")
def on_action(payload: Any = None, *extra: Any):
    return respond("sim:action", payload, extra,
                   lambda s, a: s.act(a["action"], a.get("args", {}), a.get("at_seq")))


@socketio.on("sim:branches")
def on_branches(payload: Any = None, *extra: Any):
    return respond("sim:branches", payload, extra, lambda s, a: s.branch_list())


@socketio.on("sim:branch")
def on_branch(payload: Any = None, *extra: Any):
    return respond("sim:branch", payload, extra, lambda s, a: s.switch_branch(a["id"]))


@socketio.on("sim:events")
def on_events(payload: Any = None, *extra: Any):
    return respond("sim:events", payload, extra,
                   lambda s, a: s.events(a["from_seq"], a["count"], a.get("branch")))


@socketio.on("sim:link")
def on_link(payload: Any = None, *extra: Any):
    return respond("sim:link", payload, extra, lambda s, a: s.link())


@socketio.on("sim:snapshot")
def on_snapshot(payload: Any = None, *extra: Any):
    return respond("sim:snapshot", payload, extra, lambda s, a: {"snapshot": s.snapshot()})


@socketio.on("*")
def on_unknown(event: Any, *args: Any):
    return _fail(UNKNOWN_EVENT, f"unknown event {str(event)[:100]!r}")
