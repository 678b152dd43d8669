"""HTTP routes: the page, its icon, preset and schema lists, and trace downloads.

Exports are of the REVEALED trace of a live session, named by the token from the
sim:hello ack (not the Socket.IO sid, which other clients may learn).
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from jinja2 import TemplateNotFound

from gunyah_core import load, preset_names
from gunyah_core.exporters import EXPORTERS, TimelineError, iter_jsonl
from gunyah_core.rm import messages as rm_messages
from gunyah_core.scenario import schema

from .protocol import LESSON_INVALID, UNKNOWN_LESSON

bp = Blueprint("http", __name__)

PAGE_TEMPLATE = "index.html"
ICON_FILES = (("favicon.ico", "image/x-icon"), ("favicon.svg", "image/svg+xml"))
# Shown until the page template exists; the protocol works without it.
FALLBACK_PAGE = ("<!doctype html><html lang=en><meta charset=utf-8>"
                 "<title>Gunyah simulator</title><p>Gunyah simulator server is running. "
                 "The page template is missing.</p></html>")
FALLBACK_ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
                 '<rect width="16" height="16" rx="3" fill="#1d4e89"/>'
                 '<text x="8" y="12" font-size="11" text-anchor="middle" fill="#fff">G</text>'
                 '</svg>')
HTTP_NOT_FOUND = 404
HTTP_BAD_REQUEST = 400
HTTP_FORBIDDEN = 403
WRITE_KEY_HEADER = "X-Gunyah-Key"
CROSS_ORIGIN = "CROSS_ORIGIN"
WRITE_KEY_REQUIRED = "WRITE_KEY_REQUIRED"
BAD_WRITE_KEY = "BAD_WRITE_KEY"
MAX_IMPORT_BYTES = 32 * 1024 * 1024  # an uploaded JSONL timeline
UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@lru_cache(maxsize=1)
def preset_list() -> list[dict[str, Any]]:
    """Every preset's name, title and description (parsed once per process)."""
    out = []
    for name in preset_names():
        config = load(name).config
        out.append({"name": name, "title": config.get("title", name),
                    "description": config.get("description", "")})
    return out


def _not_found(code: str, message: str) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": {"code": code, "message": message}}), HTTP_NOT_FOUND


@bp.get("/")
def index():
    try:
        return render_template(PAGE_TEMPLATE,
                               default_scenario=current_app.config["DEFAULT_SCENARIO"])
    except TemplateNotFound:
        return FALLBACK_PAGE


@bp.get("/favicon.ico")
def favicon():
    static = Path(current_app.static_folder or "")
    for name, media_type in ICON_FILES:
        if (static / name).is_file():
            return Response((static / name).read_bytes(), mimetype=media_type)
    return Response(FALLBACK_ICON, mimetype="image/svg+xml")


@bp.get("/api/presets")
def presets():
    return jsonify(preset_list())


@lru_cache(maxsize=1)
def rm_names() -> dict[str, dict[str, str]]:
    """Names of RM message ids, error codes and enums, from the model's own tables.

    The page's packet decoder reads these instead of keeping a copy of the RM headers.
    Keys are decimal strings (JSON object keys), values the RM's names.
    """
    def table(enum) -> dict[str, str]:
        return {str(int(member)): member.name for member in enum}

    return {
        "messages": table(rm_messages.RmMessageId),
        "errors": table(rm_messages.RmError),
        "exit_types": table(rm_messages.VmExitType),
        "exit_codes": table(rm_messages.VmExitCode),
        "vm_states": table(rm_messages.VmState),
        "os_states": table(rm_messages.VmOsStatus),
        "packet_types": table(rm_messages.RpcType),
        "resource_types": table(rm_messages.ResourceType),
        "auth_types": table(rm_messages.VmAuthType),
    }


@bp.get("/api/rm-names")
def rm_names_route():
    return jsonify(rm_names())


LESSON_DIR = Path(__file__).resolve().parents[1] / "lessons"


@lru_cache(maxsize=1)
def lesson_list() -> list[dict[str, Any]]:
    """The shipped lessons (docs/teaching.md), read once per process."""
    from gunyah_core.teaching.lessons import lesson_index
    return lesson_index(LESSON_DIR)


