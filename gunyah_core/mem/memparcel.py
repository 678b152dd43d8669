"""Memparcels: the Resource Manager's record of memory lent, shared or donated.

A ``MemParcel`` names pages an owner VM put up for other VMs (RM ``memparcel.c``), with
its ACL, the owner's SGL and who has accepted it. This module holds the parcel record,
the stage-2 ``Mapping`` and the argument checks an RM makes before creating one;
``memory.py`` moves pages between stage-2 views. Simplified: no APPEND (a parcel is
complete when created, so it starts in SHARING), no IO memory, no memory attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

# 4 KiB: the AArch64 translation granule Gunyah's stage-2 tables use. The facts sheet
# gives no page size; the simulator uses the smallest granule so one page = one cell.
PAGE_SIZE = 4096

# RM memparcel limits (facts §8.2, RM memparcel.c).
MEMPARCEL_MAX_LIST_ENTRIES = 512
MEMPARCEL_MAX_PER_OWNER = 64
MEMPARCEL_HANDLE_INVALID = 0xFFFFFFFF  # the counter skips it (facts §8.2)
MEMPARCEL_HANDLE_MASK = 0xFFFFFFFF  # handles are u32


class PgtableAccess(IntFlag):
    """Stage-2 access rights, also the RM ACL ``rights`` byte (facts §8.1: X 1, W 2, R 4)."""

    NONE = 0
    X = 1
    W = 2
    R = 4
    RX = 5
    RW = 6
    RWX = 7


class TransType(IntEnum):
    """Memparcel transaction types (RM ``memparcel_msg.h``, facts §8.2)."""

    DONATE = 0
    LEND = 1
    SHARE = 2


class ParcelState(IntEnum):
    """INIT (incomplete) -> SHARING (complete) -> SHARED (>= 1 acceptor) (facts §8.2)."""

    INIT = 0
    SHARING = 1
    SHARED = 2


class MemNotifyFlags(IntFlag):
    """MEM_NOTIFY flags (facts §8.3)."""

    SHARED = 1
    RELEASED = 2
    ACCEPTED = 4
    RECALL = 8


# The RM error names this model can raise (facts §5.2, RM ``rm_types.h``).
RM_MEM_ERRORS = frozenset(
    {
        "ARGUMENT_INVALID",
        "DENIED",
        "MEM_INVALID",
        "MEM_INUSE",
        "MEM_RELEASED",
        "HANDLE_INVALID",
        "VALIDATE_FAILED",
        "NORESOURCE",
    }
)

# Page states shown in a VM's memory map.
OWNED, LENT, SHARED, BORROWED, DONATED_IN = "owned", "lent", "shared", "borrowed", "donated-in"
OWNER_STATES = frozenset({OWNED, LENT, SHARED, DONATED_IN})


class MemError(Exception):
    """An RM-level memory refusal; ``error`` is the RM error name the reply carries."""

    def __init__(self, error: str, message: str = "") -> None:
        if error not in RM_MEM_ERRORS:
            raise ValueError(f"not an RM memory error name: {error}")
        super().__init__(f"{error}{': ' + message if message else ''}")
        self.error = error
        self.message = message


def rights_str(rights: int) -> str:
    """Rights as letters in RWX order ("RW", "RX"), or "NONE"."""
    text = "".join(name for name, bit in (("R", 4), ("W", 2), ("X", 1)) if rights & bit)
    return text or "NONE"


def access_bit(kind: str) -> PgtableAccess:
    """The right an access of ``kind`` ('R', 'W' or 'X') needs."""
    try:
        return PgtableAccess[kind]
    except KeyError:
        raise ValueError(f"access kind must be 'R', 'W' or 'X', not {kind!r}") from None


@dataclass(slots=True)
class Mapping:
    """One stage-2 entry: an IPA page maps physical page ``pa`` with ``rights``.

    A lent page stays in its owner's table with rights NONE (``saved_*`` keep what
    reclaim restores), so the memory map can draw the hole and IPAs cannot be reused.
    """

    pa: int
    rights: int
    state: str
    handle: int | None = None
    saved_rights: int = 0
    saved_state: str = OWNED

    def to_dict(self) -> dict:
        return {
            "pa": self.pa,
            "rights": self.rights,
            "state": self.state,
            "handle": self.handle,
            "saved_rights": self.saved_rights,
            "saved_state": self.saved_state,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Mapping:
        return cls(**d)


@dataclass(slots=True)
class MemParcel:
    """A parcel: owner, transaction, ACL vmid -> rights, the pages, who accepted where.

    ``pages`` is a list of (owner IPA page, physical page); ``accepted`` maps a borrower
    to the IPA pages it mapped, in ``pages`` order.
    """

    handle: int
    owner: int
    trans_type: TransType
    acl: dict[int, int]
    sgl: list[tuple[int, int]]
    pages: list[tuple[int, int]]
    label: int = 0
    sanitized: bool = False
    state: ParcelState = ParcelState.SHARING
    accepted: dict[int, list[int]] = field(default_factory=dict)
    sanitize_on_reclaim: bool = False
    mem_info_tag: int | None = None

    @property
    def size(self) -> int:
        return len(self.pages) * PAGE_SIZE

    def to_dict(self) -> dict:
        """Plain JSON-able form (also the ``parcels()`` row for the UI)."""
        return {
            "handle": self.handle,
            "owner": self.owner,
            "trans_type": self.trans_type.name,
            "state": self.state.name,
            "acl": [{"vmid": v, "rights": rights_str(r)} for v, r in self.acl.items()],
            "accepted": sorted(self.accepted),
            "sgl": [{"base": b, "size": s} for b, s in self.sgl],
            "size": self.size,
            "label": self.label,
            "sanitized": self.sanitized,
            "sanitize_on_reclaim": self.sanitize_on_reclaim,
            "mem_info_tag": self.mem_info_tag,
            "pages": [[ipa, pa] for ipa, pa in self.pages],
            "accepted_at": {str(v): ipas for v, ipas in sorted(self.accepted.items())},
        }

    @classmethod
    def from_dict(cls, d: dict) -> MemParcel:
        return cls(
            handle=d["handle"],
            owner=d["owner"],
            trans_type=TransType[d["trans_type"]],
            acl={e["vmid"]: int(PgtableAccess[e["rights"]]) for e in d["acl"]},
            sgl=[(e["base"], e["size"]) for e in d["sgl"]],
            pages=[(ipa, pa) for ipa, pa in d["pages"]],
            label=d["label"],
            sanitized=d["sanitized"],
            state=ParcelState[d["state"]],
            accepted={int(v): list(ipas) for v, ipas in d["accepted_at"].items()},
            sanitize_on_reclaim=d["sanitize_on_reclaim"],
            mem_info_tag=d["mem_info_tag"],
        )


def check_lists(
    trans: TransType, owner: int, acl: list[tuple[int, int]], sgl: list[tuple[int, int]]
) -> None:
    """Refuse a malformed create request the way the RM does (ARGUMENT_INVALID).

    The sheet lists the limits but not the error for each; ARGUMENT_INVALID is used for
    all list-shape problems, as it is for "owner in a LEND ACL" (facts §8.2).
    """
    if not acl or not sgl:
        raise MemError("ARGUMENT_INVALID", "ACL and SGL must not be empty")
    if len(acl) > MEMPARCEL_MAX_LIST_ENTRIES or len(sgl) > MEMPARCEL_MAX_LIST_ENTRIES:
        raise MemError("ARGUMENT_INVALID", f"more than {MEMPARCEL_MAX_LIST_ENTRIES} entries")
    vmids = [vmid for vmid, _ in acl]
    if len(set(vmids)) != len(vmids):
        raise MemError("ARGUMENT_INVALID", "duplicate VMID in ACL")
    for vmid, rights in acl:
        if not PgtableAccess.NONE < rights <= PgtableAccess.RWX:
            raise MemError("ARGUMENT_INVALID", f"bad rights {rights} for VM {vmid}")
    if trans is TransType.SHARE and owner not in vmids:
        raise MemError("ARGUMENT_INVALID", "SHARE: the owner must be in the ACL")
    if trans is not TransType.SHARE and owner in vmids:
        raise MemError("ARGUMENT_INVALID", f"{trans.name}: the owner must not be in the ACL")
    if trans is TransType.DONATE and (len(acl) != 1 or acl[0][1] != PgtableAccess.RWX):
        raise MemError("ARGUMENT_INVALID", "DONATE: exactly one ACL entry with RWX")
    for base, size in sgl:
        if base < 0 or size <= 0 or base % PAGE_SIZE or size % PAGE_SIZE:
            # Sheet silent on alignment; whole pages are the only unit stage-2 can map.
            raise MemError("ARGUMENT_INVALID", f"SGL entry {base:#x}+{size:#x} not page-aligned")


def sgl_pages(sgl: list[tuple[int, int]]) -> list[int]:
    """IPA page numbers an SGL covers, in order; overlapping entries are refused."""
    pages = [p for base, size in sgl for p in range(base // PAGE_SIZE, (base + size) // PAGE_SIZE)]
    if len(set(pages)) != len(pages):
        raise MemError("ARGUMENT_INVALID", "SGL entries overlap")
    return pages


def coalesce(pages: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive page numbers as (base address, size) ranges."""
    ranges: list[tuple[int, int]] = []
    for p in pages:
        if ranges and ranges[-1][0] + ranges[-1][1] == p * PAGE_SIZE:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + PAGE_SIZE)
        else:
            ranges.append((p * PAGE_SIZE, PAGE_SIZE))
    return ranges


