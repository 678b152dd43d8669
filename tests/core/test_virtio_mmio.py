"""The virtio-MMIO object between a frontend and a backend VM (facts §10.1; H-SRC
hyp/vm/virtio_mmio/src/vdevice.c and hypercalls.c): trapped register writes, reason
bits and the backend's vIRQ, assert_virq and the frontend's vIRQ, the reset handshake,
the feature rules and the queue limit."""

from __future__ import annotations

import pytest

from gunyah_core import Hypervisor
from gunyah_core.consts import (
    VIRTIO_F_ACCESS_PLATFORM,
    VIRTIO_F_NOTIFICATION_DATA,
    VIRTIO_F_VERSION_1,
    VIRTIO_ID_CONSOLE,
    VIRTIO_MMIO_MAX_VQS,
    VIRTIO_MMIO_REGS,
    VIRTIO_STATUS_DEVICE_NEEDS_RESET,
    Error,
    VirtioMmioRights,
)
from gunyah_core.errors import HypError
from gunyah_core.vm.virtio_mmio import VirtioMmio
from tests.core.conftest import PCPUS, SEED, add_vm, hvc

R = VIRTIO_MMIO_REGS
HI = 32
VERSION_1 = 1 << (VIRTIO_F_VERSION_1 - HI)
ACCESS_PLATFORM = 1 << (VIRTIO_F_ACCESS_PLATFORM - HI)
NOTIFICATION_DATA = 1 << (VIRTIO_F_NOTIFICATION_DATA - HI)
NEW_BUFFER, RESET_RQST, DRIVER_OK, FAILED = 0x1, 0x2, 0x8, 0x10
STATUS_DRIVER_OK, STATUS_FAILED = 0x4, 0x80


class Machine:
    """A frontend VM and a backend VM joined by one virtio-MMIO device, as the RM makes it."""

    def __init__(self, vqs: int = 2) -> None:
        self.hyp = Hypervisor(seed=SEED, pcpus=PCPUS)
        self.fe = add_vm(self.hyp, "FE", (0,))
        self.be = add_vm(self.hyp, "BE", (1,))
        self.dev: VirtioMmio = self.hyp.create_virtio_mmio("dev", self.fe, self.be,
                                                           VIRTIO_ID_CONSOLE, vqs)
        self.cap = self.be.resources["dev:backend"]["capid"]
        self.base = self.fe.resources["dev:frontend"]["base"]
        self.hyp.trace.take()

    def store(self, reg: str, value: int) -> bool:
        """A frontend store to its register page, as the executor makes it (OP_MEM W)."""
        ok, _ = self.hyp.vdevice_access(self.fe.vcpus[0], self.base + R[reg], "W", value)
        return ok

    def load(self, reg: str) -> int:
        ok, value = self.hyp.vdevice_access(self.fe.vcpus[0], self.base + R[reg], "R", 0)
        assert ok
        return value

    def backend(self, name: str, **args):
        return hvc(self.hyp, self.be.vcpus[0], f"virtio_mmio_backend_{name}",
                   capid=self.cap, **args)

    def settle(self) -> None:
        """Both VMs take and finish every pending vIRQ (so a new assert shows)."""
        for vm in (self.fe, self.be):
            while (virq := vm.vic.acknowledge(vm.vcpus[0])) is not None:
                vm.vic.eoi(vm.vcpus[0], virq)
        self.hyp.trace.take()

    def asserted(self) -> list[tuple[str, str]]:
        return [(e["vm"], e["source"]) for e in self.hyp.trace.take()
                if e["kind"] == "virq.assert"]


@pytest.fixture
def m() -> Machine:
    return Machine()


def test_queue_notify_is_reason_new_buffer_and_a_vq_bit_with_the_backends_virq(m):
    assert m.store("QueueNotify", 1)
    assert m.asserted() == [("BE", "virtio_mmio:dev:backend")]
    result = m.backend("get_notification")
    assert result.error is Error.OK
    assert result.ret == {"vqs_bitmap": 0b10, "reason": NEW_BUFFER}
    # get_notification hands them over once: both are cleared.
    assert m.backend("get_notification").ret == {"vqs_bitmap": 0, "reason": 0}


def test_notifies_merge_into_one_bitmap(m):
    m.store("QueueNotify", 0)
    m.store("QueueNotify", 1)
    assert m.backend("get_notification").ret == {"vqs_bitmap": 0b11, "reason": NEW_BUFFER}


