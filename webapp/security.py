"""Web security defaults of a local server: which Host it answers to, and response headers.

A page on another site can make a browser talk to a loopback server by pointing its own
DNS name at 127.0.0.1 (DNS rebinding); the browser then thinks the server is that site
and sends its Host name. So every request (the page, the API and Socket.IO alike) must
name a host this server was started for, else 403 HOST_NOT_ALLOWED. The guard wraps the
whole WSGI app, in front of Engine.IO, so Socket.IO is covered too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # listen addresses no client types as a Host
ANY_HOST = "*"                           # in ALLOWED_HOSTS: turn the check off
HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
HTTP_FORBIDDEN = "403 Forbidden"

#: Sent with every response the app (and Engine.IO's polling transport) makes. The page
#: has no inline script or style: everything comes from /static (script-src 'self').
SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
     "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


def split_host(header: str) -> tuple[str, int | None]:
    """`name[:port]` or `[v6]:port` -> (lower-case name without brackets, port or None)."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif header.count(":") == 1:
        name, _, port = header.partition(":")
    else:
        name, port = header, ""
    if port and not port.isdigit():
        return "", None
    return name.rstrip("."), int(port) if port else None


class HostGuard:
    """WSGI middleware: refuse unknown Host names; add SECURITY_HEADERS to responses."""

    def __init__(self, app: Callable, hosts: Iterable[str]) -> None:
        self.app = app
        names = [split_host(h)[0] if h not in WILDCARD_HOSTS else "" for h in hosts]
        self.any = ANY_HOST in hosts
        self.hosts = frozenset(LOOPBACK_HOSTS) | {n for n in names if n}
        self.port: int | None = None  # the port listened on, once known (app.py sets it)

    def allows(self, header: str) -> bool:
        if self.any:
            return True
        name, port = split_host(header)
        return name in self.hosts and (self.port is None or port in (None, self.port))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "")
        if not self.allows(host):
            body = json.dumps({"ok": False, "error": {
                "code": HOST_NOT_ALLOWED,
                "message": f"this server does not answer to Host {host[:100]!r}; it answers to "
                           f"{', '.join(sorted(self.hosts))} (add names with --allow-host)"}})
            start_response(HTTP_FORBIDDEN, [("Content-Type", "application/json"),
                                            ("Content-Length", str(len(body))),
                                            *SECURITY_HEADERS])
            return [body.encode()]

        def start(status: str, headers: list, exc_info: Any = None) -> Callable:
            present = {name.lower() for name, _ in headers}
            headers = [*headers, *((k, v) for k, v in SECURITY_HEADERS if k.lower() not in present)]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
