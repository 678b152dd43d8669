"""Pace for watching: at each preset's own default speed every event is animated, none
coalesced away (a vIRQ's assert and its deliver microseconds later are both seen)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from gunyah_core import load, preset_names
from webapp.session import DEFAULT_SPEED

WATCH_WALL_S = 3  # the simulated interval is what the default speed covers in this long
NS_PER_S = 1_000_000_000


@pytest.mark.parametrize("name", preset_names())
def test_each_preset_at_its_default_speed_coalesces_nothing(page: Page, live_server: str,
                                                            name: str) -> None:
    speed = load(name).config.get("speed", DEFAULT_SPEED)
    page.goto(f"{live_server}/?scenario={name}")
    page.wait_for_function("n => window.__gunyah.scenario === n || "
                           "document.querySelector('[data-testid=scenario-title]').textContent",
                           arg=name)
    page.wait_for_selector("[data-vm='HLOS']")
    page.get_by_test_id("btn-play").click()
    interval = int(speed * WATCH_WALL_S * NS_PER_S)
    page.wait_for_function("t => window.__gunyah.now_ns >= t", arg=interval,
                           timeout=(WATCH_WALL_S * 4) * 1000)
    hooks = page.evaluate("({...window.__gunyah})")
    assert hooks["seq"] > 0
    assert hooks["coalesced"] == 0, f"{name}: {hooks['coalesced']} animations coalesced in " \
                                    f"{interval} ns at {speed} s/s"
