"""What a VM is made of: the VM record, its vCPUs, its virtual interrupt controller and
proxy scheduling with vcpu_run (hyp/vm in the hypervisor source; facts §7, §9).
"""

from .vm import Vm

__all__ = ["Vm"]