@lru_cache(maxsize=64)
def lesson_plan(name: str) -> dict[str, Any]:
    from gunyah_core.teaching.lessons import page_plan
    return page_plan(str(LESSON_DIR / name))


@bp.get("/api/lessons")
def lessons():
    return jsonify(lesson_list())


@bp.get("/api/lessons/<name>")
def lesson(name: str):
    """One lesson's plan for the page's player; only a listed file name, never a path."""
    from gunyah_core.scenario import ScenarioError
    if name not in {entry["file"] for entry in lesson_list()}:
        return _not_found(UNKNOWN_LESSON, f"no lesson named {name[:60]!r}")
    try:
        return jsonify(lesson_plan(name))
    except ScenarioError as err:
        return _not_found(LESSON_INVALID, str(err))


@bp.get("/api/scenario-schema")
def scenario_schema():
    return jsonify(schema())


@bp.get("/export/<token>.<fmt>")
def export_trace(token: str, fmt: str):
    from . import EXTENSION_KEY

    if fmt not in EXPORTERS:
        return _not_found("UNKNOWN_FORMAT", f"unknown format {fmt!r}; "
                                            f"formats: {', '.join(EXPORTERS)}")
    slot = current_app.extensions[EXTENSION_KEY].by_token(token)
    if slot is None:
        return _not_found("UNKNOWN_SESSION", "no live session with that token")
    session = slot.session
    _count, pieces = session.export_stream(fmt)  # written while sent, pausing between pieces
    writer = EXPORTERS[fmt]
    stem = UNSAFE_FILENAME_CHARS.sub("_", session.sim.scenario.name) or "scenario"
    filename = f"{stem}-trace.{writer.extension}"
    return Response(pieces, mimetype=writer.media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/import/<token>")
def import_timeline(token: str):
    """Upload a JSONL timeline to replay in that session (read-only, no model).

    It replaces the session's run, so it needs more than the export token (which is in
    download URLs): the session's key in the X-Gunyah-Key header, from a page of this
    origin. A cross-origin page cannot set that header without a CORS preflight, which
    this server never grants.
    """
    from . import EXTENSION_KEY
    from .protocol import ProtocolError

    slot = current_app.extensions[EXTENSION_KEY].by_token(token)
    if slot is None:
        return _not_found("UNKNOWN_SESSION", "no live session with that token")
    refused = _write_refused(slot.key)
    if refused is not None:
        return refused
    session = slot.session
    if (request.content_length or 0) > MAX_IMPORT_BYTES:
        return _bad("TOO_LARGE", f"a timeline may be at most {MAX_IMPORT_BYTES} bytes")
    try:
        events = iter_jsonl(request.get_data(cache=False), max_bytes=MAX_IMPORT_BYTES)
        result = session.import_timeline(events, request.args.get("name", "timeline.jsonl"))
    except TimelineError as err:
        return _bad("INVALID_TIMELINE", str(err))
    except ProtocolError as err:
        return _bad(err.code, err.message)
    return jsonify({"ok": True, "events": result["events"]})


def _write_refused(key: str) -> tuple[Response, int] | None:
    """403 unless the request is same-origin and carries the session's write key."""
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if (origin is not None and origin != request.host_url.rstrip("/")) or \
            site not in (None, "same-origin", "none"):
        return _forbidden(CROSS_ORIGIN, "a session can only be written from its own page "
                                        f"(Origin {str(origin)[:100]!r})")
    given = request.headers.get(WRITE_KEY_HEADER)
    if not given:
        return _forbidden(WRITE_KEY_REQUIRED, f"give the session key (the sim:hello ack's "
                                              f"resume.key) in the {WRITE_KEY_HEADER} header")
    if not secrets.compare_digest(given.encode(), key.encode()):
        return _forbidden(BAD_WRITE_KEY, f"{WRITE_KEY_HEADER} is not this session's key")
    return None


def _forbidden(code: str, message: str) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": {"code": code, "message": message}}), HTTP_FORBIDDEN


@bp.get("/api/sessions")
def sessions():
    """How many sessions exist (connected, detached) and the limits on them."""
    from . import EXTENSION_KEY

    store = current_app.extensions[EXTENSION_KEY]
    return jsonify({**store.counts(), "limits": store.limits()})


def _bad(code: str, message: str) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": {"code": code, "message": message}}), HTTP_BAD_REQUEST
