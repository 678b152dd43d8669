"""A model whose clock stops (engine.NoProgressError) is reported, not an INTERNAL error or
a dead pacing task. Validation refuses the one scenario known to do it (spin with
work_ns 0), so the model is made to stall here by hand, through the in-process client."""

from __future__ import annotations

import time

import pytest

from gunyah_core.core.engine import NoProgressError
from gunyah_core.simulation import Simulation

WAIT_S = 5.0


@pytest.fixture
def stalled(monkeypatch):
    def step(self):
        raise NoProgressError(self.engine.now, 100_000)

    monkeypatch.setattr(Simulation, "step", step)


def test_a_step_into_a_stalled_model_is_no_progress(socketio_client, stalled) -> None:
    ack = socketio_client.emit("sim:step", {"count": 10_000}, callback=True)  # past the boot
    assert ack["ok"] is False and ack["error"]["code"] == "NO_PROGRESS"
    assert "no progress" in ack["error"]["message"]


def test_play_into_a_stalled_model_stops_and_says_why(socketio_client, stalled) -> None:
    assert socketio_client.emit("sim:speed", {"speed": "max"}, callback=True)["ok"]
    socketio_client.get_received()
    assert socketio_client.emit("sim:play", {}, callback=True)["ok"]
    errors, deadline = [], time.monotonic() + WAIT_S
    while not errors and time.monotonic() < deadline:
        errors = [m["args"][0] for m in socketio_client.get_received()
                  if m["name"] == "server:error"]
        time.sleep(0.02)
    assert errors and errors[0]["code"] == "NO_PROGRESS"
    status = socketio_client.emit("sim:hello", {}, callback=True)["status"]
    assert status["playing"] is False
