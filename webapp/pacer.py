"""One pacing loop for every playing session: fair turns, and a bounded time between two
looks at the sockets.

Under eventlet every greenlet runs in one thread: the hub runs each greenlet that is due,
then reads the sockets, then again. A pacing task per session made one hub round cost
every player's whole tick, so with 64 playing an ack waited for 64 ticks (seconds). Here
a single task gives the playing sessions turns in round robin, at most
``CYCLE_BUDGET_S`` of them between two yields; the next round starts with the session
after the last one served, so every player gets the same share however many there are.
A session busy with other work (a fork, an export) is skipped, never waited for.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

CYCLE_BUDGET_S = 0.010   # pacing work between two yields to the event loop
MIN_TURN_S = 0.001       # one session's turn at least this long (its batch is worth sending)
IDLE_SLEEP_S = 0.050     # at most this long asleep when no session is due (play wakes it)


class Player(Protocol):
    """What the pacer needs of a session (webapp/session.py)."""

    playing: bool
    due: float  # wall time of its next turn

    def turn(self, now: float, deadline: float) -> None: ...


class Pacer:
    """Turns for the playing sessions of one server (one Socket.IO object)."""

    def __init__(self, tasks: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._tasks, self._clock = tasks, clock
        self._queue: deque[Player] = deque()  # the next to serve first
        self._lock = threading.Lock()
        self._running = False

    def add(self, session: Player) -> None:
        """Give a session turns from now on (until it stops playing)."""
        with self._lock:
            if session not in self._queue:
                self._queue.append(session)
            if self._running:
                return
            self._running = True
        self._tasks.start_background_task(self._loop)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._running = False
                    return
            self._tasks.sleep(self.cycle())

    def cycle(self) -> float:
        """Serve due sessions in turn for at most CYCLE_BUDGET_S (each at most once, each
        turn at least MIN_TURN_S); the seconds until the next is due (0: one is now)."""
        start = self._clock()
        turn_s = max(MIN_TURN_S, CYCLE_BUDGET_S / max(1, len(self._queue)))
        for _ in range(len(self._queue)):
            now = self._clock()
            if now - start >= CYCLE_BUDGET_S:
                break
            with self._lock:
                if not self._queue:
                    break
                session = self._queue.popleft()
                if not session.playing:
                    continue  # stopped: dropped (play() adds it again)
                self._queue.append(session)
            if session.due <= now:
                session.turn(now, now + turn_s)
        with self._lock:
            if not self._queue:
                return 0.0
            due = min(s.due for s in self._queue)
        return min(IDLE_SLEEP_S, max(0.0, due - self._clock()))


# Background work that may wait (the standby replays, webapp/history.py) takes this
# between two yields, so however many sessions have some, one slice runs at a time.
BACKGROUND_TURN = threading.Lock()

_PACERS: dict[int, Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(tasks: Any) -> Pacer:
    """The one pacer of the server whose task runner is ``tasks`` (made on first use)."""
    with _PACERS_LOCK:
        pacer = _PACERS.get(id(tasks))
        if pacer is None or pacer._tasks is not tasks:
            pacer = _PACERS[id(tasks)] = Pacer(tasks)
        return pacer
