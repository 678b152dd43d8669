"""Shared web fixtures: the Flask app, a Socket.IO test client, and a live server.

`live_server` starts `python app.py --port 0` as a real process (eventlet by default;
parametrize it indirectly with "threading", or use `live_server_threading`) and yields
its base URL, e.g. "http://127.0.0.1:41234". Browser tests and real-client tests use it.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVING_PREFIX = "Serving on "
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
DEFAULT_ASYNC_MODE = "eventlet"
if str(REPO_ROOT) not in sys.path:  # `pytest` run without `python -m`
    sys.path.insert(0, str(REPO_ROOT))


def _read_serving_line(proc: subprocess.Popen[str], deadline: float) -> str:
    """Wait for the one `Serving on URL` line; fail with the server's stderr otherwise."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = proc.stdout.readline()
            if not line:
                break  # EOF: the server exited
            if line.startswith(SERVING_PREFIX):
                return line[len(SERVING_PREFIX):].strip()
    raise RuntimeError("server did not print its 'Serving on' line")


def start_server(async_mode: str = DEFAULT_ASYNC_MODE,
                 extra_args: tuple[str, ...] = (), log_path: Path | None = None) -> Iterator[str]:
    """Run app.py on a free loopback port; yield its base URL; stop it afterwards.
    With ``log_path``, the server's stderr (its log) is written there to be read."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(log_path, "w+") if log_path else tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    with log as errlog:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", "0",
             "--async-mode", async_mode, *extra_args],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=errlog, text=True, env=env)
        try:
            try:
                url = _read_serving_line(proc, time.monotonic() + START_TIMEOUT_S)
            except RuntimeError as exc:
                proc.kill()
                proc.wait()
                errlog.seek(0)
                raise RuntimeError(f"{exc}; stderr:\n{errlog.read()[-4000:]}") from None
            yield url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


@pytest.fixture(autouse=True)
def python_sigpipe_default() -> None:
    """Keep Python's SIGPIPE handling (ignored, raised as BrokenPipeError): vcdvcd resets
    it to the default at import, which would let a write to a closed socket kill pytest."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)


@pytest.fixture(scope="module")
def live_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of a real server process; async mode from `request.param` (default eventlet)."""
    yield from start_server(getattr(request, "param", DEFAULT_ASYNC_MODE))


@pytest.fixture(scope="module")
def live_server_threading() -> Iterator[str]:
    """Base URL of a real server process in threading mode."""
    yield from start_server("threading")


@pytest.fixture
def app():
    """The Flask app in TESTING mode (threading async mode, no monkey patching)."""
    from webapp import create_app

    return create_app({"TESTING": True})


@pytest.fixture
def socketio_client(app):
    """A connected Flask-SocketIO test client; disconnected (pacing stopped) at teardown."""
    from webapp import socketio

    client = socketio.test_client(app)
    yield client
    if client.is_connected():
        client.disconnect()