@pytest.mark.parametrize(("status", "reason"), [(STATUS_DRIVER_OK, DRIVER_OK),
                                                (STATUS_FAILED, FAILED),
                                                (STATUS_DRIVER_OK | STATUS_FAILED, DRIVER_OK)])
def test_status_newly_set_is_a_reason(m, status, reason):
    """virtio_mmio_write_status_reg: DRIVER_OK first, else FAILED (one reason per write)."""
    assert m.store("Status", status)
    assert m.asserted() == [("BE", "virtio_mmio:dev:backend")]
    assert m.backend("get_notification").ret["reason"] == reason


def test_status_bit_already_set_raises_nothing(m):
    m.store("Status", STATUS_DRIVER_OK)
    m.backend("get_notification")
    m.settle()
    m.store("Status", STATUS_DRIVER_OK | 0x1)
    assert m.asserted() == []
    assert m.backend("get_notification").ret["reason"] == 0


def test_first_zero_status_asks_no_reset(m):
    assert m.store("Status", 0)
    assert m.dev.reason == 0 and not m.dev.reset_pending
    assert m.asserted() == []


def test_reset_handshake(m):
    """Status = 0 over a non-zero Status: DEVICE_NEEDS_RESET, RESET_RQST, QueueReady
    cleared; assert_virq is DENIED until acknowledge_reset puts Status back to 0."""
    m.store("QueueSel", 1)
    m.store("QueueReady", 1)
    m.store("Status", STATUS_DRIVER_OK)
    m.backend("get_notification")
    m.settle()
    assert m.store("Status", 0)
    assert m.asserted() == [("BE", "virtio_mmio:dev:backend")]
    assert m.load("Status") & VIRTIO_STATUS_DEVICE_NEEDS_RESET
    assert m.load("QueueReady") == 0
    assert all(q["ready"] == 0 for q in m.dev.queues)
    assert m.backend("get_notification").ret["reason"] == RESET_RQST
    denied = m.backend("assert_virq", interrupt_status=1)
    assert denied.error is Error.DENIED
    assert m.asserted() == [] and m.load("InterruptStatus") == 0
    assert m.backend("acknowledge_reset").error is Error.OK
    assert m.load("Status") == 0
    assert m.backend("assert_virq", interrupt_status=1).error is Error.OK
    assert m.asserted() == [("FE", "virtio_mmio:dev:frontend")]


def test_update_status_sets_needs_reset_and_assert_is_denied(m):
    m.backend("update_status", val=VIRTIO_STATUS_DEVICE_NEEDS_RESET)
    assert m.backend("assert_virq", interrupt_status=1).error is Error.DENIED


def test_assert_virq_ors_interrupt_status_and_ack_clears_bits(m):
    m.backend("assert_virq", interrupt_status=0x1)
    m.backend("assert_virq", interrupt_status=0x2)
    assert m.load("InterruptStatus") == 0x3
    assert m.store("InterruptACK", 0x1)
    assert m.load("InterruptStatus") == 0x2
    assert m.dev.to_frontend.check_pending()
    m.store("InterruptACK", 0x2)
    assert not m.dev.to_frontend.check_pending()


@pytest.mark.parametrize("word", [VERSION_1, ACCESS_PLATFORM,
                                  VERSION_1 | ACCESS_PLATFORM | NOTIFICATION_DATA, 0])
def test_feature_word_1_rules_are_denied(m, word):
    assert m.backend("set_dev_features", sel=1, dev_feat=word).error is Error.DENIED
    assert m.dev.banked_dev_feat[1] == 0


def test_feature_word_1_with_the_required_bits_is_offered(m):
    word = VERSION_1 | ACCESS_PLATFORM | 0x4
    assert m.backend("set_dev_features", sel=1, dev_feat=word).error is Error.OK
    assert m.store("DeviceFeaturesSel", 1)
    assert m.load("DeviceFeatures") == word


def test_feature_word_0_is_not_checked_and_word_2_does_not_exist(m):
    assert m.backend("set_dev_features", sel=0, dev_feat=0xFFFF_FFFF).error is Error.OK
    assert m.backend("set_dev_features", sel=2, dev_feat=0).error is Error.ARGUMENT_INVALID


