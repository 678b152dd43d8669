"""Forks, branch switches and links at any depth: the same events as a full replay from
event 0, the history cap on every branch, the memory budget, and long work that pauses.

The reference is gunyah_core's own ``Simulation.replay`` from the start, which shares no
code with the web layer's checkpointed replay (webapp/replay.py).
"""

from __future__ import annotations

import io

import pytest

from gunyah_core import Simulation, load, preset_names
from gunyah_core.exporters import export
from gunyah_core.exporters.jsonl import dumps_event
from webapp import branches as branches_mod
from webapp import history as history_mod
from webapp import replay as replay_mod
from webapp import session as session_mod
from webapp.budget import MemoryBudget
from webapp.protocol import ProtocolError
from webapp.session import Session

# HLOS exists in every preset. Its own priority, so that the action changes no schedule:
# a new priority for HLOS.0 in vm-exit makes the RM's endpoint pop from an empty outbox
# (gunyah_core/rm/endpoint.py pump), a model fault that is no business of these tests.
ACTION = ("set_priority", {"vcpu": "HLOS.0", "priority": 32})


class Tasks:
    """Stands in for socketio: counts the pauses a long operation makes."""

    def __init__(self) -> None:
        self.pauses = 0

    def sleep(self, _seconds: float) -> None:
        self.pauses += 1

    def start_background_task(self, *_args) -> None:
        raise AssertionError("these tests never play")


def new_session(preset: str = "msgq-pingpong", budget: MemoryBudget | None = None) -> Session:
    return Session(preset, lambda *a, **k: None, Tasks(), budget=budget or MemoryBudget())


def reference(session: Session) -> list[dict]:
    """Every event of the current branch through its head, replayed from event 0."""
    _sim, events = Simulation.replay(session.sim.scenario, session.sim.seed,
                                     session.branches.current.actions, session.last_seq)
    return events


def wire(events) -> list[str]:
    """Events as the client and the exports see them (JSON: a kept tuple is a list)."""
    return [dumps_event(e) for e in events]


def assert_matches_full_replay(session: Session) -> None:
    ref = reference(session)
    kept = list(session.history)
    assert wire(kept) == wire(e for e in ref if kept[0]["seq"] <= e["seq"] <= session.last_seq)
    assert wire(session.pending) == wire(e for e in ref if e["seq"] > session.last_seq)
    before = session.last_seq
    session.step(count=300)  # and the futures agree too
    ref = reference(session)
    assert wire(e for e in session.history if e["seq"] > before) == wire(
        e for e in ref if before < e["seq"] <= session.last_seq)


@pytest.fixture
def small_marks(monkeypatch):
    """Marks and replay slices small enough that short runs use every replay path
    (and every chance to yield is taken)."""
    monkeypatch.setattr(session_mod, "HEAVY_SLICE_S", 0.0)
    monkeypatch.setattr(branches_mod, "MARK_EVERY_EVENTS", 300)
    monkeypatch.setattr(history_mod, "MARK_EVERY_EVENTS", 300)
    monkeypatch.setattr(replay_mod, "SLICE_STEPS", 200)


