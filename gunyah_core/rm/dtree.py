"""The ``/hypervisor`` device-tree node the Resource Manager overlays into a guest's DT.

Rendered as DTS text (facts §9.2; RM ``vm_creation.c`` ``create_dt_nodes``,
``dto_construct.c``) so the UI can show what a guest kernel would find. Simplified: no
vm-uri/vm-guid, no virtio, watchdog or memparcel nodes; output is text, not a DTB overlay.

Where each property comes from:

- RM source: the ``qcom,gunyah-vm`` node and all its properties, the RM link node name
  ``qcom,resource-manager-rpc@<16 hex digits>`` (the RM's ``%016lx``), ``qcom,is-full-duplex``,
  ``qcom,{tx,rx}-message-size``, ``qcom,{tx,rx}-queue-depth``, ``qcom,free-irq-start``,
  the "qcom,resource-manager-1-0"/"qcom,resource-manager" and msgq/doorbell compatibles,
  and on msgq/doorbell nodes ``is-sender``/``is-receiver``, ``tx_message_size``,
  ``tx_queue_depth``, ``qcom,label`` and ``label``.
- Upstream binding (LX-DT): the root "gunyah-hypervisor" and RM "gunyah-resource-manager"
  compatibles, ``reg`` = TX cap then RX cap, ``interrupts`` = TX then RX, and the
  ``<GIC_SPI n IRQ_TYPE_EDGE_RISING>`` notation (the RM writes the same cells as numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gunyah_core.consts import (
    GIC_ESPI_BASE,
    GIC_ESPI_LAST,
    GIC_SPI_BASE,
    GIC_SPI_LAST,
    RM_GUEST_FREE_VIRQ_START,
    RM_RPC_MESSAGE_SIZE,
    RM_RPC_QUEUE_DEPTH,
)

HYPERVISOR_COMPATIBLE = ("gunyah-hypervisor", "qcom,gunyah-hypervisor-1.0",
                         "qcom,gunyah-hypervisor", "simple-bus")
VM_ID_COMPATIBLE = ("qcom,gunyah-vm-id-1.0", "qcom,gunyah-vm-id")
RM_COMPATIBLE = ("gunyah-resource-manager", "qcom,resource-manager-1-0", "qcom,resource-manager")
MSGQ_COMPATIBLE = ("qcom,gunyah-message-queue", "qcom,gunyah-capability")
DOORBELL_SRC_COMPATIBLE = ("qcom,gunyah-doorbell-source", "qcom,gunyah-capability")
DOORBELL_COMPATIBLE = ("qcom,gunyah-doorbell", "qcom,gunyah-capability")
VM_VENDOR = "Qualcomm"
HYP_ADDRESS_CELLS = 2  # a capid is 64 bits: two 32-bit cells
HYP_SIZE_CELLS = 0

# Interrupt specifier cells, from the Linux dt-bindings headers (arm-gic.h, irq.h); the
# facts sheet gives only the names. Linux maps an RM vIRQ to SPI or ESPI, edge rising (§9.1).
GIC_SPI = 0
GIC_ESPI = 2
IRQ_TYPE_EDGE_RISING = 1

CELL_BITS = 32
CELL_MASK = (1 << CELL_BITS) - 1
CAPID_HEX_DIGITS = 16  # RM names the RM link node with "%016lx"
INDENT = "\t"  # as dtc -O dts writes
_NODE_NAME_BAD = re.compile(r"[^A-Za-z0-9,._+-]")  # DT node-name characters


def capid_cells(capid: int) -> str:
    """A 64-bit capid as ``<0xhi 0xlo>`` (two 32-bit cells, high first)."""
    if not 0 <= capid <= (1 << 2 * CELL_BITS) - 1:
        raise ValueError(f"capid {capid:#x} is not a u64")
    return f"<{capid >> CELL_BITS:#x} {capid & CELL_MASK:#x}>"


def gic_interrupt(virq: int, *, symbolic: bool = True) -> str:
    """One interrupt specifier for a GIC INTID: SPI n = INTID - 32, ESPI n = INTID - 4096."""
    if GIC_SPI_BASE <= virq <= GIC_SPI_LAST:
        kind, name, number = GIC_SPI, "GIC_SPI", virq - GIC_SPI_BASE
    elif GIC_ESPI_BASE <= virq <= GIC_ESPI_LAST:
        kind, name, number = GIC_ESPI, "GIC_ESPI", virq - GIC_ESPI_BASE
    else:
        raise ValueError(f"vIRQ {virq} is not a shared (SPI/ESPI) INTID")
    if symbolic:
        return f"<{name} {number} IRQ_TYPE_EDGE_RISING>"
    return f"<{kind} {number} {IRQ_TYPE_EDGE_RISING}>"


def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped) + '"'


def _strings(values: Iterable[str]) -> str:
    return ", ".join(_string(v) for v in values)


class _Dts:
    """Collects DTS lines at the right depth."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def open(self, name: str) -> None:
        if self.depth and self.lines and not self.lines[-1].endswith("{"):
            self.lines.append("")  # dtc leaves a blank line before a child node
        self.lines.append(f"{INDENT * self.depth}{name} {{")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.lines.append(f"{INDENT * self.depth}}};")

    def prop(self, name: str, value: str | None = None) -> None:
        text = name if value is None else f"{name} = {value}"
        self.lines.append(f"{INDENT * self.depth}{text};")

    def cell(self, name: str, value: int) -> None:
        self.prop(name, f"<{value}>")


