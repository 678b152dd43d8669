"""A split virtqueue (virtio 1.1 §2.6) in memory two VMs share, byte for byte.

The driver (the frontend VM) owns the rings: a descriptor table (le64 addr, le32 len,
le16 flags NEXT=1/WRITE=2, le16 next), an available ring (le16 flags, le16 idx, le16
ring[num]) and a used ring (le16 flags, le16 idx, {le32 id, le32 len}[num]). It puts a
chain of buffers in the available ring; the device (the backend VM) takes it, reads the
driver's buffers, writes into the WRITE ones and puts the chain's head in the used ring;
the driver takes it back. Every access goes through the accessing VM's stage-2
(``MemoryModel.access``), so the pages must really be shared with both VMs.

The hypervisor never reads these rings (facts §10.1: it only forwards notifications
and interrupts); this module is the two guests' view of memory. Simplified, and the
simulator's choice: the memory model keeps one label per page, so the bytes of the
shared pages live here (``SharedBytes``); the driver gives each descriptor one fixed
buffer slot after the rings; no event suppression (flags and used/avail_event stay 0);
no indirect descriptors.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

from ..consts import VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, VIRTQ_USED_ELEM_SIZE
from ..core.trace import EventKind
from ..mem.memparcel import PAGE_SIZE

if TYPE_CHECKING:
    from ..core.trace import Trace
    from ..mem.memory import MemoryModel

RING_HEADER = 4  # le16 flags, le16 idx
RING_ELEM = 2  # le16 head
RING_TAIL = 2  # le16 used_event / avail_event
USED_ALIGN = 4  # virtio 1.1 §2.6: the used ring is 4-byte aligned
IDX_MASK = 0xFFFF  # ring indexes are free-running le16
PREVIEW_CHARS = 24  # bytes shown in an event's ``data`` (the simulator's choice)
_DESC = struct.Struct("<QIHH")
_USED = struct.Struct("<II")
_U16 = struct.Struct("<H")


class RingFault(Exception):
    """A ring or buffer access the accessing VM's stage-2 refused (mem.fault traced)."""


