"""Gunyah's numbers, spelled as Gunyah spells them.

Values come from ``docs/gunyah-facts.md`` (hypervisor source ``hyp/**/*.tc``,
the API reference and the Resource Manager headers); each block names its source.
Nothing here is invented except the blocks marked SIMULATOR, which the facts sheet
is silent on (hypercall costs and the like) and which are labelled as such in the UI.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class Error(IntEnum):
    """``error_t`` returned in X0 (hyp/core/base/types.tc)."""

    OK = 0
    UNIMPLEMENTED = -1
    RETRY = -2
    ARGUMENT_INVALID = 1
    ARGUMENT_SIZE = 2
    ARGUMENT_ALIGNMENT = 3
    NOMEM = 10
    NORESOURCES = 11
    ADDR_OVERFLOW = 20
    ADDR_UNDERFLOW = 21
    ADDR_INVALID = 22
    DENIED = 30
    BUSY = 31
    IDLE = 32
    OBJECT_STATE = 33
    OBJECT_CONFIG = 34
    OBJECT_CONFIGURED = 35
    FAILURE = 36
    VIRQ_BOUND = 40
    VIRQ_NOT_BOUND = 41
    CSPACE_CAP_NULL = 50
    CSPACE_CAP_REVOKED = 51
    CSPACE_WRONG_OBJECT_TYPE = 52
    CSPACE_INSUFFICIENT_RIGHTS = 53
    CSPACE_FULL = 54
    MSGQUEUE_EMPTY = 60
    MSGQUEUE_FULL = 61
    MEMDB_EMPTY = 110
    MEMDB_NOT_OWNER = 111
    MEMEXTENT_MAPPINGS_FULL = 120
    MEMEXTENT_TYPE = 121
    EXISTING_MAPPING = 200


class ObjectType(IntEnum):
    """Kernel object types a capability can name (hyp/interfaces/object)."""

    PARTITION = 1
    CSPACE = 2
    THREAD = 3
    DOORBELL = 4
    MSGQUEUE = 5
    VIC = 6
    ADDRSPACE = 7
    MEMEXTENT = 8
    # SIMULATOR number: the type enumeration is generated from the build's
    # first_class_object list (hyp/interfaces/virtio_mmio/build.conf), which the public
    # sources leave to the build; facts §10.1 gives no value.
    VIRTIO_MMIO = 9


class ObjectState(IntEnum):
    """Object lifecycle (object.tc.tmpl): configure only in INIT, use only when ACTIVE."""

    NONE = 0
    INIT = 1
    ACTIVE = 2
    FAILED = 3
    DESTROYING = 4


class CapState(IntEnum):
    """Capability slot state (cspace.tc)."""

    NULL = 0
    VALID = 1
    REVOKED = 2


# --- Rights (32-bit bitmaps; H-API "Object Rights", RM include/guest_rights.h) ---
RIGHTS_GENERIC_OBJECT_ACTIVATE = 0x80000000


class MsgqueueRights(IntFlag):
    SEND = 0x1
    RECEIVE = 0x2
    BIND_SEND = 0x4
    BIND_RECEIVE = 0x8
    OBJECT_ACTIVATE = RIGHTS_GENERIC_OBJECT_ACTIVATE


class DoorbellRights(IntFlag):
    SEND = 0x1
    RECEIVE = 0x2
    BIND = 0x4
    OBJECT_ACTIVATE = RIGHTS_GENERIC_OBJECT_ACTIVATE


class ThreadRights(IntFlag):
    POWER = 0x1
    AFFINITY = 0x2
    PRIORITY = 0x4
    TIMESLICE = 0x8
    YIELD_TO = 0x10
    BIND_VIRQ = 0x20
    STATE = 0x40
    LIFECYCLE = 0x80
    WRITE_CONTEXT = 0x100
    DISABLE = 0x200
    OBJECT_ACTIVATE = RIGHTS_GENERIC_OBJECT_ACTIVATE


class VicRights(IntFlag):
    BIND_SOURCE = 0x1
    ATTACH_VCPU = 0x2
    ATTACH_VDEVICE = 0x4
    OBJECT_ACTIVATE = RIGHTS_GENERIC_OBJECT_ACTIVATE


class AddrspaceRights(IntFlag):
    """Address-space cap rights (facts §1.3; ADD_VMMIO_RANGE is H-SRC/RM only)."""

    ATTACH = 0x1
    MAP = 0x2
    LOOKUP = 0x4
    ADD_VMMIO_RANGE = 0x8
    OBJECT_ACTIVATE = RIGHTS_GENERIC_OBJECT_ACTIVATE


class MemextentRights(IntFlag):
    """Memory-extent cap rights (facts §1.3)."""

    MAP = 0x1
    DERIVE = 0x2
    ATTACH = 0x4
    LOOKUP = 0x8
    DONATE = 0x10
class VirtioMmioRights(IntFlag):
    """``cap_rights_virtio_mmio`` (hyp/vm/virtio_mmio/virtio_mmio.tc; RM guest_rights.h)."""

    BIND_BACKEND_VIRQ = 0x1
    BIND_FRONTEND_VIRQ = 0x2
    ASSERT_VIRQ = 0x4
    CONFIG = 0x8
    OBJECT_ACTIVATE = RIGHTS_GENERIC_OBJECT_ACTIVATE


RIGHTS_BY_TYPE: dict[ObjectType, type[IntFlag]] = {
    ObjectType.ADDRSPACE: AddrspaceRights,
    ObjectType.MEMEXTENT: MemextentRights,
    ObjectType.MSGQUEUE: MsgqueueRights,
    ObjectType.DOORBELL: DoorbellRights,
    ObjectType.THREAD: ThreadRights,
    ObjectType.VIC: VicRights,
    ObjectType.VIRTIO_MMIO: VirtioMmioRights,
}

U64_MAX = (1 << 64) - 1  # registers are 64-bit

# --- CSpace (hyp/core/cspace_twolevel) ---
CSPACE_CAP_INVALID = U64_MAX  # -1 as u64
CSPACE_INDEX_BITS = 16
CSPACE_MAX_CAPS = 1 << CSPACE_INDEX_BITS

# --- Message queues (hyp/ipc/msgqueue/msgqueue.tc; checks are strictly less) ---
MSGQUEUE_MAX_QUEUE_DEPTH = 256
MSGQUEUE_MAX_MAX_MSG_SIZE = 1024
MSGQUEUE_SEND_FLAG_PUSH = 0x1
MSGQUEUE_THRESHOLD_UNCHANGED = -1
MSGQUEUE_THRESHOLD_MAXIMUM = -2  # configure_receive: "set to depth"
MSGQUEUE_DELAY_UNCHANGED = -1

# --- Doorbells (hyp/ipc/doorbell) ---
DOORBELL_FLAGS_MASK = U64_MAX
DOORBELL_DEFAULT_ENABLE_MASK = DOORBELL_FLAGS_MASK
DOORBELL_DEFAULT_ACK_MASK = 0

# --- Virtual GIC (hyp/platform/gicv3/gicv3.tc) ---
GIC_SPI_BASE = 32
GIC_SPI_LAST = 1019
GIC_ESPI_BASE = 4096
GIC_ESPI_LAST = 5119
GIC_PPI_BASE = 16  # private (per-vCPU) interrupts 16-31, facts §9.1
GIC_PPI_LAST = 31
RM_GUEST_FREE_VIRQ_START = 960  # RM irq_manager: a guest's dynamic vIRQs
RM_OWN_FREE_VIRQ_START = GIC_SPI_BASE  # the RM VM's own allocations start at 32

# --- Virtual timer (hyp/vm/arm_vm_timer; config/platform/qemu.conf) ---
# The EL1 virtual timer is the vCPU's private PPI 27, bound level-triggered per vCPU
# (arm_vm_timer_thread.c arm_vm_timer_handle_object_activate_thread); the platform file
# gives the counter's frequency (62.5 MHz: one tick every 16 ns) and the physical timer's
# PPI, which the model does not use (Gunyah traps its registers, arm_vm_timer.c).
PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ = 27
PLATFORM_VM_ARCH_PHYSICAL_TIMER_IRQ = 30
PLATFORM_ARCH_TIMER_FREQ = 62_500_000
NS_PER_S = 1_000_000_000
# CNT_CTL bitfield (hyp/core/base/aarch64/sysregs.tc): ISTATUS is read-only.
CNT_CTL_ENABLE = 1 << 0
CNT_CTL_IMASK = 1 << 1
CNT_CTL_ISTATUS = 1 << 2

# --- Scheduler (hyp/core/scheduler_fprr/scheduler_fprr.tc) ---
SCHEDULER_NUM_PRIORITIES = 64
SCHEDULER_MIN_PRIORITY = 0
SCHEDULER_MAX_PRIORITY = 63
SCHEDULER_DEFAULT_PRIORITY = 32
VCPU_MAX_PRIORITY = 62
SCHEDULER_DEFAULT_TIMESLICE_NS = 5_000_000
SCHEDULER_MIN_TIMESLICE_NS = 100_000
SCHEDULER_MAX_TIMESLICE_NS = 100_000_000
CPU_INDEX_INVALID = -1
ROOTVM_PRIORITY = 32  # RM vm_config.c
# scheduler_yield control (hyp/interfaces/scheduler/scheduler.tc): 15:0 hint, 31 impl_def.
SCHEDULER_YIELD_CONTROL_HINT_MASK = 0xFFFF
SCHEDULER_YIELD_CONTROL_IMPL_DEF = 1 << 31
SCHEDULER_YIELD_HINT_YIELD = 0x0
SCHEDULER_YIELD_HINT_YIELD_TO_THREAD = 0x1  # arg1 = the thread's cap (YIELD_TO right)
SCHEDULER_YIELD_HINT_YIELD_LOWER = 0x2  # ARGUMENT_INVALID in FPRR
PROXY_VCPU_PRIORITY = 0
PROXY_VCPU_TIMESLICE_NS = 100_000

# --- VM ids (RM include/vm_mgnt.h) ---
VMID_HLOS = 0x3
VMID_DYNAMIC_BASE = 0x80
VMID_DYNAMIC_LAST = 0xBE
VMID_RM = 0xFF
# Static secondary VMIDs VM_ALLOCATE may name (bit n = vmid n, n < 64): a platform list.
# The model uses the RM's QEMU platform (platform_qemu.c platform_get_secondary_vmids):
# vmids 4..31.
VMID_SECONDARY_LIMIT = 64
RM_PLATFORM_SECONDARY_VMIDS = 0xFFFF_FFF0

# --- RM link (RM vm_config_hlos_vdevices_setup) ---
RM_RPC_MESSAGE_SIZE = 240
RM_RPC_QUEUE_DEPTH = 8

# --- Virtio-MMIO (hyp/vm/virtio_mmio/virtio_mmio.tc, hyp/interfaces/virtio_mmio; facts §10.1) ---
VIRTIO_MMIO_MAX_VQS = 16
VIRTIO_MMIO_DEV_FEAT_NUM = 2  # banked 32-bit feature words (DeviceFeaturesSel 0, 1)
VIRTIO_MMIO_DRV_FEAT_NUM = 2
VIRTIO_F_VERSION_1 = 32
VIRTIO_F_ACCESS_PLATFORM = 33
VIRTIO_F_NOTIFICATION_DATA = 38
VIRTIO_MMIO_PAGE_SIZE = 0x1000  # one register page (RM create_virtio_mmio: PAGE_SIZE)
VIRTIO_MMIO_REG_DEVICE_CONFIG = 0x100
# virtio_mmio_notify_reason (hyp/interfaces/virtio_mmio/virtio_mmio.tc); bit 2 is res0.
VIRTIO_MMIO_REASON_NEW_BUFFER = 0x1
VIRTIO_MMIO_REASON_RESET_RQST = 0x2
VIRTIO_MMIO_REASON_DRIVER_OK = 0x8
VIRTIO_MMIO_REASON_FAILED = 0x10
# virtio_mmio_status_reg bits the hypervisor looks at (virtio_mmio.tc), plus the
# driver's ACKNOWLEDGE/DRIVER/FEATURES_OK that virtio 1.1 §2.1 defines.
VIRTIO_STATUS_ACKNOWLEDGE = 0x1
VIRTIO_STATUS_DRIVER = 0x2
VIRTIO_STATUS_DRIVER_OK = 0x4
VIRTIO_STATUS_FEATURES_OK = 0x8
VIRTIO_STATUS_DEVICE_NEEDS_RESET = 0x40
VIRTIO_STATUS_FAILED = 0x80
# InterruptStatus bits (virtio 1.1 §4.2.2): a used buffer, a configuration change.
VIRTIO_INT_USED_BUFFER = 0x1
VIRTIO_INT_CONFIG_CHANGE = 0x2
# The register page (virtio_mmio_regs in virtio_mmio.tc; virtio 1.1 §4.2.2).
VIRTIO_MMIO_REGS = {
    "MagicValue": 0x000, "Version": 0x004, "DeviceID": 0x008, "VendorID": 0x00C,
    "DeviceFeatures": 0x010, "DeviceFeaturesSel": 0x014, "DriverFeatures": 0x020,
    "DriverFeaturesSel": 0x024, "QueueSel": 0x030, "QueueNumMax": 0x034, "QueueNum": 0x038,
    "QueueReady": 0x044, "QueueNotify": 0x050, "InterruptStatus": 0x060,
    "InterruptACK": 0x064, "Status": 0x070, "QueueDescLow": 0x080, "QueueDescHigh": 0x084,
    "QueueDriverLow": 0x090, "QueueDriverHigh": 0x094, "QueueDeviceLow": 0x0A0,
    "QueueDeviceHigh": 0x0A4, "ConfigGeneration": 0x0FC,
}
VIRTIO_MMIO_MAGIC = 0x74726976  # "virt" (virtio 1.1 §4.2.2)
VIRTIO_MMIO_VERSION = 2
# Split virtqueue (virtio 1.1 §2.6): descriptor flags and element sizes in bytes.
VIRTQ_DESC_F_NEXT = 1
VIRTQ_DESC_F_WRITE = 2
VIRTQ_DESC_SIZE = 16  # le64 addr, le32 len, le16 flags, le16 next
VIRTQ_USED_ELEM_SIZE = 8  # le32 id, le32 len
# Device IDs (virtio 1.1 §5): the two toy devices.
VIRTIO_ID_BLOCK = 2
VIRTIO_ID_CONSOLE = 3
# SIMULATOR: where the RM puts the register page in the frontend's IPA space (the RM
# allocates it from VM_MEMUSE_VDEVICE; qemu.conf gives HLOS 0x30000000 for virtio).
VIRTIO_MMIO_IPA_BASE = 0x3000_0000

# --- SMCCC / HVC encoding (H-API "AArch64 HVC ABI") ---
HVC_IMM_BASE = 0x6000

# --- PSCI, the virtual PM group's power calls (hyp/interfaces/psci/psci.tc; facts §6.3, §7.2) ---
# A guest makes them as SMCCC calls of the Standard Secure Service owner (4): X0 = function
# ID = fast bit 31 | SMC64 bit 30 | owner 4 << 24 | function number (psci_function).
SMCCC_FAST_CALL = 1 << 31
SMCCC_SMC64 = 1 << 30
SMCCC_OWNER_STANDARD = 4
SMCCC_OWNER_SHIFT = 24
PSCI_FID_BASE_SMC32 = SMCCC_FAST_CALL | SMCCC_OWNER_STANDARD << SMCCC_OWNER_SHIFT  # 0x84000000
PSCI_FID_BASE_SMC64 = PSCI_FID_BASE_SMC32 | SMCCC_SMC64  # 0xC4000000
PSCI_VERSION_1_1 = 0x10001  # hyp/vm/psci/psci.tc PSCI_VER: "PSCI 1.1 implemented"


class PsciFunction(IntEnum):
    """``psci_function`` (hyp/interfaces/psci/psci.tc): the low bits of the function ID."""

    PSCI_VERSION = 0x0
    CPU_SUSPEND = 0x1
    CPU_OFF = 0x2
    CPU_ON = 0x3
    AFFINITY_INFO = 0x4
    SYSTEM_OFF = 0x8
    SYSTEM_RESET = 0x9
    PSCI_FEATURES = 0xA
    SYSTEM_RESET2 = 0x12


class PsciRet(IntEnum):
    """``psci_ret`` (hyp/interfaces/psci/psci.tc), returned in X0."""

    SUCCESS = 0
    NOT_SUPPORTED = -1
    INVALID_PARAMETERS = -2
    DENIED = -3
    ALREADY_ON = -4
    ON_PENDING = -5
    INTERNAL_FAILURE = -6
    NOT_PRESENT = -7
    DISABLED = -8
    INVALID_ADDRESS = -9


class PsciAffinityInfo(IntEnum):
    """``psci_ret_affinity_info``: what AFFINITY_INFO returns for a vCPU."""

    ON = 0
    OFF = 1
    ON_PENDING = 2


# psci_suspend_powerstate (extended format): bit 30 StateType, 1 = powerdown.
PSCI_POWERSTATE_TYPE_POWERDOWN = 1 << 30
# hyp/interfaces/psci/include/psci.h: bits of vcpu_run data0 for PSCI_SYSTEM_RESET.
PSCI_REQUEST_SYSTEM_RESET = 1 << 63  # legacy SYSTEM_RESET (RM: exit PLATFORM_RESET)
PSCI_REQUEST_SYSTEM_RESET2_64 = 1 << 62  # SYSTEM_RESET2 made with the SMC64 ID
PSCI_RESET_TYPE_MASK = 0xFFFF_FFFF
# vcpu_run_wakeup_from_state (vcpu_run.tc, psci.tc) and vcpu_run_poweroff_flags bit 0.
VCPU_RUN_WAKEUP_FROM_WFI = 1
VCPU_RUN_WAKEUP_FROM_PSCI_CPU_SUSPEND = 2
VCPU_RUN_WAKEUP_FROM_PSCI_SYSTEM_SUSPEND = 3
VCPU_RUN_POWEROFF_EXITED = 0x1


class VcpuRunResume(IntEnum):
    """The action a proxy VMM passes in vcpu_run's resume1 after a VMMIO or page-fault
    exit (facts §7.2: Linux with a newer hypervisor; absent from the open H-SRC)."""

    EMULATE = 0
    RETRY = 1
    FAULT = 2


class MemextentDonateType(IntEnum):
    """memextent_donate options bits 7:0 (facts §8.1; H-SRC memextent/src/hypercalls.c
    ``hypercall_memextent_donate`` has 0-2; Linux/ACK add 3 and 4)."""

    TO_CHILD = 0
    TO_PARENT = 1
    TO_SIBLING = 2
    TO_PROTECTED = 3
    FROM_PROTECTED = 4


MEMEXTENT_DONATE_TYPE_MASK = 0xFF
MEMEXTENT_DONATE_NOSYNC = 1 << 31  # options bit 31 (facts §8.1)


class AddrspaceMapFlags(IntFlag):
    """addrspace_map/unmap flags (facts §8.1; PRIVATE and VMMIO are Linux's additions)."""

    PARTIAL = 1 << 0
    PRIVATE = 1 << 1
    VMMIO = 1 << 2
    NOSYNC = 1 << 31


ADDRSPACE_MAP_FLAGS_VALID = int(AddrspaceMapFlags.PARTIAL | AddrspaceMapFlags.PRIVATE
                                | AddrspaceMapFlags.VMMIO | AddrspaceMapFlags.NOSYNC)
# memextent_mapping_attrs (facts §8.1): bits 2:0 user access, 6:4 kernel access,
# 23:16 memory type; Linux's default memory type 0xF is normal write-back.
MAP_ATTR_USER_ACCESS_MASK = 0x7
MAP_ATTR_KERNEL_ACCESS_SHIFT = 4
MAP_ATTR_MEMTYPE_SHIFT = 16
MAP_ATTR_MEMTYPE_NORMAL_WB = 0xF
MAP_ATTRS_VALID = 0x7 | 0x7 << 4 | 0xFF << 16
# RM vm_mgnt.c vcpu_halt_callback: NOTIFY_VM_EXITED exit_flags bit 15 = SYSTEM_RESET2 by SMC64.
VM_EXIT_FLAG_SMC64 = 1 << 15

# --- SIMULATOR: costs the facts sheet does not give (section 12: "NOT FOUND") ---
# Invented so time moves; shown as "simulated cost" in the UI, never as a measurement.
SIM_HVC_COST_NS = 1_000
SIM_CONTEXT_SWITCH_NS = 2_000
SIM_VIRQ_DELIVERY_NS = 500
SIM_GUEST_WORK_NS = 5_000
SIM_MEM_ACCESS_NS = 100
SIM_SYSREG_ACCESS_NS = 20  # an untrapped MSR/MRS of a timer register