def _interrupts(virqs: Iterable[int], symbolic: bool) -> str:
    return ", ".join(gic_interrupt(v, symbolic=symbolic) for v in virqs)


def _rm_link(dts: _Dts, link: dict, symbolic: bool) -> None:
    dts.open(f"qcom,resource-manager-rpc@{link['tx_capid']:0{CAPID_HEX_DIGITS}x}")
    dts.prop("compatible", _strings(RM_COMPATIBLE))
    dts.prop("reg", f"{capid_cells(link['tx_capid'])}, {capid_cells(link['rx_capid'])}")
    dts.prop("interrupts", _interrupts((link["tx_virq"], link["rx_virq"]), symbolic))
    dts.prop("qcom,is-full-duplex")
    dts.cell("qcom,tx-message-size", RM_RPC_MESSAGE_SIZE)
    dts.cell("qcom,rx-message-size", RM_RPC_MESSAGE_SIZE)
    dts.cell("qcom,tx-queue-depth", RM_RPC_QUEUE_DEPTH)
    dts.cell("qcom,rx-queue-depth", RM_RPC_QUEUE_DEPTH)
    dts.cell("qcom,free-irq-start", RM_GUEST_FREE_VIRQ_START)
    dts.close()


_MSGQ_TYPES = {"MSG_QUEUE_SEND": "is-sender", "MSG_QUEUE_RECV": "is-receiver"}
_DOORBELL_TYPES = {"DOORBELL_SRC": DOORBELL_SRC_COMPATIBLE, "DOORBELL": DOORBELL_COMPATIBLE}


def _resource(dts: _Dts, res: dict, symbolic: bool) -> None:
    kind = res["type"]
    if kind in _MSGQ_TYPES:
        base, compatible = res.get("msgq") or "msgq", MSGQ_COMPATIBLE
    elif kind in _DOORBELL_TYPES:
        base, compatible = res.get("doorbell") or "doorbell", _DOORBELL_TYPES[kind]
    else:
        raise ValueError(f"resource type {kind!r} has no hypervisor-node entry here")
    # The RM names these "<configured name>@%lx"; the sheet is silent on the base name, so
    # the simulator uses the object's name, with characters DT forbids replaced by '-'.
    dts.open(f"{_NODE_NAME_BAD.sub('-', base)}@{res['capid']:x}")
    dts.prop("compatible", _strings(compatible))
    dts.prop("reg", capid_cells(res["capid"]))
    if kind in _MSGQ_TYPES:
        dts.prop(_MSGQ_TYPES[kind])
        # The RM writes tx_* for both directions (one msgq, one size and depth).
        if res.get("max_size") is not None:
            dts.cell("tx_message_size", res["max_size"])
        if res.get("queue_depth") is not None:
            dts.cell("tx_queue_depth", res["queue_depth"])
    if res.get("virq"):  # a doorbell source has none: only the receiver is interrupted
        dts.prop("interrupts", gic_interrupt(res["virq"], symbolic=symbolic))
    if res.get("label") is not None:
        dts.cell("qcom,label", res["label"])
        dts.cell("label", res["label"])
    dts.close()


