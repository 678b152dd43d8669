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
from flask_socketio import ConnectionRefusedError
from socketio import packet as sio_packet

from gunyah_core import ALL_KINDS, ScenarioError
from gunyah_core.actions import ActionError
from gunyah_core.core.engine import NoProgressError
from gunyah_core.core.hypercalls import console_table
from gunyah_core.exporters import EXPORTERS
from gunyah_core.teaching.captions import caption, explain

from . import BUDGET_KEY, EXTENSION_KEY, socketio
from .http import lesson_list, lesson_plan, preset_list
from .packets import BAD_PACKET_EVENT
from .protocol import (
    BAD_PACKET,
    BAD_PAYLOAD,
    EV_ERROR,
    INTERNAL,
    INVALID_ARGUMENT,
    LESSON_INVALID,
    LIMITS,
    NO_PROGRESS,
    NO_SESSION,
    RESERVED_EVENT,
    RESERVED_EVENTS,
    RESUME_EXPIRED,
    SCENARIO_INVALID,
    TAKEN_OVER,
    UNKNOWN_EVENT,
    UNKNOWN_LESSON,
    ProtocolError,
    error,
    validate,
    validate_auth,
)
from .session import DEFAULT_SPEED, MAX_HISTORY_EVENTS, TICK_S, Session
from .store import SessionStore, Slot

NAMESPACE = "/"
_request_state = threading.local()  # green-local under eventlet


def track_acks(server: Any) -> None:
    """Guard every incoming event before python-socketio dispatches it.

    Note whether it carries an ack id, so errors without one can be sent as server:error
    instead (python-socketio does not pass the id to handlers). Refuse Socket.IO's own
    event names: dispatched as they are, a client's `connect` would re-run the connect
    handler (a second, orphaned session) and its `disconnect` would end its own session.
    """
    original = getattr(server, "_handle_event_internal", None)
    if original is None or getattr(original, "tracks_acks", False):
        return

    def handle(srv, sid, eio_sid, data, namespace, ack_id):
        event = data[0] if data else None
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            _refuse_event(srv, sid, eio_sid, namespace, ack_id, event)
            return None
        _request_state.wants_ack = ack_id is not None
        return original(srv, sid, eio_sid, data, namespace, ack_id)

    handle.tracks_acks = True
    server._handle_event_internal = handle


def _refuse_event(server: Any, sid: str, eio_sid: str, namespace: str, ack_id: Any,
                  event: Any) -> None:
    if isinstance(event, str):
        err = error(RESERVED_EVENT, f"{event!r} is reserved by Socket.IO; clients may not "
                                    "send it")
    else:
        err = error(UNKNOWN_EVENT, "an event name must be a string")
    if ack_id is None:
        server.emit(EV_ERROR, err, to=sid, namespace=namespace)
    else:
        server._send_packet(eio_sid, server.packet_class(
            sio_packet.ACK, namespace=namespace, id=ack_id, data=[{"ok": False, "error": err}]))


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
    except ProtocolError as err:
        return _fail(err.code, err.message, **({"field": err.field} if err.field else {}))
    except ActionError as err:
        return _fail(err.code, err.message)
    except ScenarioError as err:
        return _fail(SCENARIO_INVALID, str(err), line=err.line, path=err.path,
                     problems=err.as_dicts())
    except NoProgressError as err:
        return _fail(NO_PROGRESS, str(err))
    except Exception:  # the server must survive anything a client sends
        current_app.logger.exception("handler for %s failed", event)
        return _fail(INTERNAL, "internal error; the session may need sim:reset")


# -- connection lifecycle ----------------------------------------------------------------------
def _emit_to(slot: Slot, event: str, data: Any, callback: Callable | None = None) -> None:
    """Emit to whichever connection holds the session now (none while it is detached)."""
    sid = slot.sid
    if sid is not None:
        socketio.emit(event, data, to=sid, namespace=NAMESPACE, callback=callback)


def _backlog(slot: Slot) -> int:
    """Packets queued for this client but not yet written (0 when unknown)."""
    try:
        server = socketio.server
        sock = server.eio.sockets.get(server.manager.eio_sid_from_sid(slot.sid, NAMESPACE))
        return sock.queue.qsize() if sock is not None else 0
    except Exception:  # internals differ between transports and test clients
        return 0


def _new_session(slot: Slot) -> Session:
    budget = current_app.extensions[BUDGET_KEY]
    budget.admit("session", MAX_HISTORY_EVENTS)  # ProtocolError MEMORY_BUDGET refuses it
    return Session(current_app.config["DEFAULT_SCENARIO"], partial(_emit_to, slot),
                   socketio, partial(_backlog, slot), budget=budget)


