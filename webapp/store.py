"""Which session belongs to which connection, and for how long a dropped one is kept.

Every session is held by exactly one live connection or waits, *detached*, for its
owner to come back (a reload, a dropped socket) for at most the resume window; then it
is freed. A detached session is paused, so it costs memory but no CPU. Sessions are
bounded three ways (docs/limits.md, "Connections"): in all, per client address, and
detached. Detached sessions count towards the first two; when a bound is reached the
oldest detached session in its scope is freed before a connection is refused.

The resume key is a secret given only to the connection that owns the session (in the
sim:hello ack); it is never the export token, which appears in download URLs.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .protocol import SERVER_FULL, TOO_MANY_CONNECTIONS, ProtocolError
from .session import Session

MAX_SESSIONS = 64                # sessions in all, connected or detached
MAX_CLIENT_SESSIONS = 16         # sessions held by one client address, connected or detached
MAX_DETACHED = 16                # detached sessions kept in all (oldest freed beyond)
RESUME_WINDOW_S = 60.0           # how long a detached session waits for its owner
RESUME_KEY_BYTES = 32            # entropy of a resume key (secrets.token_urlsafe)
REAP_MAX_SLEEP_S = 1.0           # the reaper looks at least this often while it has work


@dataclass
class Slot:
    """A session and who holds it: ``sid`` while connected, None while detached."""

    session: Session | None  # None only while attach() builds it
    address: str
    key: str
    sid: str | None
    detached_at: float = 0.0
    resume_from: int | None = None   # set on resume, consumed by the next sim:hello
    resumed: bool = False            # this connection resumed the session
    resume_error: dict[str, Any] | None = None  # why a resume asked for did not happen


class SessionStore:
    """Sessions by connection id, export token and resume key; bounded; thread-safe."""

    def __init__(self, tasks: Any, max_sessions: int = MAX_SESSIONS,
                 max_client: int = MAX_CLIENT_SESSIONS, max_detached: int = MAX_DETACHED,
                 window_s: float = RESUME_WINDOW_S, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.max_sessions, self.max_client = max_sessions, max_client
        self.max_detached, self.window_s = max_detached, window_s
        self._tasks, self._clock = tasks, clock
        self._lock = threading.Lock()
        self._by_sid: dict[str, Slot] = {}
        self._by_token: dict[str, Slot] = {}
        self._by_key: dict[str, Slot] = {}
        self._detached: OrderedDict[str, Slot] = OrderedDict()  # by key, oldest first
        self._reaping = False

    # -- connect -------------------------------------------------------------------------------
    def attach(self, sid: str, address: str, make: Callable[[Slot], Session],
               key: str | None = None, seq: int = -1) -> tuple[Slot, str | None]:
        """The slot for a new connection, and the sid it was taken from (or None).

        With the `key` of a live session it is resumed: paused, and taken from the
        connection that held it, if any (a dropped socket the server has not noticed
        yet, a reload racing its own disconnect, a duplicated tab). Otherwise a new
        session is built by ``make(slot)``. ProtocolError when a bound refuses it.
        """
        freed: list[Slot] = []
        try:
            with self._lock:
                self._expire(freed)
                slot = self._by_key.get(key) if key else None
                if slot is not None:
                    self._detached.pop(slot.key, None)
                    old = slot.sid
                    if old is not None:
                        self._by_sid.pop(old, None)
                        slot.session.close()  # it continues from where the client is
                    slot.sid, slot.resume_from, slot.address = sid, seq, address
                    self._by_sid[sid] = slot
                    return slot, old
                self._make_room(address, freed)
                slot = Slot(None, address, secrets.token_urlsafe(RESUME_KEY_BYTES), sid)
                slot.session = make(slot)
                self._by_sid[sid] = slot
                self._by_token[slot.session.token] = slot
                self._by_key[slot.key] = slot
                slot.resume_from = None
                return slot, None
        finally:
            self._free(freed)

    def _make_room(self, address: str, freed: list[Slot]) -> None:
        """Free the oldest detached session in scope, or refuse, when a bound is reached."""
        held = [s for s in self._by_key.values() if s.address == address]
        if len(held) >= self.max_client:
            if not self._evict(lambda s: s.address == address, freed):
                raise ProtocolError(TOO_MANY_CONNECTIONS,
                                    f"this client already has {len(held)} sessions open "
                                    f"(limit {self.max_client}); close a tab and reconnect")
        if len(self._by_key) >= self.max_sessions:
            if not self._evict(lambda s: True, freed):
                raise ProtocolError(SERVER_FULL, f"the server has {len(self._by_key)} "
                                                 f"sessions (limit {self.max_sessions}); "
                                                 "try again later")

    def _evict(self, match: Callable[[Slot], bool], freed: list[Slot]) -> bool:
        for key, slot in self._detached.items():
            if match(slot):
                self._forget(key, freed)
                return True
        return False

    # -- disconnect ----------------------------------------------------------------------------
    def detach(self, sid: str) -> None:
        """The connection has gone: pause its session and keep it for the resume window."""
        freed: list[Slot] = []
        start = False
        with self._lock:
            slot = self._by_sid.pop(sid, None)
            if slot is None:
                return
            slot.sid, slot.resume_from = None, None
            slot.session.close()  # pauses: a detached session burns no CPU
            if self.window_s <= 0 or self.max_detached <= 0:
                self._forget(slot.key, freed)
            else:
                slot.detached_at = self._clock()
                self._detached[slot.key] = slot
                while len(self._detached) > self.max_detached:
                    self._forget(next(iter(self._detached)), freed)
                start, self._reaping = not self._reaping, True
        self._free(freed)
        if start:
            self._tasks.start_background_task(self._reap)

    def _reap(self) -> None:
        """Free detached sessions whose window has passed; runs while any are detached.
        It holds no session while it sleeps (a freed one must be garbage at once)."""
        while True:
            wait = self._sweep()
            if wait is None:
                return
            self._tasks.sleep(min(max(wait, 0.01), REAP_MAX_SLEEP_S))

    def _sweep(self) -> float | None:
        """Expire what is due; seconds until the next is due, or None (reaper stops)."""
        freed: list[Slot] = []
        with self._lock:
            self._expire(freed)
            if self._detached:
                wait = next(iter(self._detached.values())).detached_at + self.window_s
                wait -= self._clock()
            else:
                self._reaping, wait = False, None
        self._free(freed)
        return wait

    def expire(self) -> None:
        """Free every detached session whose window has passed (the reaper's sweep)."""
        freed: list[Slot] = []
        with self._lock:
            self._expire(freed)
        self._free(freed)

    def _expire(self, freed: list[Slot]) -> None:
        deadline = self._clock() - self.window_s
        while self._detached:
            key, slot = next(iter(self._detached.items()))
            if slot.detached_at > deadline:
                return
            self._forget(key, freed)

    def _forget(self, key: str, freed: list[Slot]) -> None:
        slot = self._by_key.pop(key)
        self._detached.pop(key, None)
        self._by_token.pop(slot.session.token, None)
        if slot.sid is not None:
            self._by_sid.pop(slot.sid, None)
        freed.append(slot)

    @staticmethod
    def _free(freed: list[Slot]) -> None:
        for slot in freed:
            slot.session.close()

    # -- lookups -------------------------------------------------------------------------------
    def slot(self, sid: str) -> Slot | None:
        return self._by_sid.get(sid)

    def get(self, sid: str) -> Session | None:
        slot = self._by_sid.get(sid)
        return slot.session if slot is not None else None

    def by_token(self, token: str) -> Slot | None:
        return self._by_token.get(token)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"sessions": len(self._by_key), "connected": len(self._by_sid),
                    "detached": len(self._detached)}

    def limits(self) -> dict[str, float]:
        return {"max_sessions": self.max_sessions, "max_client_sessions": self.max_client,
                "max_detached": self.max_detached, "resume_window_s": self.window_s}

    def close_all(self) -> None:
        freed: list[Slot] = []
        with self._lock:
            for key in list(self._by_key):
                self._forget(key, freed)
        self._free(freed)
