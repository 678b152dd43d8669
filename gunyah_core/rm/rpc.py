"""RM RPC packets: the 8-byte header, fragmentation and reassembly (facts sheet §5.1).

One packet is one message-queue message of at most RM_RPC_MESSAGE_SIZE bytes. A long
message goes out as a first packet (REQUEST/REPLY/NOTIFICATION) plus continuation
packets; the receiver stitches them back, dropping what the RM's ``do_recv`` drops.
Pure: no trace events; the caller decides what to record about a drop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gunyah_core.consts import RM_RPC_MESSAGE_SIZE
from gunyah_core.rm.messages import (
    RM_RPC_API_BYTE,
    RM_RPC_API_VERSION,
    RM_RPC_HEADER_WORDS,
    RM_RPC_VERSION_BITS,
    RmError,
    RpcType,
    name_of,
)

# --- Sizes (RM include/rm-rpc.h; facts §5.1) ---
RM_RPC_HEADER_SIZE = 8
RM_RPC_MAX_CONTENT = RM_RPC_MESSAGE_SIZE - RM_RPC_HEADER_SIZE  # 232 payload bytes a packet
RM_RPC_MAX_FRAGMENTS = 62  # continuation packets after the first; the RM rejects more
RM_RPC_MAX_MSG_SIZE = RM_RPC_MAX_CONTENT * (RM_RPC_MAX_FRAGMENTS + 1)  # 14616
LINUX_MAX_MESSAGE = RM_RPC_MAX_CONTENT * RM_RPC_MAX_FRAGMENTS  # 14384: Linux refuses to send more

# --- Bit fields of header bytes 0 and 1 ---
_VERSION_MASK = (1 << RM_RPC_VERSION_BITS) - 1
_TYPE_BITS = 2
_TYPE_MASK = (1 << _TYPE_BITS) - 1
_FRAGMENT_FIELD_MAX = (1 << (8 - _TYPE_BITS)) - 1  # 63: what 6 bits hold; 62 is the RM's limit
_HEADER = struct.Struct("<BBHI")  # api byte, type|fragments, seq, msg_id
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_ERROR_WORD = struct.Struct("<I")


class MalformedPacket(ValueError):
    """A packet the RM drops; ``reason`` says why, for the trace."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RpcHeader:
    """The unpacked 8-byte header (RM ``rm_rpc_header_t``)."""

    msg_type: RpcType
    fragments: int
    seq: int
    msg_id: int

    def encode(self) -> bytes:
        """Pack to 8 bytes; raise ValueError if a field does not fit its bit width.

        A fragment count of 63 still encodes (6 bits hold it), so a malformed packet can
        be built on purpose; the receiver rejects it.
        """
        if not 0 <= self.fragments <= _FRAGMENT_FIELD_MAX:
            raise ValueError(f"fragments {self.fragments} does not fit 6 bits")
        if not 0 <= self.seq <= _U16_MAX:
            raise ValueError(f"seq {self.seq} is not a u16")
        if not 0 <= self.msg_id <= _U32_MAX:
            raise ValueError(f"msg_id {self.msg_id:#x} is not a u32")
        kind = (self.fragments << _TYPE_BITS) | RpcType(self.msg_type)
        return _HEADER.pack(RM_RPC_API_BYTE, kind, self.seq, self.msg_id)

    @classmethod
    def decode(cls, packet: bytes) -> RpcHeader:
        """Unpack the first 8 bytes; raise MalformedPacket where the RM's read_rpc_header fails."""
        if len(packet) < RM_RPC_HEADER_SIZE:
            raise MalformedPacket(
                f"short packet: {len(packet)} bytes, header needs {RM_RPC_HEADER_SIZE}"
            )
        api, kind, seq, msg_id = _HEADER.unpack_from(packet)
        version, words = api & _VERSION_MASK, api >> RM_RPC_VERSION_BITS
        if version != RM_RPC_API_VERSION:
            raise MalformedPacket(f"API version {version}, expected {RM_RPC_API_VERSION}")
        if words != RM_RPC_HEADER_WORDS:
            raise MalformedPacket(f"header words {words}, expected {RM_RPC_HEADER_WORDS}")
        fragments = kind >> _TYPE_BITS
        if fragments > RM_RPC_MAX_FRAGMENTS:
            raise MalformedPacket(
                f"fragment count {fragments} > RM_RPC_MAX_FRAGMENTS {RM_RPC_MAX_FRAGMENTS}"
            )
        return cls(RpcType(kind & _TYPE_MASK), fragments, seq, msg_id)


@dataclass(frozen=True)
class RpcMessage:
    """A whole message after reassembly; ``fragments`` = continuation packets it took."""

    msg_type: RpcType
    seq: int
    msg_id: int
    payload: bytes
    fragments: int = 0

    @property
    def name(self) -> str:
        """The RM name of ``msg_id`` (for the trace's ``name`` field)."""
        return name_of(self.msg_id)


