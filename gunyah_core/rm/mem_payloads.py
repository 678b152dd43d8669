"""Byte layouts of the memparcel RPC bodies: MEM_LEND/SHARE/DONATE, ACCEPT, RELEASE,
RECLAIM, NOTIFY and the MEM_SHARED/ACCEPTED/RELEASED/RECALL notifications (facts §8.2-8.4).

Little-endian and packed like the RM's ``memparcel_msg.h`` structs. Every list is
"u16 count, u16 pad, entries"; entries are plain tuples (``acl=[(vmid, rights)]``,
``sgl=[(ipa, size)]``, ``attrs=[(attr, vmid)]``). Not modelled: MEM_APPEND, QCOM_LOOKUP_SGL.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Self

from gunyah_core.mem.memparcel import MEM_TYPE_NORMAL as MEM_TYPE_NORMAL  # re-exported
from gunyah_core.mem.memparcel import MemNotifyFlags as MemNotifyFlags
from gunyah_core.mem.memparcel import PgtableAccess as PgtableAccess  # ACL rights X 1, W 2, R 4
from gunyah_core.mem.memparcel import TransType as TransType
from gunyah_core.rm.messages import RmMessageId
from gunyah_core.rm.payloads import PayloadError, _Fixed

# --- Constants with the RM's names (memparcel_msg.h; facts §8.2-8.4) ------------------------
MEM_TYPE_IO = 1  # MEM_TYPE_NORMAL (0) lives in memparcel.py
MEM_RELEASE_FLAG_SANITIZE = 0x1
MEM_RECLAIM_FLAG_SANITIZE = 0x1
# MEM_SHARED flags bit 0 = "the parcel was sanitized at create" (facts §8.4); the name is ours.
MEM_SHARED_FLAG_SANITIZED = 0x1


class MemCreateFlags(IntFlag):
    """MEM_LEND/SHARE/DONATE ``flags`` (MEM_CREATE_FLAG_*)."""

    SANITIZE = 0x1
    APPEND = 0x2  # more SGL follows in MEM_APPEND (not modelled)


class MemAcceptFlags(IntFlag):
    """MEM_ACCEPT ``flags`` (MEM_ACCEPT_FLAG_*)."""

    VALIDATE_SANITIZED = 0x1
    VALIDATE_ACL_ATTR = 0x2
    VALIDATE_LABEL = 0x4
    MAP_OTHER = 0x8
    MAP_CONTIGUOUS = 0x10
    SANITIZE = 0x20
    DONE = 0x80


class MemAcceptReplyFlags(IntFlag):
    """Flags byte of the MEM_ACCEPT SGL reply (MEM_ACCEPT_RESP_FLAG_*)."""

    INCOMPLETE = 0x1


class MemAttr(IntEnum):
    """Attr-list ``attr`` values (MEM_ATTR_*)."""

    NORMAL = 0
    DEVICE = 1
    UNCACHED = 2
    CACHED = 3


_CREATE_IDS = {
    TransType.DONATE: RmMessageId.MEM_DONATE,
    TransType.LEND: RmMessageId.MEM_LEND,
    TransType.SHARE: RmMessageId.MEM_SHARE,
}


def create_msg_id(trans: TransType | int) -> RmMessageId:
    """The request id that carries a MemLendReq for ``trans`` (the body has no trans field)."""
    return _CREATE_IDS[TransType(trans)]


# --- List codec -----------------------------------------------------------------------------
LIST_HEAD = struct.Struct("<HH")  # count, pad
ACL_ENTRY = struct.Struct("<HBB")  # vmid, rights, res0
SGL_ENTRY = struct.Struct("<QQ")  # ipa, size
ATTR_ENTRY = struct.Struct("<HH")  # attr, vmid
VMID_ENTRY = struct.Struct("<HH")  # vmid, res0
SIZE_ENTRY = struct.Struct("<Q")  # MEM_SHARED region: size only


def _pack(fmt: struct.Struct, values: Sequence[Any], what: str) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as exc:
        raise PayloadError(f"{what}: {exc}") from None


def _check_pad(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise PayloadError(f"{what}: pad must be {size} bytes, got {value!r}")


@dataclass(frozen=True)
class _List:
    """How one "u16 count, u16 pad, entries" list maps to a field.

    ``res``: the entry ends in a reserved field that Python does not carry. The sheet does
    not say whether the RM checks it; we refuse non-zero so decode stays lossless.
    ``scalar``: entries have one value, held as ints, not 1-tuples.
    ``pad_field``: the pad is a field (MEM_ACCEPT's map_vmid); otherwise it must be 0.
    """

    name: str
    entry: struct.Struct
    res: bool = False
    scalar: bool = False
    pad_field: str | None = None

    def normalise(self, value: Sequence[Any]) -> list[Any]:
        return [int(v) for v in value] if self.scalar else [tuple(v) for v in value]

    def pack(self, body: object) -> bytes:
        rows = getattr(body, self.name)
        pad = getattr(body, self.pad_field) if self.pad_field else 0
        head = _pack(LIST_HEAD, (len(rows), pad), f"{self.name} count")
        return head + b"".join(
            _pack(self.entry, ((row,) if self.scalar else row) + ((0,) if self.res else ()),
                  f"{self.name} entry")
            for row in rows)

    def unpack(self, r: _Reader, values: dict[str, Any]) -> None:
        count, pad = r.take(LIST_HEAD, f"{self.name} count")
        if self.pad_field:
            values[self.pad_field] = pad
        elif pad:
            raise PayloadError(f"{r.what}: {self.name} pad is {pad:#x}, must be 0")
        rows = [r.take(self.entry, f"{self.name} entry {i} of {count}") for i in range(count)]
        if self.res:
            if any(row[-1] for row in rows):
                raise PayloadError(f"{r.what}: {self.name} entry reserved field must be 0")
            rows = [row[:-1] for row in rows]
        values[self.name] = [row[0] for row in rows] if self.scalar else rows


class _Reader:
    """Walks a body front to back, checking every read against the bytes left."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = bytes(data), 0, what

    def take(self, fmt: struct.Struct, part: str) -> tuple[Any, ...]:
        if self.pos + fmt.size > len(self.data):
            raise PayloadError(f"{self.what}: {part} needs {fmt.size} bytes at offset "
                               f"{self.pos}, {len(self.data) - self.pos} left")
        values = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return values

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise PayloadError(f"{self.what}: {len(self.data) - self.pos} trailing bytes")


ACL = _List("acl", ACL_ENTRY, res=True)
SGL = _List("sgl", SGL_ENTRY)
ATTRS = _List("attrs", ATTR_ENTRY)


class _ListBody:
    """A fixed ``HEAD`` (the first dataclass fields, in order) followed by ``LISTS``."""

    HEAD: ClassVar[struct.Struct]
    LISTS: ClassVar[tuple[_List, ...]]

    @classmethod
    def _head_names(cls) -> list[str]:
        skip = {lst.name for lst in cls.LISTS} | {lst.pad_field for lst in cls.LISTS}
        return [f.name for f in fields(cls) if f.name not in skip]  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for lst in self.LISTS:
            object.__setattr__(self, lst.name, lst.normalise(getattr(self, lst.name)))

    def encode(self) -> bytes:
        """Pack header then lists; raise PayloadError if a value does not fit its width."""
        head = [getattr(self, name) for name in self._head_names()]
        return (_pack(self.HEAD, head, type(self).__name__)
                + b"".join(lst.pack(self) for lst in self.LISTS))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Unpack; raise PayloadError on a short body, a count past the end or trailing bytes."""
        r = _Reader(data, cls.__name__)
        values = dict(zip(cls._head_names(), r.take(cls.HEAD, "header"), strict=True))
        for lst in cls.LISTS:
            lst.unpack(r, values)
        r.finish()
        return cls(**values)


# --- Requests -------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MemLendReq(_ListBody):
    """MEM_LEND / MEM_SHARE / MEM_DONATE body: header, then ACL, SGL and attr lists.

    The RM's C struct declares the ACL count as a u32; for < 65536 entries that is
    byte-identical to "u16 count, u16 pad = 0", the form facts §8.2 gives.
    """

    HEAD: ClassVar[struct.Struct] = struct.Struct("<BBBBI")
    LISTS: ClassVar[tuple[_List, ...]] = (ACL, SGL, ATTRS)
    mem_type: int = MEM_TYPE_NORMAL
    res0: int = 0
    flags: int = 0
    res1: int = 0
    label: int = 0
    acl: Sequence[tuple[int, int]] = ()
    sgl: Sequence[tuple[int, int]] = ()
    attrs: Sequence[tuple[int, int]] = ()


@dataclass(frozen=True, kw_only=True)
class MemAcceptReq(_ListBody):
    """MEM_ACCEPT body. An empty SGL asks the RM to pick IPAs (reply: MemAcceptReply).

    ``map_vmid`` rides in the SGL count's pad and must be 0 (facts §8.3); it is kept as a
    field so the RM, not the codec, decides how to refuse it.
    """

    HEAD: ClassVar[struct.Struct] = struct.Struct("<IBBBBI")
    LISTS: ClassVar[tuple[_List, ...]] = (ACL, _List("sgl", SGL_ENTRY, pad_field="map_vmid"),
                                          ATTRS)
    handle: int
    mem_type: int = MEM_TYPE_NORMAL
    trans_type: int
    flags: int = 0
    res0: int = 0
    label: int = 0
    acl: Sequence[tuple[int, int]] = ()
    sgl: Sequence[tuple[int, int]] = ()
    map_vmid: int = 0
    attrs: Sequence[tuple[int, int]] = ()


@dataclass(frozen=True, kw_only=True)
class MemHandleFlagsReq(_Fixed):
    """MEM_RELEASE / MEM_RECLAIM: ``handle u32, flags u8 (bit0 SANITIZE), pad[3]``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<IB3s")
    handle: int
    flags: int = 0
    res0: bytes = bytes(3)

    def __post_init__(self) -> None:
        _check_pad(self.res0, 3, type(self).__name__)


_NOTIFY_HEAD = struct.Struct("<IB3sI")  # handle, flags, pad[3], mem_info_tag
_NOTIFY_LIST_FLAGS = MemNotifyFlags.SHARED | MemNotifyFlags.RECALL
VMIDS = _List("vmids", VMID_ENTRY, res=True, scalar=True)


@dataclass(frozen=True, kw_only=True)
class MemNotifyReq:
    """MEM_NOTIFY: ``handle u32, flags u8, pad[3], mem_info_tag u32`` [+ vmid list].

    The sheet says SHARED and RECALL go to "the listed VMIDs" and writes "[vmid list]"
    without a layout. We use its general list form: u16 count, u16 pad, then {vmid u16,
    pad u16} entries (the RM's ``vmid_entry_t``). The public RM has no RECALL flag; that
    RECALL carries the same list as SHARED is our inference. RELEASED/ACCEPTED carry no
    list, so bytes after their header are refused.
    """

    handle: int
    flags: int
    res0: bytes = bytes(3)
    mem_info_tag: int = 0
    vmids: Sequence[int] = ()

    def __post_init__(self) -> None:
        _check_pad(self.res0, 3, type(self).__name__)
        object.__setattr__(self, "vmids", VMIDS.normalise(self.vmids))

    @property
    def has_vmid_list(self) -> bool:
        return bool(self.flags & _NOTIFY_LIST_FLAGS)

    def encode(self) -> bytes:
        """Pack; raise PayloadError if vmids are given for flags that carry no list."""
        head = _pack(_NOTIFY_HEAD, (self.handle, self.flags, self.res0, self.mem_info_tag),
                     "MemNotifyReq")
        if self.has_vmid_list:
            return head + VMIDS.pack(self)
        if self.vmids:
            raise PayloadError(f"MemNotifyReq: flags {self.flags:#x} carry no vmid list")
        return head

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Unpack; the vmid list is read only when flags has SHARED or RECALL."""
        r = _Reader(data, cls.__name__)
        handle, flags, res0, tag = r.take(_NOTIFY_HEAD, "header")
        values: dict[str, Any] = {"vmids": []}
        if flags & _NOTIFY_LIST_FLAGS:
            VMIDS.unpack(r, values)
        r.finish()
        return cls(handle=handle, flags=flags, res0=res0, mem_info_tag=tag, **values)


# --- Replies ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MemHandleReply(_Fixed):
    """MEM_LEND/SHARE/DONATE reply data: the new memparcel ``handle`` (u32)."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<I")
    handle: int


