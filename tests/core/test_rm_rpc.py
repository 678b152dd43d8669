"""RM RPC wire format, checked byte for byte against packets worked out by hand (facts §5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah_core.rm.messages import (
    RM_RPC_API_BYTE,
    RmError,
    RmMessageId,
    RpcType,
    VmExitCode,
    VmExitType,
    VmState,
    is_notification_id,
    name_of,
)
from gunyah_core.rm.payloads import (
    HYP_RESOURCE_ENTRY_SIZE,
    HypResourceEntry,
    NotifyVmExited,
    NotifyVmShutdown,
    NotifyVmStatus,
    PayloadError,
    VmConfigImageReq,
    VmExitReq,
    VmGetStateReply,
    VmidReply,
    VmidReq,
    VmStopReq,
    decode_hyp_resources,
    decode_u32_list,
    encode_hyp_resources,
    encode_u32_list,
)
from gunyah_core.rm.rpc import (
    LINUX_MAX_MESSAGE,
    RM_RPC_HEADER_SIZE,
    RM_RPC_MAX_CONTENT,
    RM_RPC_MAX_FRAGMENTS,
    RM_RPC_MAX_MSG_SIZE,
    MalformedPacket,
    Reassembler,
    RpcHeader,
    RpcMessage,
    fragment,
    make_reply,
    split_reply,
)

h = bytes.fromhex

VM_ALLOCATE_REQ_SEQ1 = h("21 01 01 00 01 00 00 56  00 00 00 00")
VM_ALLOCATE_REPLY_SEQ1 = h("21 02 01 00 01 00 00 56  00 00 00 00  80 00 00 00")
NOTIFY_STATUS_RUNNING = h("21 03 05 00 08 00 10 56  80 00 00 00 03 00 00 00")


# --- constants ----------------------------------------------------------------------------


def test_sizes_match_the_rm_header() -> None:
    assert RM_RPC_API_BYTE == 0x21
    assert (RM_RPC_HEADER_SIZE, RM_RPC_MAX_CONTENT, RM_RPC_MAX_FRAGMENTS) == (8, 232, 62)
    assert (RM_RPC_MAX_MSG_SIZE, LINUX_MAX_MESSAGE) == (14616, 14384)


def test_ids_and_errors_carry_the_rm_values() -> None:
    assert RmMessageId.VM_ALLOCATE == 0x56000001
    assert RmMessageId.VM_CONFIG_IMAGE == 0x56000009
    assert RmMessageId.VM_GET_HYP_RESOURCES == 0x56000020
    assert RmMessageId.VM_EXIT == 0x56000085
    assert RmMessageId.MEM_APPEND == 0x51000018
    assert RmMessageId.NOTIFY_VM_STATUS == 0x56100008
    assert RmMessageId.MEM_RECALL == 0x51100014
    assert RmError.UNIMPLEMENTED == 0xFFFFFFFF
    assert RmError.VM_STATE == 0x14 and RmError.MEM_INUSE == 0xB
    assert [s.value for s in VmState] == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]
    assert VmExitType.VM_STOP_FORCED == 7


def test_name_of_known_and_unknown_ids() -> None:
    assert name_of(0x56000001) == "VM_ALLOCATE"
    assert name_of(0x51100011) == "MEM_SHARED"
    assert name_of(0x56000003) == "0x56000003"
    assert name_of(0) == "0x00000000"


def test_notification_range_holds_for_every_id() -> None:
    notifications = {m for m in RmMessageId if m.name.startswith("NOTIFY_")} | {
        RmMessageId.MEM_SHARED, RmMessageId.MEM_RELEASED,
        RmMessageId.MEM_ACCEPTED, RmMessageId.MEM_RECALL,
    }
    assert {m for m in RmMessageId if is_notification_id(m)} == notifications


# --- header -------------------------------------------------------------------------------


def test_header_encode_and_decode_by_hand() -> None:
    hdr = RpcHeader(RpcType.REQUEST, 0, 1, RmMessageId.VM_ALLOCATE)
    assert hdr.encode() == h("21 01 01 00 01 00 00 56")
    assert RpcHeader(RpcType.REPLY, 3, 0xBEEF, 0x51000012).encode() == h("21 0e ef be 12 00 00 51")
    assert RpcHeader.decode(h("21 fb 34 12 17 00 00 56 ff")) == RpcHeader(
        RpcType.NOTIFICATION, 62, 0x1234, RmMessageId.VM_GET_STATE
    )


@pytest.mark.parametrize(
    "fields",
    [(RpcType.REQUEST, 64, 0, 1), (RpcType.REQUEST, 0, 0x10000, 1),
     (RpcType.REQUEST, 0, 0, 1 << 32), (RpcType.REQUEST, -1, 0, 1)],
)
def test_header_encode_rejects_fields_too_wide(fields: tuple[RpcType, int, int, int]) -> None:
    with pytest.raises(ValueError):
        RpcHeader(*fields).encode()


def test_header_fields_at_their_widths_encode_and_decode() -> None:
    """The largest values that fit (62 fragments, u16 seq, u32 msg_id) and zeros."""
    top = RpcHeader(RpcType.NOTIFICATION, 62, 0xFFFF, 0xFFFFFFFF)
    assert top.encode() == h("21 fb ff ff ff ff ff ff")
    assert RpcHeader.decode(top.encode()) == top
    bottom = RpcHeader(RpcType.REQUEST, 0, 0, 0)
    assert bottom.encode() == h("21 01 00 00 00 00 00 00")
    assert RpcHeader.decode(bottom.encode()) == bottom


def test_headers_and_messages_are_immutable_values() -> None:
    """A decoded header or message cannot be altered after the drop checks, and equal
    ones hash alike (frozen dataclasses)."""
    hdr = RpcHeader.decode(VM_ALLOCATE_REQ_SEQ1)
    msg = Reassembler().feed(VM_ALLOCATE_REQ_SEQ1)
    for value, field in ((hdr, "seq"), (msg, "payload")):
        with pytest.raises(FrozenInstanceError):
            setattr(value, field, 0)
    assert {hdr: 1}[RpcHeader(RpcType.REQUEST, 0, 1, RmMessageId.VM_ALLOCATE)] == 1
    assert len({msg, RpcMessage(RpcType.REQUEST, 1, RmMessageId.VM_ALLOCATE, bytes(4))}) == 1


def test_header_with_63_fragments_encodes_but_does_not_decode() -> None:
    raw = RpcHeader(RpcType.REQUEST, 63, 0, 1).encode()
    assert raw == h("21 fd 00 00 01 00 00 00")
    with pytest.raises(MalformedPacket, match="fragment count 63"):
        RpcHeader.decode(raw)


# --- fragmentation ------------------------------------------------------------------------


def test_single_packet_request() -> None:
    packets = fragment(RpcType.REQUEST, 1, RmMessageId.VM_ALLOCATE, VmidReq(vmid=0).encode())
    assert packets == [VM_ALLOCATE_REQ_SEQ1]


def test_empty_payload_is_one_bare_header() -> None:
    assert fragment(RpcType.REQUEST, 0x1234, RmMessageId.VM_GET_VMID, b"") == [
        h("21 01 34 12 24 00 00 56")
    ]


def test_300_bytes_take_one_continuation() -> None:
    payload = bytes(range(256)) + bytes(44)
    first, second = fragment(RpcType.REQUEST, 7, RmMessageId.VM_SET_CRASH_MSG, payload)
    assert first[:8] == h("21 05 07 00 86 00 00 56")  # (1 << 2) | REQUEST
    assert second[:8] == h("21 04 07 00 86 00 00 56")  # (1 << 2) | CONTINUATION
    assert (len(first), len(second)) == (240, 8 + 68)
    assert first[8:] + second[8:] == payload


def test_exact_fit_of_232_bytes_stays_one_packet() -> None:
    (packet,) = fragment(RpcType.REPLY, 2, RmMessageId.VM_GET_PEERS, bytes(232))
    assert packet[:2] == h("21 02") and len(packet) == 240
    assert Reassembler().feed(packet) == RpcMessage(  # 240 bytes: the largest packet taken
        RpcType.REPLY, 2, RmMessageId.VM_GET_PEERS, bytes(232), 0)
    assert len(fragment(RpcType.REPLY, 2, RmMessageId.VM_GET_PEERS, bytes(233))) == 2


def test_maximum_message_is_63_full_packets() -> None:
    payload = bytes(i % 251 for i in range(RM_RPC_MAX_MSG_SIZE))
    packets = fragment(RpcType.NOTIFICATION, 9, RmMessageId.MEM_SHARED, payload)
    assert len(packets) == 63
    assert all(len(p) == 240 for p in packets)
    assert packets[0][:8] == h("21 fb 09 00 11 00 10 51")  # (62 << 2) | NOTIFICATION
    assert {p[:8] for p in packets[1:]} == {h("21 f8 09 00 11 00 10 51")}


def test_one_byte_over_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="14617 bytes exceeds the 14616-byte limit"):
        fragment(RpcType.REPLY, 0, RmMessageId.VM_GET_HYP_RESOURCES,
                 bytes(RM_RPC_MAX_MSG_SIZE + 1))


def test_linux_sender_limit() -> None:
    packets = fragment(RpcType.REQUEST, 0, RmMessageId.MEM_LEND, bytes(LINUX_MAX_MESSAGE),
                       limit=LINUX_MAX_MESSAGE)
    assert len(packets) == 62 and packets[0][1] == (61 << 2) | RpcType.REQUEST
    with pytest.raises(ValueError, match="14384-byte limit"):
        fragment(RpcType.REQUEST, 0, RmMessageId.MEM_LEND, bytes(LINUX_MAX_MESSAGE + 1),
                 limit=LINUX_MAX_MESSAGE)


def test_a_message_cannot_start_with_a_continuation() -> None:
    with pytest.raises(ValueError, match="CONTINUATION"):
        fragment(RpcType.CONTINUATION, 0, RmMessageId.VM_START, b"")


# --- reassembly ---------------------------------------------------------------------------


def test_single_packets_come_back_whole() -> None:
    rx = Reassembler()
    assert rx.feed(VM_ALLOCATE_REPLY_SEQ1) == RpcMessage(
        RpcType.REPLY, 1, RmMessageId.VM_ALLOCATE, h("00 00 00 00 80 00 00 00"), 0
    )
    msg = rx.feed(NOTIFY_STATUS_RUNNING)
    assert msg == RpcMessage(RpcType.NOTIFICATION, 5, RmMessageId.NOTIFY_VM_STATUS,
                             h("80 00 00 00 03 00 00 00"), 0)
    assert msg.name == "NOTIFY_VM_STATUS"
    assert NotifyVmStatus.decode(msg.payload) == NotifyVmStatus(vmid=0x80, vm_status=3)
    assert rx.feed(h("21 01 34 12 24 00 00 56")) == RpcMessage(
        RpcType.REQUEST, 0x1234, RmMessageId.VM_GET_VMID, b"", 0
    )
    assert rx.dropped == []


def test_multi_packet_round_trip() -> None:
    payload = bytes(range(200)) * 3
    rx = Reassembler()
    packets = fragment(RpcType.REPLY, 42, RmMessageId.VM_GET_HYP_RESOURCES, payload)
    assert len(packets) == 3
    assert rx.feed(packets[0]) is None and rx.in_progress
    assert rx.feed(packets[1]) is None
    assert rx.feed(packets[2]) == RpcMessage(
        RpcType.REPLY, 42, RmMessageId.VM_GET_HYP_RESOURCES, payload, 2
    )
    assert not rx.in_progress and rx.dropped == []


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (h("21 01 01 00 01 00 00"), "short packet: 7 bytes"),
        (h("22 01 01 00 01 00 00 56"), "API version 2, expected 1"),
        (h("31 01 01 00 01 00 00 56"), "header words 3, expected 2"),
        (h("21 fd 01 00 01 00 00 56"), "fragment count 63 > RM_RPC_MAX_FRAGMENTS 62"),
        (h("21 04 01 00 01 00 00 56 00"), "with no message in progress"),
        (bytes(241), "packet of 241 bytes > 240"),
    ],
)
def test_malformed_packets_are_dropped_with_their_reason(packet: bytes, reason: str) -> None:
    rx = Reassembler()
    assert rx.feed(packet) is None
    assert len(rx.dropped) == 1 and reason in rx.dropped[0]
    assert rx.last_drop == rx.dropped[0]
    assert rx.feed(VM_ALLOCATE_REQ_SEQ1) == RpcMessage(  # the link still works
        RpcType.REQUEST, 1, RmMessageId.VM_ALLOCATE, bytes(4), 0)


@pytest.mark.parametrize(
    "bad_continuation",
    [
        h("21 04 08 00 20 00 00 56 ff"),  # seq 8, not 7
        h("21 04 07 00 21 00 00 56 ff"),  # VM_GET_HYP_CAPIDS, not VM_GET_HYP_RESOURCES
        h("21 08 07 00 20 00 00 56 ff"),  # fragments 2, not 1
    ],
)
def test_mismatched_continuation_is_dropped_and_partial_survives(bad_continuation: bytes) -> None:
    first, last = fragment(RpcType.REPLY, 7, RmMessageId.VM_GET_HYP_RESOURCES, bytes(300))
    rx = Reassembler()
    rx.feed(first)
    assert rx.feed(bad_continuation) is None
    assert "does not match message in progress" in rx.dropped[0]
    assert rx.feed(last) == RpcMessage(
        RpcType.REPLY, 7, RmMessageId.VM_GET_HYP_RESOURCES, bytes(300), 1)


def test_new_request_discards_the_partial_message() -> None:
    first, _ = fragment(RpcType.REQUEST, 3, RmMessageId.MEM_LEND, bytes(240))
    rx = Reassembler()
    rx.feed(first)
    assert rx.feed(VM_ALLOCATE_REQ_SEQ1) == RpcMessage(
        RpcType.REQUEST, 1, RmMessageId.VM_ALLOCATE, bytes(4), 0
    )
    assert rx.dropped == [
        "partial MEM_LEND seq 3 discarded: new REQUEST arrived with 1 continuation(s) missing"
    ]
    assert not rx.in_progress


def test_continuation_after_a_complete_message_is_dropped() -> None:
    first, second = fragment(RpcType.REQUEST, 3, RmMessageId.MEM_LEND, bytes(240))
    rx = Reassembler()
    rx.feed(first)
    assert rx.feed(second) == RpcMessage(RpcType.REQUEST, 3, RmMessageId.MEM_LEND,
                                         bytes(240), 1)
    assert rx.feed(second) is None
    assert "no message in progress" in rx.dropped[0]


@given(
    length=st.integers(0, RM_RPC_MAX_MSG_SIZE),
    seq=st.integers(0, 0xFFFF),
    msg_id=st.integers(0, 0xFFFFFFFF),
    msg_type=st.sampled_from([RpcType.REQUEST, RpcType.REPLY, RpcType.NOTIFICATION]),
    fill=st.integers(0, 255),
)
def test_fragment_then_reassemble_is_identity(
    length: int, seq: int, msg_id: int, msg_type: RpcType, fill: int
) -> None:
    payload = bytes((fill + i) % 256 for i in range(length))
    packets = fragment(msg_type, seq, msg_id, payload)
    rx = Reassembler()
    results = [rx.feed(p) for p in packets]
    assert results[:-1] == [None] * (len(packets) - 1)
    assert results[-1] == RpcMessage(msg_type, seq, msg_id, payload, len(packets) - 1)
    assert rx.dropped == [] and all(len(p) <= 240 for p in packets)


# --- replies ------------------------------------------------------------------------------


def test_reply_error_word_is_split_from_the_data() -> None:
    assert make_reply(RmError.OK, VmidReply(vmid=0x80).encode()) == h("00000000 80000000")
    assert split_reply(h("00000000 80000000")) == (RmError.OK, h("80000000"))
    assert make_reply(RmError.VM_STATE) == h("14 00 00 00")
    assert split_reply(h("ff ff ff ff")) == (RmError.UNIMPLEMENTED, b"")
    with pytest.raises(MalformedPacket, match="reply of 3 bytes has no 4-byte error word"):
        split_reply(h("00 00 00"))
    assert split_reply(h("00 00 00 00")) == (RmError.OK, b"")  # the word alone suffices
    with pytest.raises(MalformedPacket, match="unknown RM error 0x99"):
        split_reply(h("99 00 00 00"))


def test_hyp_resources_reply_end_to_end() -> None:
    entries = [HypResourceEntry(resource_type=t, capid=0x10 + t, label=t) for t in range(6)]
    payload = make_reply(RmError.OK, encode_hyp_resources(entries))
    assert len(payload) == 4 + 4 + 6 * 44
    rx = Reassembler()
    packets = fragment(RpcType.REPLY, 5, RmMessageId.VM_GET_HYP_RESOURCES, payload)
    *firsts, msg = [rx.feed(p) for p in packets]
    assert firsts == [None] and msg.fragments == 1
    err, data = split_reply(msg.payload)
    assert err == RmError.OK and decode_hyp_resources(data) == tuple(entries)


# --- payload layouts ----------------------------------------------------------------------


def test_hyp_resource_entry_is_44_bytes_in_rm_field_order() -> None:
    entry = HypResourceEntry(
        resource_type=2, partner_vmid=0x80, resource_handle=0x11223344, label=0x55667788,
        capid=0x0102030405060708, virq_handle=0xAABBCCDD, virq=960, base=0x80000000,
        size=0x1000,
    )
    raw = h(
        "02 00 80 00  44 33 22 11  88 77 66 55  08 07 06 05 04 03 02 01"
        "  dd cc bb aa  c0 03 00 00  00 00 00 80 00 00 00 00  00 10 00 00 00 00 00 00"
    )
    assert HYP_RESOURCE_ENTRY_SIZE == 44
    assert entry.encode() == raw
    assert HypResourceEntry.decode(raw) == entry


def test_request_bodies_by_hand() -> None:
    assert VmidReq(vmid=0x80).encode() == h("80 00 00 00")
    assert VmidReq.decode(h("80 00 01 00")) == VmidReq(vmid=0x80, res0=1)  # VM_INIT checks res0
    assert VmStopReq(vmid=0x80, flags=1, stop_reason=3).encode() == h("80 00 01 00 03 00 00 00")
    assert VmExitReq(exit_flags=1, exit_code=VmExitCode.SOFTWARE_ERROR).encode() == h("01000100")
    image = VmConfigImageReq(vmid=0x80, auth_type=0, mem_handle=5, image_offset=0,
                             image_size=0, dtb_offset=0x1000, dtb_size=0x2000)
    raw = h("80 00 00 00 05 00 00 00" + "00" * 16)
    raw += h("00 10 00 00 00 00 00 00  00 20 00 00 00 00 00 00")
    assert len(raw) == 40 and image.encode() == raw and VmConfigImageReq.decode(raw) == image


def test_reply_bodies_by_hand() -> None:
    assert VmGetStateReply(vm_state=VmState.RUNNING, os_state=4, app_status=0x1234).encode() == h(
        "03 04 34 12"
    )
    assert encode_u32_list([3, 0x80]) == h("02000000 03000000 80000000")
    assert decode_u32_list(h("02000000 03000000 80000000")) == (3, 0x80)


def test_notification_bodies_by_hand() -> None:
    assert NotifyVmShutdown(stop_reason=3).encode() == h("03 00 00 00")
    status = NotifyVmStatus(vmid=0x81, vm_status=VmState.EXITED, os_status=6, app_status=2)
    assert status.encode() == h("81 00 00 00 09 06 02 00")
    forced = NotifyVmExited.make(0x80, VmExitType.VM_STOP_FORCED)
    assert forced.encode() == h("80 00 07 00 04 00 00 00 00 00 00 00")
    crashed = NotifyVmExited.make(0x80, VmExitType.SOFTWARE_ERROR,
                                  exit_code=VmExitCode.SOFTWARE_ERROR)
    assert crashed.encode() == h("80 00 05 00 04 00 00 00 00 00 01 00")
    reset2 = NotifyVmExited.make(0x82, VmExitType.PSCI_SYSTEM_RESET2, exit_flags=0x8001,
                                 extra=(1, 0xDEAD, 0xBEEF))
    raw = h("82 00 03 00 10 00 00 00  01 80 00 00 01 00 00 00 ad de 00 00 ef be 00 00")
    assert reset2.encode() == raw
    back = NotifyVmExited.decode(raw)
    assert back == reset2 and (back.exit_flags, back.exit_code, back.reason_size) == (0x8001, 0, 16)


@pytest.mark.parametrize(
    ("decode", "raw"),
    [
        (VmidReq.decode, h("80 00 00")),
        (VmStopReq.decode, h("80 00 01 00 03 00 00 00 00")),
        (HypResourceEntry.decode, bytes(43)),
        (NotifyVmExited.decode, h("80 00 07 00 08 00 00 00 00 00 00 00")),  # says 8, has 4
        (NotifyVmExited.decode, h("80 00 07 00 02 00 00 00 00 00")),  # half a word
        (decode_hyp_resources, h("02 00 00 00") + bytes(44)),
        (decode_u32_list, h("01 00")),
    ],
)
def test_bodies_of_the_wrong_size_are_refused(
    decode: Callable[[bytes], object], raw: bytes
) -> None:
    with pytest.raises(PayloadError):
        decode(raw)


def test_field_too_wide_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="VmidReq"):
        VmidReq(vmid=0x10000).encode()