VIRTIO_MMIO_COMPATIBLE = ("virtio,mmio",)
# RM vm_config_add_virtio_mmio generates "/hypervisor/qcom,virtio_mmio".
VIRTIO_NODE_NAME = "qcom,virtio_mmio"


def _u64_cells(value: int) -> str:
    return f"0x{value >> 32:x} 0x{value & 0xFFFF_FFFF:x}"


def _virtio(dts: _Dts, dev: dict, symbolic: bool) -> None:
    """The frontend's virtio-MMIO node (RM dto_construct.c ``dto_create_virtio_mmio``):
    compatible, reg = <IPA size> as two u64s, its vIRQ, qcom,label and label, dma_base,
    peer (the backend's vmid). Left out: memory-region (a phandle into the VM's base DT,
    which the simulator does not build) and dma-coherent (the RM writes it only when
    the VM's config asks)."""
    dts.open(f"{VIRTIO_NODE_NAME}@{dev['base']:x}")
    dts.prop("compatible", _strings(VIRTIO_MMIO_COMPATIBLE))
    dts.prop("reg", f"<{_u64_cells(dev['base'])} {_u64_cells(dev['size'])}>")
    dts.prop("interrupts", gic_interrupt(dev["virq"], symbolic=symbolic))
    dts.cell("qcom,label", dev["label"])
    dts.cell("label", dev["label"])
    dts.prop("dma_base", f"<{_u64_cells(dev.get('dma_base', 0))}>")
    dts.cell("peer", dev["peer"])
    dts.close()


def render_hypervisor_node(vm: dict, *, symbolic_irqs: bool = True) -> str:
    """DTS text of ``/ { hypervisor { ... }; };`` for one VM; same input, same text.

    ``vm``: {"name", "vmid", "owner_vmid", "image_name", "peers": [names], "rm_link":
    {"tx_capid", "rx_capid", "tx_virq", "rx_virq"} or None, "resources": [{"type", "capid",
    "virq", "label", "msgq"|"doorbell", "queue_depth", "max_size"}], "virtio": [{"base",
    "size", "virq", "label", "peer"}] (optional)}. Resources are emitted
    in capid order. ``symbolic_irqs=False`` writes interrupt cells as numbers, which dtc
    accepts without the C preprocessor. Raises ValueError for a non-SPI/ESPI vIRQ, a capid
    that is not a u64 or an unknown resource type.
    """
    dts = _Dts()
    dts.open("/")
    dts.open("hypervisor")
    dts.cell("#address-cells", HYP_ADDRESS_CELLS)
    dts.cell("#size-cells", HYP_SIZE_CELLS)
    dts.prop("compatible", _strings(HYPERVISOR_COMPATIBLE))
    dts.open("qcom,gunyah-vm")
    dts.prop("compatible", _strings(VM_ID_COMPATIBLE))
    dts.cell("qcom,vmid", vm["vmid"])
    dts.cell("qcom,owner-vmid", vm["owner_vmid"])
    dts.prop("qcom,vendor", _string(VM_VENDOR))
    dts.prop("qcom,image-name", _string(vm.get("image_name") or vm["name"]))
    # The sheet is silent on a VM with no peers; an empty property is an empty string list.
    peers = vm.get("peers") or []
    dts.prop("qcom,peers", _strings(peers) if peers else None)
    dts.close()
    if vm.get("rm_link"):
        _rm_link(dts, vm["rm_link"], symbolic_irqs)
    for res in sorted(vm.get("resources") or [], key=lambda r: (r["capid"], r["type"])):
        _resource(dts, res, symbolic_irqs)
    for dev in sorted(vm.get("virtio") or [], key=lambda d: d["base"]):
        _virtio(dts, dev, symbolic_irqs)
    dts.close()
    dts.close()
    return "\n".join(dts.lines) + "\n"


def render_dts(vm: dict) -> str:
    """A complete ``/dts-v1/;`` source holding only the hypervisor node, with numeric
    interrupt cells, so ``dtc -I dts -O dtb`` can compile it as it stands."""
    return "/dts-v1/;\n\n" + render_hypervisor_node(vm, symbolic_irqs=False)
