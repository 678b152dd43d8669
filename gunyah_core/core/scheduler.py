"""FPRR scheduler, one per physical CPU (hyp/core/scheduler_fprr).

64 priorities, 0 lowest and 63 highest; a FIFO run list per priority plus a bitmap.
A higher priority preempts at once; an equal one waits for the timeslice to expire.
A preempted thread goes back to the *head* of its list keeping what is left of its
slice; an expired one, or one that wakes from a block, goes to the tail with a fresh
slice (facts §7.1). No automatic migration: a vCPU only runs on its affinity pCPU.
Each ``sched.switch`` carries ``slice_ns``: what the incoming thread may run.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..consts import SCHEDULER_NUM_PRIORITIES
from ..vm import vcpu_run
from ..vm.vcpu import BLOCK_VCPU_OFF, BLOCK_VCPU_RUN, BLOCK_VCPU_WFI, STATE_OF_BLOCK
from ..vm.vcpu_run import (
    BLOCK_PROXY_CALLER,
    KIND_VCPU_RUN,
    KIND_YIELD_TO,
    ProxyRun,
    VcpuRunState,
    trace_run,
)

if TYPE_CHECKING:
    from ..vm.vcpu import Vcpu
    from .engine import Engine
    from .executor import Executor
    from .trace import Trace

REASON_PREEMPT = "preempt"
REASON_TIMESLICE = "timeslice"
REASON_BLOCK = "block"
REASON_WAKE = "wake"
REASON_YIELD = "yield"
REASON_YIELD_TO = "yield_to"


class PcpuScheduler:
    """Run lists and the current thread of one physical CPU."""

    def __init__(self, index: int, engine: Engine, trace: Trace, executor: Executor) -> None:
        self.index = index
        self.engine = engine
        self.trace = trace
        self.executor = executor
        self.runq: list[deque[Vcpu]] = [deque() for _ in range(SCHEDULER_NUM_PRIORITIES)]
        self.bitmap = 0
        self.current: Vcpu | None = None
        self.slice_start = 0
        # One lazily kept expiry event: it may be due before the current slice really
        # ends (then it re-arms itself); switches only move it when the end is earlier.
        # ``slice_end`` is the current thread's; read only while there is one (every
        # ``_switch`` to a thread sets it through ``_arm``).
        self.expiry: list | None = None
        self.expiry_due = 0
        self.slice_end = 0
        self.proxy: ProxyRun | None = None  # a vcpu_run in progress here

    # -- run lists -------------------------------------------------------------------
    def _push(self, vcpu: Vcpu, head: bool) -> None:
        q = self.runq[vcpu.priority]
        if head:
            q.appendleft(vcpu)
        else:
            q.append(vcpu)
        self.bitmap |= 1 << vcpu.priority

    def _pop_highest(self) -> Vcpu | None:
        if not self.bitmap:
            return None
        prio = self.bitmap.bit_length() - 1
        q = self.runq[prio]
        vcpu = q.popleft()
        if not q:
            self.bitmap &= ~(1 << prio)
        return vcpu

    def _remove(self, vcpu: Vcpu) -> None:
        q = self.runq[vcpu.priority]
        if vcpu in q:
            q.remove(vcpu)
            if not q:
                self.bitmap &= ~(1 << vcpu.priority)

    def highest_waiting(self) -> int:
        """Priority of the best waiting thread, -1 when the run lists are empty."""
        return self.bitmap.bit_length() - 1

    # -- transitions ------------------------------------------------------------------
    def wake(self, vcpu: Vcpu, reason: str) -> None:
        """A thread became runnable: run it now, preempt with it, or queue it.

        It starts a fresh timeslice and joins the *tail* of its list, whatever was left
        of its old slice when it blocked (facts §7.1 "requeue"; H-SRC scheduler_fprr.c
        ``add_thread_to_scheduler`` calls ``reset_sched_params`` then ``add_to_runqueue``
        at the tail).
        """
        vcpu.slice_left = vcpu.timeslice_ns
        self._place(vcpu, reason)

    def _place(self, vcpu: Vcpu, reason: str) -> None:
        """Run a runnable thread now, preempt with it, or queue it at its list's tail.

        It is compared with the pCPU's *active* thread. During a vcpu_run that is the
        caller, on whose slice the proxied vCPU (priority 0) runs, not the proxied vCPU
        (facts §7.1 "wake preemption check"; H-SRC scheduler_fprr.c: the yielder stays
        ``scheduler->active_thread``, ``add_thread_to_scheduler`` tests ``prio >=
        active_thread->prio``, ``get_next_target`` switches only on ``prio > active``
        while the active slice lasts). So a lower or equal priority wake leaves the
        vcpu_run running; a higher one preempts the caller, whose yield is only
        suspended (``_preempt_yield``).
        """
        cur = self.current
        proxy = self.proxy
        if proxy is not None and cur is proxy.target:
            if vcpu.priority > proxy.caller.priority:
                self._preempt_yield(vcpu)
            else:
                vcpu.set_state("ready", reason)
                self._push(vcpu, head=False)
            return
        if cur is None:
            self._switch(vcpu, REASON_WAKE + ":" + reason)
        elif vcpu.priority > cur.priority:
            # A slice that runs out at this very instant counts as expired (H-SRC
            # scheduler_fprr.c update_timeslice: timeout <= now resets the slice;
            # get_next_target then queues it with add_to_runqueue at the tail).
            expired = cur.slice_left <= self.engine.now - self.slice_start
            if expired:
                cur.slice_left = cur.timeslice_ns
            self._switch_out(cur, head=not expired, fresh=expired)
            self._switch(vcpu, REASON_PREEMPT, prev=cur)
        else:
            vcpu.set_state("ready", reason)
            self._push(vcpu, head=False)

    def block(self, vcpu: Vcpu, reason: str) -> None:
        """A thread stopped being runnable: take it off the CPU or out of its list."""
        if vcpu.yielding is not None:
            self.cancel_yield(vcpu)
        if self.proxy is not None and vcpu is self.proxy.target:
            self.end_proxy(None, block=reason)  # the target cannot continue: say why
            return
        if vcpu is self.current:
            self._switch_out(vcpu, head=None)
            vcpu.set_state(STATE_OF_BLOCK[reason], reason)
            self._switch(self._pop_highest(), f"{REASON_BLOCK}:{reason}", prev=vcpu)
        else:
            self._remove(vcpu)
            vcpu.set_state(STATE_OF_BLOCK[reason], reason)

    def yield_(self, vcpu: Vcpu) -> None:
        """scheduler_yield hint 0 (H-SRC scheduler_fprr.c ``scheduler_yield``; facts §7.1).

        The rest of the slice is discarded (``active_timeslice = 0``), so the thread
        has expired: it takes a fresh slice and goes to the tail when an equal or
        higher priority waits, else runs on with the fresh slice. Called by the target
        of a directed yield, it ends that yield instead (``end_directed_yield``): the
        yielder resumes (a vcpu_run returns READY).
        """
        proxy = self.proxy
        if proxy is not None and vcpu is proxy.target:
            self.end_proxy(VcpuRunState.READY)
            return
        if vcpu is not self.current:
            return
        vcpu.slice_left = vcpu.timeslice_ns
        if self.highest_waiting() >= vcpu.priority:
            self._switch_out(vcpu, head=False, fresh=True)
            self._switch(self._pop_highest(), REASON_YIELD, prev=vcpu)
        else:
            self.slice_start = self.engine.now
            self._arm(self.engine.now + vcpu.slice_left)

    def yield_to(self, caller: Vcpu, target: Vcpu) -> None:
        """scheduler_yield hint 1: run ``target`` here on the rest of ``caller``'s slice
        (H-SRC scheduler_fprr.c ``scheduler_yield_to``, ``select_yield_target``).

        Only if ``can_yield_to``: the target's affinity is this pCPU, it is runnable and
        not running; and not if the caller has a vIRQ pending (``vcpu_pending_wakeup``).
        Otherwise the call returns at once. The yield lasts until the target blocks or
        yields, the caller's slice ends or the caller gets a vIRQ; a thread of higher
        priority than the caller only suspends it (``_preempt_yield``). The target stays
        in its run list meanwhile and keeps its own slice. Called by the target of a
        directed yield, it ends that yield. SIMULATOR choice: a target that yields on to
        a third thread ends the yield rather than redirecting the yielder to it.
        """
        proxy = self.proxy
        if proxy is not None and caller is proxy.target:
            self.end_proxy(VcpuRunState.READY)
            return
        vic = caller.vic
        if vic is not None and vic.has_pending_for(caller):
            return
        if target.sched is not self or target.blocked or target is self.current:
            return
        self.proxy = run = ProxyRun(caller, target, KIND_YIELD_TO, target.slice_left)
        caller.blocked.add(run.caller_block)
        self._switch_out(caller, head=None)
        caller.set_state(STATE_OF_BLOCK[run.caller_block], run.caller_block)
        target.slice_left = caller.slice_left
        self._switch(target, REASON_YIELD_TO, prev=caller)

    def set_priority(self, vcpu: Vcpu, priority: int) -> None:
        """Move a thread to another priority, re-deciding who runs."""
        proxy = self.proxy
        if proxy is not None and vcpu in (proxy.caller, proxy.target):
            vcpu.priority = priority  # the caller stays the active thread: compare with it
            if self.highest_waiting() > proxy.caller.priority:
                self._preempt_yield(self._pop_highest())
            return
        if vcpu is self.current:
            vcpu.priority = priority
            if self.highest_waiting() > priority:
                self._switch_out(vcpu, head=True)
                self._switch(self._pop_highest(), REASON_PREEMPT, prev=vcpu)
        elif vcpu.runnable and vcpu.sched is self:
            self._remove(vcpu)
            vcpu.priority = priority
            self.wake(vcpu, "priority")
        else:
            vcpu.priority = priority

    def _arm(self, end: int) -> None:
        """The current thread's slice ends at ``end``: make sure an expiry is due by then."""
        self.slice_end = end
        if self.expiry is None or self.expiry_due > end:
            self.engine.cancel(self.expiry)
            self.expiry = self.engine.schedule(end - self.engine.now, self._expire)
            self.expiry_due = end

    def _expire(self) -> None:
        cur = self.current
        self.expiry = None
        if cur is None:
            return
        if self.engine.now < self.slice_end:  # an early expiry: the slice goes on
            self._arm(self.slice_end)
            return
        if self.proxy is not None and cur is self.proxy.target:
            self.end_proxy(VcpuRunState.READY, expired=True)  # the donated slice is used up
            return
        cur.slice_left = cur.timeslice_ns
        if self.highest_waiting() >= cur.priority:
            self._switch_out(cur, head=False, fresh=True)
            self._switch(self._pop_highest(), REASON_TIMESLICE, prev=cur)
        else:
            self.slice_start = self.engine.now
            self._arm(self.engine.now + cur.slice_left)

    # -- proxy scheduling (vcpu_run) -------------------------------------------------------
    def donate(self, caller: Vcpu, target: Vcpu) -> None:
        """Directed yield: ``target`` runs here on the rest of ``caller``'s timeslice."""
        self.proxy = ProxyRun(caller, target)
        trace_run(self, self.proxy, "enter", "running")
        caller.blocked.add(BLOCK_PROXY_CALLER)
        self._switch_out(caller, head=None)
        caller.set_state(STATE_OF_BLOCK[BLOCK_PROXY_CALLER], BLOCK_PROXY_CALLER)
        target.sched, target.affinity = self, self.index
        target.slice_left = caller.slice_left
        target.blocked.discard(BLOCK_VCPU_RUN)
        self._switch(target, "vcpu_run", prev=caller)

    def end_proxy(self, state: VcpuRunState | None, expired: bool = False,
                  block: str | None = None, prev: Vcpu | None = None) -> None:
        """Finish the directed yield here and resume the caller. For a vcpu_run the
        target is parked again and the call returns ``state`` (None: work it out from
        why the target stopped, ``block``); a yield target stays in its run list.

        The target ran on the caller's slice, so the caller is charged for it (H-SRC
        scheduler_fprr.c ``update_timeslice`` runs on the active thread, the caller).
        ``expired``: that slice is used up; the caller gets a fresh one and yields to an
        equal priority at the tail (``get_next_target`` with ``timeslice_expired``).
        """
        run, self.proxy = self.proxy, None
        target, caller = run.target, run.caller
        was_running = self.current is target
        if was_running:
            left = max(0, target.slice_left - (self.engine.now - self.slice_start))
            self.executor.suspend(target)
            self.current = None
            caller.slice_left = left
            if run.kind == KIND_VCPU_RUN:
                target.slice_left = left
        if expired:
            caller.slice_left = caller.timeslice_ns
        self._stop_target(run, state, block)
        caller.blocked.discard(run.caller_block)
        if was_running:
            prev = target
        if caller.blocked:  # e.g. powered off meanwhile
            if self.current is None:
                self._switch(self._pop_highest(), f"{REASON_BLOCK}:{run.caller_block}",
                             prev=prev)
            return
        if self.highest_waiting() > caller.priority or (
                expired and self.highest_waiting() == caller.priority):
            caller.set_state("ready", REASON_TIMESLICE if expired else REASON_PREEMPT)
            self._push(caller, head=not expired)
            self._switch(self._pop_highest(), REASON_TIMESLICE if expired else REASON_PREEMPT,
                         prev=prev)
        else:
            self._switch(caller, f"{run.kind}:return", prev=prev)

    def _stop_target(self, run: ProxyRun, state: VcpuRunState | None,
                     block: str | None) -> None:
        """The yield is over for its target: a vcpu_run target is parked again and the
        call's result set (traced as ``vcpu.run`` exit); a yield target keeps its place
        in its run list and its own slice. A vcpu_run target is in no run list: it
        enters none when it is donated to (``donate``) nor when the yield is suspended
        (``_preempt_yield``)."""
        target, caller = run.target, run.caller
        if run.kind == KIND_YIELD_TO:
            target.slice_left = run.own_slice
            if block is not None:
                self._remove(target)
                target.set_state(STATE_OF_BLOCK[block], block)
            else:
                target.set_state("ready", f"{KIND_YIELD_TO}:end")
            return
        target.blocked.add(BLOCK_VCPU_RUN)
        outcome = (vcpu_run.result(state) if state is not None else
                   vcpu_run.state_of_stopped(target, BLOCK_VCPU_OFF, BLOCK_VCPU_WFI))
        target.set_state(STATE_OF_BLOCK[BLOCK_VCPU_RUN], outcome.ret["state"])
        caller.result = outcome
        trace_run(self, run, "exit", outcome.ret["state"])

    def _preempt_yield(self, by: Vcpu) -> None:
        """A thread above the caller preempts it in the middle of a directed yield.

        The caller goes to the head of its list with the rest of its slice and stays
        *yielding*: when it is picked again, its yield resumes (H-SRC scheduler_fprr.c:
        ``scheduler_yielding`` is left set, ``get_next_target`` requeues the caller at
        the head, ``select_yield_target`` yields to the target again). A vcpu_run does
        not return for this (H-API says it returns when the caller is preempted: the
        source that runs is followed; facts §7.2).
        """
        run, self.proxy = self.proxy, None
        target, caller = run.target, run.caller
        caller.slice_left = max(0, target.slice_left - (self.engine.now - self.slice_start))
        self.executor.suspend(target)
        self.current = None
        target.slice_left = run.own_slice if run.kind == KIND_YIELD_TO else caller.slice_left
        target.set_state("ready", REASON_PREEMPT)
        if run.kind == KIND_VCPU_RUN:
            trace_run(self, run, "preempted", "running")
        caller.blocked.discard(run.caller_block)
        caller.yielding = run
        caller.set_state("ready", REASON_PREEMPT)
        self._push(caller, head=True)
        self._switch(by, REASON_PREEMPT, prev=target)

    def _resume_yield(self, caller: Vcpu, prev: Vcpu | None) -> None:
        """The caller of a preempted directed yield is picked again: it yields to its
        target again if it still can (``can_yield_to``), else the yield ends and the
        caller runs (H-SRC scheduler_fprr.c ``select_yield_target``).

        Of ``can_yield_to``'s tests only "runnable" can fail here: no thread changes
        pCPU in this model but a vcpu_run target (moved by ``donate``), and that one is
        never a yield_to target (always blocked by vcpu_run when not running); neither
        target can be running elsewhere."""
        run, caller.yielding = caller.yielding, None
        target = run.target
        self.proxy = run
        caller.blocked.add(run.caller_block)
        if target.blocked:
            self.end_proxy(None, block=min(target.blocked), prev=prev)
            return
        caller.set_state(STATE_OF_BLOCK[run.caller_block], f"{run.kind}:resume")
        if run.kind == KIND_YIELD_TO:
            run.own_slice = target.slice_left
        else:
            trace_run(self, run, "resume", "running")
        target.slice_left = caller.slice_left
        self._switch(target, run.kind, prev=prev)

    def cancel_yield(self, caller: Vcpu) -> None:
        """End the suspended directed yield of a caller waiting in a run list: it got a
        vIRQ (H-SRC ``scheduler_fprr_handle_vcpu_wakeup`` clears ``scheduler_yielding``)
        or it blocks; a vcpu_run then returns READY when the caller runs."""
        run, caller.yielding = caller.yielding, None
        self._stop_target(run, VcpuRunState.READY, None)

    # -- the context switch --------------------------------------------------------------
    def _switch_out(self, vcpu: Vcpu, head: bool | None, fresh: bool = False) -> None:
        """Stop ``vcpu``; requeue it at the head (preempted) or tail, or not (``head``
        None: it blocks, and the caller sets its blocked state)."""
        now = self.engine.now
        if not fresh:
            vcpu.slice_left = max(0, vcpu.slice_left - (now - self.slice_start))
        self.executor.suspend(vcpu)
        self.current = None
        if head is not None:
            vcpu.set_state("ready", REASON_PREEMPT if head else REASON_TIMESLICE)
            self._push(vcpu, head)

    def _switch(self, nxt: Vcpu | None, reason: str, prev: Vcpu | None = None) -> None:
        if nxt is not None and nxt.yielding is not None:
            self._resume_yield(nxt, prev)
            return
        if nxt is not None and nxt.slice_left <= 0:
            nxt.slice_left = nxt.timeslice_ns
        if self.trace.on:
            self.trace.sched_switch(self.index, prev.id if prev else None,
                                    nxt.id if nxt else None, reason,
                                    nxt.slice_left if nxt else None,
                                    nxt.priority if nxt else None,
                                    prev.priority if prev else None,
                                    prev.slice_left if prev else None)
        self.current = nxt
        if nxt is None:
            return
        if nxt.pending_hvc is not None:
            self._hvc_returns(nxt)
        self.slice_start = self.engine.now
        self._arm(self.slice_start + nxt.slice_left)
        nxt.set_state("running", reason)
        self.executor.resume(nxt)

    def _hvc_returns(self, vcpu: Vcpu) -> None:
        """A call that yielded (vcpu_run) returns now that its caller runs: its ``hvc``
        event carries the real result registers (state, data0..2)."""
        name, call, args, action = vcpu.pending_hvc
        vcpu.pending_hvc = None
        if self.trace.on:
            result = vcpu.result
            self.trace.hvc(vcpu.vm.name, vcpu.id, name, call, args, result.error.name,
                           result.ret, action)

    def snapshot(self) -> dict:
        return {
            "pcpu": self.index,
            "current": self.current.id if self.current else None,
            "runq": [v.id for prio in range(SCHEDULER_NUM_PRIORITIES - 1, -1, -1)
                     for v in self.runq[prio]],
        }
