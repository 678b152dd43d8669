"""The web layer: a Flask app and a Socket.IO server in front of gunyah_core.

`create_app()` builds the app; `socketio` is the one Socket.IO extension object. Each
connection owns one Session (webapp/session.py); handlers.py translates events into
Session calls; http.py serves the page, presets, schema and trace exports.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_socketio import SocketIO

from .packets import TolerantPacket
from .protocol import MAX_TRANSPORT_BYTES
from .security import HostGuard

DEFAULT_SCENARIO = "msgq-pingpong"
DEFAULT_ASYNC_MODE = "threading"  # app.py passes eventlet; tests stay unpatched
EXTENSION_KEY = "gunyah"
HOST_GUARD_KEY = "gunyah.host_guard"
BUDGET_KEY = "gunyah.budget"

socketio = SocketIO()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """A configured app. Config keys: DEFAULT_SCENARIO, ASYNC_MODE, ALLOWED_HOSTS (Host
    names accepted besides loopback; "*" = any), and the connection limits MAX_SESSIONS,
    MAX_CLIENT_SESSIONS, MAX_DETACHED, RESUME_WINDOW_S, and MEMORY_BUDGET_BYTES
    (history kept by all sessions together, webapp/budget.py) (docs/limits.md)."""
    from . import handlers, http  # noqa: F401  (registers the Socket.IO handlers)
    from .budget import MEMORY_BUDGET_BYTES, MemoryBudget
    from .store import (
        MAX_CLIENT_SESSIONS,
        MAX_DETACHED,
        MAX_SESSIONS,
        RESUME_WINDOW_S,
        SessionStore,
    )

    app = Flask(__name__, root_path=_repo_root(),
                template_folder="templates", static_folder="static")
    app.config.update(DEFAULT_SCENARIO=DEFAULT_SCENARIO, ASYNC_MODE=DEFAULT_ASYNC_MODE,
                      MAX_SESSIONS=MAX_SESSIONS, MAX_CLIENT_SESSIONS=MAX_CLIENT_SESSIONS,
                      MAX_DETACHED=MAX_DETACHED, RESUME_WINDOW_S=RESUME_WINDOW_S,
                      ALLOWED_HOSTS=[], MEMORY_BUDGET_BYTES=MEMORY_BUDGET_BYTES)
    app.config.update(config or {})
    app.extensions[EXTENSION_KEY] = SessionStore(
        socketio, app.config["MAX_SESSIONS"], app.config["MAX_CLIENT_SESSIONS"],
        app.config["MAX_DETACHED"], app.config["RESUME_WINDOW_S"])
    app.extensions[BUDGET_KEY] = MemoryBudget(app.config["MEMORY_BUDGET_BYTES"])
    app.register_blueprint(http.bp)
    # Handlers run in the connection's own reader, in arrival order: a spawned task would wait
    # for the next round of the event loop before it even began (about half of an ack's
    # wait under load, benchmarks/bench_load.py), and two events of one viewer could race.
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], async_handlers=False,
                      max_http_buffer_size=MAX_TRANSPORT_BYTES, serializer=TolerantPacket)
    handlers.track_acks(socketio.server)
    guard = HostGuard(app.wsgi_app, app.config["ALLOWED_HOSTS"])  # in front of Engine.IO too
    app.wsgi_app = guard
    app.extensions[HOST_GUARD_KEY] = guard
    return app


def _repo_root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent)