def test_driver_features_and_queue_info_are_what_the_frontend_wrote(m):
    m.store("DriverFeaturesSel", 1)
    m.store("DriverFeatures", VERSION_1)
    m.store("QueueSel", 1)
    for reg, value in (("QueueNum", 8), ("QueueDescLow", 0x1000), ("QueueDescHigh", 0x2),
                       ("QueueDriverLow", 0x1080), ("QueueDeviceLow", 0x10A0),
                       ("QueueReady", 1)):
        assert m.store(reg, value)
    assert m.backend("get_drv_features", sel=1).ret == {"drv_feat": VERSION_1}
    assert m.backend("get_queue_info", sel=1).ret == {
        "queue_num": 8, "queue_ready": 1, "queue_desc": 0x2_0000_1000,
        "queue_drv": 0x1080, "queue_dev": 0x10A0}
    assert m.backend("get_queue_info", sel=0).ret["queue_num"] == 0


def test_queue_sel_banks_queue_num_max(m):
    m.backend("set_queue_num_max", sel=0, queue_num_max=4)
    m.backend("set_queue_num_max", sel=1, queue_num_max=16)
    m.store("QueueSel", 1)
    assert m.load("QueueNumMax") == 16
    m.store("QueueSel", 0)
    assert m.load("QueueNumMax") == 4


def test_at_most_sixteen_queues():
    m = Machine(vqs=VIRTIO_MMIO_MAX_VQS)
    assert m.store("QueueSel", VIRTIO_MMIO_MAX_VQS - 1)
    assert not m.store("QueueSel", VIRTIO_MMIO_MAX_VQS)  # out of range: a fault
    with pytest.raises(HypError) as err:
        m.dev.configure(VIRTIO_MMIO_MAX_VQS + 1)
    assert err.value.error is Error.ARGUMENT_INVALID


def test_queue_selectors_out_of_range_are_refused(m):
    assert m.backend("set_queue_num_max", sel=2, queue_num_max=8).error is Error.ARGUMENT_INVALID
    assert m.backend("get_queue_info", sel=2).error is Error.ARGUMENT_INVALID
    assert m.backend("get_drv_features", sel=2).error is Error.ARGUMENT_INVALID


@pytest.mark.parametrize(("reg", "size"), [("MagicValue", 4), ("InterruptStatus", 4),
                                           ("QueueNumMax", 4)])
def test_read_only_registers_fault(m, reg, size):
    assert not m.store(reg, 1)
    events = [e for e in m.hyp.trace.take() if e["kind"] == "virtio.write"]
    assert [e["emulated"] for e in events] == [False]


def test_access_rules_sizes_and_alignment(m):
    """virtio_mmio_access_allowed: size-aligned; bytes only in the config space."""
    assert not m.dev.frontend_write("FE", "FE.0", R["Status"], 1, size=1)
    assert not m.dev.frontend_write("FE", "FE.0", R["Status"] + 2, 1, size=4)
    assert m.dev.frontend_write("FE", "FE.0", 0x101, 0xAB, size=1)
    assert m.dev.frontend_read(0x101) == 0xAB


def test_the_backend_cap_has_config_and_assert_virq_only(m):
    cap = m.be.cspace.cap(m.cap)
    assert cap.rights == VirtioMmioRights.CONFIG | VirtioMmioRights.ASSERT_VIRQ


def test_the_frontend_holds_no_cap_and_cannot_call_the_backend_side(m):
    result = hvc(m.hyp, m.fe.vcpus[0], "virtio_mmio_backend_assert_virq", capid=m.cap,
                 interrupt_status=1)
    assert result.error is not Error.OK


def test_hypercall_numbers_are_the_sources():
    """hyp/interfaces/virtio_mmio/virtio_mmio.hvc call_num."""
    from gunyah_core.core.hypercalls import HypercallTable
    names = HypercallTable.names()
    assert {n: names[f"virtio_mmio_{n}"] for n in (
        "backend_assert_virq", "backend_set_dev_features",
        "backend_set_queue_num_max", "backend_get_drv_features", "backend_get_queue_info",
        "backend_get_notification", "backend_acknowledge_reset",
        "backend_update_status")} == {
        "backend_assert_virq": 0x4E,
        "backend_set_dev_features": 0x4F, "backend_set_queue_num_max": 0x50,
        "backend_get_drv_features": 0x51, "backend_get_queue_info": 0x52,
        "backend_get_notification": 0x53, "backend_acknowledge_reset": 0x54,
        "backend_update_status": 0x55}