_ACCEPT_REPLY_HEAD = struct.Struct("<HBB")  # count, flags, res0


@dataclass(frozen=True, kw_only=True)
class MemAcceptReply:
    """MEM_ACCEPT reply data: empty (``sgl=None``) when the borrower chose the IPAs, else
    ``{u16 count, u8 flags (INCOMPLETE), u8 res0}`` and the SGL the RM mapped."""

    sgl: Sequence[tuple[int, int]] | None = None
    flags: int = 0
    res0: int = 0

    def __post_init__(self) -> None:
        if self.sgl is not None:
            object.__setattr__(self, "sgl", SGL.normalise(self.sgl))
        elif self.flags or self.res0:
            raise PayloadError("MemAcceptReply: flags need an SGL reply")

    def encode(self) -> bytes:
        """Empty when ``sgl`` is None, else header + SGL entries."""
        if self.sgl is None:
            return b""
        head = _pack(_ACCEPT_REPLY_HEAD, (len(self.sgl), self.flags, self.res0),
                     "MemAcceptReply")
        return head + b"".join(_pack(SGL_ENTRY, row, "sgl entry") for row in self.sgl)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Empty data -> no SGL; otherwise the count must match the bytes exactly."""
        if not data:
            return cls()
        r = _Reader(data, cls.__name__)
        count, flags, res0 = r.take(_ACCEPT_REPLY_HEAD, "header")
        sgl = [r.take(SGL_ENTRY, f"sgl entry {i} of {count}") for i in range(count)]
        r.finish()
        return cls(sgl=sgl, flags=flags, res0=res0)


# --- Notifications (RM -> VM) ---------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MemSharedNotif(_ListBody):
    """MEM_SHARED to each VM named in MEM_NOTIFY(SHARED) (facts §8.4).

    ``regions`` are sizes only: the borrower learns how much, never where the owner had it.
    The public RM leaves out the attr list for hypervisor-assigned parcels; the sheet always
    lists it, and so do we.
    """

    # handle, mem_type, trans_type, flags, res0, owner_vmid, res1[2], label, mem_info_tag
    HEAD: ClassVar[struct.Struct] = struct.Struct("<IBBBBH2sII")
    LISTS: ClassVar[tuple[_List, ...]] = (ACL, _List("regions", SIZE_ENTRY, scalar=True),
                                          ATTRS)
    handle: int
    mem_type: int = MEM_TYPE_NORMAL
    trans_type: int
    flags: int = 0
    res0: int = 0
    owner_vmid: int
    res1: bytes = bytes(2)
    label: int = 0
    mem_info_tag: int = 0
    acl: Sequence[tuple[int, int]] = ()
    regions: Sequence[int] = ()
    attrs: Sequence[tuple[int, int]] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_pad(self.res1, 2, type(self).__name__)

    @classmethod
    def from_payload(cls, payload: dict) -> Self:
        """Build from ``memparcel.shared_payload`` (the dict MemoryModel.notify returns)."""
        return cls(handle=payload["handle"], mem_type=payload["mem_type"],
                   trans_type=payload["trans_type"], flags=payload["flags"],
                   owner_vmid=payload["owner_vmid"], label=payload["label"],
                   mem_info_tag=payload["mem_info_tag"],
                   acl=[(e["vmid"], e["rights"]) for e in payload["acl"]],
                   regions=payload["regions"],
                   attrs=[(e["attr"], e["vmid"]) for e in payload.get("attrs", ())])


@dataclass(frozen=True, kw_only=True)
class MemOwnerNotif(_Fixed):
    """MEM_ACCEPTED / MEM_RELEASED to the owner: ``handle u32, vmid u16, pad[2],
    mem_info_tag u32`` (RM ``memparcel_owner_notif_t``); ``vmid`` is the borrower."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<IH2sI")
    handle: int
    vmid: int
    res0: bytes = bytes(2)
    mem_info_tag: int = 0

    def __post_init__(self) -> None:
        _check_pad(self.res0, 2, type(self).__name__)


MemAcceptedNotif = MemOwnerNotif
MemReleasedNotif = MemOwnerNotif


@dataclass(frozen=True, kw_only=True)
class MemRecallNotif(_Fixed):
    """MEM_RECALL to each listed borrower: ``handle u32, mem_info_tag u32``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<II")
    handle: int
    mem_info_tag: int = 0


def notification_body(name: str, payload: dict) -> tuple[RmMessageId, bytes]:
    """Turn one ``(vmid, name, payload)`` from MemoryModel.notify into (msg id, body bytes)."""
    msg_id = RmMessageId[name]
    if msg_id is RmMessageId.MEM_SHARED:
        return msg_id, MemSharedNotif.from_payload(payload).encode()
    if msg_id in (RmMessageId.MEM_ACCEPTED, RmMessageId.MEM_RELEASED):
        body = MemOwnerNotif(handle=payload["handle"], vmid=payload["vmid"],
                             mem_info_tag=payload["mem_info_tag"])
        return msg_id, body.encode()
    if msg_id is RmMessageId.MEM_RECALL:
        return msg_id, MemRecallNotif(handle=payload["handle"],
                                      mem_info_tag=payload["mem_info_tag"]).encode()
    raise PayloadError(f"{name} is not a memparcel notification")