NOTIFY_NAMES = {
    MemNotifyFlags.SHARED: "MEM_SHARED",
    MemNotifyFlags.RELEASED: "MEM_RELEASED",
    MemNotifyFlags.ACCEPTED: "MEM_ACCEPTED",
    MemNotifyFlags.RECALL: "MEM_RECALL",
}
MEM_TYPE_NORMAL = 0  # MEM_SHARED payload mem_type (facts §8.2); IO memory is not modelled


def notify_messages(
    parcel: MemParcel, vmid: int, flags: int, vmids: list[int], mem_info_tag: int
) -> tuple[MemNotifyFlags, list[tuple[int, str, dict]]]:
    """Check a MEM_NOTIFY from ``vmid`` and build the notifications the RM sends (§8.3).

    SHARED/RECALL come from the owner and go to listed borrowers; RELEASED/ACCEPTED come
    from a borrower and go to the owner. The first notify fixes ``mem_info_tag``.
    """
    flag = MemNotifyFlags(flags) if 0 <= flags <= max(NOTIFY_NAMES) else None
    if flag not in NOTIFY_NAMES:  # sheet silent on combined flags: one at a time
        raise MemError("ARGUMENT_INVALID", f"notify flags {flags:#x}")
    if parcel.mem_info_tag is not None and mem_info_tag != parcel.mem_info_tag:
        raise MemError("ARGUMENT_INVALID", "mem_info_tag does not match")
    name = NOTIFY_NAMES[flag]
    if flag in (MemNotifyFlags.SHARED, MemNotifyFlags.RECALL):
        if vmid != parcel.owner:
            raise MemError("DENIED", f"only the owner may send {flag.name}")
        if not vmids or any(v == parcel.owner or v not in parcel.acl for v in vmids):
            raise MemError("ARGUMENT_INVALID", "targets must be borrowers in the ACL")
        if flag is MemNotifyFlags.SHARED:
            payload = shared_payload(parcel, mem_info_tag)
        else:
            payload = {"handle": parcel.handle, "mem_info_tag": mem_info_tag}
        out = [(v, name, dict(payload)) for v in vmids]
    else:
        if vmid == parcel.owner or vmid not in parcel.acl:
            raise MemError("DENIED", f"only a borrower may send {flag.name}")
        payload = {"handle": parcel.handle, "vmid": vmid, "mem_info_tag": mem_info_tag}
        out = [(parcel.owner, name, payload)]
    parcel.mem_info_tag = mem_info_tag
    return flag, out


def shared_payload(parcel: MemParcel, mem_info_tag: int) -> dict:
    """MEM_SHARED body (facts §8.4): region sizes only, never addresses."""
    return {
        "handle": parcel.handle,
        "mem_type": MEM_TYPE_NORMAL,
        "trans_type": int(parcel.trans_type),
        "flags": int(parcel.sanitized),
        "owner_vmid": parcel.owner,
        "label": parcel.label,
        "mem_info_tag": mem_info_tag,
        "acl": [{"vmid": v, "rights": r} for v, r in parcel.acl.items()],
        "regions": [size for _, size in parcel.sgl],
    }
