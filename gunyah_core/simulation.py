"""A Simulation: one scenario, one seed, one Hypervisor, and what people do to it.

``step()`` runs exactly one engine event and returns the trace events it produced;
``run()`` gives the same events as looping over ``step()``, faster. User actions (what
a person clicks) are recorded as ``user.action`` events and become hypercalls made by
the VM's own vCPU, so they fail with the same Gunyah errors a guest would see.
"""

from __future__ import annotations

from typing import Any

from .actions import ActionError, Actions
from .builder import build
from .core.trace import EventKind, Listener
from .rm.overlay import hypervisor_node
from .scenario import Scenario
from .teaching.invariants import Invariants

# Actions one run keeps (a shared link carries them all); the simulator's choice.
MAX_ACTIONS = 1_000

# Where a scenario's boot ends (scenario field ``boot_until``; the simulator's choice, a
# view of the run, not part of the model): "build" is the machine's construction at t=0
# (RM, VMs, capabilities, queues, vIRQ bindings, closed by the sim.snapshot event);
# "settled" adds the vCPUs' first scheduling moves after it (the RM and idle VMs going to
# WFI), up to the first event of another kind; an event kind ends the boot just before
# the first event of that kind.
BOOT_BUILD = "build"
BOOT_SETTLED = "settled"
BOOT_SETTLE_KINDS = frozenset({EventKind.VCPU_STATE, EventKind.SCHED_SWITCH})
# Events a boot may span past the build; a scenario whose boot goes on longer (its kind
# never comes, or it only schedules) gets the build alone as its boot.
BOOT_MAX_EVENTS = 2_000


class BootEnd:
    """Finds where the boot ends in a run's events, fed in order (``boot_until`` above)."""

    def __init__(self, until: str = BOOT_SETTLED) -> None:
        self.until = until
        self.count = 0        # events fed so far
        self.built: int | None = None  # events through sim.snapshot, once it came

    def feed(self, event: dict[str, Any]) -> int | None:
        """None while the boot may go on; else how many leading events it has (``event``
        or one before it is the first after them)."""
        kind = event["kind"]
        if self.built is None:
            self.count += 1
            if kind == EventKind.SIM_SNAPSHOT:
                self.built = self.count
                if self.until == BOOT_BUILD:  # known now: no need to run the next step
                    return self.built
            return None
        until = self.until
        if (until == BOOT_BUILD or (until == BOOT_SETTLED and kind not in BOOT_SETTLE_KINDS)
                or kind == until):
            return self.count
        self.count += 1
        if self.count - self.built > BOOT_MAX_EVENTS:
            return self.built
        return None

    def end(self) -> int:
        """The boot's length when the events ran out first (a model that went idle)."""
        return self.count if self.built is not None else 0


def boot_length(events: list[dict[str, Any]], until: str = BOOT_SETTLED) -> int | None:
    """How many of ``events`` (a run from its start) are its boot; None if they end
    before the boot does."""
    rule = BootEnd(until)
    for event in events:
        found = rule.feed(event)
        if found is not None:
            return found
    return None