def fragments_needed(length: int) -> int:
    """Continuation packets a payload of ``length`` bytes needs: 0 if it fits one packet."""
    return max(0, -(-length // RM_RPC_MAX_CONTENT) - 1)


def fragment(msg_type: RpcType, seq: int, msg_id: int, payload: bytes,
             limit: int = RM_RPC_MAX_MSG_SIZE) -> list[bytes]:
    """Split ``payload`` into packets, as the RM's start_xmit/do_xmit do.

    The first packet carries ``msg_type``; the rest are CONTINUATION packets repeating the
    fragment count, seq and msg_id. An empty payload is one bare 8-byte header.
    Raises ValueError for a payload over ``limit`` (or over what 62 fragments carry), or
    for ``msg_type`` CONTINUATION.
    """
    if msg_type == RpcType.CONTINUATION:
        raise ValueError("a message cannot start with a CONTINUATION packet")
    max_len = min(limit, RM_RPC_MAX_MSG_SIZE)
    if len(payload) > max_len:
        raise ValueError(
            f"payload of {len(payload)} bytes exceeds the {max_len}-byte limit "
            f"({RM_RPC_MAX_FRAGMENTS} continuations of {RM_RPC_MAX_CONTENT} bytes at most)"
        )
    count = fragments_needed(len(payload))
    packets = []
    for index in range(count + 1):
        kind = msg_type if index == 0 else RpcType.CONTINUATION
        chunk = payload[index * RM_RPC_MAX_CONTENT : (index + 1) * RM_RPC_MAX_CONTENT]
        packets.append(RpcHeader(kind, count, seq, msg_id).encode() + bytes(chunk))
    return packets


@dataclass
class _Partial:
    header: RpcHeader
    chunks: list[bytes]
    remaining: int


class Reassembler:
    """Receive side of one RM RPC link: feed packets in order, get whole messages out.

    Drops, in the RM's order: packets shorter than the header, a bad API byte, more than
    62 fragments, a continuation with nothing in progress or whose fragment count, seq or
    msg_id differ (the partial message survives that). A new first packet discards any
    partial message. Unlike the public RM, a header-only packet is delivered as an empty
    message, because the facts sheet lists empty requests (VM_GET_VMID, VM_GET_PEERS).
    """

    def __init__(self) -> None:
        self.dropped: list[str] = []  # every drop reason, oldest first
        self._partial: _Partial | None = None

    @property
    def in_progress(self) -> bool:
        """True while continuation packets are still expected."""
        return self._partial is not None

    @property
    def last_drop(self) -> str | None:
        return self.dropped[-1] if self.dropped else None

    def feed(self, packet: bytes) -> RpcMessage | None:
        """Take one packet; return the message it completes, else None (check ``dropped``)."""
        if len(packet) > RM_RPC_MESSAGE_SIZE:
            # Unreachable on a real link: the msgq's max_msg_size is RM_RPC_MESSAGE_SIZE.
            return self._drop(f"packet of {len(packet)} bytes > {RM_RPC_MESSAGE_SIZE}")
        try:
            header = RpcHeader.decode(packet)
        except MalformedPacket as exc:
            return self._drop(exc.reason)
        body = bytes(packet[RM_RPC_HEADER_SIZE:])
        if header.msg_type != RpcType.CONTINUATION:
            if self._partial is not None:
                old = self._partial.header
                self._drop(
                    f"partial {name_of(old.msg_id)} seq {old.seq} discarded: "
                    f"new {header.msg_type.name} arrived with "
                    f"{self._partial.remaining} continuation(s) missing"
                )
                self._partial = None
            if header.fragments == 0:
                return _message(header, [body])
            self._partial = _Partial(header, [body], header.fragments)
            return None
        return self._continue(header, body)

    def _continue(self, header: RpcHeader, body: bytes) -> RpcMessage | None:
        partial = self._partial
        if partial is None:
            return self._drop(
                f"continuation of {name_of(header.msg_id)} seq {header.seq} "
                "with no message in progress"
            )
        first = partial.header
        if (header.fragments, header.seq, header.msg_id) != (
            first.fragments, first.seq, first.msg_id
        ):
            return self._drop(
                f"continuation (fragments {header.fragments}, seq {header.seq}, "
                f"{name_of(header.msg_id)}) does not match message in progress "
                f"(fragments {first.fragments}, seq {first.seq}, {name_of(first.msg_id)})"
            )
        partial.chunks.append(body)
        partial.remaining -= 1
        if partial.remaining:
            return None
        self._partial = None
        return _message(first, partial.chunks)

    def _drop(self, reason: str) -> None:
        self.dropped.append(reason)
        return None


def _message(first: RpcHeader, chunks: list[bytes]) -> RpcMessage:
    return RpcMessage(first.msg_type, first.seq, first.msg_id, b"".join(chunks),
                      first.fragments)


def make_reply(err: RmError | int, data: bytes = b"") -> bytes:
    """Reply payload: the u32 RM error, then ``data``."""
    return _ERROR_WORD.pack(int(err)) + bytes(data)


def split_reply(payload: bytes) -> tuple[RmError, bytes]:
    """Split a reply payload into its RM error and data.

    Raises MalformedPacket if the payload has no error word or the code is unknown.
    """
    if len(payload) < _ERROR_WORD.size:
        raise MalformedPacket(
            f"reply of {len(payload)} bytes has no {_ERROR_WORD.size}-byte error word"
        )
    (code,) = _ERROR_WORD.unpack_from(payload)
    try:
        err = RmError(code)
    except ValueError:
        raise MalformedPacket(f"unknown RM error {code:#x}") from None
    return err, bytes(payload[_ERROR_WORD.size :])
