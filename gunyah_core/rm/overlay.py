"""Collects what the RM knows about a VM into the ``hypervisor`` DT node it overlays.

The text itself comes from ``dtree.render_hypervisor_node``; this module only reads the
VM's RM link, its IPC resources (caps and vIRQs the RM handed out) and its peers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dtree import render_hypervisor_node

if TYPE_CHECKING:
    from ..core.hypervisor import Hypervisor
    from ..vm.vm import Vm

RM_LINK_TX, RM_LINK_RX = "rm:tx", "rm:rx"
DT_RESOURCE_TYPES = ("MSG_QUEUE_SEND", "MSG_QUEUE_RECV", "DOORBELL_SRC", "DOORBELL")
VIRTIO_NODE_TYPE = "VIRTIO_MMIO_NODE"  # a frontend's device (Hypervisor.create_virtio_mmio)


def hypervisor_node(hyp: Hypervisor, vm: Vm) -> str:
    """DTS text of the VM's ``/hypervisor`` node (empty for the RM VM itself)."""
    if vm.kind == "rm":
        return ""
    res = vm.resources
    rm_link = None
    if RM_LINK_TX in res and RM_LINK_RX in res:
        rm_link = {"tx_capid": res[RM_LINK_TX]["capid"], "rx_capid": res[RM_LINK_RX]["capid"],
                   "tx_virq": res[RM_LINK_TX]["virq"], "rx_virq": res[RM_LINK_RX]["virq"]}
    resources = []
    peers = set()
    for label, entry in res.items():
        if entry["type"] not in DT_RESOURCE_TYPES or label.startswith("rm:"):
            continue
        obj = hyp.msgqs.get(entry.get("msgq", "")) or hyp.doorbells.get(entry.get("doorbell", ""))
        item = {"type": entry["type"], "capid": entry["capid"], "virq": entry.get("virq") or 0,
                "label": obj.oid}  # a numeric label, as the RM writes
        if "msgq" in entry:
            item.update(msgq=entry["msgq"], queue_depth=obj.depth, max_size=obj.max_size)
        else:
            item["doorbell"] = entry["doorbell"]
        resources.append(item)
        peers.add(entry.get("partner", ""))
    owner = hyp.vm_by_id(vm.owner) if vm.owner is not None else None
    # A frontend's virtio-MMIO devices (facts §10.1 "RM DT node"), only when it has any,
    # so every other VM's node is as before.
    virtio = [{key: entry[key] for key in ("base", "size", "virq", "label", "peer")}
              for entry in res.values() if entry["type"] == VIRTIO_NODE_TYPE]
    return render_hypervisor_node({
        "name": vm.name, "vmid": vm.vmid,
        "owner_vmid": owner.vmid if owner else vm.owner or 0,
        "image_name": vm.image or vm.name,
        "peers": sorted(p for p in peers if p),
        "rm_link": rm_link,
        "resources": resources,
        **({"virtio": virtio} if virtio else {}),
    })