class Simulation:
    """Steps the model; owns nothing web-related and never reads the wall clock."""

    def __init__(self, scenario: Scenario, seed: int | None = None, trace_on: bool = True,
                 check_invariants: bool = False) -> None:
        self.scenario = scenario
        self.seed = scenario.config["seed"] if seed is None else seed
        self.hyp = build(scenario, self.seed, trace_on)
        self.engine = self.hyp.engine
        self.trace = self.hyp.trace
        self.actions = Actions(self.hyp)
        # Every applied action with where it happened: replaying these reproduces the run.
        self.action_log: list[dict[str, Any]] = []
        self.invariants: Invariants | None = None
        if check_invariants:
            self.check_invariants()
        if self.trace.on:  # the timeline starts with the whole machine: replayable alone
            self.trace.emit(EventKind.SIM_SNAPSHOT, scenario=self.scenario_info(),
                            state=self.hyp.snapshot())

    def check_invariants(self) -> Invariants | None:
        """Check the live invariants on every event from now on, starting from the
        machine as it is (invariants.py). Off by default: it halves the model's event
        rate (benchmarks/bench_invariants.py). None when tracing is off (no events to
        check)."""
        if self.invariants is None and self.trace.on:
            self.invariants = Invariants(self.hyp)
            self.trace.subscribe(self.invariants)
        return self.invariants

    @property
    def now(self) -> int:
        return self.engine.now

    def subscribe(self, listener: Listener) -> None:
        """Stream every event to ``listener``, starting with those not yet taken (the boot)."""
        for event in self.trace.pending:
            listener(event)
        self.trace.subscribe(listener)

    @property
    def boot_until(self) -> str:
        return self.scenario.config.get("boot_until", BOOT_SETTLED)

    def boot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Run a new simulation through its boot (``boot_until``): (the boot's events,
        the events its last engine step made after them, not yet shown)."""
        rule = BootEnd(self.boot_until)
        events = self.trace.take()
        checked = 0
        while True:
            for event in events[checked:]:
                found = rule.feed(event)
                if found is not None:
                    return events[:found], events[found:]
            checked = len(events)
            if self.engine.peek() is None:
                return events[:rule.end()], events[rule.end():]
            events.extend(self.step())

    def step(self) -> list[dict[str, Any]]:
        """Run one engine event; return the trace events it produced (maybe none)."""
        self.engine.step()
        return self.trace.take()

    def run(self, until_ns: int | None = None, max_events: int | None = None,
            collect: bool = True) -> list[dict[str, Any]]:
        """Step until simulated time passes ``until_ns``, or until at least ``max_events``
        trace events were produced (a step's events are never split, so a few more may come).

        Events at exactly ``until_ns`` still run. With ``collect=False`` nothing is kept
        (listeners still see every event), so long runs stay in bounded memory.
        """
        engine, trace = self.engine, self.trace
        if max_events is None and not collect:
            trace.buffering = False  # the fast path: listeners see events, nothing is kept
            try:
                engine.run(until_ns)
            finally:
                trace.buffering = True
            if until_ns is not None and until_ns > engine.now:
                engine.now = until_ns
            return []
        out: list[dict[str, Any]] = []
        start_seq = trace.seq
        while True:
            if max_events is not None and trace.seq - start_seq >= max_events:
                break
            due = engine.peek()
            if due is None or (until_ns is not None and due > until_ns):
                if until_ns is not None and until_ns > engine.now:
                    engine.now = until_ns
                break
            engine.step()
            if collect:
                out.extend(trace.take())
            else:
                trace.pending.clear()
        return out

    def act(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """Apply a user action; ActionError on invalid input. Returns the ack payload."""
        if len(self.action_log) >= MAX_ACTIONS:
            raise ActionError("ACTION_LOG_FULL", f"this run has had {MAX_ACTIONS} actions, the "
                                                 "most one run keeps; reset or load to go on")
        entry = {"seq": self.trace.seq, "step": self.engine.processed, "t": self.engine.now,
                 "action": action, "args": args}
        ack = self.actions.apply(action, args)
        self.action_log.append(entry)
        return ack

    def advance_to_step(self, step: int) -> list[dict[str, Any]]:
        """Run until exactly ``step`` engine events have been processed; return the events."""
        self.engine.run(max_steps=step)
        return self.trace.take()

    @classmethod
    def replay(cls, scenario: Scenario, seed: int | None, actions: list[dict[str, Any]],
               through_seq: int | None = None) -> tuple[Simulation, list[dict[str, Any]]]:
        """Rebuild a run from its action log: the same events, byte for byte.

        Stops after the engine step that produced event ``through_seq`` (or after the last
        action when None), and returns the simulation and every event so far. Actions that
        came after ``through_seq`` are left out: this is how a rewound run forks.
        """
        sim = cls(scenario, seed)
        events = sim.trace.take()
        for entry in actions:
            if through_seq is not None and entry["seq"] > through_seq:
                break
            events.extend(sim.advance_to_step(entry["step"]))
            sim.engine.now = max(sim.engine.now, entry["t"])
            sim.act(entry["action"], entry["args"])
        while through_seq is not None and (not events or events[-1]["seq"] < through_seq):
            if sim.engine.peek() is None and not sim.trace.pending:
                break
            events.extend(sim.step())
        events.extend(sim.trace.take())
        return sim, events

    def device_tree(self, vm_name: str) -> str:
        """The ``hypervisor`` DT node the RM overlays into that VM's device tree (DTS)."""
        return hypervisor_node(self.hyp, self.hyp.vms[vm_name])

    def scenario_info(self) -> dict[str, Any]:
        config = self.scenario.config
        return {"name": self.scenario.name, "title": config.get("title", self.scenario.name),
                "description": config.get("description", ""), "seed": self.seed,
                "images": [image["name"] for image in self.hyp.images],
                **({"focus": config["focus"]} if "focus" in config else {}),
                **({"boot_until": config["boot_until"]} if "boot_until" in config else {})}

    def snapshot(self) -> dict[str, Any]:
        snap = self.hyp.snapshot()
        for vm in snap["vms"]:
            vm["dts"] = self.device_tree(vm["name"])
        snap["scenario"] = self.scenario_info()
        snap["images"] = snap["scenario"]["images"]
        return snap
