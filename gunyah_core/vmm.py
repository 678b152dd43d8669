"""A proxy VMM: the owner's loop around ``vcpu_run``, as Linux's gunyah_vcpu does.

READY means "my own slice ended or I have an interrupt: call again"; EXPECTS_WAKEUP
and POWERED_OFF mean "wait for the wakeup vIRQ, then call again" (facts §7.2). The
owner's own work (its vIRQ handlers) runs in between.
"""

from __future__ import annotations

from typing import Any

from .consts import Error
from .guests import WFI, Guest, hvc

CALL_AGAIN = {"READY", "BLOCKED"}


class ProxyVmm(Guest):
    """Runs the vCPUs of the VM named ``peer`` on its own vCPU's time."""

    program = "vmm"

    def __init__(self, vm: Any, params: dict[str, Any]) -> None:
        super().__init__(vm, params)
        self.target = next((r for key, r in vm.resources.items() if key.startswith("proxy:")
                            and r["partner"] == params.get("peer")), None)
        self.wait_wakeup = False
        self.runs: list[str] = []

    def run(self, vcpu):
        if self.target is None:
            yield from self.serve_jobs()
        while True:
            result = yield hvc("vcpu_run", capid=self.target["capid"])
            if result.error is not Error.OK:
                self.runs.append(result.error.name)
                yield WFI
                continue
            state = result.ret.get("state", "READY")
            self.runs.append(state)
            if state not in CALL_AGAIN:
                self.wait_wakeup = True
                while self.wait_wakeup:
                    yield WFI

    def handle_virq(self, vcpu, virq: int):
        if self.target is not None and virq == self.target["virq"]:
            self.wait_wakeup = False
        return
        yield
