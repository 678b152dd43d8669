"""The hypervisor core: the event engine, the trace, FPRR scheduling, capability spaces,
kernel objects and the hypercall table (hyp/core and hyp/interfaces in the hypervisor
source). ``hypervisor.py`` puts them together.
"""
