"""RM RPC vocabulary: packet types, RM error codes, message ids, VM states.

Names and values are the Resource Manager's own (facts sheet §5, §6; RM
``include/rm-rpc.h``, ``rm_types.h``, ``*_message.h``, ``memparcel_msg.h``,
``vm_mgnt.h``). Only numbers live here; body layouts are in ``payloads``.
"""

from __future__ import annotations

from enum import IntEnum

# --- Header byte 0 (RM include/rm-rpc.h; facts §5.1) ---
RM_RPC_API_VERSION = 1
RM_RPC_HEADER_WORDS = 2  # the header is two 32-bit words
RM_RPC_VERSION_BITS = 4  # byte 0: bits 3:0 version, bits 7:4 header words
RM_RPC_API_BYTE = (RM_RPC_HEADER_WORDS << RM_RPC_VERSION_BITS) | RM_RPC_API_VERSION  # 0x21


class RpcType(IntEnum):
    """Message type in bits 1:0 of header byte 1 (RM_RPC_MSG_TYPE_*)."""

    CONTINUATION = 0
    REQUEST = 1
    REPLY = 2
    NOTIFICATION = 3


class RmError(IntEnum):
    """``rm_error_t``: the u32 at the start of every reply payload (RM include/rm_types.h)."""

    OK = 0x0
    NOMEM = 0x1
    NORESOURCE = 0x2
    DENIED = 0x3
    MSG_INVALID = 0x4  # Linux calls it INVALID
    BUSY = 0x5
    ARGUMENT_INVALID = 0x6
    HANDLE_INVALID = 0x7
    VALIDATE_FAILED = 0x8
    MAP_FAILED = 0x9
    MEM_INVALID = 0xA
    MEM_INUSE = 0xB
    MEM_RELEASED = 0xC
    VMID_INVALID = 0xD
    LOOKUP_FAILED = 0xE
    IRQ_INVALID = 0xF
    IRQ_INUSE = 0x10
    IRQ_RELEASED = 0x11
    IN_USE = 0x12
    IRQ_NOT_MAPPED = 0x13
    VM_STATE = 0x14  # RM only; Linux has no name for it
    UNIMPLEMENTED = 0xFFFFFFFF


class RmMessageId(IntEnum):
    """Every RM message id in facts §5.3, spelled as the RM headers spell them."""

    # VM management (vm_mgnt_message.h)
    VM_ALLOCATE = 0x56000001  # Linux: VM_ALLOC_VMID
    VM_DEALLOCATE = 0x56000002
    VM_START = 0x56000004
    VM_STOP = 0x56000005
    VM_RESET = 0x56000006
    VM_SUSPEND = 0x56000007  # commented out in the RM
    VM_RESUME = 0x56000008  # commented out in the RM
    # VM creation (vm_creation_message.h)
    VM_CONFIG_IMAGE = 0x56000009
    VM_AUTH_IMAGE = 0x5600000A
    VM_INIT = 0x5600000B
    # Queries
    VM_GET_ID = 0x56000010
    VM_LOOKUP_URI = 0x56000011
    VM_LOOKUP_GUID = 0x56000012
    VM_LOOKUP_NAME = 0x56000013
    VM_GET_OWNER = 0x56000015
    VM_GET_STATE = 0x56000017
    VM_GET_CRASH_MSG = 0x56000019
    VM_GET_HYP_RESOURCES = 0x56000020
    VM_GET_HYP_CAPIDS = 0x56000021  # not implemented in the RM
    VM_GET_HYP_IRQS = 0x56000022  # not implemented in the RM
    VM_GET_VMID = 0x56000024
    VM_GET_PEERS = 0x56000025
    # Boot configuration
    VM_SET_TIME_BASE = 0x56000030
    VM_SET_CONTEXT = 0x56000031  # Linux: VM_SET_BOOT_CONTEXT
    VM_SET_FIRMWARE_MEM = 0x56000032
    VM_SET_DEMAND_PAGING = 0x56000033  # Linux only
    VM_SET_ADDRESS_LAYOUT = 0x56000034  # Linux only
    # IRQ lending (irq_message.h)
    VM_IRQ_ACCEPT = 0x56000050
    VM_IRQ_LEND = 0x56000051
    VM_IRQ_RELEASE = 0x56000052
    VM_IRQ_RECLAIM = 0x56000053
    VM_IRQ_NOTIFY = 0x56000054
    VM_IRQ_UNMAP = 0x56000055
    # Guest status, console, exit
    VM_SET_STATUS = 0x56000080
    VM_CONSOLE_OPEN = 0x56000081
    VM_CONSOLE_CLOSE = 0x56000082
    VM_CONSOLE_WRITE = 0x56000083
    VM_CONSOLE_FLUSH = 0x56000084
    VM_EXIT = 0x56000085
    VM_SET_CRASH_MSG = 0x56000086
    VM_HOST_GET_TYPE = 0x560000A0
    IPA_RESERVE = 0x560000B0
    IPA_UNRESERVE = 0x560000B1
    # Memory parcels (memparcel_msg.h)
    MEM_DONATE = 0x51000010
    MEM_ACCEPT = 0x51000011
    MEM_LEND = 0x51000012
    MEM_SHARE = 0x51000013
    MEM_RELEASE = 0x51000014
    MEM_RECLAIM = 0x51000015
    MEM_NOTIFY = 0x51000017
    MEM_APPEND = 0x51000018
    MEM_QCOM_LOOKUP_SGL = 0x5100001A
    FW_MILESTONE = 0x51000020
    FW_SET_VM_FIRMWARE = 0x51000021
    # Notifications (RM -> guest, RpcType.NOTIFICATION)
    NOTIFY_VM_EXITED = 0x56100001
    NOTIFY_VM_SHUTDOWN = 0x56100002
    NOTIFY_VM_STATUS = 0x56100008
    NOTIFY_VM_IRQ_LENT = 0x56100011
    NOTIFY_VM_IRQ_RELEASED = 0x56100012
    NOTIFY_VM_IRQ_ACCEPTED = 0x56100013
    NOTIFY_VM_CONSOLE_CHARS = 0x56100080
    MEM_SHARED = 0x51100011
    MEM_RELEASED = 0x51100012
    MEM_ACCEPTED = 0x51100013
    MEM_RECALL = 0x51100014