@pytest.mark.parametrize("preset", preset_names())
def test_fork_switch_and_link_at_any_depth_equal_a_full_replay(small_marks, preset):
    session = new_session(preset)
    session.step(count=2_000)
    session.act(*ACTION)
    session.step(count=2_000)
    head = session.last_seq
    for depth in (1, head // 3, head - 5):  # near the head, mid-way, near the start
        at = max(0, head - depth)
        session.act(*ACTION, at_seq=at)
        assert session.branches.current.fork_seq == at
        assert_matches_full_replay(session)
        session.switch_branch(0)
    assert_matches_full_replay(session)
    link = session.link()
    other = new_session(preset)
    other.load(scenario=preset, seed=link["seed"], actions=link["actions"],
               through_seq=link["head_seq"])
    assert wire(other.history) == wire(session.history)
    assert wire(other.pending) == wire(session.pending)


def test_branch_switch_without_a_parked_simulation_equals_a_full_replay(small_marks,
                                                                        monkeypatch):
    monkeypatch.setattr(branches_mod, "MAX_PARKED", 1)
    session = new_session()
    session.step(count=3_000)
    for at in (2_500, 1_000, 2_900):
        session.switch_branch(0)
        session.act(*ACTION, at_seq=at)
        session.step(count=100)
    for branch in (1, 2, 0, 3):  # all but the last left are rebuilt by replay
        session.switch_branch(branch)
        assert_matches_full_replay(session)


def test_going_back_to_a_branch_reuses_its_simulation():
    session = new_session()
    session.step(count=500)
    main_sim = session.sim
    session.act(*ACTION, at_seq=100)
    session.switch_branch(0)
    assert session.sim is main_sim  # parked, not replayed from event 0


def test_every_branch_keeps_at_most_the_history_cap(monkeypatch):
    monkeypatch.setattr(branches_mod, "MAX_HISTORY_EVENTS", 1_000)
    session = new_session()
    session.step(count=3_000)
    assert len(session.history) == 1_000
    session.act(*ACTION, at_seq=2_900)
    # The fork shares what its parent kept up to the fork point, not all 2901 events.
    assert session.history.first_seq == 2_000 and session.last_seq == 2_900
    session.step(count=2_000)
    assert len(session.history) == 1_000 and session.history.first_seq == 3_901
    with pytest.raises(ProtocolError) as err:
        session.act(*ACTION, at_seq=3_800)  # older than what the branch keeps
    assert err.value.code == "NOT_FOUND"


def test_a_link_keeps_at_most_the_history_cap(monkeypatch):
    monkeypatch.setattr(history_mod, "MAX_HISTORY_EVENTS", 1_000)
    session = new_session()
    session.step(count=3_000)
    session.act(*ACTION)
    link = session.link()
    other = new_session()
    other.load(scenario="msgq-pingpong", actions=link["actions"], through_seq=2_999)
    assert len(other.history) == 1_000 and other.last_seq == 2_999


def test_a_fork_past_the_memory_budget_is_refused_and_the_session_goes_on():
    session = new_session(budget=MemoryBudget(limit=1))
    session.step(count=200)
    with pytest.raises(ProtocolError) as err:
        session.act(*ACTION, at_seq=100)
    assert err.value.code == "MEMORY_BUDGET" and "MiB" in err.value.message
    assert len(session.branches.all) == 1
    assert session.step(count=10)["revealed"] == 10


def test_a_new_session_past_the_memory_budget_is_refused():
    from webapp import create_app, socketio

    app = create_app({"TESTING": True, "MEMORY_BUDGET_BYTES": 1})
    client = socketio.test_client(app)
    assert not client.is_connected()


def test_long_replays_imports_and_exports_pause_for_other_sessions(small_marks, monkeypatch):
    monkeypatch.setattr(history_mod, "IMPORT_PAUSE_EVENTS", 500)
    monkeypatch.setattr(session_mod, "EXPORT_FLUSH_EVENTS", 500)
    session = new_session()
    tasks = session._tasks
    session.step(count=3_000)
    before = tasks.pauses
    session.act(*ACTION, at_seq=2_000)
    assert tasks.pauses > before, "a fork replay pauses"
    before = tasks.pauses
    out = io.StringIO()
    session.export("jsonl", out)
    assert tasks.pauses > before, "an export pauses"
    before = tasks.pauses
    from gunyah_core.exporters import iter_jsonl
    session.import_timeline(iter_jsonl(out.getvalue()), "t.jsonl")
    assert tasks.pauses > before, "an import pauses"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "perfetto", "vcd"])
def test_a_streamed_export_is_the_export_of_the_revealed_events(fmt):
    session = new_session()
    session.step(count=5_000)
    expected = io.StringIO()
    export(reference(session)[:5_000], fmt, expected)
    got = io.StringIO()
    assert session.export(fmt, got) == 5_000
    assert got.getvalue() == expected.getvalue()


def test_http_export_is_streamed(app, socketio_client):
    from test_socket import call

    hello = call(socketio_client, "sim:hello")
    call(socketio_client, "sim:step", {"count": 3_000})
    resp = app.test_client().get(f"/export/{hello['session']}.jsonl")
    assert resp.is_streamed
    assert len(resp.get_data().splitlines()) == hello["status"]["boot_seq"] + 1 + 3_000


