"""VCD exporter: the trace as waveforms for GTKWave, written with pyvcd.

Signals: a 1-bit wire per vIRQ line (`gunyah.<vm>.virq<n>`: 1 from assert until EOI or
clear; a private one, such as each vCPU's virtual timer PPI 27, is one line per vCPU:
`gunyah.<vm>.<vcpu>_virq<n>`), a wire per vCPU's virtual timer
(`gunyah.<vm>.<vcpu>_vtimer_armed`: 1 from the write that arms it until it fires or is
disabled or masked), a wire per doorbell (`gunyah.doorbell.<name>`: 1 while its flags are nonzero),
an integer per queue's depth (`gunyah.msgq.<name>`), three per virtqueue (`gunyah.virtq.
<device>_q<n>_avail`, `_device`, `_used`: chains in its available ring, held by the
device, in its used ring) and one per pCPU giving the running
vCPU as an index into the table in the file's `$comment` (0 = idle), plus a string
twin (`gunyah.pcpu.pcpu<n>_vcpu`) with the vCPU's name for viewers that show strings.
A vCPU of a PSCI VM has its power state too (from ``vcpu.power``): an integer
`gunyah.power.<vcpu>` (0 off, 1 on, 2 suspended) and its string twin `<vcpu>_state`.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from typing import Any, TextIO

from vcd import VCDWriter

from gunyah_core.consts import GIC_SPI_BASE, MSGQUEUE_MAX_QUEUE_DEPTH

TIMESCALE = "1 ns"
TOP_SCOPE = "gunyah"
IDLE_INDEX = 0
IDLE_NAME = "idle"
#: Bits for a queue depth vector: enough for Gunyah's deepest queue.
DEPTH_BITS = MSGQUEUE_MAX_QUEUE_DEPTH.bit_length()
#: Spooled changes stay in RAM up to this size, then move to a temporary file.
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_VIRQ_RAISE = ("virq.assert", "virq.deliver")
_VIRQ_LOWER = ("virq.eoi", "virq.clear")
_BELL_KINDS = ("bell.send", "bell.recv", "bell.mask", "bell.reset")
#: A vCPU's power state as a number (a vCPU starts off; facts §7.2 POWERED_OFF).
POWER_CODES = {"off": 0, "on": 1, "suspended": 2}
POWER_BITS = 2
_TIMER_KINDS = ("vtimer.write", "vtimer.fire")
#: Bits for a virtqueue depth: ring indexes are le16 (virtio 1.1 §2.6).
VIRTQ_DEPTH_BITS = 16
_VIRTQ_SIGNALS = (("avail", "avail_depth"), ("device", "in_device"), ("used", "used_depth"))


def signal_name(text: object) -> str:
    """VCD names cannot hold spaces, and GTKWave reads dots as scope separators."""
    return _UNSAFE.sub("_", str(text))


class VcdWriter:
    """Streaming VCD writer, single pass over the events, bounded memory.

    VCD declares every variable before the first value change, and a stream does not
    say up front which queues, doorbells or vIRQ lines it will touch. So `write()`
    records each signal's declaration (O(objects) in memory) and appends its value
    changes to a spool file (RAM up to SPOOL_MEMORY_BYTES, then disk); `close()`
    declares the variables and replays the spool through pyvcd. The input need not be
    re-iterable, and memory does not grow with the number of events.
    """

    extension = "vcd"
    media_type = "text/plain"

    def __init__(self, fileobj: TextIO) -> None:
        self._out = fileobj
        self._spool = tempfile.SpooledTemporaryFile(  # closed in close()
            max_size=SPOOL_MEMORY_BYTES, mode="w+", encoding="utf-8"
        )
        self._decls: dict[str, tuple[str, str, str, int | None, Any]] = {}
        self.vcpu_index: dict[str, int] = {}
        self._closed = False
        self.count = 0

    def _declare(self, scope: str, name: str, var_type: str, size: int | None,
                 init: Any) -> str:
        key = f"{scope}.{name}"
        if key not in self._decls:
            self._decls[key] = (scope, name, var_type, size, init)
        return key

    def _change(self, t: int, key: str, value: Any) -> None:
        self._spool.write(json.dumps([t, key, value], separators=(",", ":")))
        self._spool.write("\n")

    def _vcpu(self, vcpu: str | None) -> int:
        if vcpu is None:
            return IDLE_INDEX
        return self.vcpu_index.setdefault(vcpu, len(self.vcpu_index) + 1)

    def write(self, event: Mapping[str, Any]) -> None:
        """Record the signal changes one event implies; other kinds are skipped."""
        kind, t = event["kind"], event["t"]
        self.count += 1
        if kind in _VIRQ_RAISE or kind in _VIRQ_LOWER:
            scope = f"{TOP_SCOPE}.{signal_name(event['vm'])}"
            virq = event["virq"]
            name = f"virq{virq}"
            if isinstance(virq, int) and virq < GIC_SPI_BASE and event.get("vcpu"):
                name = f"{signal_name(event['vcpu'])}_{name}"  # private: banked per vCPU
            key = self._declare(scope, name, "wire", 1, 0)
            self._change(t, key, 1 if kind in _VIRQ_RAISE else 0)
        elif kind in _TIMER_KINDS:
            scope = f"{TOP_SCOPE}.{signal_name(event['vm'])}"
            key = self._declare(scope, f"{signal_name(event['vcpu'])}_vtimer_armed", "wire",
                                1, 0)
            armed = (kind == "vtimer.write" and bool(event.get("enable"))
                     and not event.get("imask") and not event.get("istatus"))
            self._change(t, key, 1 if armed else 0)
        elif kind.startswith("msgq.") and "depth" in event:  # send, recv, flush, push
            key = self._declare(f"{TOP_SCOPE}.msgq", signal_name(event["msgq"]), "integer",
                                DEPTH_BITS, 0)
            self._change(t, key, int(event.get("depth", 0)))
        elif kind.startswith("virtq.") and "used_depth" in event:
            base = f"{signal_name(event['device'])}_q{event['queue']}"
            for suffix, field in _VIRTQ_SIGNALS:
                key = self._declare(f"{TOP_SCOPE}.virtq", f"{base}_{suffix}", "integer",
                                    VIRTQ_DEPTH_BITS, 0)
                self._change(t, key, int(event.get(field, 0)))
        elif kind in _BELL_KINDS:
            flags = _flags_after(event)
            key = self._declare(f"{TOP_SCOPE}.doorbell", signal_name(event["doorbell"]),
                                "wire", 1, 0)
            self._change(t, key, 1 if flags else 0)
        elif kind == "sched.switch":
            pcpu = event["pcpu"]
            nxt = event.get("next")
            index = self._vcpu(nxt)
            scope = f"{TOP_SCOPE}.pcpu"
            # Width is fixed at close(), when the table size is known: None for now.
            self._change(t, self._declare(scope, f"pcpu{pcpu}", "integer", None, IDLE_INDEX),
                         index)
            self._change(t, self._declare(scope, f"pcpu{pcpu}_vcpu", "string", None,
                                          IDLE_NAME), signal_name(nxt or IDLE_NAME))
        elif kind == "vcpu.power":
            scope, name = f"{TOP_SCOPE}.power", signal_name(event["vcpu"])
            power = str(event.get("power"))
            self._change(t, self._declare(scope, name, "integer", POWER_BITS, 0),
                         POWER_CODES.get(power, 0))
            self._change(t, self._declare(scope, f"{name}_state", "string", None, "off"),
                         signal_name(power))

    def close(self) -> None:
        """Declare every signal seen, then replay the spooled changes into the file."""
        if self._closed:
            return
        self._closed = True
        table = " ".join(f"{i}={v}" for v, i in self.vcpu_index.items())
        comment = f"pcpu values: {IDLE_INDEX}={IDLE_NAME} {table}".strip()
        index_bits = max(1, len(self.vcpu_index).bit_length())
        with VCDWriter(self._out, timescale=TIMESCALE, date="simulated time",
                       comment=comment, version="gunyah-sim") as writer:
            variables = {}
            for key, (scope, name, var_type, size, init) in self._decls.items():
                if var_type == "integer" and size is None:
                    size = index_bits
                variables[key] = writer.register_var(scope, name, var_type, size=size,
                                                     init=init)
            self._spool.seek(0)
            for line in self._spool:
                t, key, value = json.loads(line)
                writer.change(variables[key], t, value)
        self._spool.close()
        self._out.flush()

    def __enter__(self) -> VcdWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flags_after(event: Mapping[str, Any]) -> int:
    """Doorbell flags once the event is done. Send and mask report them in `flags`, reset
    leaves none. A receive that also carries `old` reports the new flags in `flags`; one
    without `old` reports the old flags there, so the cleared bits are taken off."""
    kind = event["kind"]
    if kind == "bell.reset":
        return 0
    flags = int(event.get("flags", 0))
    if kind == "bell.recv" and "old" not in event:
        flags &= ~int(event.get("clear", 0))
    return flags