def test_backend_lists_the_device_in_its_resources_as_virtio_mmio(m):
    assert m.be.resources["dev:backend"]["type"] == "VIRTIO_MMIO"
    assert m.be.resources["dev:backend"]["virq"] == m.dev.to_backend.virq
    assert m.fe.resources["dev:frontend"]["virq"] == m.dev.to_frontend.virq
    assert m.dev.to_backend.vic is m.be.vic and m.dev.to_frontend.vic is m.fe.vic


# -- edges: each selector's last value and the first one past it -------------------------
def test_feature_selectors_take_0_and_1_only(m):
    assert m.store("DeviceFeaturesSel", 1) is True and m.store("DriverFeaturesSel", 1) is True
    assert m.store("DeviceFeaturesSel", 2) is False
    assert m.store("DriverFeaturesSel", 2) is False
    assert m.store("QueueSel", 2) is False
    assert m.dev.drv_feat_sel == 1 and m.dev.queue_sel == 0
    emulated = [e["emulated"] for e in m.hyp.trace.take() if e["kind"] == "virtio.write"]
    assert emulated == [True, True, False, False, False]


def test_a_device_without_queues_faults_queue_register_writes():
    m = Machine(vqs=0)
    assert m.store("QueueNum", 8) is False
    assert m.store("QueueReady", 1) is False
    assert m.store("QueueDescLow", 0x1000) is False


def test_writes_before_any_selector_land_in_word_0_and_queue_0(m):
    m.store("DriverFeatures", 0xAB)
    m.store("QueueNum", 4)
    assert m.backend("get_drv_features", sel=0).ret == {"drv_feat": 0xAB}
    assert m.backend("get_queue_info", sel=0).ret["queue_num"] == 4
    assert m.backend("get_notification").ret == {"vqs_bitmap": 0, "reason": 0}


def test_exactly_version_1_and_access_platform_is_a_valid_word_1(m):
    assert m.backend("set_dev_features", sel=1,
                     dev_feat=VERSION_1 | ACCESS_PLATFORM).error is Error.OK


def test_queue_notify_past_the_bitmap_sets_only_the_reason(m):
    """util_bit(val) of a register_t: 63 is the last queue bit; the model ignores more."""
    m.store("QueueNotify", 63)
    assert m.backend("get_notification").ret == {"vqs_bitmap": 1 << 63, "reason": NEW_BUFFER}
    m.store("QueueNotify", 64)
    assert m.backend("get_notification").ret == {"vqs_bitmap": 0, "reason": NEW_BUFFER}


def test_the_backends_vic_line_is_pending_while_a_reason_is_set(m):
    assert not m.dev.to_backend.check_pending()
    m.store("QueueNotify", 0)
    assert m.dev.to_backend.check_pending()
    events = m.hyp.trace.take()
    (raised,) = [e for e in events if e["kind"] == "virq.assert"]
    assert (raised["reason"], raised["vqs"], raised["isr"]) == (NEW_BUFFER, 1, 0)
    m.backend("get_notification")
    assert not m.dev.to_backend.check_pending()


def test_config_space_takes_bytes_and_words_and_reads_back(m):
    dev = m.dev
    assert dev.frontend_write("FE", "FE.0", 0x100, 0x11, size=1)
    assert dev.frontend_write("FE", "FE.0", 0x104, 0x44332211, size=4)
    assert [dev.frontend_read(0x100 + i) for i in range(8)] == [
        0x11, 0, 0, 0, 0x11, 0x22, 0x33, 0x44]
    assert not dev.frontend_write("FE", "FE.0", 0xFF, 1, size=1)  # a byte below config
    assert not dev.frontend_write("FE", "FE.0", 0x102, 1, size=4)  # a word not aligned
    assert not dev.frontend_write("FE", "FE.0", 0x1000, 1, size=4)  # past the page
    assert dev.frontend_write("FE", "FE.0", 0xFFC, 1, size=4)  # the page's last word
    assert dev.frontend_read(0x0F8) == 0  # a reserved word


def test_register_names_in_events():
    from gunyah_core.vm.virtio_mmio import reg_name
    assert reg_name(0x050) == "QueueNotify"
    assert reg_name(0x100) == "config+0x0" and reg_name(0x104) == "config+0x4"
    assert reg_name(0x0F8) == "0xf8"


def test_zero_queues_is_a_valid_configuration(m):
    m.dev.configure(0)
    assert m.dev.vqs_num == 0


