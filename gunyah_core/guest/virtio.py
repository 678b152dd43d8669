"""Toy virtio drivers (frontend) and devices (backend) over a virtio-MMIO object.

The driver does what Linux's virtio_mmio.c does, with plain loads and stores to the
register page (each store traps into the hypervisor, facts §10.1): reset, ACKNOWLEDGE,
DRIVER, read the device's feature words, accept VERSION_1 | ACCESS_PLATFORM,
FEATURES_OK, set up each queue (QueueSel, QueueNumMax, QueueNum, the three ring
addresses, QueueReady), DRIVER_OK; then it puts buffers in its virtqueues and writes
QueueNotify. Its vIRQ handler reads InterruptStatus, writes InterruptACK and takes the
used buffers back.

The device works the object with ``virtio_mmio_backend_*`` hypercalls as a backend
VMM would: feature words and queue sizes at start; on its vIRQ, get_notification,
then acknowledge_reset (RESET_RQST), get_drv_features and get_queue_info (DRIVER_OK),
or the queues the bitmap names (NEW_BUFFER); then assert_virq(1) for used buffers.

The two toy devices and their semantics are the simulator's: a console that echoes
every byte the driver transmits into the driver's receive buffers (virtio 1.1 §5.3:
receiveq 0, transmitq 1), and a block device with an in-memory disk (§5.2 requests:
le32 type IN 0 / OUT 1, le32 reserved, le64 sector, data, u8 status).
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from ..consts import (
    SIM_GUEST_WORK_NS,
    VIRTIO_F_ACCESS_PLATFORM,
    VIRTIO_F_VERSION_1,
    VIRTIO_ID_BLOCK,
    VIRTIO_ID_CONSOLE,
    VIRTIO_INT_USED_BUFFER,
    VIRTIO_MMIO_MAGIC,
    VIRTIO_MMIO_REASON_DRIVER_OK,
    VIRTIO_MMIO_REASON_NEW_BUFFER,
    VIRTIO_MMIO_REASON_RESET_RQST,
    VIRTIO_MMIO_REGS,
    VIRTIO_STATUS_ACKNOWLEDGE,
    VIRTIO_STATUS_DRIVER,
    VIRTIO_STATUS_DRIVER_OK,
    VIRTIO_STATUS_FEATURES_OK,
)
from ..errors import ERROR_OK
from ..vm.virtqueue import Layout, Virtqueue
from .programs import WFI, Guest, MissingResource, hvc, mem, work

if TYPE_CHECKING:
    from ..vm.vcpu import Vcpu

R = VIRTIO_MMIO_REGS
FEAT_WORD_BITS = 32
LOW_MASK = 0xFFFF_FFFF
FEATURES_HI = (1 << (VIRTIO_F_VERSION_1 - FEAT_WORD_BITS)
               | 1 << (VIRTIO_F_ACCESS_PLATFORM - FEAT_WORD_BITS))
# SIMULATOR: how long the driver waits before probing (the backend sets its features
# first), and how often it polls Status while a reset is pending.
PROBE_DELAY_NS = 50_000
RESET_POLL_NS = 20_000
CONSOLE_RX, CONSOLE_TX = 0, 1
CONSOLE_QUEUES = 2
BLOCK_QUEUES = 1
BLK_T_IN, BLK_T_OUT = 0, 1
BLK_S_OK, BLK_S_IOERR = 0, 1
SECTOR_SIZE = 512
BLK_HEADER = struct.Struct("<IIQ")
DISK_SECTORS = 64  # the toy disk's size (the simulator's)
DEFAULT_COUNT = 6  # sectors a block round writes and reads
DEFAULT_PERIOD_NS = 150_000


def _node(guest: Guest, rtype: str, name: str | None) -> dict[str, Any]:
    for entry in guest.vm.resources.values():
        if entry["type"] == rtype and name in (None, entry.get("virtio")):
            return entry
    raise MissingResource(f"program {guest.program!r} needs a virtio-MMIO device"
                          f"{' ' + repr(name) if name else ''} in VM {guest.vm.name}")


class VirtioDriver(Guest):
    """The frontend: probes the device through its register page, then drives queues."""

    program = "virtio-driver"
    device_id = 0
    queues = 1

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.node = _node(self, "VIRTIO_MMIO_NODE", params.get("virtio"))
        self.base = self.node["base"]
        self.vqs: dict[int, Virtqueue] = {}
        self.ready = False
        self.waiting = False  # the main flow waits for used buffers (a full ring)
        self.mismatches = 0
        self.faults = 0

    # -- the register page ---------------------------------------------------------
    def write(self, reg: str, value: int):
        ok = yield mem("W", self.base + R[reg], value)
        if not ok:
            self.faults += 1

    def read(self, reg: str):
        return (yield mem("R", self.base + R[reg]))

    def probe(self):
        """virtio 1.1 §3.1.1, as Linux's virtio_mmio.c does it."""
        if (yield from self.read("MagicValue")) != VIRTIO_MMIO_MAGIC:
            return False
        if (yield from self.read("DeviceID")) != self.device_id:
            return False
        yield from self.write("Status", 0)
        status = VIRTIO_STATUS_ACKNOWLEDGE
        yield from self.write("Status", status)
        status |= VIRTIO_STATUS_DRIVER
        yield from self.write("Status", status)
        yield from self.write("DeviceFeaturesSel", 1)
        offered = yield from self.read("DeviceFeatures")
        yield from self.write("DriverFeaturesSel", 1)
        yield from self.write("DriverFeatures", offered & FEATURES_HI)
        yield from self.write("DriverFeaturesSel", 0)
        yield from self.write("DriverFeatures", 0)
        status |= VIRTIO_STATUS_FEATURES_OK
        yield from self.write("Status", status)
        dev = self.hyp.virtio_mmios[self.node["virtio"]]
        base, buf_size = self.node["ring_base"], self.node["buf_size"]
        for index in range(self.queues):
            yield from self.write("QueueSel", index)
            num = min((yield from self.read("QueueNumMax")), self.node["queue_size"])
            layout = Layout.at(base + index * self.node["ring_stride"], num, buf_size)
            yield from self.write("QueueNum", num)
            for reg, addr in (("QueueDesc", layout.desc), ("QueueDriver", layout.avail),
                              ("QueueDevice", layout.used)):
                yield from self.write(reg + "Low", addr & LOW_MASK)
                yield from self.write(reg + "High", addr >> FEAT_WORD_BITS)
            yield from self.write("QueueReady", 1)
            vq = Virtqueue(self.hyp.shared_bytes, layout, self.hyp.trace, dev.name, index,
                           self.vm.vmid, self.node["peer"])
            self.vqs[index] = dev.vqs[index] = vq  # the page draws it from the device
        status |= VIRTIO_STATUS_DRIVER_OK
        yield from self.write("Status", status)
        self.ready = True
        return True

    def reset(self, vcpu: Vcpu):
        """Status = 0 asks the backend for a reset; the driver waits until Status reads 0
        (Linux's vm_reset polls it the same way), sleeping on its virtual timer between
        reads."""
        self.ready = False
        yield from self.write("Status", 0)
        while (yield from self.read("Status")) != 0:
            yield from self.timer_sleep(vcpu, RESET_POLL_NS)

    def notify(self, queue: int):
        yield from self.write("QueueNotify", queue)

    def add(self, queue: int, out: bytes | list[bytes], in_len: int | list[int] = 0):
        """Put a chain in the queue, waiting for used buffers while the ring is full."""
        while True:
            head = self.vqs[queue].add(self.vm.name, out, in_len)
            if head is not None:
                return head
            self.waiting = True
            while self.waiting:
                yield WFI

    def run(self, vcpu: Vcpu):
        yield from self.timer_sleep(vcpu, PROBE_DELAY_NS)
        if (yield from self.probe()):
            yield from self.work(vcpu)

    def work(self, vcpu: Vcpu):
        return
        yield

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if virq != self.node["virq"]:
            return
        isr = yield from self.read("InterruptStatus")
        yield from self.write("InterruptACK", isr)
        if not isr & VIRTIO_INT_USED_BUFFER or not self.ready:
            return
        for index, vq in sorted(self.vqs.items()):
            while (got := vq.reclaim(self.vm.name)) is not None:
                more = self.on_used(index, *got)
                if more is not None:
                    yield from more
        self.waiting = False

    def on_used(self, queue: int, head: int, data: bytes):
        return None


