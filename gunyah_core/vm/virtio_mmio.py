"""Virtio-MMIO device object (hyp/vm/virtio_mmio; facts §10.1) between two VMs.

One register page laid out as virtio 1.1 MMIO registers: the frontend (driver) VM maps
it read-only, so its reads are plain memory reads and its writes fault into the
hypervisor, which emulates them (vdevice.c ``virtio_mmio_vdevice_write``). The backend
(device) VM works the object with ``virtio_mmio_backend_*`` hypercalls.

Two vIRQ sources, named here by what they do (facts §10.1 "naming trap": the source
H-SRC calls ``frontend_source`` is raised by the frontend's writes and delivered to the
*backend*, ``backend_source`` the other way round):

* ``to_backend``: QueueNotify, DRIVER_OK, FAILED and a reset request set a reason
  bit and raise it; pending while a reason is set (``virtio_mmio_frontend_handle_virq_
  check_pending``); ``get_notification`` hands the reasons over and clears them;
* ``to_frontend``: ``assert_virq`` ORs InterruptStatus and raises it; pending while
  InterruptStatus is non-zero; the frontend clears bits by writing InterruptACK.

Simplified: the register page is the object's own dict (not a page of the memory
model), and the backend's plain stores to its read-write mapping (MagicValue,
DeviceID, config space) are made when the device is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..consts import (
    VIRTIO_F_ACCESS_PLATFORM,
    VIRTIO_F_NOTIFICATION_DATA,
    VIRTIO_F_VERSION_1,
    VIRTIO_MMIO_DEV_FEAT_NUM,
    VIRTIO_MMIO_DRV_FEAT_NUM,
    VIRTIO_MMIO_MAGIC,
    VIRTIO_MMIO_MAX_VQS,
    VIRTIO_MMIO_PAGE_SIZE,
    VIRTIO_MMIO_REASON_DRIVER_OK,
    VIRTIO_MMIO_REASON_FAILED,
    VIRTIO_MMIO_REASON_NEW_BUFFER,
    VIRTIO_MMIO_REASON_RESET_RQST,
    VIRTIO_MMIO_REG_DEVICE_CONFIG,
    VIRTIO_MMIO_REGS,
    VIRTIO_MMIO_VERSION,
    VIRTIO_STATUS_DEVICE_NEEDS_RESET,
    VIRTIO_STATUS_DRIVER_OK,
    VIRTIO_STATUS_FAILED,
    Error,
    ObjectType,
)
from ..core.kobject import KObject
from ..core.trace import EventKind
from ..errors import HypError
from .vic import VirqSource

if TYPE_CHECKING:
    from ..core.trace import Trace
    from .virtqueue import Virtqueue

U32_MASK = 0xFFFF_FFFF
REGISTER_BITS = 64  # vqs_bitmap is a register_t
WORD = 4
BYTE = 1
REG_NAMES = {offset: name for name, offset in VIRTIO_MMIO_REGS.items()}
R = VIRTIO_MMIO_REGS
# The banked queue registers a QueueDesc/Driver/Device write lands in.
_QUEUE_ADDR_REGS = {R["QueueDescLow"]: "desc_low", R["QueueDescHigh"]: "desc_high",
                    R["QueueDriverLow"]: "drv_low", R["QueueDriverHigh"]: "drv_high",
                    R["QueueDeviceLow"]: "dev_low", R["QueueDeviceHigh"]: "dev_high"}
# hypercall_virtio_mmio_backend_set_dev_features, word 1: VERSION_1 and ACCESS_PLATFORM
# must be offered, NOTIFICATION_DATA must not.
FEAT_WORD_BITS = 32
REQUIRED_FEATURES_HI = (1 << (VIRTIO_F_VERSION_1 - FEAT_WORD_BITS)
                        | 1 << (VIRTIO_F_ACCESS_PLATFORM - FEAT_WORD_BITS))
FORBIDDEN_FEATURES_HI = 1 << (VIRTIO_F_NOTIFICATION_DATA - FEAT_WORD_BITS)


def _banked_queue() -> dict[str, int]:
    """``virtio_mmio_banked_queue_registers`` (virtio_mmio.tc), all zero at activation."""
    return dict.fromkeys(("num_max", "num", "ready", "desc_low", "desc_high", "drv_low",
                          "drv_high", "dev_low", "dev_high"), 0)


def reg_name(offset: int) -> str:
    """A register by its virtio name; the config space as "config+N"."""
    if offset >= VIRTIO_MMIO_REG_DEVICE_CONFIG:
        return f"config+{offset - VIRTIO_MMIO_REG_DEVICE_CONFIG:#x}"
    return REG_NAMES.get(offset, f"{offset:#x}")


class VirtioMmio(KObject):
    """The registers, the banked queue and feature words, the reasons and the two vIRQs."""

    obj_type = ObjectType.VIRTIO_MMIO

    def __init__(self, oid: int, name: str, trace: Trace, frontend: str = "",
                 backend: str = "", vqs_num: int = 1, device_id: int = 0) -> None:
        super().__init__(oid, name)
        self.trace = trace
        self.frontend = frontend
        self.backend = backend
        self.configure(vqs_num)
        self.regs = dict.fromkeys(VIRTIO_MMIO_REGS.values(), 0)
        self.regs.update({R["MagicValue"]: VIRTIO_MMIO_MAGIC, R["Version"]: VIRTIO_MMIO_VERSION,
                          R["DeviceID"]: device_id})
        self.config_space = bytearray(VIRTIO_MMIO_PAGE_SIZE - VIRTIO_MMIO_REG_DEVICE_CONFIG)
        self.banked_dev_feat = [0] * VIRTIO_MMIO_DEV_FEAT_NUM
        self.banked_drv_feat = [0] * VIRTIO_MMIO_DRV_FEAT_NUM
        self.queues = [_banked_queue() for _ in range(vqs_num)]
        self.drv_feat_sel = 0
        self.queue_sel = 0
        self.vqs_bitmap = 0
        self.reason = 0
        self.to_backend = VirqSource(f"virtio_mmio:{name}:backend", self._backend_pending,
                                     self._why)
        self.to_frontend = VirqSource(f"virtio_mmio:{name}:frontend", self._frontend_pending,
                                      self._why)
        self._kick = False  # the write being emulated raises the backend's vIRQ
        self.ring_size = 0  # descriptors per ring the guests will use (for the page)
        self.vqs: dict[int, Virtqueue] = {}  # the rings in shared memory, as guests set them up

    def configure(self, vqs_num: int) -> None:
        """``virtio_mmio_configure``: at most VIRTIO_MMIO_MAX_VQS queues, else
        ARGUMENT_INVALID (the memextent checks are the RM's: one page, basic type)."""
        if not 0 <= vqs_num <= VIRTIO_MMIO_MAX_VQS:
            raise HypError(Error.ARGUMENT_INVALID,
                           f"at most {VIRTIO_MMIO_MAX_VQS} queues, not {vqs_num}")
        self.vqs_num = vqs_num

    # -- what raises each vIRQ ------------------------------------------------------
    def _backend_pending(self) -> bool:
        return self.reason != 0

    def _frontend_pending(self) -> bool:
        return self.regs[R["InterruptStatus"]] != 0

    def _why(self) -> dict[str, Any]:
        return {"reason": self.reason, "vqs": self.vqs_bitmap,
                "isr": self.regs[R["InterruptStatus"]]}

    @property
    def status(self) -> int:
        return self.regs[R["Status"]]

    @property
    def reset_pending(self) -> bool:
        return bool(self.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)

    def reg_state(self) -> dict[str, Any]:
        """What every virtio event carries: the registers the page draws."""
        return {"status": self.status, "reason": self.reason, "vqs": self.vqs_bitmap,
                "isr": self.regs[R["InterruptStatus"]]}

    # -- the frontend: reads are memory reads, writes trap -------------------------------
    def frontend_read(self, offset: int) -> int:
        """A plain load from the read-only page."""
        if offset >= VIRTIO_MMIO_REG_DEVICE_CONFIG:
            return self.config_space[offset - VIRTIO_MMIO_REG_DEVICE_CONFIG]
        return self.regs.get(offset, 0)  # a reserved word reads as 0

    def frontend_write(self, vm: str, vcpu: str, offset: int, value: int,
                       size: int = WORD) -> bool:
        """Emulate a trapped store (``virtio_mmio_handle_vdevice_access``); False means
        the hypervisor injects a fault back into the frontend."""
        value &= U32_MASK
        self._kick = False
        ok = self._access_allowed(offset, size) and self._write(offset, value, size)
        if self.trace.on:
            self.trace.emit(EventKind.VIRTIO_WRITE, device=self.name, vm=vm, vcpu=vcpu,
                            reg=reg_name(offset),
                            offset=offset, value=value, emulated=ok, **self.reg_state())
        if ok and self._kick:  # after the event: the page sees the write, then its vIRQ
            self.to_backend.assert_()
        return ok

    @staticmethod
    def _access_allowed(offset: int, size: int) -> bool:
        """``virtio_mmio_access_allowed``: size-aligned; words anywhere, bytes only in
        the device config space."""
        if offset % size or not 0 <= offset < VIRTIO_MMIO_PAGE_SIZE:
            return False
        if size == WORD:
            return True
        return size == BYTE and offset >= VIRTIO_MMIO_REG_DEVICE_CONFIG

    def _write(self, offset: int, value: int, size: int) -> bool:
        """``virtio_mmio_vdevice_write``, register by register."""
        regs, queue = self.regs, self.queues[self.queue_sel] if self.queues else None
        if offset == R["DeviceFeaturesSel"]:
            if value >= VIRTIO_MMIO_DEV_FEAT_NUM:
                return False
            regs[R["DeviceFeatures"]] = self.banked_dev_feat[value]
        elif offset == R["DriverFeatures"]:
            self.banked_drv_feat[self.drv_feat_sel] = value
        elif offset == R["DriverFeaturesSel"]:
            if value >= VIRTIO_MMIO_DRV_FEAT_NUM:
                return False
            self.drv_feat_sel = value
        elif offset == R["QueueSel"]:
            if value >= self.vqs_num:
                return False
            self.queue_sel = value
            regs[R["QueueNumMax"]] = self.queues[value]["num_max"]
            regs[R["QueueReady"]] = self.queues[value]["ready"]
        elif offset in (R["QueueNum"], R["QueueReady"]) or offset in _QUEUE_ADDR_REGS:
            if queue is None:
                return False  # no queues at all: nothing banked to write
            if offset == R["QueueNum"]:
                queue["num"] = value
            elif offset == R["QueueReady"]:
                regs[R["QueueReady"]] = queue["ready"] = value
            else:
                queue[_QUEUE_ADDR_REGS[offset]] = value
        elif offset == R["QueueNotify"]:
            if value < REGISTER_BITS:  # util_bit(val): the source does not check the range
                self.vqs_bitmap |= 1 << value
            self.reason |= VIRTIO_MMIO_REASON_NEW_BUFFER
            self._kick = True
        elif offset == R["InterruptACK"]:
            # virtio_mmio_write_interrupt_ack: the bits only; the frontend's vIRQ stays
            # pending while InterruptStatus is non-zero (checked at EOI when level).
            regs[R["InterruptStatus"]] &= ~value
        elif offset == R["Status"]:
            self._write_status(value)
        elif offset >= VIRTIO_MMIO_REG_DEVICE_CONFIG:  # virtio_mmio_default_write
            at = offset - VIRTIO_MMIO_REG_DEVICE_CONFIG
            self.config_space[at:at + size] = value.to_bytes(WORD, "little")[:size]
        else:
            return False  # a read-only register: the default handler faults
        return True

    def _write_status(self, value: int) -> None:
        """``virtio_mmio_write_status_reg``: a non-zero value replaces Status and newly
        set DRIVER_OK (else FAILED) becomes a reason; zero over a non-zero Status asks
        for a reset: DEVICE_NEEDS_RESET, RESET_RQST, every QueueReady cleared."""
        old = self.status
        if value:
            self.regs[R["Status"]] = value
            if value & VIRTIO_STATUS_DRIVER_OK and not old & VIRTIO_STATUS_DRIVER_OK:
                self.reason |= VIRTIO_MMIO_REASON_DRIVER_OK
                self._kick = True
            elif value & VIRTIO_STATUS_FAILED and not old & VIRTIO_STATUS_FAILED:
                self.reason |= VIRTIO_MMIO_REASON_FAILED
                self._kick = True
        elif old:
            self.regs[R["Status"]] = old | VIRTIO_STATUS_DEVICE_NEEDS_RESET
            self.reason |= VIRTIO_MMIO_REASON_RESET_RQST
            for queue in self.queues:
                queue["ready"] = 0
            self.regs[R["QueueReady"]] = 0
            self._kick = True
        # A first write of 0 over a zero Status requests nothing (the source's comment).

    # -- the backend's hypercalls ------------------------------------------------------
    def _backend_event(self, op: str, **fields: Any) -> None:
        if self.trace.on:
            self.trace.emit(EventKind.VIRTIO_BACKEND, device=self.name, vm=self.backend,
                            op=op, **fields, **self.reg_state())

    def set_dev_features(self, sel: int, dev_feat: int) -> None:
        """``hypercall_virtio_mmio_backend_set_dev_features``: word 1 must offer
        VERSION_1 and ACCESS_PLATFORM and must not offer NOTIFICATION_DATA (DENIED)."""
        if not 0 <= sel < VIRTIO_MMIO_DEV_FEAT_NUM:
            raise HypError(Error.ARGUMENT_INVALID, f"feature word {sel} (0 or 1)")
        dev_feat &= U32_MASK
        if sel == 1 and ((dev_feat & REQUIRED_FEATURES_HI) != REQUIRED_FEATURES_HI
                         or dev_feat & FORBIDDEN_FEATURES_HI):
            raise HypError(Error.DENIED, "VERSION_1 and ACCESS_PLATFORM are required, "
                                         "NOTIFICATION_DATA is refused")
        self.banked_dev_feat[sel] = dev_feat
        self._backend_event("set_dev_features", sel=sel, value=dev_feat)

    def set_queue_num_max(self, sel: int, num_max: int) -> None:
        """``..._backend_set_queue_num_max``: ARGUMENT_INVALID past the device's queues."""
        self._queue(sel)["num_max"] = num_max & U32_MASK
        self._backend_event("set_queue_num_max", sel=sel, value=num_max & U32_MASK)

    def get_drv_features(self, sel: int) -> int:
        if not 0 <= sel < VIRTIO_MMIO_DRV_FEAT_NUM:
            raise HypError(Error.ARGUMENT_INVALID, f"feature word {sel} (0 or 1)")
        return self.banked_drv_feat[sel]

    def get_queue_info(self, sel: int) -> dict[str, int]:
        """``..._backend_get_queue_info``: the banked registers the driver wrote."""
        q = self._queue(sel)
        return {"queue_num": q["num"], "queue_ready": q["ready"],
                "queue_desc": q["desc_high"] << 32 | q["desc_low"],
                "queue_drv": q["drv_high"] << 32 | q["drv_low"],
                "queue_dev": q["dev_high"] << 32 | q["dev_low"]}

    def _queue(self, sel: int) -> dict[str, int]:
        if not 0 <= sel < self.vqs_num:  # nospec_range_check -> ARGUMENT_INVALID
            raise HypError(Error.ARGUMENT_INVALID, f"queue {sel} of {self.vqs_num}")
        return self.queues[sel]

    def get_notification(self) -> dict[str, int]:
        """``..._backend_get_notification``: hand over and clear the VQ bitmap and the
        reasons; with no reason left the backend's vIRQ is no longer pending."""
        vqs, reason = self.vqs_bitmap, self.reason
        self.vqs_bitmap = self.reason = 0
        # No explicit deassert in the source: the vIRQ is pending while a reason is set
        # (virtio_mmio_frontend_handle_virq_check_pending, asked at EOI when level).
        self._backend_event("get_notification", taken_vqs=vqs, taken_reason=reason)
        return {"vqs_bitmap": vqs, "reason": reason}

    def acknowledge_reset(self) -> None:
        """``..._backend_acknowledge_reset``: Status back to its default, 0 (which ends
        DEVICE_NEEDS_RESET; QueueReady was cleared when the reset was asked)."""
        self.regs[R["Status"]] = 0
        self._backend_event("acknowledge_reset")

    def update_status(self, value: int) -> None:
        """``..._backend_update_status``: ORs bits into Status (DEVICE_NEEDS_RESET...)."""
        self.regs[R["Status"]] |= value & U32_MASK
        self._backend_event("update_status", value=value & U32_MASK)

    def assert_virq(self, interrupt_status: int) -> None:
        """``..._backend_assert_virq``: DENIED while a reset is pending; else ORs the
        bits into InterruptStatus and raises the frontend's vIRQ."""
        if self.reset_pending:
            raise HypError(Error.DENIED, "a device reset is pending (DEVICE_NEEDS_RESET)")
        self.regs[R["InterruptStatus"]] |= interrupt_status & U32_MASK
        self._backend_event("assert_virq", value=interrupt_status & U32_MASK)
        self.to_frontend.assert_()

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "frontend": self.frontend, "backend": self.backend,
                "device_id": self.regs[R["DeviceID"]], "vqs_num": self.vqs_num,
                "ring_size": self.ring_size,
                **self.reg_state(), "virq_backend": self.to_backend.virq,
                "virq_frontend": self.to_frontend.virq,
                "queues": [vq.snapshot() for _, vq in sorted(self.vqs.items())]}
