"""Guest programs a scenario can give a VM: what its vCPUs run.

A guest is a generator of operations per vCPU (``main``) plus a vIRQ handler
(``on_virq``), written the way a Linux driver behaves: it reacts to vIRQs, drains a
queue until ``not_empty`` is false (an edge-triggered Rx vIRQ does not fire again for
later non-PUSH messages, facts §13.1), and waits for the Tx vIRQ after MSGQUEUE_FULL.
Guests only use hypercalls with the capids the RM gave their VM. A guest that waits for a
while arms its vCPU's virtual timer and sleeps in WFI until the timer's vIRQ, as Linux's
arch timer clockevent does (``Guest.timer_sleep``, vm/vtimer.py).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..consts import (
    CNT_CTL_ENABLE,
    CNT_CTL_IMASK,
    CNT_CTL_ISTATUS,
    DOORBELL_FLAGS_MASK,
    MSGQUEUE_SEND_FLAG_PUSH,
    PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ,
    SIM_GUEST_WORK_NS,
    Error,
)
from ..errors import ERROR_OK
from ..mem.memparcel import PAGE_SIZE
from ..rm.messages import RmMessageId
from ..rm.payloads import VmExitReq
from ..vm.vcpu import OP_HVC, OP_MEM, OP_MRS, OP_MSR, OP_PSCI, OP_WFI, OP_WORK
from ..vm.vtimer import CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0, ns_to_ticks

if TYPE_CHECKING:
    from ..vm.vcpu import Vcpu
    from ..vm.vm import Vm

WFI = (OP_WFI,)
MSGQUEUE_FULL = Error.MSGQUEUE_FULL  # a plain name, as ERROR_OK: tested on every send
DEFAULT_PERIOD_NS = 200_000
DEFAULT_MSG_SIZE = 64
ALL_FLAGS = DOORBELL_FLAGS_MASK
IRQFD_FLAG = 1  # the flag Linux's irqfd sends and, when level, masks and acks (bit 0)
RM_LINK_LABEL = "rm:"


def hvc(name: str, **args: Any) -> tuple:
    return (OP_HVC, name, args)


def work(ns: int) -> tuple:
    return (OP_WORK, ns)


def msr(reg: str, value: int) -> tuple:
    """A system register write (MSR): the virtual timer's CNTV_CVAL_EL0 or CNTV_CTL_EL0."""
    return (OP_MSR, reg, value)


def mrs(reg: str) -> tuple:
    """A system register read (MRS); the value comes back as the operation's result."""
    return (OP_MRS, reg)


def psci(function: str, **args: Any) -> tuple:
    """A PSCI call by its function name (CPU_ON, CPU_OFF, ...; consts.PsciFunction):
    an SMC the hypervisor's vPM group answers (vm/psci.py); the result has ``x0``."""
    return (OP_PSCI, function, args)


def mem(access: str, addr: int, value: int = 0) -> tuple:
    """A load ('R'), store ('W') or instruction fetch ('X') through the VM's stage-2."""
    return (OP_MEM, access, addr, value)


class MissingResource(ValueError):
    """A program was given to a VM that lacks the queue or doorbell it needs."""


