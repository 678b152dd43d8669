"""SessionStore's bounds and resume window on a fake clock (no server, no sleeping)."""

from __future__ import annotations

import itertools

import pytest

from webapp.protocol import SERVER_FULL, TOO_MANY_CONNECTIONS, ProtocolError
from webapp.store import SessionStore


class FakeSession:
    _ids = itertools.count()

    def __init__(self) -> None:
        self.token = f"export-{next(self._ids)}"
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class FakeTasks:
    """Records reaper starts instead of running them; the tests sweep with expire()."""

    def __init__(self) -> None:
        self.started = 0

    def start_background_task(self, fn) -> None:
        self.started += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(**limits) -> tuple[SessionStore, Clock]:
    clock = Clock()
    return SessionStore(FakeTasks(), clock=clock, **limits), clock


def connect(s: SessionStore, sid: str, address: str = "10.0.0.1", key: str | None = None):
    slot, _taken = s.attach(sid, address, lambda slot: FakeSession(), key)
    return slot


def test_a_detached_session_waits_for_its_window_then_is_freed():
    s, clock = store(window_s=60)
    slot = connect(s, "a")
    s.detach("a")
    assert s.counts() == {"sessions": 1, "connected": 0, "detached": 1}
    assert slot.session.closed == 1  # paused
    clock.now += 59.9
    s.expire()
    assert s.by_token(slot.session.token) is slot
    clock.now += 0.2
    s.expire()
    assert s.counts()["sessions"] == 0 and s.by_token(slot.session.token) is None
    assert connect(s, "b", key=slot.key).session is not slot.session  # too late: a new one


def test_resuming_gives_the_same_session_back_and_it_is_no_longer_detached():
    s, clock = store()
    slot = connect(s, "a")
    s.detach("a")
    clock.now += 30
    again = connect(s, "b", key=slot.key)
    assert again is slot and slot.sid == "b" and s.get("b") is slot.session
    assert s.counts() == {"sessions": 1, "connected": 1, "detached": 0}


def test_no_window_frees_at_once():
    s, _ = store(window_s=0)
    slot = connect(s, "a")
    s.detach("a")
    assert s.counts()["sessions"] == 0 and slot.session.closed >= 1


def test_beyond_max_detached_the_oldest_detached_is_freed():
    s, clock = store(max_detached=2)
    slots = [connect(s, sid) for sid in "abc"]
    for sid in "abc":
        clock.now += 1
        s.detach(sid)
    assert s.counts() == {"sessions": 2, "connected": 0, "detached": 2}
    assert s.by_token(slots[0].session.token) is None
    assert all(s.by_token(x.session.token) is x for x in slots[1:])


def test_the_client_limit_frees_that_clients_oldest_detached_session_first():
    s, clock = store(max_client=2)
    other = connect(s, "o", address="10.0.0.2")
    s.detach("o")
    mine = [connect(s, "a"), connect(s, "b")]
    with pytest.raises(ProtocolError) as err:
        connect(s, "c")
    assert err.value.code == TOO_MANY_CONNECTIONS and "limit 2" in err.value.message
    s.detach("a")
    connect(s, "c")  # frees "a" (this client's), not "o" (another client's)
    assert s.by_token(mine[0].session.token) is None
    assert s.by_token(other.session.token) is other


def test_the_server_limit_frees_any_detached_session_then_refuses():
    s, _ = store(max_sessions=2)
    first = connect(s, "a", address="10.0.0.2")
    connect(s, "b")
    s.detach("a")
    connect(s, "c")  # frees the detached one
    assert s.by_token(first.session.token) is None
    with pytest.raises(ProtocolError) as err:
        connect(s, "d")
    assert err.value.code == SERVER_FULL


def test_resuming_a_held_session_takes_it_from_the_old_connection():
    s, _ = store()
    slot = connect(s, "a")
    again, taken = s.attach("b", "10.0.0.1", lambda slot: FakeSession(), slot.key)
    assert again is slot and taken == "a" and s.get("a") is None and slot.session.closed == 1
    s.detach("a")  # the old connection's disconnect changes nothing
    assert s.counts() == {"sessions": 1, "connected": 1, "detached": 0}


def test_the_reaper_starts_once_per_busy_period():
    s, _ = store()
    for sid in "ab":
        connect(s, sid)
        s.detach(sid)
    assert s._tasks.started == 1


@pytest.mark.parametrize("option", ["--max-sessions", "--max-client-sessions",
                                    "--max-detached", "--resume-window"])
def test_app_refuses_a_negative_limit(option, capsys):
    import app

    assert app.main(["--port", "0", "--async-mode", "threading", option, "-1"]) == 2
    assert option in capsys.readouterr().err


def test_what_start_up_made_is_left_out_of_garbage_collections(monkeypatch):
    """Modules, the app and its schemas live as long as the server: frozen out of the
    collector, a full collection under load scans half as much."""
    import gc

    import app

    frozen = []
    monkeypatch.setattr(app, "serve_threading",
                        lambda *_args: frozen.append(gc.get_freeze_count()))
    try:
        assert app.main(["--port", "0", "--async-mode", "threading"]) == 0
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 10_000
