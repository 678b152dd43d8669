"""Sessions playing at once take turns (webapp/pacer.py): round robin, a bounded time
between two yields to the event loop whatever the number of players, and a session busy
elsewhere is passed over, never waited for. Time is a fake clock: no timing here."""

from __future__ import annotations

from webapp import pacer as pacer_mod
from webapp import session as session_mod
from webapp.pacer import Pacer
from webapp.session import Session


class Tasks:
    def sleep(self, _seconds: float) -> None:
        return None

    def start_background_task(self, *_args) -> None:
        return None  # the tests run the pacer's cycles themselves


class Clock:
    """Moves on by ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def players(count: int, clock) -> tuple[Pacer, list[Session], list[int]]:
    """``count`` sessions playing at speed max; ``served`` lists who sent each batch."""
    tasks = Tasks()
    pacer = Pacer(tasks, clock)
    served: list[int] = []
    sessions = []
    for index in range(count):
        def emit(event, data, callback=None, index=index):
            if event == "sim:trace":
                served.append(index)
        session = Session("msgq-pingpong", emit, tasks, clock=clock, pacer=pacer)
        session.set_speed("max")
        session.play()
        sessions.append(session)
    return pacer, sessions, served


def test_one_player_gets_a_whole_tick():
    # A clock that stands still: the turn ends on its event budget, never on time.
    pacer, sessions, served = players(1, lambda: 0.0)
    pacer.cycle()
    assert served == [0]
    assert sessions[0].revealed == session_mod.TICK_BUDGET_EVENTS


def test_many_players_take_turns_in_round_robin_within_a_bounded_cycle():
    clock = Clock(step=20e-6)  # each read of the clock: 20 us of work
    pacer, _sessions, served = players(64, clock)
    cycles = []
    while len(served) < 3 * 64:
        start = clock.now
        before = len(served)
        pacer.cycle()
        cycles.append((clock.now - start, len(served) - before))
    # Every player once before any twice, and the next cycle goes on where one stopped.
    assert served[:3 * 64] == list(range(64)) * 3
    # A cycle serves a few players, not all 64, and ends near its budget: the time
    # between two looks at the sockets does not grow with the number of players.
    longest_turn = pacer_mod.MIN_TURN_S + 0.002  # a turn ends after its deadline's step
    assert all(took <= pacer_mod.CYCLE_BUDGET_S + longest_turn for took, _n in cycles)
    assert max(n for _took, n in cycles) < 64


def test_a_session_busy_elsewhere_is_passed_over_not_waited_for():
    pacer, sessions, served = players(3, lambda: 0.0)
    with sessions[1]._lock:  # e.g. a fork replaying on that session
        pacer.cycle()
    assert served == [0, 2]
    pacer.cycle()
    assert served == [0, 2, 0, 1, 2]


def test_a_player_that_stops_leaves_the_rounds():
    pacer, sessions, served = players(2, lambda: 0.0)
    sessions[0].pause()
    pacer.cycle()
    pacer.cycle()
    assert served == [1, 1]