# Every notification id in the §5.3 tables has bit 20 set (0x561xxxxx, 0x511xxxxx) and no
# request id does. The facts sheet states no such rule; it is read off the tables.
RM_NOTIFICATION_ID_BIT = 0x00100000

U32_HEX_DIGITS = 8


def name_of(msg_id: int) -> str:
    """Return the RM name of ``msg_id``, or ``0x%08X`` for an id the RM does not define."""
    try:
        return RmMessageId(msg_id).name
    except ValueError:
        return f"0x{msg_id:0{U32_HEX_DIGITS}X}"


def is_notification_id(msg_id: int) -> bool:
    """True for ids in the RM's notification range (sent with RpcType.NOTIFICATION)."""
    return bool(msg_id & RM_NOTIFICATION_ID_BIT)


class VmState(IntEnum):
    """``vm_state_t`` (RM include/vm_mgnt.h; facts §6.2).

    7 is reserved, and the numbers are not in lifecycle order: a new VM starts in LOAD.
    """

    NONE = 0
    INIT = 1
    READY = 2
    RUNNING = 3
    PAUSED = 4
    LOAD = 5
    AUTH = 6
    INIT_FAILED = 8
    EXITED = 9
    RESETTING = 10
    RESET = 11


class VmOsStatus(IntEnum):
    """Guest-reported OS status, set with VM_SET_STATUS (facts §6.2)."""

    NONE = 0
    EARLY_BOOT = 1
    BOOT = 2
    INIT = 3
    RUN = 4
    SHUTDOWN = 5
    HALTED = 6
    CRASHED = 7


class VmExitType(IntEnum):
    """``exit_type`` of NOTIFY_VM_EXITED (facts §6.3)."""

    VM_EXIT = 0
    PLATFORM_OFF = 1
    PLATFORM_RESET = 2
    PSCI_SYSTEM_RESET2 = 3
    WATCHDOG_BITE = 4
    SOFTWARE_ERROR = 5
    ASYNC_HW_ERROR = 6
    VM_STOP_FORCED = 7


class VmExitCode(IntEnum):
    """``exit_code``: bits 23:16 of NOTIFY_VM_EXITED reason word 0 (facts §6.3)."""

    NORMAL = 0
    SOFTWARE_ERROR = 1
    UNKNOWN_ERROR = 2
    BUS_ERROR = 3
    DEVICE_ERROR = 4


class VmAuthType(IntEnum):
    """``auth_type`` of VM_CONFIG_IMAGE (facts §5.3)."""

    NONE = 0
    PLATFORM = 1  # Linux: QCOM_PIL_ELF
    ANDROID = 2  # Linux: ANDROID_PVM


class ResourceType(IntEnum):
    """``resource_type_t`` of a VM_GET_HYP_RESOURCES entry (RM vm_resource_msg.h, RSC_*)."""

    DOORBELL_SRC = 0  # Linux BELL_TX
    DOORBELL = 1  # Linux BELL_RX
    MSG_QUEUE_SEND = 2  # Linux MSGQ_TX
    MSG_QUEUE_RECV = 3  # Linux MSGQ_RX
    VIRTUAL_CPU = 4
    VIRTUAL_PM = 5
    VIRTIO_MMIO = 6
    VRTC = 7
    WATCHDOG = 8
    MEM_EXTENT = 9  # Linux only (newer RM)
    ADDR_SPACE = 10  # Linux only (newer RM)


# --- VM_STOP flags and the reason Linux sends (facts §5.3) ---
VM_STOP_FLAG_FORCE = 0x1
VM_STOP_REASON_FORCE_STOP = 3  # Linux GH_RM_VM_STOP_REASON_FORCE_STOP

# --- NOTIFY_VM_EXITED reason word 0 (facts §6.3) ---
VM_EXIT_FLAG_RESTART = 0x1
VM_EXIT_FLAG_SMC64 = 0x8000  # PSCI_SYSTEM_RESET2 only
VM_EXIT_CODE_SHIFT = 16
VM_EXIT_FLAGS_MASK = 0xFFFF
