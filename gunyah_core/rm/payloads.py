"""Byte layouts of the RM RPC message bodies the simulator exchanges.

Each body is a frozen dataclass whose fields are in wire order (little-endian,
packed, as the RM's C structs; facts sheet §5.3, §5.4, §6.3), with ``encode()``
and ``decode(data)``. Reserved fields are kept, so the RM can insist they are 0.
Only the bodies the simulator needs are here; memparcel lists are not.
"""

from __future__ import annotations

import struct
from dataclasses import astuple, dataclass, field, fields
from typing import Any, ClassVar, Self

from gunyah_core.rm.messages import (
    VM_EXIT_CODE_SHIFT,
    VM_EXIT_FLAGS_MASK,
    VmExitCode,
    VmExitType,
)

U32 = struct.Struct("<I")
U32_SIZE = U32.size
REPLY_ERROR_SIZE = U32_SIZE  # every reply payload starts with a u32 rm_error_t


class PayloadError(ValueError):
    """A body whose length or field values do not fit its layout (the RM answers MSG_INVALID)."""


def _unpack(fmt: struct.Struct, data: bytes, what: str) -> tuple[Any, ...]:
    if len(data) != fmt.size:
        raise PayloadError(f"{what}: {len(data)} bytes, expected {fmt.size}")
    return fmt.unpack(data)


def _pack(fmt: struct.Struct, values: tuple[Any, ...], what: str) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as exc:
        raise PayloadError(f"{what}: {exc}") from None


class _Fixed:
    """A fixed-size body: ``FMT`` lists the dataclass fields in declaration order."""

    FMT: ClassVar[struct.Struct]

    def encode(self) -> bytes:
        """Pack the fields; raise PayloadError if one does not fit its width."""
        return _pack(self.FMT, astuple(self), type(self).__name__)  # type: ignore[call-overload]

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Unpack exactly ``FMT.size`` bytes; raise PayloadError on any other length."""
        values = _unpack(cls.FMT, bytes(data), cls.__name__)
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        return cls(**dict(zip(names, values, strict=True)))


# --- Requests -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VmidReq(_Fixed):
    """``vmid u16, res0 u16``: VM_ALLOCATE (vmid 0 = pick a dynamic one), VM_DEALLOCATE,
    VM_START, VM_RESET, VM_INIT (res0 must be 0), VM_GET_HYP_RESOURCES, VM_GET_STATE (0 = self)."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<HH")
    vmid: int
    res0: int = 0


VmAllocateReq = VmidReq


@dataclass(frozen=True, kw_only=True)
class VmStopReq(_Fixed):
    """VM_STOP: ``vmid u16, flags u8 (bit0 FORCE), res0 u8, stop_reason u32``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<HBBI")
    vmid: int
    flags: int = 0
    res0: int = 0
    stop_reason: int = 0


@dataclass(frozen=True, kw_only=True)
class VmConfigImageReq(_Fixed):
    """VM_CONFIG_IMAGE (40 bytes): where the image and DTB sit inside memparcel ``mem_handle``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<HHIQQQQ")
    vmid: int
    auth_type: int
    mem_handle: int
    image_offset: int
    image_size: int
    dtb_offset: int
    dtb_size: int


@dataclass(frozen=True, kw_only=True)
class VmExitReq(_Fixed):
    """VM_EXIT (guest asks to exit itself): ``exit_flags u16, exit_code u8, res0 u8``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<HBB")
    exit_flags: int = 0
    exit_code: int = VmExitCode.NORMAL
    res0: int = 0


@dataclass(frozen=True, kw_only=True)
class VmSetStatusReq(_Fixed):
    """VM_SET_STATUS: byte 1 os_status, bytes 2-3 app_status.

    The facts sheet does not name byte 0; it is kept here as ``vm_status`` (reserved, 0).
    """

    FMT: ClassVar[struct.Struct] = struct.Struct("<BBH")
    vm_status: int = 0
    os_status: int
    app_status: int = 0


# --- Reply data (after the u32 error word) --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VmidReply(_Fixed):
    """A u32 vmid: VM_ALLOCATE's new vmid (Linux reads only the low u16), VM_GET_VMID."""

    FMT: ClassVar[struct.Struct] = U32
    vmid: int


VmAllocateReply = VmidReply