class VirtioConsoleDriver(VirtioDriver):
    """Writes ``count`` lines to the transmitq; checks each comes back on the receiveq."""

    program = "virtio-console"
    device_id = VIRTIO_ID_CONSOLE
    queues = CONSOLE_QUEUES

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.count = params.get("count")  # lines to write; for ever when left out
        self.period = params.get("period_ns", DEFAULT_PERIOD_NS)
        self.reset_after = params.get("reset_after")
        self.sent_bytes = bytearray()
        self.echoed = bytearray()
        self.resets = 0

    def line(self, n: int) -> bytes:
        return f"{self.vm.name} line {n}\n".encode()

    def post_rx(self, count: int):
        for _ in range(count):
            yield from self.add(CONSOLE_RX, b"", self.node["buf_size"])
        yield from self.notify(CONSOLE_RX)

    def work(self, vcpu: Vcpu):
        # Half the receive ring stands ready for the echo (the simulator's choice).
        yield from self.post_rx(max(1, self.vqs[CONSOLE_RX].layout.num // 2))
        while self.count is None or self.sent < self.count:
            if self.reset_after and self.sent == self.reset_after and not self.resets:
                self.resets += 1
                yield from self.reset(vcpu)
                self.sent_bytes, self.echoed = bytearray(), bytearray()  # a new session
                if not (yield from self.probe()):
                    return
                yield from self.post_rx(max(1, self.vqs[CONSOLE_RX].layout.num // 2))
            data = self.line(self.sent)
            yield from self.add(CONSOLE_TX, data)
            self.sent_bytes += data
            self.sent += 1
            yield from self.notify(CONSOLE_TX)
            yield from self.timer_sleep(vcpu, self.period)

    def on_used(self, queue: int, head: int, data: bytes):
        if queue != CONSOLE_RX:
            return None
        self.echoed += data
        self.received += 1
        if not self.sent_bytes.startswith(self.echoed):
            self.mismatches += 1
        return self.post_rx(1)  # give the device the buffer back


class VirtioBlockDriver(VirtioDriver):
    """Round after round: writes ``count`` sectors, then reads each back and compares
    (``rounds`` rounds; for ever when left out)."""

    program = "virtio-blk"
    device_id = VIRTIO_ID_BLOCK
    queues = BLOCK_QUEUES

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.count = min(params.get("count", DEFAULT_COUNT), DISK_SECTORS)
        self.rounds = params.get("rounds")
        self.period = params.get("period_ns", DEFAULT_PERIOD_NS)
        self.size = SECTOR_SIZE
        self.pending: dict[int, tuple[int, int]] = {}  # head -> (type, sector)
        self.written: dict[int, bytes] = {}  # what each sector should read back
        self.verified = 0
        self.round = 0

    def pattern(self, sector: int, round_: int) -> bytes:
        text = f"sector {sector} round {round_} of {self.vm.name}; "
        return (text * (self.size // len(text) + 1)).encode()[:self.size]

    def request(self, kind: int, sector: int):
        header = BLK_HEADER.pack(kind, 0, sector)
        # virtio 1.1 §5.2.6: a header the device reads, the data, a status byte it writes.
        if kind == BLK_T_OUT:
            data = self.pattern(sector, self.round)
            self.written[sector] = data
            head = yield from self.add(0, [header, data], [1])
        else:
            head = yield from self.add(0, [header], [self.size, 1])
        self.pending[head] = (kind, sector)
        yield from self.notify(0)

    def work(self, vcpu: Vcpu):
        while self.rounds is None or self.round < self.rounds:
            first = self.round * self.count % DISK_SECTORS
            sectors = [(first + n) % DISK_SECTORS for n in range(self.count)]
            for kind in (BLK_T_OUT, BLK_T_IN):
                for sector in sectors:
                    yield from self.request(kind, sector)
                    self.sent += 1
                    yield from self.timer_sleep(vcpu, self.period)
            self.round += 1

    def on_used(self, queue: int, head: int, data: bytes):
        kind, sector = self.pending.pop(head)
        self.received += 1
        if not data or data[-1] != BLK_S_OK:
            self.mismatches += 1
        elif kind == BLK_T_IN:
            if data[:-1] == self.written.get(sector):
                self.verified += 1
            else:
                self.mismatches += 1
        return None


class VirtioBackend(Guest):
    """The device side: features and queue sizes at start, then serves notifications."""

    program = "virtio-backend"
    queues = 1
    features_lo = 0

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.dev = _node(self, "VIRTIO_MMIO", params.get("virtio"))
        self.work_ns = params.get("work_ns", SIM_GUEST_WORK_NS)
        self.vqs: dict[int, Virtqueue] = {}
        self.driver_features = 0
        self.notifications: deque[int] = deque()

    def call(self, name: str, **args: Any):
        return (yield hvc(f"virtio_mmio_backend_{name}", capid=self.dev["capid"], **args))

    def run(self, vcpu: Vcpu):
        yield from self.call("set_dev_features", sel=0, dev_feat=self.features_lo)
        yield from self.call("set_dev_features", sel=1, dev_feat=FEATURES_HI)
        device = self.hyp.virtio_mmios[self.dev["virtio"]]
        for index in range(device.vqs_num):
            yield from self.call("set_queue_num_max", sel=index,
                                 queue_num_max=self.dev["queue_size"])

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if virq != self.dev["virq"]:
            return
        result = yield from self.call("get_notification")
        if result.error is not ERROR_OK:
            return
        reason, vqs = result.ret["reason"], result.ret["vqs_bitmap"]
        if reason & VIRTIO_MMIO_REASON_RESET_RQST:
            self.vqs.clear()
            self.on_reset()
            yield from self.call("acknowledge_reset")
        if reason & VIRTIO_MMIO_REASON_DRIVER_OK:
            yield from self.learn_queues()
        if reason & VIRTIO_MMIO_REASON_NEW_BUFFER:
            used = 0
            for index in sorted(self.vqs):
                if vqs >> index & 1:
                    used += yield from self.serve(index)
            if used:
                yield from self.call("assert_virq", interrupt_status=VIRTIO_INT_USED_BUFFER)

    def learn_queues(self):
        """DRIVER_OK: read what the driver negotiated and where it put each ring."""
        result = yield from self.call("get_drv_features", sel=1)
        self.driver_features = result.ret.get("drv_feat", 0)
        device = self.hyp.virtio_mmios[self.dev["virtio"]]
        for index in range(device.vqs_num):
            info = (yield from self.call("get_queue_info", sel=index)).ret
            vq = device.vqs.get(index)
            # The rings the driver set up, found where the registers say they are.
            if (info.get("queue_ready") and vq is not None
                    and (info["queue_desc"], info["queue_drv"], info["queue_dev"])
                    == (vq.layout.desc, vq.layout.avail, vq.layout.used)):
                self.vqs[index] = vq

    def serve(self, index: int):
        """Take every available chain of one queue; returns how many were used."""
        used = 0
        vq = self.vqs[index]
        while (chain := vq.pop(self.vm.name)) is not None:
            yield work(self.work_ns)
            used += self.process(index, vq, chain)
        return used

    def on_reset(self) -> None:
        """The device forgets what it held: the rings start again after the reset."""

    def process(self, index: int, vq: Virtqueue, chain: Any) -> int:
        """Serve one chain; returns how many chains went to a used ring."""
        return 0


class VirtioConsoleBackend(VirtioBackend):
    """Echoes what the driver transmits into the driver's receive buffers."""

    program = "virtio-console-backend"

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.echo = bytearray()
        self.rx_chains: deque = deque()

    def on_reset(self) -> None:
        self.echo.clear()
        self.rx_chains.clear()

    def process(self, index: int, vq: Virtqueue, chain: Any) -> int:
        used = 0
        if index == CONSOLE_RX:
            self.rx_chains.append(chain)  # a buffer to echo into, kept until there is data
        else:
            vq.push(self.vm.name, chain)
            self.echo += chain.out
            self.received += 1
            used += 1
        return used + self.flush_echo()

    def flush_echo(self) -> int:
        rx = self.vqs.get(CONSOLE_RX)
        used = 0
        while rx is not None and self.echo and self.rx_chains:
            chain = self.rx_chains.popleft()
            room = sum(n for _, n in chain.writable)
            written = rx.push(self.vm.name, chain, bytes(self.echo[:room]))
            del self.echo[:written]
            self.sent += 1
            used += 1
        return used


class VirtioBlockBackend(VirtioBackend):
    """Serves reads and writes from a small disk in the backend's memory."""

    program = "virtio-blk-backend"

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.disk: dict[int, bytes] = {}

    def process(self, index: int, vq: Virtqueue, chain: Any) -> int:
        kind, _, sector = BLK_HEADER.unpack(chain.out[:BLK_HEADER.size])
        data = chain.out[BLK_HEADER.size:]
        room = sum(n for _, n in chain.writable)
        if sector >= DISK_SECTORS:
            vq.push(self.vm.name, chain, bytes([BLK_S_IOERR]))
        elif kind == BLK_T_OUT:
            self.disk[sector] = data
            vq.push(self.vm.name, chain, bytes([BLK_S_OK]))
        else:
            stored = self.disk.get(sector, b"").ljust(room - 1, b"\0")[:room - 1]
            vq.push(self.vm.name, chain, stored + bytes([BLK_S_OK]))
        self.received += 1
        return 1


PROGRAMS = {cls.program: cls for cls in (VirtioConsoleDriver, VirtioBlockDriver,
                                          VirtioConsoleBackend, VirtioBlockBackend)}
