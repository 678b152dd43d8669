"""Run the Gunyah simulator web server.

    python app.py [--host 127.0.0.1] [--port 5000] [--async-mode eventlet|threading]
                  [--scenario msgq-pingpong] [--allow-host NAME ...]
                  [--max-sessions 64] [--max-client-sessions 16] [--max-detached 16]
                  [--resume-window 60]

Port 0 picks a free port. Once listening, exactly one line `Serving on http://HOST:PORT`
goes to stdout. eventlet is the default; threading is the fallback (simple-websocket).
"""

from __future__ import annotations

import argparse
import gc
import socket
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
ASYNC_MODES = ("eventlet", "threading")
LISTEN_BACKLOG = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Gunyah hypervisor simulator server")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 = any free port")
    parser.add_argument("--async-mode", choices=ASYNC_MODES, default=ASYNC_MODES[0])
    parser.add_argument("--scenario", default=None,
                        help="preset name or scenario file each new session starts with "
                             "(default: msgq-pingpong)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a further Host header name to accept (repeatable); loopback "
                             "names and --host are always accepted")
    limits = parser.add_argument_group("connection limits (docs/limits.md)")
    limits.add_argument("--max-sessions", type=int, default=None, metavar="N",
                        help="sessions in all, connected or waiting to be resumed (64)")
    limits.add_argument("--max-client-sessions", type=int, default=None, metavar="N",
                        help="sessions per client address (16)")
    limits.add_argument("--max-detached", type=int, default=None, metavar="N",
                        help="dropped sessions kept for resuming (16)")
    limits.add_argument("--resume-window", type=float, default=None, metavar="SECONDS",
                        help="how long a dropped session waits to be resumed (60)")
    return parser.parse_args(argv)


LIMIT_OPTIONS = {"max_sessions": "MAX_SESSIONS", "max_client_sessions": "MAX_CLIENT_SESSIONS",
                 "max_detached": "MAX_DETACHED", "resume_window": "RESUME_WINDOW_S"}


def app_config(args: argparse.Namespace) -> dict:
    """The app config the command line asks for (limits left out keep their defaults)."""
    config = {"DEFAULT_SCENARIO": args.scenario, "ASYNC_MODE": args.async_mode,
              "ALLOWED_HOSTS": [args.host, *args.allow_host]}
    for option, key in LIMIT_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            if value < 0:
                raise ValueError(f"--{option.replace('_', '-')} must be 0 or more")
            config[key] = value
    return config


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _announce(app, host: str, port: int) -> None:
    from webapp import HOST_GUARD_KEY

    app.extensions[HOST_GUARD_KEY].port = port  # Host headers must name this port
    print(f"Serving on {_url(host, port)}", flush=True)


def serve_eventlet(app, host: str, port: int) -> None:
    import eventlet
    import eventlet.wsgi

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = eventlet.listen((host, port), family=family, backlog=LISTEN_BACKLOG)
    # Inherited by accepted sockets: acks must not wait behind Nagle while streaming.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _announce(app, host, sock.getsockname()[1])
    eventlet.wsgi.server(sock, app, log_output=False)


def serve_threading(app, host: str, port: int) -> None:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
    server = make_server(host, port, app, threaded=True)
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _announce(app, host, server.server_port)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.async_mode == "eventlet":
        import warnings

        # Known and accepted (see README): eventlet is in maintenance mode.
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
    from gunyah_core import ScenarioError, load
    from webapp import DEFAULT_SCENARIO, create_app
    from webapp.security import WILDCARD_HOSTS

    args.scenario = args.scenario or DEFAULT_SCENARIO
    try:
        load(args.scenario)
    except ScenarioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        app = create_app(app_config(args))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # What start-up made (modules, the app, schemas: about 70,000 objects) lives as long
    # as the server: out of every collection, a full one costs half as much (under load
    # they came every few seconds and held the event loop about 80 ms each).
    gc.collect()
    gc.freeze()
    if args.host in WILDCARD_HOSTS and not args.allow_host:
        print(f"note: listening on {args.host} but answering only to loopback names; add "
              "--allow-host NAME for the name or address other machines use", file=sys.stderr)
    serve = serve_eventlet if args.async_mode == "eventlet" else serve_threading
    try:
        serve(app, args.host, args.port)
    except KeyboardInterrupt:
        pass
    except (OSError, OverflowError) as err:  # port in use, out of range, bad host
        print(f"error: cannot serve on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
