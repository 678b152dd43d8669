"""Memory ownership and memparcels: each RM rule and refusal, then a random-walk model check."""

from __future__ import annotations

import json

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gunyah_core.mem.memory import MemoryModel
from gunyah_core.mem.memparcel import (
    MEMPARCEL_MAX_LIST_ENTRIES,
    MEMPARCEL_MAX_PER_OWNER,
    PAGE_SIZE,
    MemError,
    MemNotifyFlags,
    PgtableAccess,
    rights_str,
)

P = PAGE_SIZE
HLOS, GUEST, OTHER = 3, 0x80, 0x81
R, W, X = int(PgtableAccess.R), int(PgtableAccess.W), int(PgtableAccess.X)
RW, RWX = R | W, R | W | X


class Recorder:
    """Collects emitted trace events as (kind, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def __call__(self, kind: str, **fields: object) -> None:
        self.events.append((kind, fields))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def mem(rec: Recorder) -> MemoryModel:
    m = MemoryModel(rec)
    m.add_region(HLOS, 0, 8 * P, contents=0x11)
    m.add_region(GUEST, 16 * P, 4 * P, contents=0x22)
    m.add_region(OTHER, 32 * P, 4 * P, contents=0x33)
    return m


def refused(error: str, fn, *args, **kwargs) -> MemError:
    with pytest.raises(MemError) as info:
        fn(*args, **kwargs)
    assert info.value.error == error, str(info.value)
    return info.value


# --- boot-time ownership ------------------------------------------------------------------
def test_add_region_gives_ownership_and_identity_mapping(mem: MemoryModel) -> None:
    assert mem.owner_of(0) == HLOS and mem.owner_of(17 * P + 5) == GUEST
    assert mem.owner_of(100 * P) is None
    assert mem.view(GUEST) == [{"base": 16 * P, "size": 4 * P, "pa": 16 * P, "rights": "RWX",
                                "state": "owned", "handle": None}]
    refused("MEM_INVALID", mem.add_region, GUEST, 7 * P, 2 * P)
    refused("ARGUMENT_INVALID", mem.add_region, GUEST, 100, P)
    mem.check_invariants()


# --- lend / share / donate ----------------------------------------------------------------
def test_lend_removes_owner_access_before_accept(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, 2 * P)], label=9)
    assert h == 0
    kind, fields = rec.events[-1]
    assert kind == "mem.lend"
    assert (fields["owner"], fields["vm"], fields["handle"], fields["base"], fields["size"],
            fields["rights"]) == (HLOS, GUEST, 0, 0, 2 * P, "RW")
    assert not mem.access(HLOS, P, "R")
    assert rec.events[-1] == ("mem.fault", {"vm": HLOS, "addr": P, "access": "R",
                                            "rights": "NONE", "reason": "permission",
                                            "owner": HLOS, "handle": 0})
    assert not mem.access(GUEST, 0, "R")  # not accepted yet
    assert mem.view(HLOS)[0] == {"base": 0, "size": 2 * P, "pa": 0, "rights": "NONE",
                                 "state": "lent", "handle": 0}
    assert mem.owner_of(0) == HLOS  # lending does not change the owner
    mem.check_invariants()


def test_borrower_gets_only_acl_rights_after_accept(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, P)])
    assert mem.accept(GUEST, h) == [(0, P)]
    assert rec.events[-1][0] == "mem.accept"
    assert mem.access(GUEST, 0, "R") and mem.access(GUEST, 0, "W")
    assert not mem.access(GUEST, 0, "X")
    assert rec.events[-1][0] == "mem.fault"
    assert not mem.access(OTHER, 0, "R")  # not in the ACL at all
    assert not mem.access(HLOS, 0, "W")
    assert mem.view(GUEST)[0]["state"] == "borrowed"
    mem.check_invariants()


def test_share_keeps_owner_access(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.share(HLOS, [(HLOS, RWX), (GUEST, R)], [(P, P)])
    assert rec.events[-1][0] == "mem.share"
    assert mem.access(HLOS, P, "W")
    assert mem.view(HLOS)[1]["state"] == "shared"
    mem.accept(GUEST, h)
    assert mem.access(GUEST, P, "R") and not mem.access(GUEST, P, "W")
    assert mem.access(HLOS, P, "W")
    mem.check_invariants()


@pytest.mark.parametrize(
    "call, acl",
    [
        ("lend", [(HLOS, RW)]),  # owner listed in a LEND
        ("lend", [(GUEST, RW), (HLOS, RW)]),
        ("donate", [(HLOS, RWX)]),
        ("share", [(GUEST, RW)]),  # owner missing from a SHARE
        ("donate", [(GUEST, RWX), (OTHER, RWX)]),  # DONATE needs exactly one entry
        ("donate", [(GUEST, RW)]),  # ... with full rights
        ("lend", []),
        ("lend", [(GUEST, RW), (GUEST, R)]),  # duplicate VMID
        ("lend", [(GUEST, 0)]),
        ("lend", [(GUEST, 8)]),
    ],
)
def test_create_argument_refusals(mem: MemoryModel, call: str, acl: list) -> None:
    before = mem.snapshot()
    refused("ARGUMENT_INVALID", getattr(mem, call), HLOS, acl, [(0, P)])
    assert mem.snapshot() == before


def test_sgl_refusals(mem: MemoryModel) -> None:
    refused("ARGUMENT_INVALID", mem.lend, HLOS, [(GUEST, RW)], [])
    refused("ARGUMENT_INVALID", mem.lend, HLOS, [(GUEST, RW)], [(0, 100)])
    refused("ARGUMENT_INVALID", mem.lend, HLOS, [(GUEST, RW)], [(0, 2 * P), (P, P)])
    too_many = [(0, P)] * (MEMPARCEL_MAX_LIST_ENTRIES + 1)
    refused("ARGUMENT_INVALID", mem.lend, HLOS, [(GUEST, RW)], too_many)
    acl = [(v, R) for v in range(100, 100 + MEMPARCEL_MAX_LIST_ENTRIES + 1)]
    refused("ARGUMENT_INVALID", mem.lend, HLOS, acl, [(0, P)])


def test_list_limits_accepted_at_the_limit_refused_one_past(rec: Recorder) -> None:
    """RM memparcel.c: at most MEMPARCEL_MAX_LIST_ENTRIES (512) ACL and SGL entries."""
    assert MEMPARCEL_MAX_LIST_ENTRIES == 512  # facts §8.2: the value itself, not just its use
    m = MemoryModel(rec)
    m.add_region(HLOS, 0, (2 * MEMPARCEL_MAX_LIST_ENTRIES + 2) * P)
    acl = [(v, R) for v in range(100, 100 + MEMPARCEL_MAX_LIST_ENTRIES)]
    assert m.lend(HLOS, acl, [(0, P)]) == 0
    refused("ARGUMENT_INVALID", m.lend, HLOS, [*acl, (99, R)], [(P, P)])
    sgl = [((2 + 2 * i) * P, P) for i in range(MEMPARCEL_MAX_LIST_ENTRIES)]  # not adjacent
    assert m.lend(HLOS, [(GUEST, R)], sgl) == 1
    assert len(m.parcels()[1]["sgl"]) == MEMPARCEL_MAX_LIST_ENTRIES
    before = m.snapshot()
    refused("ARGUMENT_INVALID", m.lend, HLOS, [(GUEST, R)], [*sgl[:-1], (P, P), (3 * P, P)])
    assert m.snapshot() == before


@pytest.mark.parametrize("entry", [
    (0, 0),  # zero size
    (0, -P),  # negative size
    (-P, P),  # negative base
    (100, P),  # base not page-aligned
    (P, P + 100),  # size not whole pages
    (P, P // 2),  # less than a page
])
def test_sgl_entry_of_no_whole_page_is_argument_invalid(mem: MemoryModel, entry) -> None:
    """Only whole, page-aligned, non-empty ranges can be mapped at stage 2."""
    before = mem.snapshot()
    refused("ARGUMENT_INVALID", mem.lend, HLOS, [(GUEST, RW)], [(0, P), entry])
    assert mem.snapshot() == before


@pytest.mark.parametrize("rights", [X, W, R, RW, RWX])
def test_every_rights_value_from_1_to_rwx_is_accepted(mem: MemoryModel, rights: int) -> None:
    h = mem.lend(HLOS, [(GUEST, rights)], [(0, P)])
    assert mem.parcels()[0]["acl"] == [{"vmid": GUEST, "rights": rights_str(rights)}]
    assert h == 0


def test_pages_not_free_to_give_are_mem_invalid(mem: MemoryModel) -> None:
    refused("MEM_INVALID", mem.lend, HLOS, [(GUEST, RW)], [(16 * P, P)])  # GUEST's page
    refused("MEM_INVALID", mem.lend, HLOS, [(GUEST, RW)], [(7 * P, 2 * P)])  # runs off the end
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, P)])
    refused("MEM_INVALID", mem.share, HLOS, [(HLOS, RW), (OTHER, R)], [(0, P)])  # in a parcel
    mem.accept(GUEST, h)
    refused("MEM_INVALID", mem.lend, GUEST, [(OTHER, R)], [(0, P)])  # borrowed, not owned


def test_parcel_limit_per_owner_is_noresource(rec: Recorder) -> None:
    m = MemoryModel(rec)
    m.add_region(HLOS, 0, (MEMPARCEL_MAX_PER_OWNER + 1) * P)
    for i in range(MEMPARCEL_MAX_PER_OWNER):
        assert m.lend(HLOS, [(GUEST, R)], [(i * P, P)]) == i
    refused("NORESOURCE", m.lend, HLOS, [(GUEST, R)], [(MEMPARCEL_MAX_PER_OWNER * P, P)])
    m.reclaim(HLOS, 0)
    assert m.lend(HLOS, [(GUEST, R)], [(MEMPARCEL_MAX_PER_OWNER * P, P)]) == 64


def test_handles_count_up_and_are_not_reused(mem: MemoryModel) -> None:
    h0 = mem.lend(HLOS, [(GUEST, R)], [(0, P)])
    mem.reclaim(HLOS, h0)
    assert [h0, mem.lend(HLOS, [(GUEST, R)], [(0, P)]), mem.lend(HLOS, [(GUEST, R)], [(P, P)])] \
        == [0, 1, 2]


def test_handle_counter_wraps_at_u32_and_skips_the_invalid_handle(mem: MemoryModel) -> None:
    """facts §8.2: handles are u32 and the counter skips MEMPARCEL_HANDLE_INVALID."""
    snap = mem.snapshot()
    snap["next_handle"] = 0xFFFF_FFFE  # the last valid handle
    m = MemoryModel.from_snapshot(snap)
    assert m.lend(HLOS, [(GUEST, R)], [(0, P)]) == 0xFFFF_FFFE
    assert m.lend(HLOS, [(GUEST, R)], [(P, P)]) == 0  # 0xFFFFFFFF skipped, wrapped to 0
    assert m.snapshot()["next_handle"] == 1


def test_mem_error_text_names_the_error_then_the_detail() -> None:
    assert (str(MemError("DENIED", "not yours")), MemError("DENIED", "not yours").message) == (
        "DENIED: not yours", "not yours")
    assert (str(MemError("MEM_INUSE")), MemError("MEM_INUSE").message) == ("MEM_INUSE", "")


def test_rights_letters_in_rwx_order() -> None:
    """facts §8.1: X 1, W 2, R 4; the views print them R, W, X."""
    assert [rights_str(r) for r in range(8)] == [
        "NONE", "X", "W", "WX", "R", "RX", "RW", "RWX"]
    assert [int(PgtableAccess[n]) for n in ("X", "W", "R", "RX", "RW", "RWX")] == [
        1, 2, 4, 5, 6, 7]


def test_sanitize_at_create_zeroes_pages(mem: MemoryModel) -> None:
    mem.lend(HLOS, [(GUEST, R)], [(0, P)], sanitize=True)
    assert mem.contents(0) == 0 and mem.contents(P) == 0x11


# --- accept -------------------------------------------------------------------------------
def test_accept_refusals(mem: MemoryModel) -> None:
    h = mem.lend(HLOS, [(GUEST, R), (OTHER, RW)], [(0, P)], label=5)
    refused("HANDLE_INVALID", mem.accept, GUEST, 99)
    refused("DENIED", mem.accept, HLOS, h)  # owner accepting its own parcel
    refused("DENIED", mem.accept, 0x90, h)  # not in the ACL
    refused("VALIDATE_FAILED", mem.accept, GUEST, h, rights_check=RW)
    refused("VALIDATE_FAILED", mem.accept, GUEST, h, label_check=6)
    refused("DENIED", mem.accept, GUEST, h, sanitize=True)  # SANITIZE needs W
    refused("ARGUMENT_INVALID", mem.accept, GUEST, h, ipa_base=5)
    refused("MEM_INVALID", mem.accept, GUEST, h, ipa_base=16 * P)  # its own RAM is there
    mem.accept(GUEST, h, rights_check=R, label_check=5)
    refused("DENIED", mem.accept, GUEST, h)  # twice
    mem.check_invariants()


def test_accept_at_chosen_ipa(mem: MemoryModel) -> None:
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, P), (2 * P, P)])
    assert mem.accept(GUEST, h, ipa_base=64 * P) == [(64 * P, 2 * P)]
    assert mem.access(GUEST, 65 * P, "W") and not mem.access(GUEST, 2 * P, "R")
    assert mem.write(GUEST, 65 * P, 0x77)
    assert mem.contents(2 * P) == 0x77  # the physical page behind IPA 65
    mem.check_invariants()


def test_parcel_states_follow_acceptors(mem: MemoryModel) -> None:
    h = mem.share(HLOS, [(HLOS, RW), (GUEST, R), (OTHER, R)], [(0, P)])

    def state() -> str:
        return mem.parcels()[0]["state"]

    assert state() == "SHARING"
    mem.accept(GUEST, h)
    mem.accept(OTHER, h)
    assert state() == "SHARED" and mem.parcels()[0]["accepted"] == [GUEST, OTHER]
    mem.release(GUEST, h)
    assert state() == "SHARED"
    mem.release(OTHER, h)
    assert state() == "SHARING"
    assert mem.parcels()[0]["acl"] == [{"vmid": HLOS, "rights": "RW"},
                                       {"vmid": GUEST, "rights": "R"},
                                       {"vmid": OTHER, "rights": "R"}]


# --- release / reclaim --------------------------------------------------------------------
def test_release_refusals_and_effect(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, P)])
    refused("MEM_RELEASED", mem.release, GUEST, h)  # never accepted
    refused("HANDLE_INVALID", mem.release, GUEST, 42)
    mem.accept(GUEST, h)
    refused("DENIED", mem.release, HLOS, h)
    mem.release(GUEST, h, sanitize=True)
    assert rec.events[-1][0] == "mem.release"
    assert mem.contents(0) == 0
    assert not mem.access(GUEST, 0, "R")
    refused("MEM_RELEASED", mem.release, GUEST, h)  # already released
    mem.check_invariants()


def test_reclaim_waits_for_every_borrower(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.lend(HLOS, [(GUEST, RW), (OTHER, R)], [(0, P)])
    mem.accept(GUEST, h)
    mem.accept(OTHER, h)
    refused("DENIED", mem.reclaim, GUEST, h)
    refused("MEM_INUSE", mem.reclaim, HLOS, h)
    mem.release(GUEST, h)
    refused("MEM_INUSE", mem.reclaim, HLOS, h)
    mem.release(OTHER, h)
    mem.reclaim(HLOS, h)
    assert rec.events[-1][0] == "mem.reclaim"
    assert mem.access(HLOS, 0, "X") and mem.parcels() == []
    assert mem.contents(0) == 0x11  # no sanitize asked
    refused("HANDLE_INVALID", mem.reclaim, HLOS, h)
    mem.check_invariants()


def test_reclaim_sanitize_and_accept_sanitize(mem: MemoryModel) -> None:
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, P)])
    mem.reclaim(HLOS, h, sanitize=True)
    assert mem.contents(0) == 0
    h = mem.lend(HLOS, [(GUEST, RW)], [(P, P)])
    mem.accept(GUEST, h, sanitize=True)  # borrower asks for zeroing on reclaim
    mem.release(GUEST, h)
    assert mem.contents(P) == 0x11
    mem.reclaim(HLOS, h)
    assert mem.contents(P) == 0


# --- donate -------------------------------------------------------------------------------
def test_donate_accept_moves_ownership(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.donate(HLOS, [(GUEST, RWX)], [(0, P)])
    assert rec.events[-1][0] == "mem.donate"
    assert not mem.access(HLOS, 0, "R")
    mem.accept(GUEST, h)
    assert mem.owner_of(0) == GUEST and mem.parcels() == []
    assert mem.view(HLOS)[0]["base"] == P  # page 0 is gone from the old owner
    assert {"base": 0, "size": P, "pa": 0, "rights": "RWX", "state": "donated-in",
            "handle": None} in mem.view(GUEST)
    refused("HANDLE_INVALID", mem.reclaim, HLOS, h)  # no reclaim after donate
    # The new owner can lend it on; reclaim restores it as donated-in memory.
    h2 = mem.lend(GUEST, [(OTHER, R)], [(0, P)])
    mem.reclaim(GUEST, h2)
    assert mem.view(GUEST)[0]["state"] == "donated-in"
    mem.check_invariants()


def test_donate_can_be_reclaimed_before_accept(mem: MemoryModel) -> None:
    h = mem.donate(HLOS, [(GUEST, RWX)], [(0, P)])
    mem.reclaim(HLOS, h)
    assert mem.owner_of(0) == HLOS and mem.access(HLOS, 0, "W")


# --- notify -------------------------------------------------------------------------------
def test_notify_shared_carries_sizes_not_addresses(mem: MemoryModel, rec: Recorder) -> None:
    h = mem.lend(HLOS, [(GUEST, RW), (OTHER, R)], [(0, P), (4 * P, 2 * P)], label=7,
                 sanitize=True)
    out = mem.notify(HLOS, h, MemNotifyFlags.SHARED, [GUEST, OTHER], mem_info_tag=3)
    assert [(v, name) for v, name, _ in out] == [(GUEST, "MEM_SHARED"), (OTHER, "MEM_SHARED")]
    payload = out[0][2]
    assert payload["regions"] == [P, 2 * P] and payload["flags"] == 1
    assert (payload["owner_vmid"], payload["label"], payload["trans_type"]) == (HLOS, 7, 1)
    assert "base" not in json.dumps(payload) and "ipa" not in json.dumps(payload)
    assert rec.events[-1][0] == "mem.notify"
    assert rec.events[-1][1]["targets"] == [GUEST, OTHER]


def test_notify_directions_and_refusals(mem: MemoryModel) -> None:
    h = mem.lend(HLOS, [(GUEST, RW)], [(0, P)])
    refused("DENIED", mem.notify, GUEST, h, MemNotifyFlags.SHARED, [GUEST])
    refused("ARGUMENT_INVALID", mem.notify, HLOS, h, MemNotifyFlags.SHARED, [OTHER])
    refused("ARGUMENT_INVALID", mem.notify, HLOS, h, MemNotifyFlags.SHARED, [])
    refused("ARGUMENT_INVALID", mem.notify, HLOS, h, 3, [GUEST])
    refused("DENIED", mem.notify, HLOS, h, MemNotifyFlags.ACCEPTED)
    refused("DENIED", mem.notify, OTHER, h, MemNotifyFlags.RELEASED)
    refused("HANDLE_INVALID", mem.notify, HLOS, 9, MemNotifyFlags.SHARED, [GUEST])
    assert mem.notify(GUEST, h, MemNotifyFlags.ACCEPTED, mem_info_tag=4) == [
        (HLOS, "MEM_ACCEPTED", {"handle": h, "vmid": GUEST, "mem_info_tag": 4})]
    refused("ARGUMENT_INVALID", mem.notify, GUEST, h, MemNotifyFlags.RELEASED, mem_info_tag=5)
    assert mem.notify(GUEST, h, MemNotifyFlags.RELEASED, mem_info_tag=4)[0][1] == "MEM_RELEASED"
    assert mem.notify(HLOS, h, MemNotifyFlags.RECALL, [GUEST], mem_info_tag=4) == [
        (GUEST, "MEM_RECALL", {"handle": h, "mem_info_tag": 4})]


def test_notify_flags_are_the_wire_values_one_at_a_time(mem: MemoryModel) -> None:
    """facts §8.3: SHARED 1, RELEASED 2, ACCEPTED 4, RECALL 8; 0, combinations and
    unknown bits are refused."""
    h = mem.share(HLOS, [(HLOS, RW), (GUEST, R)], [(0, P)])
    assert mem.notify(HLOS, h, 1, [GUEST], mem_info_tag=0)[0][1] == "MEM_SHARED"
    assert mem.notify(GUEST, h, 4, mem_info_tag=0)[0][1] == "MEM_ACCEPTED"
    assert mem.notify(GUEST, h, 2, mem_info_tag=0)[0][1] == "MEM_RELEASED"
    assert mem.notify(HLOS, h, 8, [GUEST], mem_info_tag=0)[0][1] == "MEM_RECALL"
    for flags in (0, 5, 16, 0x10000, -1):
        refused("ARGUMENT_INVALID", mem.notify, HLOS, h, flags, [GUEST], mem_info_tag=0)


# --- access, snapshot, invariants ---------------------------------------------------------
def test_unmapped_access_is_a_translation_fault(mem: MemoryModel, rec: Recorder) -> None:
    assert not mem.access(GUEST, 200 * P, "R")
    assert rec.events[-1][1]["reason"] == "translation" and rec.events[-1][1]["owner"] is None
    assert mem.read(GUEST, 16 * P) == 0x22 and mem.read(GUEST, 0) is None
    with pytest.raises(ValueError):
        mem.access(GUEST, 16 * P, "Q")


def test_snapshot_is_json_and_round_trips(mem: MemoryModel) -> None:
    h = mem.share(HLOS, [(HLOS, RW), (GUEST, R)], [(0, P)], label=1)
    mem.accept(GUEST, h, ipa_base=80 * P)
    mem.notify(HLOS, h, MemNotifyFlags.SHARED, [GUEST], mem_info_tag=2)
    mem.lend(HLOS, [(OTHER, RW)], [(2 * P, P)])
    snap = mem.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    again = MemoryModel.from_snapshot(snap)
    assert again.snapshot() == snap
    again.check_invariants()
    assert again.lend(HLOS, [(GUEST, R)], [(3 * P, P)]) == 2  # the handle counter survives


def test_check_invariants_catches_a_second_owner_mapping(mem: MemoryModel) -> None:
    mem.check_invariants()
    snap = mem.snapshot()
    snap["stage2"][str(HLOS)].append([16, snap["stage2"][str(GUEST)][0][1]])
    bad = MemoryModel.from_snapshot(snap)
    with pytest.raises(AssertionError):
        bad.check_invariants()


def test_mem_error_only_takes_rm_names() -> None:
    with pytest.raises(ValueError):
        MemError("MSGQUEUE_FULL")
    assert MemError("DENIED", "x").error == "DENIED"


# --- random walk: a small shadow of the RM rules checked against the model ----------------
SM_VMS = (1, 2, 3)
SM_PAGES = 6  # page i starts owned by VM i // 2 + 1
KINDS = {"R": R, "W": W, "X": X}
rights_st = st.integers(min_value=1, max_value=RWX)
acl_st = st.lists(st.tuples(st.sampled_from(SM_VMS), rights_st), min_size=1, max_size=3,
                  unique_by=lambda e: e[0])


class MemoryMachine(RuleBasedStateMachine):
    """Random lend/share/donate/accept/release/reclaim/access over 3 VMs and 6 pages.

    The shadow predicts every outcome, including the RM error name, so a refusal the
    model should not make (or a success it should refuse) fails the run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rec = Recorder()
        self.mem = MemoryModel(self.rec)
        self.owner = {p: p // 2 + 1 for p in range(SM_PAGES)}
        for p, vmid in self.owner.items():
            self.mem.add_region(vmid, p * P, P)
        # handle -> {"owner", "trans", "acl": {vmid: rights}, "page", "accepted": set}
        self.live: dict[int, dict] = {}

    def expect(self, error: str | None, fn, *args, **kwargs):
        if error is None:
            return fn(*args, **kwargs)
        before = self.mem.snapshot()
        refused(error, fn, *args, **kwargs)
        assert self.mem.snapshot() == before, "a refused call changed state"
        return None

    def pick(self, pick: int, listed: bool, vmid: int) -> tuple[int, int]:
        """A live handle, and either a VM from its ACL (``listed``) or ``vmid``."""
        h = sorted(self.live)[pick % len(self.live)]
        acl = sorted(self.live[h]["acl"])
        return h, acl[vmid % len(acl)] if listed else vmid

    def create(self, trans: str, owner: int, page: int, acl: list[tuple[int, int]]) -> None:
        listed = owner in dict(acl)
        error = None
        if listed != (trans == "share") or (
                trans == "donate" and (len(acl) != 1 or acl[0][1] != RWX)):
            error = "ARGUMENT_INVALID"
        elif self.owner[page] != owner or any(p["page"] == page for p in self.live.values()):
            error = "MEM_INVALID"
        h = self.expect(error, getattr(self.mem, trans), owner, acl, [(page * P, P)])
        if error is None:
            self.live[h] = {"owner": owner, "trans": trans, "acl": dict(acl), "page": page,
                            "accepted": set()}

    @rule(trans=st.sampled_from(["lend", "share"]), owner=st.sampled_from(SM_VMS),
          page=st.integers(0, SM_PAGES - 1), acl=acl_st)
    def create_anything(self, trans: str, owner: int, page: int, acl: list) -> None:
        self.create(trans, owner, page, acl)

    @rule(trans=st.sampled_from(["lend", "share"]), page=st.integers(0, SM_PAGES - 1),
          acl=acl_st)
    def create_well_formed(self, trans: str, page: int, acl: list) -> None:
        """The page's owner gives it away with a well-formed ACL (may still be in use)."""
        owner = self.owner[page]
        acl = [(v, r) for v, r in acl if v != owner] or [(owner % 3 + 1, RW)]
        if trans == "share":
            acl = [(owner, RWX), *acl]
        self.create(trans, owner, page, acl)

    @rule(mine=st.booleans(), owner=st.sampled_from(SM_VMS), to=st.sampled_from(SM_VMS),
          page=st.integers(0, SM_PAGES - 1), rights=st.sampled_from([RWX, RWX, RW]))
    def donate(self, mine: bool, owner: int, to: int, page: int, rights: int) -> None:
        owner = self.owner[page] if mine else owner
        to = owner % len(SM_VMS) + 1 if mine and to == owner else to
        self.create("donate", owner, page, [(to, rights)])

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 3), listed=st.booleans(), vmid=st.sampled_from(SM_VMS))
    def accept(self, pick: int, listed: bool, vmid: int) -> None:
        h, vmid = self.pick(pick, listed, vmid)
        parcel = self.live[h]
        denied = vmid == parcel["owner"] or vmid not in parcel["acl"]
        self.expect("DENIED" if denied or vmid in parcel["accepted"] else None,
                    self.mem.accept, vmid, h)
        if denied or vmid in parcel["accepted"]:
            return
        if parcel["trans"] == "donate":
            self.owner[parcel["page"]] = vmid
            del self.live[h]
        else:
            parcel["accepted"].add(vmid)

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 3), listed=st.booleans(), vmid=st.sampled_from(SM_VMS))
    def release(self, pick: int, listed: bool, vmid: int) -> None:
        h, vmid = self.pick(pick, False, vmid)
        parcel = self.live[h]
        if listed and parcel["accepted"]:
            vmid = sorted(parcel["accepted"])[pick % len(parcel["accepted"])]
        if vmid == parcel["owner"]:
            error = "DENIED"
        else:
            error = None if vmid in parcel["accepted"] else "MEM_RELEASED"
        self.expect(error, self.mem.release, vmid, h)
        parcel["accepted"].discard(vmid)

    @precondition(lambda self: self.live)
    @rule(pick=st.integers(0, 3), as_owner=st.booleans(), vmid=st.sampled_from(SM_VMS),
          sanitize=st.booleans())
    def reclaim(self, pick: int, as_owner: bool, vmid: int, sanitize: bool) -> None:
        h, vmid = self.pick(pick, False, vmid)
        parcel = self.live[h]
        vmid = parcel["owner"] if as_owner else vmid
        if vmid != parcel["owner"]:
            error = "DENIED"
        else:
            error = "MEM_INUSE" if parcel["accepted"] else None
        self.expect(error, self.mem.reclaim, vmid, h, sanitize=sanitize)
        if error is None:
            del self.live[h]

    @rule(vmid=st.sampled_from(SM_VMS), h=st.integers(0, 40))
    def unknown_handle(self, vmid: int, h: int) -> None:
        if h not in self.live:
            for call in (self.mem.accept, self.mem.release, self.mem.reclaim):
                self.expect("HANDLE_INVALID", call, vmid, h)

    def expected_rights(self, vmid: int, page: int) -> int:
        """Stage-2 rights the facts sheet implies for ``vmid`` at IPA = PA ``page``."""
        parcel = next((p for p in self.live.values() if p["page"] == page), None)
        if self.owner[page] == vmid:
            return 0 if parcel and parcel["trans"] != "share" else RWX
        if parcel and vmid in parcel["accepted"]:
            return parcel["acl"][vmid]
        return 0

    @rule(vmid=st.sampled_from(SM_VMS), page=st.integers(0, SM_PAGES - 1),
          kind=st.sampled_from(sorted(KINDS)))
    def access(self, vmid: int, page: int, kind: str) -> None:
        allowed = bool(self.expected_rights(vmid, page) & KINDS[kind])
        n = len(self.rec.events)
        assert self.mem.access(vmid, page * P + 8, kind) is allowed
        faults = [f for k, f in self.rec.events[n:] if k == "mem.fault"]
        if allowed:
            assert faults == []
        else:
            assert [(f["vm"], f["addr"], f["access"]) for f in faults] == \
                [(vmid, page * P + 8, kind)]

    @invariant()
    def model_invariants_hold(self) -> None:
        self.mem.check_invariants()

    @invariant()
    def every_page_has_exactly_one_owner(self) -> None:
        for page, vmid in self.owner.items():
            assert self.mem.owner_of(page * P) == vmid
            holders = [v for v in SM_VMS
                       if any(r["state"] in ("owned", "lent", "shared", "donated-in")
                              and r["pa"] <= page * P < r["pa"] + r["size"]
                              for r in self.mem.view(v))]
            assert holders == [vmid]

    @invariant()
    def lender_never_touches_lent_pages(self) -> None:
        for h, parcel in self.live.items():
            if parcel["trans"] == "share":
                continue
            for kind in KINDS:
                n = len(self.rec.events)
                assert not self.mem.access(parcel["owner"], parcel["page"] * P, kind)
                assert self.rec.events[n:] and self.rec.events[-1][0] == "mem.fault"
                assert self.rec.events[-1][1]["handle"] == h

    @invariant()
    def parcel_table_matches(self) -> None:
        rows = {d["handle"]: d for d in self.mem.parcels()}
        assert sorted(rows) == sorted(self.live)
        for h, parcel in self.live.items():
            assert set(rows[h]["accepted"]) == parcel["accepted"]
            assert rows[h]["state"] == ("SHARED" if parcel["accepted"] else "SHARING")


MemoryMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                           deadline=None)
TestMemoryMachine = MemoryMachine.TestCase
