"""The pCPU tracks: each lane keeps the recent past of its scheduling (tracks.js), derived
from the events the page holds, so it follows the scrubber and its window can be widened."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from gunyah_core.scenario import load
from tests.browser.conftest import ARTIFACTS

STEPS = 300

# What each track drew (tracks.js keeps it): right edge, slices (vCPU, donor, x, width),
# labels, and the preemption marks' times.
TRACKS_JS = """() => window.__gunyah.tracks.map((tr) => ({
  t1: tr.t1,
  segs: tr.segs.map((s) => ({ vcpu: s.vcpu, donor: s.donor, x: s.x, w: s.w })),
  labels: tr.labels,
  preempts: tr.marks.filter((m) => m.kind === 'preempt').map((m) => m.t),
}))"""

# What is in the DOM: per track, its right edge and the subpaths of its slice and mark
# paths (one per slice, one per mark) and its labels shown.
DRAWN_JS = """() => [...document.querySelectorAll('#diagram .track')].map((g) => {
  const subpaths = (sel) => [...g.querySelectorAll(sel)]
    .reduce((n, p) => n + ((p.getAttribute('d') || '').match(/M/g) || []).length, 0);
  return { t1: Number(g.getAttribute('data-t1')), segs: subpaths('.track-segs path'),
    marks: subpaths('.track-marks path'),
    labels: [...g.querySelectorAll('.seg-label')]
      .filter((t) => t.getAttribute('visibility') !== 'hidden').map((t) => t.textContent) };
})"""


def assert_drawn(page: Page) -> None:
    """The DOM draws exactly what the tracks say they show."""
    shown, drawn = page.evaluate("window.__gunyah.tracks"), page.evaluate(DRAWN_JS)
    assert [(tr["t1"], len(tr["segs"]), len(tr["marks"]), tr["labels"]) for tr in shown] == \
        [(d["t1"], d["segs"], d["marks"], d["labels"]) for d in drawn]


def load_preset(page: Page, name: str) -> None:
    """At projector size (the side panels fold away after a reload), this preset."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.reload()
    page.wait_for_selector("#diagram [data-vm]")
    page.get_by_test_id("scenario").select_option(name)
    expect(page.get_by_test_id("scenario-title")).to_have_text(load(name).config["title"])


def step_many(page: Page, count: int) -> None:
    seq = page.evaluate("window.__gunyah.seq")
    page.evaluate("""n => { document.getElementById('step-n').value = String(n);
      document.getElementById('btn-step-n').click(); }""", count)  # the toolbar may be folded away
    page.wait_for_function("s => window.__gunyah.seq >= s", arg=seq + count - 5)
    page.wait_for_timeout(300)


def runs(names: list[str]) -> list[str]:
    """Consecutive repeats folded: the order of who ran."""
    out: list[str] = []
    for n in names:
        if n and (not out or out[-1] != n):
            out.append(n)
    return out


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def expected(page: Page, pcpu: int, t0: float, t1: float) -> list[str]:
    sw = page.evaluate("window.__gunyah.schedSwitches")
    before = [e for e in sw if e["pcpu"] == pcpu and e["t"] <= t0]
    inside = [e["next"] for e in sw if e["pcpu"] == pcpu and t0 < e["t"] <= t1]
    return runs(([before[-1]["next"]] if before else []) + inside)