class Guest:
    """Idle guest: WFI forever; also the base with resource lookups."""

    program = "idle"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        self.vm = vm
        self.params = params
        self.received = 0
        self.sent = 0
        self.rm: Any = None  # an RmClient once the VM has an RM link
        self.hyp: Any = None  # set with the RM client: programs that read images/memory
        self.jobs: deque = deque()  # work a handler hands to the main flow
        self.full = False  # a send got MSGQUEUE_FULL: waiting for the queue's Tx vIRQ
        self.timer_waiting: set[int] = set()  # vCPUs asleep until their timer's vIRQ

    def res(self, key: str) -> dict[str, Any]:
        return self.vm.resources[key]

    def need(self, rtype: str, name: str | None = None) -> dict[str, Any]:
        """The resource this program cannot run without; MissingResource if absent."""
        entry = self.first(rtype, name)
        if entry is None:
            what = f"{rtype} {name!r}" if name else rtype
            raise MissingResource(f"program {self.program!r} needs a {what} in VM {self.vm.name}")
        return entry

    def first(self, rtype: str, name: str | None = None) -> dict[str, Any] | None:
        """The first resource of a type (optionally of a named object)."""
        for key, entry in self.vm.resources.items():
            if key.startswith(RM_LINK_LABEL):
                continue  # the RM link is the RM client's, not a program's
            if entry["type"] == rtype and (
                name is None or name in (entry.get("msgq"), entry.get("doorbell"))
            ):
                return entry
        return None

    all_vcpus = False  # only vCPU 0 runs the program unless a guest says otherwise
    uses_timer = False  # it arms its vCPUs' virtual timers (the page then shows them)

    def main(self, vcpu: Vcpu):
        """Entry point of every vCPU (what vcpu_poweron starts)."""
        if vcpu.index == 0 or self.all_vcpus:
            yield from self.run(vcpu)
        while True:
            yield WFI

    def run(self, vcpu: Vcpu):
        return
        yield

    def serve_jobs(self):
        """Main loop of programs driven by requests: run queued jobs, else WFI."""
        while True:
            while self.jobs:
                yield from self.jobs.popleft()
            yield WFI

    def on_virq(self, vcpu: Vcpu, virq: int):
        """Entry of every vIRQ handler: the RM link first, then the program's own.

        Returns the handler's generator itself (no wrapper frame on the hot path)."""
        if virq == PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ:
            return self.timer_virq(vcpu)
        rm = self.rm
        if rm is not None and virq in rm.virqs:
            return self._rm_link_virq(rm, virq)
        return self.handle_virq(vcpu, virq)

    def _rm_link_virq(self, rm: Any, virq: int):
        yield from rm.on_virq(virq)
        while rm.notifications:
            yield from self.on_rm_notification(rm.notifications.popleft())

    def handle_virq(self, vcpu: Vcpu, virq: int):
        return
        yield  # a generator that does nothing: the vIRQ is acknowledged and EOId

    def arm_timer(self, ns: int):
        """Program the vCPU's virtual timer ``ns`` ahead, as Linux programs its next event
        (LX drivers/clocksource/arm_arch_timer.c ``set_next_event``: read CTL, set ENABLE,
        clear IMASK, CVAL = CNTVCT + delta, write CTL)."""
        ctl = yield mrs(CNTV_CTL_EL0)
        now = yield mrs(CNTVCT_EL0)
        yield msr(CNTV_CVAL_EL0, now + ns_to_ticks(ns))
        yield msr(CNTV_CTL_EL0, (ctl | CNT_CTL_ENABLE) & ~CNT_CTL_IMASK)

    def timer_sleep(self, vcpu: Vcpu, ns: int):
        """Sleep ``ns`` on the vCPU's virtual timer: arm it, then WFI until it fires.
        Other vIRQs that wake the vCPU meanwhile are handled and it sleeps on."""
        self.timer_waiting.add(vcpu.index)
        yield from self.arm_timer(ns)
        while vcpu.index in self.timer_waiting:
            yield WFI

    def timer_virq(self, vcpu: Vcpu):
        """The timer's handler (LX arm_arch_timer.c ``timer_handler``): if ISTATUS is set,
        mask the timer (IMASK, which drops the level line before the EOI), end the sleep
        and run the program's tick (``on_tick``)."""
        ctl = yield mrs(CNTV_CTL_EL0)
        if ctl & CNT_CTL_ISTATUS:
            yield msr(CNTV_CTL_EL0, ctl | CNT_CTL_IMASK)
            self.timer_waiting.discard(vcpu.index)
            tick = self.on_tick(vcpu)
            if tick is not None:
                yield from tick

    def on_tick(self, vcpu: Vcpu):
        """The clockevent's handler: operations to run on a timer tick, or None."""
        return None

    def on_rm_notification(self, message: Any):
        """A graceful VM_STOP: the guest is told, and exits itself with VM_EXIT."""
        if message.msg_id == RmMessageId.NOTIFY_VM_SHUTDOWN:
            yield from self.rm.send(RmMessageId.VM_EXIT, VmExitReq().encode(),
                                    {"exit_code": "NORMAL"})

    def drain(self, rx: dict[str, Any]):
        """Receive until not_empty is false, as Linux's Rx handler does."""
        while True:
            result = yield hvc("msgqueue_receive", capid=rx["capid"])
            if result.error is not ERROR_OK:
                return
            self.received += 1
            more = self.on_message(result)
            if more is not None:
                yield from more
            if not result.ret["not_empty"]:
                return

    def on_message(self, result: Any):
        """A received message; may return operations to run (a generator), or None."""
        return None

    def wait_for_room(self):
        """After MSGQUEUE_FULL, sleep until the Tx vIRQ says the queue has room again
        (the handler clears ``full``), as Linux's msgq driver does; no busy retrying."""
        self.full = True
        while self.full:
            yield WFI


