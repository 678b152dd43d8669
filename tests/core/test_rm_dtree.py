"""The RM's ``/hypervisor`` DT node as DTS text (facts §9.2): exact strings, cells, structure."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gunyah_core.rm.dtree import (
    capid_cells,
    gic_interrupt,
    render_dts,
    render_hypervisor_node,
)

TX_CAPID = 0x1234_5678_9ABC_DEF0


def make_vm() -> dict:
    return {
        "name": "svm",
        "vmid": 0x2D,
        "owner_vmid": 3,
        "image_name": "svm-image",
        "peers": ["hlos", "svm2"],
        "rm_link": {"tx_capid": TX_CAPID, "rx_capid": 0x2, "tx_virq": 960, "rx_virq": 961},
        "resources": [
            {"type": "DOORBELL", "capid": 0x13, "virq": 4100, "label": 5, "doorbell": "bell"},
            {"type": "MSG_QUEUE_SEND", "capid": 0x10, "virq": 962, "label": 4, "msgq": "ping",
             "queue_depth": 8, "max_size": 240},
            {"type": "MSG_QUEUE_RECV", "capid": 0x11, "virq": 963, "label": 4, "msgq": "ping",
             "queue_depth": 8, "max_size": 240},
            {"type": "DOORBELL_SRC", "capid": 0x12, "virq": 0, "label": 5,
             "doorbell": "bell 1"},
        ],
    }


def node(text: str, name: str) -> str:
    """The body of the first node called ``name`` (up to its closing brace)."""
    start = text.index(f"{name} {{")
    return text[start : text.index("};", start)]


def test_exact_compatible_strings() -> None:
    text = render_hypervisor_node(make_vm())
    assert ('compatible = "gunyah-hypervisor", "qcom,gunyah-hypervisor-1.0", '
            '"qcom,gunyah-hypervisor", "simple-bus";') in text
    assert 'compatible = "qcom,gunyah-vm-id-1.0", "qcom,gunyah-vm-id";' in text
    assert ('compatible = "gunyah-resource-manager", "qcom,resource-manager-1-0", '
            '"qcom,resource-manager";') in text
    assert 'compatible = "qcom,gunyah-doorbell-source", "qcom,gunyah-capability";' in text
    assert 'compatible = "qcom,gunyah-doorbell", "qcom,gunyah-capability";' in text
    assert text.count('"qcom,gunyah-message-queue", "qcom,gunyah-capability"') == 2


def test_vm_id_node() -> None:
    vm = node(render_hypervisor_node(make_vm()), "qcom,gunyah-vm")
    for line in ("qcom,vmid = <45>;", "qcom,owner-vmid = <3>;", 'qcom,vendor = "Qualcomm";',
                 'qcom,image-name = "svm-image";', 'qcom,peers = "hlos", "svm2";'):
        assert line in vm


def test_rm_link_reg_cells_and_gic_spi() -> None:
    text = render_hypervisor_node(make_vm())
    rm = node(text, "qcom,resource-manager-rpc@123456789abcdef0")
    assert "reg = <0x12345678 0x9abcdef0>, <0x0 0x2>;" in rm
    # INTID 960 -> GIC_SPI 928, always edge rising (facts §9.1)
    assert ("interrupts = <GIC_SPI 928 IRQ_TYPE_EDGE_RISING>, "
            "<GIC_SPI 929 IRQ_TYPE_EDGE_RISING>;") in rm
    for line in ("qcom,is-full-duplex;", "qcom,tx-message-size = <240>;",
                 "qcom,rx-message-size = <240>;", "qcom,tx-queue-depth = <8>;",
                 "qcom,rx-queue-depth = <8>;", "qcom,free-irq-start = <960>;"):
        assert line in rm


def test_rm_node_name_is_zero_padded_like_the_rm() -> None:
    vm = make_vm()
    vm["rm_link"]["tx_capid"] = 1
    assert "qcom,resource-manager-rpc@0000000000000001 {" in render_hypervisor_node(vm)


def test_msgq_and_doorbell_nodes() -> None:
    text = render_hypervisor_node(make_vm())
    send, recv = node(text, "ping@10"), node(text, "ping@11")
    assert "is-sender;" in send and "is-receiver" not in send
    assert "is-receiver;" in recv and "is-sender" not in recv
    assert "reg = <0x0 0x10>;" in send
    assert "interrupts = <GIC_SPI 930 IRQ_TYPE_EDGE_RISING>;" in send
    assert "tx_message_size = <240>;" in recv and "tx_queue_depth = <8>;" in recv
    assert "qcom,label = <4>;" in send and "label = <4>;" in send
    source = node(text, "bell-1@12")  # the space DT forbids became '-'
    assert "interrupts" not in source
    assert "interrupts = <GIC_ESPI 4 IRQ_TYPE_EDGE_RISING>;" in node(text, "bell@13")


def test_resources_in_capid_order_and_output_stable() -> None:
    vm = make_vm()
    text = render_hypervisor_node(vm)
    order = [text.index(n) for n in ("ping@10 {", "ping@11 {", "bell-1@12 {", "bell@13 {")]
    assert order == sorted(order)
    vm["resources"].reverse()
    assert render_hypervisor_node(vm) == text == render_hypervisor_node(make_vm())


def test_helpers() -> None:
    assert capid_cells(TX_CAPID) == "<0x12345678 0x9abcdef0>"
    assert capid_cells(0) == "<0x0 0x0>"
    assert gic_interrupt(32) == "<GIC_SPI 0 IRQ_TYPE_EDGE_RISING>"
    assert gic_interrupt(960, symbolic=False) == "<0 928 1>"
    for bad in (31, 1020, 5120):
        with pytest.raises(ValueError, match="not a shared"):
            gic_interrupt(bad)
    with pytest.raises(ValueError, match="not a u64"):
        capid_cells(1 << 64)


def test_vm_without_rm_link_or_peers() -> None:
    vm = make_vm() | {"rm_link": None, "peers": [], "resources": []}
    text = render_hypervisor_node(vm)
    assert "resource-manager" not in text
    assert "\t\t\tqcom,peers;\n" in text


def check_structure(text: str) -> None:
    """DTS shape: balanced braces, node lines open '{', closers are '};', properties end ';'."""
    depth = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip("\t"))
        assert line[:indent] == "\t" * indent and not line[indent:].startswith(" "), line
        if stripped.endswith("{"):
            assert indent == depth, line
            assert re.fullmatch(r"(/|[A-Za-z0-9,._+-]+(@[0-9a-f]+)?) \{", stripped), line
            depth += 1
        elif stripped == "};":
            depth -= 1
            assert depth >= 0 and indent == depth, line
        else:
            assert indent == depth and stripped.endswith(";"), line
            assert re.fullmatch(r"[#A-Za-z0-9,._+-]+( = .+)?;", stripped), line
    assert depth == 0


def test_text_structure_and_dtc_compile(tmp_path: Path) -> None:
    check_structure(render_hypervisor_node(make_vm()))
    source = render_dts(make_vm())
    assert source.startswith("/dts-v1/;\n\n/ {\n")
    assert "interrupts = <0 928 1>, <0 929 1>;" in source
    check_structure(source.split("\n", 2)[2])
    dtc = shutil.which("dtc")  # `make test` installs Debian's device-tree-compiler
    assert dtc, "dtc (device-tree-compiler) is needed to check the DTS compiles"
    (tmp_path / "vm.dts").write_text(source)
    done = subprocess.run([dtc, "-I", "dts", "-O", "dtb", "-o", str(tmp_path / "vm.dtb"),
                           str(tmp_path / "vm.dts")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "vm.dtb").stat().st_size > 0


def test_structure_check_rejects_broken_text() -> None:
    good = render_hypervisor_node(make_vm())
    for broken in (good.replace("qcom,is-full-duplex;", "qcom,is-full-duplex"),
                   good.rstrip().removesuffix("};"),
                   good.replace("\tqcom,gunyah-vm {", "\tqcom,gunyah-vm", 1)):
        with pytest.raises(AssertionError):
            check_structure(broken)


def test_a_frontend_gets_the_rms_virtio_mmio_node_and_it_compiles(tmp_path: Path) -> None:
    """RM dto_construct.c dto_create_virtio_mmio: "virtio,mmio", reg = <IPA size>, the
    frontend's vIRQ, labels, dma_base, peer = the backend's vmid (facts §10.1)."""
    vm = {**make_vm(), "virtio": [{"base": 0x3000_0000, "size": 0x1000, "virq": 964,
                                   "label": 2, "peer": 3}]}
    text = render_hypervisor_node(vm)
    check_structure(text)
    body = node(text, "qcom,virtio_mmio@30000000")
    assert 'compatible = "virtio,mmio";' in body
    assert "reg = <0x0 0x30000000 0x0 0x1000>;" in body
    assert "interrupts = <GIC_SPI 932 IRQ_TYPE_EDGE_RISING>;" in body
    assert "peer = <3>;" in body and "qcom,label = <2>;" in body
    assert "virtio" not in render_hypervisor_node(make_vm())  # none unless it has one
    dtc = shutil.which("dtc")
    assert dtc
    (tmp_path / "vm.dts").write_text(render_dts(vm))
    done = subprocess.run([dtc, "-I", "dts", "-O", "dtb", "-o", str(tmp_path / "vm.dtb"),
                           str(tmp_path / "vm.dts")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_virtio_console_frontend_node_names_its_backend() -> None:
    from gunyah_core import Simulation, load
    sim = Simulation(load("virtio-console"))
    text = sim.device_tree("VM_A")
    body = node(text, "qcom,virtio_mmio@30000000")
    dev = sim.hyp.virtio_mmios["console"]
    assert f"peer = <{sim.hyp.vms['HLOS'].vmid}>;" in body
    assert f"GIC_SPI {dev.to_frontend.virq - 32} " in body
    assert "virtio_mmio" not in sim.device_tree("HLOS")