class SharedBytes:
    """The bytes of the pages two VMs share, read and written through each one's stage-2."""

    def __init__(self, memory: MemoryModel) -> None:
        self.memory = memory
        self._pages: dict[int, bytearray] = {}

    def _check(self, vmid: int, addr: int, size: int, kind: str) -> None:
        for page in range(addr // PAGE_SIZE, (addr + max(size, 1) - 1) // PAGE_SIZE + 1):
            if not self.memory.access(vmid, max(addr, page * PAGE_SIZE), kind):
                raise RingFault(f"VM {vmid:#x} may not {kind} {addr:#x}")

    def read(self, vmid: int, addr: int, size: int) -> bytes:
        """``size`` bytes at IPA ``addr`` (IPA = PA for shared pages, memory.py)."""
        self._check(vmid, addr, size, "R")
        out = bytearray()
        while size > 0:
            page, off = divmod(addr, PAGE_SIZE)
            n = min(size, PAGE_SIZE - off)
            out += self._pages.get(page, bytes(PAGE_SIZE))[off:off + n]
            addr, size = addr + n, size - n
        return bytes(out)

    def write(self, vmid: int, addr: int, data: bytes) -> None:
        self._check(vmid, addr, len(data), "W")
        pos = 0
        while pos < len(data):
            page, off = divmod(addr + pos, PAGE_SIZE)
            n = min(len(data) - pos, PAGE_SIZE - off)
            buf = self._pages.setdefault(page, bytearray(PAGE_SIZE))
            buf[off:off + n] = data[pos:pos + n]
            pos += n


class Layout(NamedTuple):
    """Where one queue's parts are (what QueueDesc/Driver/Device registers carry)."""

    num: int
    desc: int
    avail: int
    used: int
    buffers: int
    buf_size: int

    @classmethod
    def at(cls, base: int, num: int, buf_size: int) -> Layout:
        """The parts packed from ``base`` (virtio 1.1 §2.6 sizes and alignment)."""
        avail = base + VIRTQ_DESC_SIZE * num
        used = _align(avail + RING_HEADER + RING_ELEM * num + RING_TAIL, USED_ALIGN)
        buffers = _align(used + RING_HEADER + VIRTQ_USED_ELEM_SIZE * num + RING_TAIL, 16)
        return cls(num, base, avail, used, buffers, buf_size)

    @property
    def end(self) -> int:
        return self.buffers + self.num * self.buf_size


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


PREVIEW_OTHER = ord("?")  # shown as '.' too: '?' reads as "unknown" in a caption


def preview(data: bytes) -> str:
    """Printable ASCII as it is, anything else as '.', cut to PREVIEW_CHARS."""
    text = "".join(chr(b) if 32 <= b < 127 and b != PREVIEW_OTHER else "."
                   for b in data[:PREVIEW_CHARS])
    return text + ("…" if len(data) > PREVIEW_CHARS else "")


class Chain(NamedTuple):
    """A chain the device took: its head, the driver's bytes, the buffers to fill."""

    head: int
    out: bytes
    writable: list[tuple[int, int]]  # (addr, len) of each WRITE descriptor


class Virtqueue:
    """One queue's ring memory, with each side's private index (the only state not in
    shared memory): the driver's free descriptors and last used index seen, the
    device's last available index seen. Events carry the four indexes that say how
    full each ring is."""

    def __init__(self, mem: SharedBytes, layout: Layout, trace: Trace, device: str,
                 index: int, driver_vmid: int, device_vmid: int) -> None:
        self.mem = mem
        self.layout = layout
        self.trace = trace
        self.device = device
        self.index = index
        self.driver_vmid = driver_vmid
        self.device_vmid = device_vmid
        self.free: deque[int] = deque(range(layout.num))
        self.chains: dict[int, list[int]] = {}  # head -> descriptors, driver's bookkeeping
        self.avail_idx = 0  # the driver's next avail.idx (also written to memory)
        self.last_used = 0  # the driver's last used.idx taken
        self.last_avail = 0  # the device's last avail.idx taken
        self.used_idx = 0  # the device's next used.idx (also written to memory)

    # -- what the page draws --------------------------------------------------------
    def depths(self) -> dict[str, int]:
        """Chains waiting in the available ring, held by the device, waiting in the
        used ring (each side's indexes, free-running mod 2^16)."""
        return {"avail_depth": (self.avail_idx - self.last_avail) & IDX_MASK,
                "in_device": (self.last_avail - self.used_idx) & IDX_MASK,
                "used_depth": (self.used_idx - self.last_used) & IDX_MASK,
                "num": self.layout.num}

    def _emit(self, kind: str, vm: str, **fields: Any) -> None:
        if self.trace.on:
            self.trace.emit(kind, device=self.device, queue=self.index, vm=vm, **fields,
                            avail_idx=self.avail_idx, used_idx=self.used_idx, **self.depths())

    # -- the driver (frontend) --------------------------------------------------------
    def add(self, vm: str, out: bytes | list[bytes], in_len: int | list[int] = 0) -> int | None:
        """Make a chain available: the ``out`` segments in readable descriptors, then
        writable ones of ``in_len`` bytes (a segment longer than a buffer slot takes
        several). None when too few descriptors are free (the ring is full)."""
        lay = self.layout
        outs = [out] if isinstance(out, bytes) else out
        ins = [in_len] if isinstance(in_len, int) else in_len
        parts: list[tuple[bytes | int, int]] = [
            (seg[i:i + lay.buf_size], 0) for seg in outs for i in range(0, len(seg), lay.buf_size)]
        parts += [(min(n - i, lay.buf_size), VIRTQ_DESC_F_WRITE)
                  for n in ins for i in range(0, n, lay.buf_size)]
        need = len(parts)
        if need == 0 or need > len(self.free):
            return None
        descs = [self.free.popleft() for _ in range(need)]
        out = b"".join(outs)
        in_len = sum(ins)
        vmid = self.driver_vmid
        for n, (desc, (part, flags)) in enumerate(zip(descs, parts, strict=True)):
            addr = lay.buffers + desc * lay.buf_size
            if isinstance(part, bytes):
                self.mem.write(vmid, addr, part)
                length = len(part)
            else:
                length = part
            nxt = descs[n + 1] if n + 1 < need else 0
            flags |= VIRTQ_DESC_F_NEXT if n + 1 < need else 0
            self.mem.write(vmid, lay.desc + desc * VIRTQ_DESC_SIZE,
                           _DESC.pack(addr, length, flags, nxt))
        head = descs[0]
        self.chains[head] = descs
        slot = self.avail_idx % lay.num
        self.mem.write(vmid, lay.avail + RING_HEADER + RING_ELEM * slot, _U16.pack(head))
        # virtio 1.1 §2.6.13: the ring entry is written before the index that publishes it.
        self.avail_idx = (self.avail_idx + 1) & IDX_MASK
        self.mem.write(vmid, lay.avail + 2, _U16.pack(self.avail_idx))
        self._emit(EventKind.VIRTQ_AVAIL, vm, head=head, descs=need, slot=slot,
                   out_len=len(out), in_len=in_len,
                   data=preview(out))
        return head

    def reclaim(self, vm: str) -> tuple[int, bytes] | None:
        """Take the next used chain back: (head, the bytes the device wrote); None if
        the used ring holds nothing new."""
        lay, vmid = self.layout, self.driver_vmid
        used_idx = _U16.unpack(self.mem.read(vmid, lay.used + 2, 2))[0]
        if used_idx == self.last_used:
            return None
        slot = self.last_used % lay.num
        head, length = _USED.unpack(self.mem.read(
            vmid, lay.used + RING_HEADER + VIRTQ_USED_ELEM_SIZE * slot, VIRTQ_USED_ELEM_SIZE))
        self.last_used = (self.last_used + 1) & IDX_MASK
        descs = self.chains.pop(head)
        data = bytearray()
        for desc in descs:
            addr, dlen, flags, _ = _DESC.unpack(
                self.mem.read(vmid, lay.desc + desc * VIRTQ_DESC_SIZE, VIRTQ_DESC_SIZE))
            if flags & VIRTQ_DESC_F_WRITE and len(data) < length:
                data += self.mem.read(vmid, addr, min(dlen, length - len(data)))
        self.free.extend(descs)
        self._emit(EventKind.VIRTQ_RECLAIM, vm, head=head, slot=slot, used_len=length,
                   data=preview(bytes(data)))
        return head, bytes(data)

    # -- the device (backend) --------------------------------------------------------
    def pop(self, vm: str) -> Chain | None:
        """Take the next available chain: its readable bytes and writable buffers."""
        lay, vmid = self.layout, self.device_vmid
        avail_idx = _U16.unpack(self.mem.read(vmid, lay.avail + 2, 2))[0]
        if avail_idx == self.last_avail:
            return None
        slot = self.last_avail % lay.num
        head = _U16.unpack(self.mem.read(vmid, lay.avail + RING_HEADER + RING_ELEM * slot,
                                         RING_ELEM))[0]
        self.last_avail = (self.last_avail + 1) & IDX_MASK
        out, writable, desc = bytearray(), [], head
        for _ in range(lay.num):  # a chain is at most num long (no loops)
            addr, dlen, flags, nxt = _DESC.unpack(
                self.mem.read(vmid, lay.desc + desc * VIRTQ_DESC_SIZE, VIRTQ_DESC_SIZE))
            if flags & VIRTQ_DESC_F_WRITE:
                writable.append((addr, dlen))
            else:
                out += self.mem.read(vmid, addr, dlen)
            if not flags & VIRTQ_DESC_F_NEXT:
                break
            desc = nxt
        self._emit(EventKind.VIRTQ_POP, vm, head=head, slot=slot, out_len=len(out),
                   in_len=sum(n for _, n in writable), data=preview(bytes(out)))
        return Chain(head, bytes(out), writable)

    def push(self, vm: str, chain: Chain, data: bytes = b"") -> int:
        """Fill the chain's writable buffers with ``data`` and put it in the used ring;
        returns the bytes written (the used element's ``len``)."""
        lay, vmid = self.layout, self.device_vmid
        written = 0
        for addr, dlen in chain.writable:
            part = data[written:written + dlen]
            if not part:
                break
            self.mem.write(vmid, addr, part)
            written += len(part)
        slot = self.used_idx % lay.num
        self.mem.write(vmid, lay.used + RING_HEADER + VIRTQ_USED_ELEM_SIZE * slot,
                       _USED.pack(chain.head, written))
        self.used_idx = (self.used_idx + 1) & IDX_MASK
        self.mem.write(vmid, lay.used + 2, _U16.pack(self.used_idx))
        self._emit(EventKind.VIRTQ_USED, vm, head=chain.head, slot=slot, used_len=written,
                   data=preview(data[:written]))
        return written

    def snapshot(self) -> dict[str, Any]:
        lay = self.layout
        return {"queue": self.index, "desc": lay.desc, "avail": lay.avail, "used": lay.used,
                "avail_idx": self.avail_idx, "used_idx": self.used_idx, **self.depths()}