class PingClient(Guest):
    """Sends a message every ``period_ns``, asleep on its virtual timer in between (0: wait
    for each reply instead, a ping-pong)."""

    program = "ping"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.tx = self.need("MSG_QUEUE_SEND", params.get("tx"))
        self.rx = self.first("MSG_QUEUE_RECV", params.get("rx"))
        self.period = params.get("period_ns", DEFAULT_PERIOD_NS)
        self.size = params.get("size", DEFAULT_MSG_SIZE)
        self.flags = MSGQUEUE_SEND_FLAG_PUSH if params.get("push", True) else 0
        self.count = params.get("count")
        self.awaiting = False
        self.uses_timer = bool(self.period)  # it sleeps period_ns on the timer

    def run(self, vcpu: Vcpu):
        while self.count is None or self.sent < self.count:
            result = yield hvc("msgqueue_send", capid=self.tx["capid"], size=self.size,
                               flags=self.flags, payload=f"ping {self.sent}")
            if result.error is MSGQUEUE_FULL:
                yield from self.wait_for_room()
                continue
            if result.error is ERROR_OK:
                self.sent += 1
                self.awaiting = self.rx is not None
            if self.period:
                yield from self.timer_sleep(vcpu, self.period)
            else:
                while self.awaiting:
                    yield WFI

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if self.rx is not None and virq == self.rx["virq"]:
            yield from self.drain(self.rx)
        elif virq == self.tx["virq"]:
            self.full = False

    def on_message(self, result: Any):
        self.awaiting = False


class EchoServer(Guest):
    """Answers every message on its Rx queue with one on its Tx queue."""

    program = "echo"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.tx = self.need("MSG_QUEUE_SEND", params.get("tx"))
        self.rx = self.need("MSG_QUEUE_RECV", params.get("rx"))
        self.backlog: list[tuple[int, str]] = []

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if virq == self.rx["virq"]:
            yield from self.drain(self.rx)
        elif virq == self.tx["virq"]:
            yield from self.flush_backlog()

    def on_message(self, result: Any):
        self.backlog.append((result.ret["size"], f"echo {result.ret['payload']}"))
        return self.flush_backlog()

    def flush_backlog(self):
        while self.backlog:
            size, payload = self.backlog[0]
            result = yield hvc("msgqueue_send", capid=self.tx["capid"], size=size,
                               flags=MSGQUEUE_SEND_FLAG_PUSH, payload=payload)
            if result.error is MSGQUEUE_FULL:
                return  # the Tx vIRQ tells us when there is room again
            self.backlog.pop(0)
            self.sent += 1


class Producer(Guest):
    """Sends as fast as it can; on MSGQUEUE_FULL it waits for the Tx vIRQ (back-pressure)."""

    program = "producer"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.tx = self.need("MSG_QUEUE_SEND", params.get("tx"))
        self.size = params.get("size", DEFAULT_MSG_SIZE)
        self.flags = MSGQUEUE_SEND_FLAG_PUSH if params.get("push", False) else 0
        self.work_ns = params.get("work_ns", SIM_GUEST_WORK_NS)
        self.count = params.get("count")

    def run(self, vcpu: Vcpu):
        while self.count is None or self.sent < self.count:
            result = yield hvc("msgqueue_send", capid=self.tx["capid"], size=self.size,
                               flags=self.flags, payload=f"item {self.sent}")
            if result.error is MSGQUEUE_FULL:
                yield from self.wait_for_room()
                continue
            if result.error is ERROR_OK:
                self.sent += 1
            yield work(self.work_ns)

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if virq == self.tx["virq"]:
            self.full = False
        return
        yield


class Consumer(Guest):
    """Drains its queue on each Rx vIRQ, spending ``work_ns`` per message."""

    program = "consumer"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.rx = self.need("MSG_QUEUE_RECV", params.get("rx"))
        self.work_ns = params.get("work_ns", 4 * SIM_GUEST_WORK_NS)

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if virq == self.rx["virq"]:
            yield from self.drain(self.rx)

    def on_message(self, result: Any):
        return iter((work(self.work_ns),))


