"""The split virtqueue (virtio 1.1 §2.6) in memory shared between two VMs: its layout,
real bytes both ways through the rings, and the stage-2 checks on every access."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gunyah_core.consts import VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE
from gunyah_core.core.engine import Engine
from gunyah_core.core.trace import Trace
from gunyah_core.mem.memory import MemoryModel
from gunyah_core.mem.memparcel import PAGE_SIZE, PgtableAccess
from gunyah_core.vm.virtqueue import Layout, RingFault, SharedBytes, Virtqueue, preview

DRIVER, DEVICE = 0x80, 0x81
BASE = 0x4000_0000
PAGES = 4
RW = int(PgtableAccess.RW)


def make_queue(num: int = 8, buf_size: int = 64, share: bool = True,
               events: list | None = None, device_rights: int = RW,
               pages: int = PAGES, trace: Trace | None = None) -> Virtqueue:
    memory = MemoryModel(lambda kind, **f: events.append((kind, f)) if events is not None
                         else None)
    memory.add_region(DRIVER, BASE, PAGES * PAGE_SIZE)
    memory.add_region(DEVICE, BASE + 0x10_0000, PAGE_SIZE)
    if share:
        handle = memory.share(DRIVER, [(DRIVER, RW), (DEVICE, device_rights)],
                              [(BASE, pages * PAGE_SIZE)])
        memory.accept(DEVICE, handle)
    trace = trace or Trace(Engine())
    layout = Layout.at(BASE, num, buf_size)
    assert layout.end <= BASE + PAGES * PAGE_SIZE
    return Virtqueue(SharedBytes(memory), layout, trace, "dev", 0, DRIVER, DEVICE)


def test_layout_follows_the_split_virtqueue_sizes():
    lay = Layout.at(0x1000, 8, 64)
    assert lay.avail - lay.desc == 16 * 8  # le64 addr, le32 len, le16 flags, le16 next
    assert 0x1000 + 128 + 4 + 2 * 8 + 2 == 0x1096  # flags, idx, ring[8], used_event
    assert lay.used == 0x1098  # aligned up to 4 bytes
    assert Layout.at(0, 3, 16).used % 4 == 0  # 48 + 4 + 6 + 2 = 60 -> aligned to 4


def test_descriptors_and_rings_hold_the_spec_fields():
    vq = make_queue(buf_size=16)
    head = vq.add("FE", b"0123456789abcdefXYZ", in_len=5)  # 2 out descriptors, 1 in
    mem, lay = vq.mem, vq.layout
    descs = [struct.unpack("<QIHH", mem.read(DRIVER, lay.desc + 16 * i, 16)) for i in range(3)]
    assert [(d[1], d[2]) for d in descs] == [(16, VIRTQ_DESC_F_NEXT), (3, VIRTQ_DESC_F_NEXT),
                                            (5, VIRTQ_DESC_F_WRITE)]
    assert [d[3] for d in descs] == [1, 2, 0]  # the last one has no next
    assert mem.read(DRIVER, descs[0][0], 16) == b"0123456789abcdef"
    flags, idx, ring0 = struct.unpack("<HHH", mem.read(DRIVER, lay.avail, 6))
    assert (flags, idx, ring0) == (0, 1, head)


def test_a_full_ring_takes_no_more_chains():
    vq = make_queue(num=4, buf_size=16)
    assert vq.add("FE", b"x" * 32) is not None  # 2 descriptors
    assert vq.add("FE", b"y" * 16, in_len=16) is not None  # 2 more
    assert vq.add("FE", b"z") is None
    assert vq.depths() == {"avail_depth": 2, "in_device": 0, "used_depth": 0, "num": 4}


def test_depths_follow_the_chain_round():
    vq = make_queue()
    vq.add("FE", b"hello", in_len=8)
    assert vq.depths()["avail_depth"] == 1
    chain = vq.pop("BE")
    assert vq.depths()["avail_depth"] == 0 and vq.depths()["in_device"] == 1
    vq.push("BE", chain, b"world")
    assert vq.depths()["used_depth"] == 1 and vq.depths()["in_device"] == 0
    assert vq.reclaim("FE") == (chain.head, b"world")
    assert vq.depths() == {"avail_depth": 0, "in_device": 0, "used_depth": 0, "num": 8}


def test_the_device_cannot_read_rings_that_were_never_shared():
    events: list = []
    vq = make_queue(share=False, events=events)
    vq.add("FE", b"secret")
    with pytest.raises(RingFault):
        vq.pop("BE")
    assert [kind for kind, _ in events] == ["mem.fault"]


@settings(deadline=None)  # a loaded machine is slow, not wrong
@given(st.lists(st.tuples(st.binary(min_size=0, max_size=300),
                          st.integers(min_value=0, max_value=300)), min_size=1, max_size=12))
def test_bytes_go_through_the_rings_intact_both_ways(requests):
    """Frontend bytes arrive intact at the backend; the backend's bytes arrive intact back,
    for any sizes, with the ring wrapping round many times."""
    vq = make_queue(num=16, buf_size=32)
    for out, in_len in requests:
        if not out and not in_len:
            continue
        head = vq.add("FE", out, in_len)
        assert head is not None  # every previous chain was reclaimed: the ring has room
        chain = vq.pop("BE")
        assert chain.head == head and chain.out == out
        assert sum(n for _, n in chain.writable) == in_len
        reply = bytes(reversed(out))[:in_len].ljust(in_len, b"!")
        assert vq.push("BE", chain, reply) == in_len
        assert vq.reclaim("FE") == (head, reply)
    assert vq.pop("BE") is None and vq.reclaim("FE") is None
    assert len(vq.free) == 16


@settings(deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=40))
def test_many_chains_in_flight_come_back_in_order(payloads):
    vq = make_queue(num=8, buf_size=64)
    sent, got = [], []
    pending = list(payloads)
    while pending or len(got) < len(sent):
        while pending and vq.add("FE", pending[0], len(pending[0])) is not None:
            sent.append(pending.pop(0))
        while (chain := vq.pop("BE")) is not None:
            vq.push("BE", chain, chain.out.upper())
        while (back := vq.reclaim("FE")) is not None:
            got.append(back[1])
    assert got == [p.upper() for p in payloads]


def test_layout_is_packed_with_the_specs_alignment():
    lay = Layout.at(0, 3, 16)
    # desc 3 x 16; avail 4 + 3 x 2 + 2 = 12 -> used at 60 (4-aligned);
    # used 4 + 3 x 8 + 2 = 30 -> 90, buffers from the next 16-byte boundary.
    assert (lay.desc, lay.avail, lay.used, lay.buffers, lay.end) == (0, 48, 60, 96, 144)
    one = Layout.at(0, 1, 16)  # avail 16 + 4 + 2 + 2 = 24: already aligned
    assert (one.avail, one.used, one.buffers) == (16, 24, 48)


def test_the_rings_hold_the_split_virtqueue_bytes():
    vq = make_queue(num=4, buf_size=16)
    vq.add("FE", b"a")
    second = vq.add("FE", b"b", in_len=3)
    mem, lay = vq.mem, vq.layout
    assert struct.unpack("<HHHH", mem.read(DRIVER, lay.avail, 8)) == (0, 2, 0, second)
    first = vq.pop("BE")
    vq.push("BE", first)
    chain = vq.pop("BE")
    vq.push("BE", chain, b"xyz")
    raw = mem.read(DRIVER, lay.used, 4 + 8 * 2)
    assert struct.unpack("<HHIIII", raw) == (0, 2, 0, 0, second, 3)


def test_the_driver_gets_only_the_bytes_the_device_wrote():
    vq = make_queue(num=8, buf_size=4)
    vq.add("FE", b"q", in_len=10)  # three writable descriptors: 4, 4, 2
    chain = vq.pop("BE")
    assert [n for _, n in chain.writable] == [4, 4, 2]
    assert vq.push("BE", chain, b"hello") == 5
    assert vq.reclaim("FE")[1] == b"hello"


def test_every_access_is_checked_on_every_page_it_touches():
    events: list = []
    vq = make_queue(num=8, buf_size=64, pages=1, events=events)  # only the first page shared
    mem = vq.mem
    assert mem.read(DEVICE, BASE + PAGE_SIZE - 2, 2) == b"\0\0"
    with pytest.raises(RingFault):
        mem.read(DEVICE, BASE + PAGE_SIZE - 2, 4)  # runs into the page not shared
    with pytest.raises(RingFault):
        mem.write(DEVICE, BASE + PAGE_SIZE - 1, b"xy")
    assert [f["addr"] for kind, f in events if kind == "mem.fault"] == [
        BASE + PAGE_SIZE, BASE + PAGE_SIZE]


def test_a_device_with_read_only_rings_cannot_give_buffers_back():
    events: list = []
    vq = make_queue(device_rights=int(PgtableAccess.R), events=events)
    vq.add("FE", b"data", in_len=4)
    chain = vq.pop("BE")
    assert chain.out == b"data"
    with pytest.raises(RingFault):
        vq.push("BE", chain, b"back")
    faults = [f for kind, f in events if kind == "mem.fault"]
    assert [(f["vm"], f["access"], f["reason"]) for f in faults] == [(DEVICE, "W", "permission")]


def test_previews_are_printable_and_cut():
    assert preview(bytes([31, 32, 126, 127, ord("?"), ord("A")])) == ". ~..A"
    assert preview(b"x" * 24) == "x" * 24
    assert preview(b"x" * 25) == "x" * 24 + "…"


def test_each_step_of_a_chain_is_one_event_with_the_depths():
    trace = Trace(Engine())
    vq = make_queue(trace=trace)
    vq.add("FE", b"hi", in_len=2)
    vq.push("BE", vq.pop("BE"), b"ok")
    vq.reclaim("FE")
    got = [(e["kind"], e["vm"], e["avail_depth"], e["in_device"], e["used_depth"],
            e["avail_idx"], e["used_idx"], e["data"]) for e in trace.take()]
    assert got == [("virtq.avail", "FE", 1, 0, 0, 1, 0, "hi"),
                   ("virtq.pop", "BE", 0, 1, 0, 1, 0, "hi"),
                   ("virtq.used", "BE", 0, 0, 1, 1, 1, "ok"),
                   ("virtq.reclaim", "FE", 0, 0, 0, 1, 1, "ok")]


def test_a_one_byte_access_checks_only_its_own_page():
    vq = make_queue(pages=1)  # only the first page shared with the device
    vq.mem.write(DEVICE, BASE + PAGE_SIZE - 1, b"z")
    assert vq.mem.read(DEVICE, BASE + PAGE_SIZE - 1, 1) == b"z"


def test_the_used_ring_starts_a_fresh_16_byte_line_after_its_tail():
    # num 2: avail 32 + 4 + 4 + 2 = 42 -> used at 44; used 44 + 4 + 16 + 2 = 66 -> 80.
    lay = Layout.at(0, 2, 16)
    assert (lay.used, lay.buffers) == (44, 80)


def test_every_event_names_the_queue_and_the_chain_it_moves():
    """Each step's event: device and queue, the head and ring slot, the lengths (two
    readable segments joined, two writable buffers summed), the used length."""
    trace = Trace(Engine())
    mem = make_queue(num=4, buf_size=8).mem
    vq = Virtqueue(mem, Layout.at(BASE, 4, 8), trace, "blk0", 1, DRIVER, DEVICE)
    vq.add("FE", b"a")  # a first chain round: the next chain's head and slots are not 0
    vq.push("BE", vq.pop("BE"))
    vq.reclaim("FE")
    trace.take()
    head = vq.add("FE", [b"ab", b"cdefghij"], in_len=[3, 2])
    vq.push("BE", vq.pop("BE"), b"wxyz")
    vq.reclaim("FE")
    keys = ("kind", "device", "queue", "head", "slot", "descs", "out_len", "in_len",
            "used_len", "data")
    got = [tuple(e.get(k) for k in keys) for e in trace.take()]
    assert head == 1
    assert got == [
        ("virtq.avail", "blk0", 1, 1, 1, 4, 10, 5, None, "abcdefghij"),
        ("virtq.pop", "blk0", 1, 1, 1, None, 10, 5, None, "abcdefghij"),
        ("virtq.used", "blk0", 1, 1, 1, None, None, None, 4, "wxyz"),
        ("virtq.reclaim", "blk0", 1, 1, 1, None, None, None, 4, "wxyz"),
    ]


def test_a_push_without_data_gives_the_chain_back_empty():
    vq = make_queue()
    head = vq.add("FE", b"req", in_len=4)
    assert vq.push("BE", vq.pop("BE")) == 0
    assert vq.reclaim("FE") == (head, b"")


def test_the_driver_reads_no_buffer_past_the_used_length():
    """Once it has the used length, the driver touches no further buffer of the chain:
    here the second writable buffer lies on a page the driver cannot even map."""
    memory = MemoryModel(lambda kind, **f: None)
    memory.add_region(DRIVER, BASE, 2 * PAGE_SIZE)
    memory.add_region(DEVICE, BASE + 0x10_0000, PAGE_SIZE)
    memory.accept(DEVICE, memory.share(DRIVER, [(DRIVER, RW), (DEVICE, RW)],
                                       [(BASE, 2 * PAGE_SIZE)]))
    lay = Layout.at(BASE + PAGE_SIZE - 80, 2, PAGE_SIZE)  # buffers: pages 1 and 2
    assert lay.buffers == BASE + PAGE_SIZE
    vq = Virtqueue(SharedBytes(memory), lay, Trace(Engine()), "dev", 0, DRIVER, DEVICE)
    head = vq.add("FE", b"", in_len=[PAGE_SIZE, 1])
    vq.push("BE", vq.pop("BE"), b"x" * PAGE_SIZE)
    assert vq.reclaim("FE") == (head, b"x" * PAGE_SIZE)