@socketio.on("connect")
def on_connect(auth: Any = None) -> bool:
    """Resume the detached session `auth.resume` names, or start a new one.

    A refusal is a Socket.IO connect error whose `data` is the structured error.
    """
    try:
        auth = validate_auth(auth)
        key = auth.get("resume")
        slot, taken_from = _store().attach(request.sid, request.remote_addr or "",
                                           _new_session, key, auth.get("seq", -1))
    except ProtocolError as err:
        raise ConnectionRefusedError(err.message, error(err.code, err.message)) from None
    slot.resumed = slot.resume_from is not None
    slot.resume_error = None
    if key and not slot.resumed:
        slot.resume_error = error(RESUME_EXPIRED, "no session is waiting for that resume key "
                                  "(its window passed); this is a new session")
    if taken_from is not None:
        socketio.emit(EV_ERROR, error(TAKEN_OVER, "another connection resumed this session "
                                      "with its key (a reload or another tab)"),
                      to=taken_from, namespace=NAMESPACE)
        socketio.server.disconnect(taken_from, namespace=NAMESPACE)
    return True


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    _store().detach(request.sid)


# -- client events ------------------------------------------------------------------------------
def _hello(session: Session, args: dict) -> dict:
    if "window" in args:
        session.set_window(args["window"])
    limits = {**LIMITS, "max_history_events": MAX_HISTORY_EVENTS,
              "default_speed": DEFAULT_SPEED, "tick_ms": round(TICK_S * 1000, 1)}
    store = _store()
    slot = store.slot(request.sid)
    if slot is None:  # another connection has just resumed it
        raise ProtocolError(NO_SESSION, "this connection has no session; reconnect")
    resume: dict[str, Any] = {"key": slot.key, "resumed": slot.resumed,
                              "window_s": store.window_s}
    if slot.resume_error is not None:
        resume["error"] = slot.resume_error
    if slot.resume_from is not None:  # first hello after a resume: what the client missed
        from_seq, slot.resume_from = slot.resume_from, None
        resume["sent"] = session.resend(from_seq)
    boot = session.greet()  # a new session: the machine as built and its boot, as a load
    return {"session": session.token, "resume": resume, "boot": boot, "presets": preset_list(),
            "actions": session.sim.actions.names, "kinds": sorted(ALL_KINDS),
            "hypercalls": console_table(),
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


@socketio.on("sim:fork")
def on_fork(payload: Any = None, *extra: Any):
    return respond("sim:fork", payload, extra, lambda s, a: s.fork(a.get("at_seq")))


@socketio.on("sim:events")
def on_events(payload: Any = None, *extra: Any):
    return respond("sim:events", payload, extra,
                   lambda s, a: _captioned(s.events(a["from_seq"], a["count"], a.get("branch"))))


def _captioned(page: dict[str, Any]) -> dict[str, Any]:
    """A page of events with their captions beside them, as in ``sim:trace``."""
    return {**page, "captions": [caption(e) for e in page.get("events", ())]}


@socketio.on("sim:explain")
def on_explain(payload: Any = None, *extra: Any):
    """An event's caption, its "real Gunyah" line and its fields as an engineer reads them."""
    return respond("sim:explain", payload, extra, lambda s, a: explain(a["event"]))


@socketio.on("sim:link")
def on_link(payload: Any = None, *extra: Any):
    return respond("sim:link", payload, extra, lambda s, a: s.link())


def _open_lesson(session: Session, args: dict) -> dict:
    """Load a shipped lesson's run at the start of step ``step`` (default 1): its action
    log replayed through the previous step's last event, every earlier step's events
    revealed (a link, as ``sim:load {actions, through_seq}``). The ack carries the plan."""
    name, step = args["lesson"], args.get("step", 1)
    files = [entry["file"] for entry in lesson_list()]
    if name not in files:
        raise ProtocolError(UNKNOWN_LESSON, f"lesson: no lesson named {name[:60]!r}; "
                                            f"lessons: {', '.join(files)}", "lesson")
    try:
        plan = lesson_plan(name)
    except ScenarioError as err:
        raise ProtocolError(LESSON_INVALID, f"lesson: {err}", "lesson") from None
    steps = plan["steps"]
    if step > len(steps):
        raise ProtocolError(INVALID_ARGUMENT, f"step: {plan['title']!r} has steps 1 to "
                                              f"{len(steps)}, not {step}", "step")
    source = ({"scenario": plan["scenario"]} if plan["scenario"] is not None
              else {"text": plan["scenario_text"], "filename": name})
    if step == 1:
        loaded = session.load(**source, seed=plan["seed"])
    else:
        loaded = session.load(**source, seed=plan["seed"], actions=steps[step - 1]["actions"],
                              through_seq=steps[step - 2]["last_seq"])
    return {**loaded, "lesson": name, "step": step, "plan": plan}


@socketio.on("sim:lesson")
def on_lesson(payload: Any = None, *extra: Any):
    return respond("sim:lesson", payload, extra, _open_lesson)


@socketio.on("sim:snapshot")
def on_snapshot(payload: Any = None, *extra: Any):
    return respond("sim:snapshot", payload, extra, lambda s, a: {"snapshot": s.snapshot()})


@socketio.on(BAD_PACKET_EVENT)
def on_bad_packet(reason: Any = None, *extra: Any):
    return _fail(BAD_PACKET, str(reason))


@socketio.on("*")
def on_unknown(event: Any, *args: Any):
    return _fail(UNKNOWN_EVENT, f"unknown event {str(event)[:100]!r}")