class DoorbellRinger(Guest):
    """Rings its doorbell with ``flags`` every ``period_ns``, asleep on its virtual timer in
    between.

    ``irqfd``: ring as Linux's irqfd injects a guest interrupt (LX ``gunyah_irqfd.c``,
    facts §4): always ``bell_send(1)``; a "level" irqfd first calls ``bell_set_mask(1,
    1)`` in ``gunyah_irqfd_populate`` so that bit 0 raises the vIRQ and clears itself at
    once; an "edge" one sets neither mask (one interrupt per send is enough; facts §11.2)."""

    program = "ringer"
    uses_timer = True

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.bell = self.need("DOORBELL_SRC", params.get("doorbell"))
        self.irqfd = params.get("irqfd")
        self.flags = IRQFD_FLAG if self.irqfd else params.get("flags", 1)
        self.period = params.get("period_ns", DEFAULT_PERIOD_NS)
        self.count = params.get("count")

    def run(self, vcpu: Vcpu):
        if self.irqfd == "level":
            yield hvc("doorbell_mask", capid=self.bell["capid"], enable_mask=IRQFD_FLAG,
                      ack_mask=IRQFD_FLAG)
        while self.count is None or self.sent < self.count:
            yield hvc("doorbell_send", capid=self.bell["capid"], new_flags=self.flags)
            self.sent += 1
            yield from self.timer_sleep(vcpu, self.period)


class DoorbellHandler(Guest):
    """On its doorbell vIRQ, reads and clears the flags, then does some work."""

    program = "bell-handler"

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.bell = self.need("DOORBELL", params.get("doorbell"))
        self.work_ns = params.get("work_ns", SIM_GUEST_WORK_NS)
        self.flags_seen = 0

    def handle_virq(self, vcpu: Vcpu, virq: int):
        if virq == self.bell["virq"]:
            result = yield hvc("doorbell_receive", capid=self.bell["capid"],
                               clear_flags=ALL_FLAGS)
            if result.error is ERROR_OK:
                self.received += 1
                self.flags_seen |= result.ret["old_flags"]
            yield work(self.work_ns)


class Spinner(Guest):
    """Computes forever in ``work_ns`` chunks: shows timeslices and preemption."""

    program = "spin"
    all_vcpus = True

    def run(self, vcpu: Vcpu):
        chunk = self.params.get("work_ns", SIM_GUEST_WORK_NS)
        while True:
            yield work(chunk)


