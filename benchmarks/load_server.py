"""app.py instrumented for bench_load.py: where the event loop's time and each ack's go.

Usage (bench_load.py starts it):
    python benchmarks/load_server.py APP_ARGS... ROOM OUT_PREFIX

ROOM is the session limit (all clients come from one address); OUT_PREFIX names three
files this process appends to, once a second or so:

- OUT_PREFIX.rounds: "end wall_ms cpu_ms" per event-loop round. Under eventlet every
  greenlet runs in one thread: a watcher greenlet yields, and the time until it runs again
  is one round (every due greenlet run once, then the sockets read). On a shared machine
  the CPU time is what the server would take on a core of its own.
- OUT_PREFIX.acks: "sid id stage time" for each probe call (sim:branches): where it was
  read from its websocket, where its ack was queued for the connection's writer, and where
  the writer began and ended writing it.
- OUT_PREFIX.stalls: where the loop was when it did not turn for STALL_S: the count and
  the stack (innermost first) of each place, most frequent first.
"""

from __future__ import annotations

import collections
import sys
import time
import traceback
from pathlib import Path

STALL_S = 0.025          # a round longer than this is sampled
SAMPLE_PERIOD_S = 0.005
FLUSH_S = 1.0
STACK_DEPTH = 12
STAMPS_PER_WRITE = 64
PROBE_REQUEST = '"sim:branches"'  # what bench_load's probe calls, and its ack's key
PROBE_ACK = '"branches"'

prefix = sys.argv.pop()
room = int(sys.argv.pop())
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if "eventlet" in sys.argv:
    import eventlet

    eventlet.monkey_patch()
    import engineio.socket
    import eventlet.websocket
    from eventlet import patcher

    real_threading, real_time = patcher.original("threading"), patcher.original("time")
    loop_thread = real_threading.get_ident()
    last_turn = [real_time.perf_counter()]

    def watch() -> None:
        rows, flushed = [], time.time()
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            eventlet.sleep(0)
            last_turn[0] = real_time.perf_counter()
            rows.append((round(time.time(), 3), round((time.perf_counter() - wall) * 1e3, 2),
                         round((time.thread_time() - cpu) * 1e3, 2)))
            if time.time() - flushed >= FLUSH_S:
                with open(f"{prefix}.rounds", "a") as out:
                    out.writelines(f"{t} {w} {c}\n" for t, w, c in rows)
                rows, flushed = [], time.time()

    def sample_stalls() -> None:
        """An OS thread: while the loop has not turned for STALL_S, count where it is."""
        places: collections.Counter[str] = collections.Counter()
        flushed = real_time.perf_counter()
        while True:
            real_time.sleep(SAMPLE_PERIOD_S)
            now = real_time.perf_counter()
            if now - last_turn[0] > STALL_S:
                frame = sys._current_frames().get(loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-STACK_DEPTH:]
                    places[" <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}"
                                       for f in reversed(stack))] += 1
            if now - flushed >= FLUSH_S and places:
                Path(f"{prefix}.stalls").write_text("".join(
                    f"{n} {where}\n" for where, n in places.most_common()))
                flushed = now

    stamps: list[str] = []

    def stamp(sid: str, frame: str, stage: str) -> None:
        head = frame[:12]
        call_id = head[:len(head) - len(head.lstrip("0123456789"))]
        stamps.append(f"{sid} {call_id} {stage} {time.time():.6f}\n")
        if len(stamps) >= STAMPS_PER_WRITE:
            with open(f"{prefix}.acks", "a") as out:
                out.writelines(stamps)
            stamps.clear()

    ws_class = eventlet.websocket.RFC6455WebSocket
    ws_wait, ws_send = ws_class.wait, ws_class.send
    eio_handler, eio_send = engineio.socket.Socket._websocket_handler, engineio.socket.Socket.send

    def traced_wait(ws):
        frame = ws_wait(ws)
        if isinstance(frame, str) and frame.startswith("42") and PROBE_REQUEST in frame[:40]:
            stamp(getattr(ws, "eio_sid", "?"), frame[2:], "read")
        return frame

    def traced_send(ws, frame, *args, **kwargs):
        probe = isinstance(frame, str) and frame.startswith("43") and PROBE_ACK in frame[:60]
        if probe:
            stamp(getattr(ws, "eio_sid", "?"), frame[2:], "write")
        out = ws_send(ws, frame, *args, **kwargs)
        if probe:
            stamp(getattr(ws, "eio_sid", "?"), frame[2:], "written")
        return out

    def named_handler(sock, ws):
        ws.eio_sid = sock.sid
        return eio_handler(sock, ws)

    def traced_queue(sock, pkt):
        data = pkt.data
        if isinstance(data, str) and data.startswith("3") and PROBE_ACK in data[:60]:
            stamp(sock.sid, data[1:], "queued")
        return eio_send(sock, pkt)

    ws_class.wait, ws_class.send = traced_wait, traced_send
    engineio.socket.Socket._websocket_handler = named_handler
    engineio.socket.Socket.send = traced_queue
    eventlet.spawn(watch)
    real_threading.Thread(target=sample_stalls, daemon=True).start()

import webapp.store  # noqa: E402  (after monkey_patch)

webapp.store.MAX_SESSIONS = webapp.store.MAX_CLIENT_SESSIONS = room
import app  # noqa: E402

sys.exit(app.main(sys.argv[1:]))
