"""How a vCPU runs its guest: a vIRQ handler interrupts the main flow and gives it back
exactly where it was, with the result of the hypercall it had just made."""

from __future__ import annotations

from gunyah_core import Hypervisor
from gunyah_core.consts import Error
from gunyah_core.guest.programs import WFI, Guest, hvc
from tests.core.conftest import MS, add_vm, start


class Recorder(Guest):
    """Sends once, then records what its main flow got back; counts vIRQs."""

    def __init__(self, vm, params):
        super().__init__(vm, params)
        self.results = []
        self.virqs = []

    def run(self, vcpu):
        result = yield hvc("msgqueue_send", capid=self.res("q:tx")["capid"], size=8,
                           payload="x")
        self.results.append(result)
        while True:
            yield WFI

    def handle_virq(self, vcpu, virq):
        self.virqs.append(virq)
        yield hvc("hypervisor_identify")  # leaves its own result behind


def make_machine(pending_before_start: bool):
    hyp = Hypervisor(seed=3, pcpus=4)
    a = add_vm(hyp, "VM_A", affinity=(2,))
    b = add_vm(hyp, "VM_B", affinity=(3,))
    hyp.create_msgq("q", a, b, 4, 64)
    hyp.create_msgq("back", b, a, 4, 64)
    a.guest = Recorder(a, {})
    if pending_before_start:  # a vIRQ already pending when the vCPU first runs
        hyp.msgqs["back"].rx_source.assert_()
    return hyp, a, b


def test_a_vcpu_whose_first_step_takes_a_virq_runs_its_program_afterwards():
    hyp, a, b = make_machine(pending_before_start=True)
    start(hyp, a, b)
    hyp.engine.run(until_ns=MS)
    assert a.guest.virqs == [a.resources["back:rx"]["virq"]]
    assert [r.error for r in a.guest.results] == [Error.OK]


def test_the_main_flow_keeps_its_hypercall_result_across_an_interrupt():
    hyp, a, b = make_machine(pending_before_start=False)
    start(hyp, a, b)
    # The send executes; a vIRQ then arrives before the main flow resumes.
    vcpu = a.vcpus[0]
    while vcpu.result is None:  # step until the send has been made
        assert hyp.engine.step()
    hyp.msgqs["back"].rx_source.assert_()
    hyp.engine.run(until_ns=MS)
    assert a.guest.virqs  # the handler ran in between ...
    assert [(r.error, sorted(r.ret)) for r in a.guest.results] == [(Error.OK, ["not_full"])]