def test_an_imported_timeline_replays_its_events(app):
    session = new_session()
    session.step(count=2_500)
    text = io.StringIO()
    session.export("jsonl", text)
    original = list(session.history)
    other = new_session()
    from gunyah_core.exporters import iter_jsonl
    assert other.import_timeline(iter_jsonl(text.getvalue()), "t.jsonl")["events"] == 2_500
    other.step(count=2_500)
    assert wire(other.history) == wire(original)
    assert other.step(count=1)["finished"]


class SyncTasks(Tasks):
    """Runs background tasks at once (a standby is built before the call returns)."""

    def start_background_task(self, fn, *args) -> None:
        fn(*args)


@pytest.fixture
def small_standbys(small_marks, monkeypatch):
    """A kept history of 1,000 events, standbys every 500 behind the head, moved on
    every 200 revealed events, built at once (SyncTasks)."""
    monkeypatch.setattr(branches_mod, "MAX_HISTORY_EVENTS", 1_000)
    monkeypatch.setattr(history_mod, "STANDBY_SPACING_EVENTS", 500)
    monkeypatch.setattr(history_mod, "STANDBY_LAG_EVENTS", 200)
    monkeypatch.setattr(history_mod, "STANDBY_SLICE_EVENTS", 700)
    return Session("msgq-pingpong", lambda *a, **k: None, SyncTasks(), budget=MemoryBudget())


def furthest_replay(session: Session, at_seq: int) -> int:
    """How many events a fork at ``at_seq`` would replay: from the nearest standby
    before it on this branch's way, else from event 0."""
    actions = session.branches.current.actions
    starts = [s.seq for s in session._standbys if s.seq <= at_seq and s.follows(actions)]
    return at_seq - max(starts, default=-1)


def test_standbys_follow_the_head_so_a_fork_anywhere_replays_a_bounded_distance(
        small_standbys):
    session = small_standbys
    bound = (history_mod.STANDBY_SPACING_EVENTS + history_mod.STANDBY_LAG_EVENTS
             + branches_mod.MARK_EVERY_EVENTS + 100)  # + one engine step's events
    for _ in range(12):  # while the head moves on, not only after a pause
        session.step(count=700)
        first, head = session.history.first_seq, session.last_seq
        assert max(furthest_replay(session, at) for at in range(first, head + 1)) <= bound
    assert len(session._standbys) == history_mod.STANDBY_COUNT


def test_a_standby_built_from_event_0_yields_every_slice_not_once_at_the_end(
        small_standbys, monkeypatch):
    """Marks before the oldest kept event are where a standby built from event 0 stops
    to let others run; with them dropped it replayed the whole way in one go."""
    session = small_standbys
    strides = []
    real_to_mark = replay_mod.Replay.to_mark

    def to_mark(self, actions, mark):
        strides.append(mark[0] - self.seq)
        return real_to_mark(self, actions, mark)

    monkeypatch.setattr(replay_mod.Replay, "to_mark", to_mark)
    session.step(count=5_000)
    session._drop_standby()  # e.g. a branch switched to: built again from event 0
    session._want_standby()
    assert len(session._standbys) == history_mod.STANDBY_COUNT
    assert max(strides) <= history_mod.STANDBY_SLICE_EVENTS + 2 * branches_mod.MARK_EVERY_EVENTS


def test_old_marks_are_thinned_past_the_limit_keeping_the_last_before_the_kept_events(
        monkeypatch):
    monkeypatch.setattr(branches_mod, "MAX_MARKS", 8)
    monkeypatch.setattr(branches_mod, "MARK_EVERY_EVENTS", 300)
    branch = branches_mod.Branch(0, None, -1, events=branches_mod.EventLog(1_000))
    for seq in range(0, 20_000, 100):
        branch.events.extend([{"seq": s, "t": s} for s in range(seq, seq + 100)])
        branch.mark(seq + 99, seq)
    first = branch.events.first_seq
    made = list(range(99, 20_000, 300))
    seqs = [m[0] for m in branch.marks]
    assert len(seqs) <= 8 + 1 and seqs == sorted(seqs)
    assert [m for m in seqs if m >= first] == [m for m in made if m >= first]  # all kept
    old = [m for m in seqs if m < first]
    assert old[-1] == max(m for m in made if m < first)  # where a fork's replay starts
    assert len(old) >= 2 and old[0] < first - 10_000  # thinned, not dropped


