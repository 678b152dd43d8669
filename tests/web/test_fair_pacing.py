"""Sessions playing at once share one tick's budget, so an ack never waits behind every
session's full tick (under eventlet they all run before the sockets are read again)."""

from __future__ import annotations

import weakref

from webapp import session as session_mod
from webapp.session import Session


class Tasks:
    def sleep(self, _seconds: float) -> None:
        return None

    def start_background_task(self, *_args) -> None:
        return None


def batches_of_one_tick(players: int, monkeypatch) -> list[int]:
    monkeypatch.setattr(session_mod, "_PLAYING", weakref.WeakSet())
    sizes: list[int] = []

    def emit(event, data, callback=None):
        if event == "sim:trace":
            sizes.append(len(data["events"]))

    # A clock that stands still: the tick ends on its event budget, never on time.
    sessions = [Session("msgq-pingpong", emit, Tasks(), clock=lambda: 0.0)
                for _ in range(players)]
    for session in sessions:
        session.set_speed("max")
        session.play()
    sessions[0]._tick(sessions[0]._clock())
    return sizes


def test_one_player_gets_the_whole_tick(monkeypatch):
    assert batches_of_one_tick(1, monkeypatch) == [session_mod.TICK_BUDGET_EVENTS]


def test_many_players_share_the_tick(monkeypatch):
    players = 8
    assert batches_of_one_tick(players, monkeypatch) == [
        max(session_mod.MIN_TICK_BUDGET_EVENTS, session_mod.TICK_BUDGET_EVENTS // players)]
