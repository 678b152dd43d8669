"""Memparcel RPC bodies, checked byte for byte against layouts worked out by hand (facts §8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah_core.mem.memory import MemoryModel
from gunyah_core.mem.memparcel import PAGE_SIZE, MemNotifyFlags, PgtableAccess, TransType
from gunyah_core.rm.mem_payloads import (
    MEM_TYPE_IO,
    MEM_TYPE_NORMAL,
    MemAcceptedNotif,
    MemAcceptFlags,
    MemAcceptReply,
    MemAcceptReplyFlags,
    MemAcceptReq,
    MemAttr,
    MemCreateFlags,
    MemHandleFlagsReq,
    MemHandleReply,
    MemLendReq,
    MemNotifyReq,
    MemOwnerNotif,
    MemRecallNotif,
    MemReleasedNotif,
    MemSharedNotif,
    PayloadError,
    create_msg_id,
    notification_body,
)
from gunyah_core.rm.messages import RmMessageId

h = bytes.fromhex
HLOS, GUEST = 0x03, 0x45
RW = int(PgtableAccess.RW)
LABEL, TAG = 0x11223344, 0xABCD

# MEM_LEND, SANITIZE, label 0x11223344, ACL [(0x45, RW)], SGL [(0x80000000, 0x4000)], no attrs.
LEND_1_1_0 = h(
    "00 00 01 00  44 33 22 11"  # mem_type NORMAL, res, flags SANITIZE, res, label
    "01 00 00 00  45 00 06 00"  # ACL count 1, pad; {vmid 0x45, rights RW, res}
    "01 00 00 00  00 00 00 80 00 00 00 00  00 40 00 00 00 00 00 00"  # SGL count 1; ipa, size
    "00 00 00 00"  # attrs count 0, pad
)
# MEM_ACCEPT handle 5, LEND, VALIDATE_LABEL|DONE, ACL [(0x45, RW)], empty SGL (RM picks IPAs).
ACCEPT_EMPTY_SGL = h(
    "05 00 00 00  00 01 84 00  44 33 22 11"  # handle, mem_type, trans LEND, flags 0x84, res, label
    "01 00 00 00  45 00 06 00"  # ACL
    "00 00 00 00"  # SGL count 0, map_vmid 0
    "00 00 00 00"  # attrs
)
ACCEPT_REPLY_SGL = h("01 00 01 00  00 00 00 10 00 00 00 00  00 40 00 00 00 00 00 00")
NOTIFY_SHARED_1 = h("05 00 00 00  01 00 00 00  cd ab 00 00  01 00 00 00  45 00 00 00")
# MEM_SHARED: handle 5, LEND, sanitized, owner 3, label, tag, ACL 1, two regions, no attrs.
SHARED_NOTIF = h(
    "05 00 00 00  00 01 01 00  03 00 00 00  44 33 22 11  cd ab 00 00"
    "01 00 00 00  45 00 06 00"
    "02 00 00 00  00 40 00 00 00 00 00 00  00 20 00 00 00 00 00 00"  # sizes only, no IPAs
    "00 00 00 00"
)
ACCEPTED_NOTIF = h("05 00 00 00  45 00 00 00  cd ab 00 00")


# --- byte-exact layouts ---------------------------------------------------------------------
def test_mem_lend_one_acl_one_sgl_no_attrs() -> None:
    req = MemLendReq(flags=MemCreateFlags.SANITIZE, label=LABEL, acl=[(GUEST, RW)],
                     sgl=[(0x8000_0000, 0x4000)])
    assert req.encode() == LEND_1_1_0
    assert len(LEND_1_1_0) == 40
    assert MemLendReq.decode(LEND_1_1_0) == req


def test_mem_lend_attr_entry_layout() -> None:
    req = MemLendReq(mem_type=MEM_TYPE_IO, acl=[(GUEST, RW)], sgl=[(0, PAGE_SIZE)],
                     attrs=[(MemAttr.DEVICE, GUEST)])
    assert req.encode()[-8:] == h("01 00 00 00  01 00 45 00")  # count 1; {attr DEVICE, vmid}
    assert req.encode()[0] == MEM_TYPE_IO


def test_create_msg_ids_follow_trans_type() -> None:
    assert create_msg_id(TransType.LEND) is RmMessageId.MEM_LEND
    assert create_msg_id(TransType.SHARE) is RmMessageId.MEM_SHARE
    assert create_msg_id(0) is RmMessageId.MEM_DONATE


def test_mem_handle_reply() -> None:
    assert MemHandleReply(handle=5).encode() == h("05 00 00 00")
    assert MemHandleReply.decode(h("ff ff ff ff")).handle == 0xFFFFFFFF


def test_mem_accept_with_empty_sgl_and_sgl_reply() -> None:
    req = MemAcceptReq(handle=5, trans_type=TransType.LEND, label=LABEL,
                       flags=MemAcceptFlags.VALIDATE_LABEL | MemAcceptFlags.DONE,
                       acl=[(GUEST, RW)])
    assert req.encode() == ACCEPT_EMPTY_SGL
    assert MemAcceptReq.decode(ACCEPT_EMPTY_SGL) == req
    reply = MemAcceptReply(sgl=[(0x1000_0000, 0x4000)], flags=MemAcceptReplyFlags.INCOMPLETE)
    assert reply.encode() == ACCEPT_REPLY_SGL
    assert MemAcceptReply.decode(ACCEPT_REPLY_SGL) == reply


def test_mem_accept_standard_reply_is_empty() -> None:
    assert MemAcceptReply().encode() == b""
    assert MemAcceptReply.decode(b"").sgl is None
    assert MemAcceptReply.decode(h("00 00 00 00")).sgl == []  # an SGL reply with 0 entries


def test_mem_accept_map_vmid_rides_in_sgl_pad() -> None:
    req = MemAcceptReq(handle=1, trans_type=TransType.SHARE, acl=[(GUEST, RW)], map_vmid=7)
    assert req.encode()[20:24] == h("00 00 07 00")
    assert MemAcceptReq.decode(req.encode()).map_vmid == 7


def test_mem_release_and_reclaim_body() -> None:
    body = MemHandleFlagsReq(handle=7, flags=1)
    assert body.encode() == h("07 00 00 00  01 00 00 00")
    assert MemHandleFlagsReq.decode(body.encode()) == body


def test_mem_notify_shared_with_one_vmid() -> None:
    req = MemNotifyReq(handle=5, flags=MemNotifyFlags.SHARED, mem_info_tag=TAG, vmids=[GUEST])
    assert req.encode() == NOTIFY_SHARED_1
    assert MemNotifyReq.decode(NOTIFY_SHARED_1) == req


def test_mem_notify_accepted_has_no_list() -> None:
    req = MemNotifyReq(handle=5, flags=MemNotifyFlags.ACCEPTED, mem_info_tag=TAG)
    assert req.encode() == h("05 00 00 00  04 00 00 00  cd ab 00 00")
    with pytest.raises(PayloadError, match="no vmid list"):
        MemNotifyReq(handle=5, flags=MemNotifyFlags.RELEASED, vmids=[GUEST]).encode()


def test_mem_shared_notification_carries_sizes_not_addresses() -> None:
    notif = MemSharedNotif(handle=5, trans_type=TransType.LEND, flags=1, owner_vmid=HLOS,
                           label=LABEL, mem_info_tag=TAG, acl=[(GUEST, RW)],
                           regions=[0x4000, 0x2000])
    assert notif.encode() == SHARED_NOTIF
    decoded = MemSharedNotif.decode(SHARED_NOTIF)
    assert decoded.regions == [0x4000, 0x2000]
    assert decoded == notif


def test_mem_accepted_and_released_share_a_layout() -> None:
    assert MemAcceptedNotif is MemReleasedNotif is MemOwnerNotif
    notif = MemAcceptedNotif(handle=5, vmid=GUEST, mem_info_tag=TAG)
    assert notif.encode() == ACCEPTED_NOTIF
    assert MemOwnerNotif.decode(ACCEPTED_NOTIF) == notif
    assert MemRecallNotif(handle=5, mem_info_tag=TAG).encode() == h("05 00 00 00 cd ab 00 00")


def test_memory_model_notifications_encode_to_the_sheet_layout() -> None:
    mem = MemoryModel()
    mem.add_region(HLOS, 0x8000_0000, 0x6000)
    handle = mem.lend(HLOS, [(GUEST, RW)], [(0x8000_0000, 0x4000), (0x8000_4000, 0x2000)],
                      label=LABEL, sanitize=True)
    [(vmid, name, payload)] = mem.notify(HLOS, handle, MemNotifyFlags.SHARED, [GUEST], TAG)
    msg_id, body = notification_body(name, payload)
    assert (vmid, msg_id) == (GUEST, RmMessageId.MEM_SHARED)
    assert body == handle.to_bytes(4, "little") + SHARED_NOTIF[4:]
    mem.accept(GUEST, handle)
    [(owner, name, payload)] = mem.notify(GUEST, handle, MemNotifyFlags.ACCEPTED, (), TAG)
    msg_id, body = notification_body(name, payload)
    assert (owner, msg_id) == (HLOS, RmMessageId.MEM_ACCEPTED)
    assert body == handle.to_bytes(4, "little") + ACCEPTED_NOTIF[4:]
    with pytest.raises(PayloadError):
        notification_body("NOTIFY_VM_STATUS", {})


# --- malformed bodies -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [
        (MemLendReq, LEND_1_1_0[:-1], "attrs count needs 4 bytes"),
        (MemLendReq, LEND_1_1_0 + b"\0", "1 trailing bytes"),
        (MemLendReq, LEND_1_1_0[:8] + h("02 00 00 00  45 00 06 00"), "acl entry 1 of 2"),
        (MemLendReq, LEND_1_1_0[:4], "header needs 8 bytes"),
        (MemLendReq, LEND_1_1_0[:10] + h("01 00") + LEND_1_1_0[12:], "acl pad is 0x1"),
        (MemLendReq, LEND_1_1_0[:15] + b"\1" + LEND_1_1_0[16:], "reserved field must be 0"),
        (MemAcceptReq, ACCEPT_EMPTY_SGL[:-2], "attrs count"),
        (MemNotifyReq, NOTIFY_SHARED_1[:12], "vmids count"),
        (MemNotifyReq, NOTIFY_SHARED_1[:16], "vmids entry 0 of 1"),
        (MemNotifyReq, h("05 00 00 00  02 00 00 00  cd ab 00 00  00"), "trailing"),
        (MemSharedNotif, SHARED_NOTIF[:-8], "regions entry 1 of 2"),
        (MemAcceptReply, ACCEPT_REPLY_SGL[:-1], "sgl entry 0 of 1"),
        (MemAcceptReply, ACCEPT_REPLY_SGL + b"\0", "trailing"),
        (MemHandleFlagsReq, h("07 00 00 00 01 00 00"), "7 bytes, expected 8"),
        (MemOwnerNotif, ACCEPTED_NOTIF + b"\0", "13 bytes, expected 12"),
        (MemHandleReply, b"", "0 bytes, expected 4"),
    ],
)
def test_malformed_bodies_raise_payload_error(cls: type, data: bytes, match: str) -> None:
    with pytest.raises(PayloadError, match=match):
        cls.decode(data)


def test_values_that_do_not_fit_raise_payload_error() -> None:
    with pytest.raises(PayloadError, match="acl entry"):
        MemLendReq(acl=[(0x1_0000, RW)], sgl=[(0, PAGE_SIZE)]).encode()
    with pytest.raises(PayloadError, match="sgl entry"):
        MemLendReq(acl=[(GUEST, RW)], sgl=[(0, -1)]).encode()
    with pytest.raises(PayloadError, match="pad must be 3 bytes"):
        MemHandleFlagsReq(handle=1, res0=b"\0")
    with pytest.raises(PayloadError, match="flags need an SGL"):
        MemAcceptReply(flags=1)


# --- round trips ----------------------------------------------------------------------------
u8, u16, u32 = (st.integers(0, (1 << b) - 1) for b in (8, 16, 32))
u64 = st.integers(0, (1 << 64) - 1)
acls = st.lists(st.tuples(u16, u8), max_size=6)
sgls = st.lists(st.tuples(u64, u64), max_size=6)
attr_lists = st.lists(st.tuples(u16, u16), max_size=6)


@given(mem_type=u8, flags=u8, label=u32, acl=acls, sgl=sgls, attrs=attr_lists)
def test_mem_lend_round_trip(mem_type: int, flags: int, label: int, acl: list, sgl: list,
                             attrs: list) -> None:
    req = MemLendReq(mem_type=mem_type, flags=flags, label=label, acl=acl, sgl=sgl, attrs=attrs)
    data = req.encode()
    assert len(data) == 8 + 4 + 4 * len(acl) + 4 + 16 * len(sgl) + 4 + 4 * len(attrs)
    assert MemLendReq.decode(data) == req


@given(handle=u32, trans=u8, flags=u8, label=u32, acl=acls, sgl=sgls, map_vmid=u16,
       attrs=attr_lists)
def test_mem_accept_round_trip(handle: int, trans: int, flags: int, label: int, acl: list,
                               sgl: list, map_vmid: int, attrs: list) -> None:
    req = MemAcceptReq(handle=handle, trans_type=trans, flags=flags, label=label, acl=acl,
                       sgl=sgl, map_vmid=map_vmid, attrs=attrs)
    assert MemAcceptReq.decode(req.encode()) == req


@given(sgl=st.none() | sgls, flags=u8)
def test_mem_accept_reply_round_trip(sgl: list | None, flags: int) -> None:
    reply = MemAcceptReply(sgl=sgl, flags=flags if sgl is not None else 0)
    assert MemAcceptReply.decode(reply.encode()) == reply


@given(handle=u32, flags=st.sampled_from([1, 2, 4, 8, 9]), tag=u32,
       vmids=st.lists(u16, max_size=8))
def test_mem_notify_round_trip(handle: int, flags: int, tag: int, vmids: list) -> None:
    listed = bool(flags & (MemNotifyFlags.SHARED | MemNotifyFlags.RECALL))
    req = MemNotifyReq(handle=handle, flags=flags, mem_info_tag=tag,
                       vmids=vmids if listed else [])
    assert MemNotifyReq.decode(req.encode()) == req


@given(handle=u32, trans=st.sampled_from(list(TransType)), flags=u8, owner=u16, label=u32,
       tag=u32, acl=acls, regions=st.lists(u64, max_size=6), attrs=attr_lists)
def test_mem_shared_round_trip(handle: int, trans: TransType, flags: int, owner: int,
                               label: int, tag: int, acl: list, regions: list,
                               attrs: list) -> None:
    notif = MemSharedNotif(handle=handle, mem_type=MEM_TYPE_NORMAL, trans_type=trans,
                           flags=flags, owner_vmid=owner, label=label, mem_info_tag=tag,
                           acl=acl, regions=regions, attrs=attrs)
    data = notif.encode()
    assert len(data) == 20 + 4 + 4 * len(acl) + 4 + 8 * len(regions) + 4 + 4 * len(attrs)
    assert MemSharedNotif.decode(data) == notif