def test_a_fork_at_any_depth_starts_from_a_standby_and_replays_the_same_trace(
        small_standbys):
    session = small_standbys
    session.step(count=5_000)
    head = session.last_seq
    for depth in (10, 450, 700, 990):  # near the head ... the oldest kept event
        session.switch_branch(0)
        at = head - depth
        standby = max((s for s in session._standbys if s.seq <= at), key=lambda s: s.seq)
        session.act(*ACTION, at_seq=at)
        assert session.sim is standby.sim  # no replay from event 0
        assert_matches_full_replay(session)


def test_a_standby_is_not_used_on_a_branch_whose_actions_differ_before_it(small_standbys):
    session = small_standbys
    session.step(count=3_000)
    session.act(*ACTION, at_seq=session.last_seq - 700)  # branch 1: an action branch 0 lacks
    session.step(count=3_000)
    theirs = {id(s.sim) for s in session._standbys}
    assert theirs and all(s.applied for s in session._standbys)
    session.switch_branch(0)            # parked: no replay
    assert all(s.follows(session.branches.current.actions) for s in session._standbys)
    session.act(*ACTION, at_seq=session.last_seq - 10)
    assert id(session.sim) not in theirs
    assert_matches_full_replay(session)


def test_the_branches_left_most_recently_keep_their_simulations(monkeypatch):
    monkeypatch.setattr(branches_mod, "MAX_PARKED", 2)
    session = new_session()
    session.step(count=600)
    for at in (100, 200, 300):  # branches 1, 2, 3, each forked from branch 0
        session.switch_branch(0)
        session.act(*ACTION, at_seq=at)
    sims = {}
    for branch in (1, 2, 0, 3):
        session.switch_branch(branch)
        sims[branch] = session.sim
    # Left last: 0 then 2 (1 was dropped when 2 was left). Coming back to them is free.
    session.switch_branch(2)
    assert session.sim is sims[2]
    session.switch_branch(0)
    assert session.sim is sims[0]
    session.switch_branch(1)
    assert session.sim is not sims[1]  # rebuilt


def test_marks_older_than_the_kept_history_are_thinned_to_a_bounded_count(small_marks,
                                                                          monkeypatch):
    monkeypatch.setattr(branches_mod, "MAX_HISTORY_EVENTS", 1_000)
    monkeypatch.setattr(branches_mod, "MAX_MARKS", 16)
    session = new_session()
    session.step(count=20_000)
    marks = session.branches.current.marks
    first = session.history.first_seq
    assert marks[0][0] <= first  # some before the oldest kept event (standbys stop there)
    assert len(marks) <= 16 + 1   # but not one every 300 events since event 0
    session.act(*ACTION, at_seq=first + 5)  # the first mark still serves the oldest fork
    assert_matches_full_replay(session)


@pytest.mark.parametrize("preset", ["msgq-pingpong", "vm-exit"])
def test_a_link_draws_from_the_boot_snapshot(preset):
    """The sim:snapshot a link sends is the boot one (the sim.snapshot event comes after
    a few boot events), not the machine at the link's head."""
    session = new_session(preset)
    session.step(count=300)
    session.act(*ACTION)
    link = session.link()
    snapshots = []
    other = Session(preset, lambda event, data, callback=None: snapshots.append(data)
                    if event == "sim:snapshot" else None, Tasks(), budget=MemoryBudget())
    other.load(scenario=preset, actions=link["actions"], through_seq=link["head_seq"])
    boot = next(e for e in reference(session) if e["kind"] == "sim.snapshot")
    assert boot["seq"] > 0
    drawn = dict(snapshots[-1])
    assert drawn.pop("build") == other.builds  # which machine of the session it draws
    boot_events, _ = Simulation(load(preset)).boot()
    assert drawn.pop("boot_seq") == boot_events[-1]["seq"]  # the log folds the same boot
    assert wire([drawn]) == wire([{**boot["state"], "scenario": boot["scenario"]}])