@dataclass(frozen=True, kw_only=True)
class VmGetStateReply(_Fixed):
    """VM_GET_STATE: the u32 ``vm_state | os_state << 8 | app_status << 16``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<BBH")
    vm_state: int
    os_state: int = 0
    app_status: int = 0


def encode_u32_list(values: list[int] | tuple[int, ...]) -> bytes:
    """``u32 n`` then n × u32 (VM_GET_PEERS reply)."""
    return _pack(struct.Struct(f"<I{len(values)}I"), (len(values), *values), "u32 list")


def decode_u32_list(data: bytes) -> tuple[int, ...]:
    """Inverse of encode_u32_list; raise PayloadError if the count and length disagree."""
    count = _count_prefix(data, U32_SIZE, "u32 list")
    return struct.unpack_from(f"<{count}I", data, U32_SIZE)


def _count_prefix(data: bytes, entry_size: int, what: str) -> int:
    if len(data) < U32_SIZE:
        raise PayloadError(f"{what}: {len(data)} bytes, no u32 count")
    (count,) = U32.unpack_from(data)
    if len(data) != U32_SIZE + count * entry_size:
        raise PayloadError(
            f"{what}: count {count} needs {U32_SIZE + count * entry_size} bytes, got {len(data)}"
        )
    return count


@dataclass(frozen=True, kw_only=True)
class HypResourceEntry(_Fixed):
    """One 44-byte VM_GET_HYP_RESOURCES entry (RM ``rm_hyp_resource_resp``; facts §5.4).

    ``virq`` is a GIC INTID, 0 = none. Linux matches entries to users by (type, label).
    """

    FMT: ClassVar[struct.Struct] = struct.Struct("<BBHIIQIIQQ")
    resource_type: int
    res0: int = 0
    partner_vmid: int = 0
    resource_handle: int = 0
    label: int = 0
    capid: int
    virq_handle: int = 0
    virq: int = 0
    base: int = 0
    size: int = 0


HYP_RESOURCE_ENTRY_SIZE = HypResourceEntry.FMT.size  # 44


def encode_hyp_resources(entries: list[HypResourceEntry] | tuple[HypResourceEntry, ...]) -> bytes:
    """VM_GET_HYP_RESOURCES reply data: ``u32 n`` then n entries."""
    return U32.pack(len(entries)) + b"".join(e.encode() for e in entries)


def decode_hyp_resources(data: bytes) -> tuple[HypResourceEntry, ...]:
    """Inverse of encode_hyp_resources; raise PayloadError if the count and length disagree."""
    count = _count_prefix(data, HYP_RESOURCE_ENTRY_SIZE, "hyp resources")
    return tuple(
        HypResourceEntry.decode(data[start : start + HYP_RESOURCE_ENTRY_SIZE])
        for start in range(U32_SIZE, U32_SIZE + count * HYP_RESOURCE_ENTRY_SIZE,
                           HYP_RESOURCE_ENTRY_SIZE)
    )


# --- Notifications --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NotifyVmShutdown(_Fixed):
    """NOTIFY_VM_SHUTDOWN to the VM being stopped gracefully: ``stop_reason u32``."""

    FMT: ClassVar[struct.Struct] = U32
    stop_reason: int


@dataclass(frozen=True, kw_only=True)
class NotifyVmStatus(_Fixed):
    """NOTIFY_VM_STATUS (RM ``rm_notify_vm_status``): ``vmid u16, res0 u16, vm_status u8,
    os_status u8, app_status u16``."""

    FMT: ClassVar[struct.Struct] = struct.Struct("<HHBBH")
    vmid: int
    res0: int = 0
    vm_status: int
    os_status: int = 0
    app_status: int = 0


_EXITED_HEAD = struct.Struct("<HHI")


@dataclass(frozen=True, kw_only=True)
class NotifyVmExited:
    """NOTIFY_VM_EXITED to the owner: ``vmid u16, exit_type u16, reason_size u32, reason u32[]``.

    Reason word 0 is ``exit_flags | exit_code << 16``; PSCI_SYSTEM_RESET2 adds three words
    (reset type, cookie low, cookie high). ``reason_size`` is in bytes.
    """

    vmid: int
    exit_type: int
    reason: tuple[int, ...] = field(default=(0,))

    @classmethod
    def make(cls, vmid: int, exit_type: VmExitType | int, *, exit_flags: int = 0,
             exit_code: VmExitCode | int = VmExitCode.NORMAL,
             extra: tuple[int, ...] = ()) -> NotifyVmExited:
        """Build the notification from its parts rather than raw reason words."""
        word0 = (exit_flags & VM_EXIT_FLAGS_MASK) | (int(exit_code) << VM_EXIT_CODE_SHIFT)
        return cls(vmid=vmid, exit_type=exit_type, reason=(word0, *extra))

    @property
    def reason_size(self) -> int:
        return U32_SIZE * len(self.reason)

    @property
    def exit_flags(self) -> int:
        return self.reason[0] & VM_EXIT_FLAGS_MASK if self.reason else 0

    @property
    def exit_code(self) -> int:
        return self.reason[0] >> VM_EXIT_CODE_SHIFT if self.reason else 0

    def encode(self) -> bytes:
        """Pack header then reason words; raise PayloadError if a field does not fit."""
        fmt = struct.Struct(f"<HHI{len(self.reason)}I")
        return _pack(fmt, (self.vmid, self.exit_type, self.reason_size, *self.reason),
                     "NotifyVmExited")

    @classmethod
    def decode(cls, data: bytes) -> NotifyVmExited:
        """Unpack; raise PayloadError unless reason_size is whole words and matches the length."""
        if len(data) < _EXITED_HEAD.size:
            raise PayloadError(
                f"NotifyVmExited: {len(data)} bytes, header needs {_EXITED_HEAD.size}"
            )
        vmid, exit_type, reason_size = _EXITED_HEAD.unpack_from(data)
        if reason_size % U32_SIZE or len(data) != _EXITED_HEAD.size + reason_size:
            raise PayloadError(
                f"NotifyVmExited: reason_size {reason_size} does not match "
                f"{len(data) - _EXITED_HEAD.size} reason bytes in whole u32 words"
            )
        words = struct.unpack_from(f"<{reason_size // U32_SIZE}I", data, _EXITED_HEAD.size)
        return cls(vmid=vmid, exit_type=exit_type, reason=words)