class Ticker(Guest):
    """Computes in ``work_ns`` chunks with a periodic tick: its timer interrupts it every
    ``period_ns`` while it runs (the hardware timer's path), and its tick handler re-arms
    it, as a busy Linux vCPU's periodic tick does."""

    program = "ticker"
    uses_timer = True

    def __init__(self, vm: Vm, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.period = params.get("period_ns", DEFAULT_PERIOD_NS)
        self.chunk = params.get("work_ns", SIM_GUEST_WORK_NS)
        self.ticks = 0

    def run(self, vcpu: Vcpu):
        yield from self.arm_timer(self.period)
        while True:
            yield work(self.chunk)

    def on_tick(self, vcpu: Vcpu):
        self.ticks += 1
        return self.arm_timer(self.period)


class ExitAfter(Guest):
    """Works for ``work_ns``, then asks the RM to end the VM with VM_EXIT."""

    program = "exit-after"

    def run(self, vcpu: Vcpu):
        yield work(self.params.get("work_ns", 100 * SIM_GUEST_WORK_NS))
        if self.rm is not None:
            yield from self.rm.send(RmMessageId.VM_EXIT, VmExitReq().encode(),
                                    {"exit_code": "NORMAL"})


TOUCH_LABEL_BASE = 0xD0  # SIMULATOR: the word a page-toucher writes to its n-th page


class PageToucher(Guest):
    """Writes a word to each page of its demand-paging window, then reads them all back:
    each first touch is a page fault its owner serves (mem/demand_paging.py, facts
    §10.2), each later access is an ordinary stage-2 hit. With ``period_ns`` it reads
    them again every period, sleeping on its virtual timer between rounds (the pages
    stay: no more faults); without, it waits (WFI)."""

    program = "page-toucher"

    def run(self, vcpu: Vcpu):
        window = self.hyp.demand.get(self.vm.vmid) if self.hyp is not None else None
        if window is None:
            return
        gap = self.params.get("work_ns", SIM_GUEST_WORK_NS)
        pages = range(window.base, window.base + window.size, PAGE_SIZE)
        self.results: list[Any] = []
        for n, addr in enumerate(pages):
            yield work(gap)
            self.results.append((yield mem("W", addr, TOUCH_LABEL_BASE + n)))
        for addr in pages:
            yield work(gap)
            self.results.append((yield mem("R", addr)))
        period = self.params.get("period_ns")
        while period:
            yield from self.timer_sleep(vcpu, period)
            for addr in pages:
                yield work(gap)
                self.results.append((yield mem("R", addr)))
        while True:
            yield WFI


# SIMULATOR: where a PSCI guest's secondary vCPUs start (the IPA CPU_ON passes; the
# model has no guest code, so it only tells the program which path to run), an MPIDR no
# platform core has (Aff1 = 1), and the guest's default pacing.
SECONDARY_ENTRY = 0x8_0000
NO_SUCH_MPIDR = 0x100
PSCI_WORK_NS = 200_000
PSCI_SUSPEND_NS = 300_000
PSCI_POLL_NS = 100_000
PSCI_STEP_NS = 20_000  # boot-time work between vCPU 0's calls, so each can be watched
END_CALLS = {"off": "SYSTEM_OFF", "reset": "SYSTEM_RESET", "reset2": "SYSTEM_RESET2"}
CPU_SUSPEND_STANDBY = 0  # psci_suspend_powerstate: StateType 0 (standby), StateID 0


class PsciGuest(Guest):
    """Powers its vCPUs with PSCI as Linux's arm64 boot and cpuidle do, then ends the VM.

    vCPU 0 (the boot vCPU, the only one VM_START powers on) asks PSCI_VERSION, starts
    each secondary with CPU_ON at ``SECONDARY_ENTRY`` (context id = its index), starts
    vCPU 1 again (ALREADY_ON) and a CPU that does not exist (INVALID_PARAMETERS), polls
    AFFINITY_INFO until the secondaries are OFF, tries CPU_OFF itself (DENIED: it is the
    last one on) and ends the VM with ``end``: SYSTEM_OFF, SYSTEM_RESET or SYSTEM_RESET2.
    Each secondary works, suspends (CPU_SUSPEND, standby, woken by its timer after
    ``suspend_ns``), works again and turns itself off (CPU_OFF). facts §6.3, §7.2.
    """

    program = "psci"

    def main(self, vcpu: Vcpu):
        if vcpu.entry is not None and vcpu.entry[0] == SECONDARY_ENTRY:
            yield from self.secondary(vcpu)
        elif vcpu.index == 0:
            yield from self.run(vcpu)
        while True:
            yield WFI

    def run(self, vcpu: Vcpu):
        work_ns = self.params.get("work_ns", PSCI_WORK_NS)
        yield psci("PSCI_VERSION")
        others = range(1, len(self.vm.vcpus))
        for index in others:
            yield work(PSCI_STEP_NS)
            yield psci("CPU_ON", target=index, entry=SECONDARY_ENTRY, context=index)
        if others:
            yield work(PSCI_STEP_NS)
            yield psci("CPU_ON", target=1, entry=SECONDARY_ENTRY, context=1)
        yield work(PSCI_STEP_NS)
        yield psci("CPU_ON", target=NO_SUCH_MPIDR, entry=SECONDARY_ENTRY, context=0)
        for index in others:
            while (yield psci("AFFINITY_INFO", target=index, level=0)).name != "OFF":
                yield from self.timer_sleep(vcpu, PSCI_POLL_NS)
        yield psci("CPU_OFF")
        yield work(work_ns)
        end = END_CALLS[self.params.get("end", "off")]
        yield psci(end, **({"reset_type": 0, "cookie": 0} if end == "SYSTEM_RESET2" else {}))

    def secondary(self, vcpu: Vcpu):
        work_ns = self.params.get("work_ns", PSCI_WORK_NS)
        yield work(work_ns)
        yield psci("CPU_SUSPEND", power_state=CPU_SUSPEND_STANDBY, entry=SECONDARY_ENTRY,
                   context=vcpu.index, wake_ns=self.params.get("suspend_ns", PSCI_SUSPEND_NS))
        yield work(work_ns)
        yield psci("CPU_OFF")


PROGRAMS: dict[str, type[Guest]] = {
    cls.program: cls
    for cls in (Guest, PingClient, EchoServer, Producer, Consumer, DoorbellRinger,
                DoorbellHandler, Spinner, Ticker, ExitAfter, PsciGuest, PageToucher)
}
