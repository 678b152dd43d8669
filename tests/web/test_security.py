"""Web security defaults: Host allowlist (DNS rebinding), response headers, no inline
script or style, and who may replace a session's run with POST /import."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
import requests
from test_socket import call

from webapp import create_app

HTTP_TIMEOUT_S = 10
TIMELINE = json.dumps({"seq": 0, "t": 0, "kind": "sim.snapshot", "scenario": {},
                       "state": {"vms": []}})


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "127.0.0.1.evil.example",
                                  "localhost:5000@evil.example", ""])
@pytest.mark.parametrize("path", ["/", "/api/presets", "/socket.io/?EIO=4&transport=polling"])
def test_a_request_for_another_host_is_refused(app, host, path):
    resp = app.test_client().get(path, headers={"Host": host})
    assert resp.status_code == 403 and resp.json["error"]["code"] == "HOST_NOT_ALLOWED"


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000", "[::1]:5000", "LOCALHOST",
                                  "lab-pc.local:5000"])
def test_loopback_names_and_configured_hosts_are_served(host):
    app = create_app({"TESTING": True, "ALLOWED_HOSTS": ["lab-pc.local"]})
    assert app.test_client().get("/api/presets", headers={"Host": host}).status_code == 200


def test_the_live_server_checks_host_and_port(live_server):
    port = live_server.rsplit(":", 1)[1]
    for host, status in [(f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200),
                         (f"attacker.example:{port}", 403), ("127.0.0.1:1", 403)]:
        for path in ("/", "/socket.io/?EIO=4&transport=polling"):
            resp = requests.get(live_server + path, headers={"Host": host},
                                timeout=HTTP_TIMEOUT_S)
            assert resp.status_code == status, (host, path)


@pytest.mark.parametrize("path", ["/", "/static/js/main.js", "/api/presets", "/nowhere"])
def test_every_response_carries_the_security_headers(app, path):
    with app.test_client().get(path) as resp:
        headers = resp.headers
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                      "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style elements/attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        if "style" in names or any(a.startswith("on") for a in names):
            self.found.append(f"<{tag}> attribute {sorted(names)}")


def test_the_page_has_no_inline_script_or_style(app):
    parser = _Inline()
    parser.feed(app.test_client().get("/").get_data(as_text=True))
    assert parser.found == []


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "WRITE_KEY_REQUIRED"),
    ({"X-Gunyah-Key": "not-the-key"}, "BAD_WRITE_KEY"),
    ({"X-Gunyah-Key": "{key}", "Origin": "http://evil.example"}, "CROSS_ORIGIN"),
    ({"X-Gunyah-Key": "{key}", "Sec-Fetch-Site": "cross-site"}, "CROSS_ORIGIN"),
    ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, "CROSS_ORIGIN"),
])
def test_import_needs_the_session_key_from_the_same_origin(app, socketio_client, headers, code):
    hello = call(socketio_client, "sim:hello")
    token, key = hello["session"], hello["resume"]["key"]
    headers = {k: v.format(key=key) for k, v in headers.items()}
    resp = app.test_client().post(f"/import/{token}", data=TIMELINE, headers=headers)
    assert resp.status_code == 403 and resp.json["error"]["code"] == code
    # The export token alone changed nothing: the session still runs its model.
    ack = call(socketio_client, "sim:action", {"action": "vm_stop", "args": {"vm": "VM_B"}})
    assert ack["ok"] is True


def test_socketio_refuses_a_page_of_another_origin(live_server):
    """A page elsewhere may reach the right Host (it is the user's browser) but names its
    own Origin: Engine.IO's same-origin check refuses it before any session exists."""
    url = f"{live_server}/socket.io/?EIO=4&transport=polling"
    assert requests.get(url, headers={"Origin": live_server}, timeout=HTTP_TIMEOUT_S).ok
    resp = requests.get(url, headers={"Origin": "http://evil.example"}, timeout=HTTP_TIMEOUT_S)
    assert resp.status_code == 400