def test_tracks_show_the_past_slices_in_order_with_preemptions(page: Page) -> None:
    load_preset(page, "priority-preemption")
    step_many(page, STEPS)
    tracks = page.evaluate(TRACKS_JS)
    span = page.evaluate("window.__gunyah.trackWindowNs")
    assert len(tracks) >= 2
    switches = page.evaluate("window.__gunyah.schedSwitches")
    distinct = 0
    for p, tr in enumerate(tracks):
        shown = runs([s["vcpu"] for s in tr["segs"]])
        want = expected(page, p, tr["t1"] - span, tr["t1"])
        assert shown, f"pCPU {p}: no slices drawn"
        assert is_subsequence(shown, want), f"pCPU {p}: {shown} not in the order of {want}"
        distinct = max(distinct, len(set(shown)))
        for label in tr["labels"]:  # labels name the vCPUs drawn there
            assert label.split(" ")[0] in shown, label
        preempt_ts = {e["t"] for e in switches if e["pcpu"] == p and e["reason"] == "preempt"}
        assert set(tr["preempts"]) <= preempt_ts, f"pCPU {p}: a preemption mark off any preempt"
        inside = {t for t in preempt_ts if tr["t1"] - span <= t <= tr["t1"]}
        assert inside <= set(tr["preempts"]), f"pCPU {p}: a preemption without its mark"
    assert distinct >= 2, "no track shows more than one vCPU"
    # Spin_A and Spin_B share pCPU 0 by timeslice, Urgent preempts them: all three are named.
    assert {"Spin_A.0", "Spin_B.0", "Urgent.0"} <= set(runs([s["vcpu"] for s in tracks[0]["segs"]]))
    assert any(tr["preempts"] for tr in tracks), "no preemption mark"
    assert_drawn(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tracks-priority-preemption.png"))


def test_hovering_a_track_names_who_ran_there(page: Page) -> None:
    load_preset(page, "priority-preemption")
    step_many(page, STEPS)
    tracks = page.evaluate("window.__gunyah.tracks")
    seg = max(tracks[0]["segs"], key=lambda s: s["w"])  # the widest slice, away from marks
    point = page.evaluate("""([x, p]) => {
      const g = document.querySelector(`[data-testid=track-${p}]`);
      const box = g.querySelector('.track-box'); const y = Number(box.getAttribute('y')) + 10;
      const pt = new DOMPoint(x, y).matrixTransform(g.getScreenCTM());
      return [pt.x, pt.y]; }""", [seg["x"] + seg["w"] / 2, 0])
    page.mouse.move(*point)
    donated = f" on {seg['donor']}'s slice (donated)" if seg["donor"] else ""
    ran = f"{seg['vcpu']} running{donated}"
    # A vIRQ tick under the pointer is named first ("vIRQ 962: Urgent.0 · ").
    expect(page.locator("[data-testid=track-0] > title")).to_have_text(
        re.compile(rf"^(.+: .+ · )?{re.escape(ran)}$"))


def test_tracks_follow_the_scrubber_and_the_window(page: Page) -> None:
    load_preset(page, "priority-preemption")
    step_many(page, STEPS)
    before = page.evaluate(TRACKS_JS)
    target = page.evaluate("window.__gunyah.seq") // 2
    page.evaluate("""s => { const r = document.getElementById('scrubber');
      r.value = String(s); r.dispatchEvent(new Event('input')); }""", target)
    page.wait_for_function("s => window.__gunyah.seq === s", arg=target)
    page.wait_for_timeout(200)
    now = page.evaluate("window.__gunyah.now_ns")
    past = page.evaluate(TRACKS_JS)
    assert all(tr["t1"] == now for tr in past), "the tracks' right edge is not the seek time"
    assert now < before[0]["t1"]
    span = page.evaluate("window.__gunyah.trackWindowNs")
    for p, tr in enumerate(past):
        shown = runs([s["vcpu"] for s in tr["segs"]])
        assert is_subsequence(shown, expected(page, p, now - span, now)), f"pCPU {p} after the seek"
    # Narrower, then wider again: more of the past, so more segments on pCPU 0 (Spin_A /
    # Spin_B alternate).
    page.get_by_test_id("track-narrower").click()
    page.get_by_test_id("track-narrower").click()
    expect(page.get_by_test_id("track-window")).to_have_text("tracks: past 5 ms")
    page.wait_for_timeout(200)
    count = sum(len(tr["segs"]) for tr in page.evaluate(TRACKS_JS))
    page.get_by_test_id("track-wider").click()
    page.get_by_test_id("track-wider").click()
    expect(page.get_by_test_id("track-window")).to_have_text("tracks: past 20 ms")
    page.wait_for_timeout(200)
    wider = page.evaluate(TRACKS_JS)
    assert sum(len(tr["segs"]) for tr in wider) > count
    page.evaluate("document.activeElement?.blur()")
    page.keyboard.press(",")
    expect(page.get_by_test_id("track-window")).to_have_text("tracks: past 10 ms")
    page.get_by_test_id("btn-help").click()
    expect(page.get_by_test_id("help")).to_contain_text("pCPU tracks")


def test_the_window_fits_the_speed_until_the_viewer_picks_one(page: Page) -> None:
    """About 20 s of play at the speed: 10 µs/s -> 200 µs, 1 ms/s -> 20 ms."""
    window = page.get_by_test_id("track-window")
    load_preset(page, "msgq-pingpong")
    expect(window).to_have_text("tracks: past 200 µs")
    load_preset(page, "priority-preemption")
    expect(window).to_have_text("tracks: past 20 ms")
    page.get_by_test_id("speed").evaluate(  # 10 µs/s: the window follows
        "el => { el.value = 20; el.dispatchEvent(new Event('input')); }")
    expect(page.get_by_test_id("speed-out")).to_have_text("10 µs/s")
    expect(window).to_have_text("tracks: past 200 µs")
    page.get_by_test_id("track-wider").click()  # the viewer's choice stays
    expect(window).to_have_text("tracks: past 500 µs")
    page.get_by_test_id("speed").evaluate(
        "el => { el.value = 40; el.dispatchEvent(new Event('input')); }")
    expect(page.get_by_test_id("speed-out")).not_to_have_text("10 µs/s")
    expect(window).to_have_text("tracks: past 500 µs")
    page.get_by_test_id("btn-reset").click()  # a new run fits its speed again
    expect(window).not_to_have_text("tracks: past 500 µs")


def test_proxy_scheduling_draws_a_vcpu_run_donation(page: Page) -> None:
    load_preset(page, "proxy-scheduling")
    step_many(page, 120)
    tracks = page.evaluate(TRACKS_JS)
    donated = [s for tr in tracks for s in tr["segs"] if s["donor"]]
    assert donated, "no donation segment"
    assert all(s["vcpu"] == "Guest.0" and s["donor"] == "HLOS.0" for s in donated), donated
    assert page.locator("#diagram path.seg-hatch[d^='M']").count() >= 1
    assert_drawn(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tracks-proxy-scheduling.png"))


def test_after_a_fork_the_tracks_hold_the_new_branch_only(page: Page) -> None:
    """Acting in the past cuts the old future: the tracks are derived again from what is kept."""
    from tests.browser.test_history import FORK_AT, QUEUE, RUN_EVENTS, scrub, step_n

    step_n(page, RUN_EVENTS)
    scrub(page, FORK_AT)
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option(QUEUE)
    page.get_by_test_id("act-payload").fill("fork-here")
    page.get_by_test_id("act-send").click()
    page.wait_for_function("() => window.__gunyah.branch === 1")
    step_n(page, 60)
    page.wait_for_timeout(200)
    now = page.evaluate("window.__gunyah.now_ns")
    span = page.evaluate("window.__gunyah.trackWindowNs")
    tracks = page.evaluate(TRACKS_JS)
    assert all(tr["t1"] == now for tr in tracks)
    for p, tr in enumerate(tracks):
        shown = runs([s["vcpu"] for s in tr["segs"]])
        assert is_subsequence(shown, expected(page, p, now - span, now)), f"pCPU {p} after the fork"
    # What the tracks read is exactly the branch's switches and vIRQs, none of the cut future.
    assert page.evaluate("window.__gunyah.trackKept") == page.evaluate("window.__gunyah.keptSeqs")


def test_a_window_reaching_back_past_time_zero_starts_empty(page: Page) -> None:
    """Nothing ran before simulated time 0: the first slice starts there, not at the
    window's left edge (a 1 µs window at t = 200 ns, the boot's running vCPU X.0)."""
    segs = page.evaluate("""async () => {
      const { trackSegments } = await import("/static/js/tracks.js");
      const events = [{ kind: "sched.switch", t: 100, pcpu: 0, prev: "X.0", next: "A.0",
                        reason: "timeslice" }];
      return trackSegments(events, 0, 200, 1000, 1, ["X.0"])[0].segs
        .map((s) => [s.vcpu, s.t0, s.t1]);
    }""")
    assert segs == [["X.0", 0, 100], ["A.0", 100, 200]]