def test_queue_addresses_are_64_bit_from_their_two_halves(m):
    for reg, value in (("QueueDriverLow", 0x80), ("QueueDriverHigh", 0x1),
                       ("QueueDeviceLow", 0xA0), ("QueueDeviceHigh", 0x2)):
        m.store(reg, value)
    info = m.backend("get_queue_info", sel=0).ret
    assert (info["queue_drv"], info["queue_dev"]) == (0x1_0000_0080, 0x2_0000_00A0)


def test_registers_are_32_bit(m):
    big = (1 << 40) | 0x5
    m.backend("set_queue_num_max", sel=0, queue_num_max=big)
    assert m.dev.queues[0]["num_max"] == 0x5
    m.backend("assert_virq", interrupt_status=big)
    assert m.load("InterruptStatus") == 0x5
    m.backend("update_status", val=(1 << 33) | 0x1)
    assert m.load("Status") == 0x1


def test_every_backend_change_is_a_virtio_backend_event(m):
    m.backend("set_dev_features", sel=0, dev_feat=1)
    m.backend("set_queue_num_max", sel=0, queue_num_max=8)
    m.backend("get_notification")
    m.backend("update_status", val=0x1)
    m.backend("acknowledge_reset")
    m.backend("assert_virq", interrupt_status=1)
    ops = [e["op"] for e in m.hyp.trace.take() if e["kind"] == "virtio.backend"]
    assert ops == ["set_dev_features", "set_queue_num_max", "get_notification",
                   "update_status", "acknowledge_reset", "assert_virq"]


def test_each_backend_event_carries_its_arguments_and_the_register_state(m):
    m.backend("set_dev_features", sel=1, dev_feat=VERSION_1 | ACCESS_PLATFORM)
    m.backend("set_queue_num_max", sel=1, queue_num_max=(1 << 32) | 8)
    m.store("QueueNotify", 1)
    m.backend("get_notification")
    m.backend("update_status", val=(1 << 33) | 0x1)
    m.backend("assert_virq", interrupt_status=(1 << 32) | 0x5)
    keys = ("vm", "op", "sel", "value", "taken_vqs", "taken_reason", "status", "reason",
            "vqs", "isr")
    got = [tuple(e.get(k) for k in keys) for e in m.hyp.trace.take()
           if e["kind"] == "virtio.backend"]
    assert got == [
        ("BE", "set_dev_features", 1, VERSION_1 | ACCESS_PLATFORM, None, None, 0, 0, 0, 0),
        ("BE", "set_queue_num_max", 1, 8, None, None, 0, 0, 0, 0),
        ("BE", "get_notification", None, None, 0x2, NEW_BUFFER, 0, 0, 0, 0),
        ("BE", "update_status", None, 1, None, None, 0x1, 0, 0, 0),
        ("BE", "assert_virq", None, 5, None, None, 0x1, 0, 0, 0x5),
    ]


def test_each_sides_virq_assert_says_why(m):
    def why() -> list[tuple]:
        return [(e["vm"], e["reason"], e["vqs"], e["isr"]) for e in m.hyp.trace.take()
                if e["kind"] == "virq.assert"]

    m.store("QueueNotify", 1)
    assert why() == [("BE", NEW_BUFFER, 0x2, 0)]
    m.backend("get_notification")
    m.backend("assert_virq", interrupt_status=0x1)
    assert why() == [("FE", 0, 0, 0x1)]


def test_update_status_keeps_the_bits_already_set(m):
    m.store("Status", 0x1)
    m.backend("update_status", val=0x40)
    assert m.load("Status") == 0x41


@pytest.mark.parametrize(("status", "reason"), [(STATUS_DRIVER_OK, DRIVER_OK),
                                                (STATUS_FAILED, FAILED), (0, RESET_RQST)])
def test_a_status_reason_joins_a_pending_new_buffer(m, status, reason):
    if status == 0:
        m.store("Status", 0x1)  # a reset is asked by 0 over a non-zero Status
    m.store("QueueNotify", 0)
    m.store("Status", status)
    assert m.backend("get_notification").ret["reason"] == NEW_BUFFER | reason


def test_queue_sel_shows_the_selected_queues_ready(m):
    m.store("QueueSel", 1)
    m.store("QueueReady", 1)
    m.store("QueueSel", 0)
    assert m.load("QueueReady") == 0
    m.store("QueueSel", 1)
    assert m.load("QueueReady") == 1


def test_driver_features_read_zero_until_the_driver_writes_them(m):
    assert [m.backend("get_drv_features", sel=s).ret["drv_feat"] for s in (0, 1)] == [0, 0]
