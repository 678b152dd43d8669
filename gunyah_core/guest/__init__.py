"""Software running inside the VMs: the guest programs scenarios name, and the primary
VM's VM manager (the Linux driver's part; facts §6). Not part of the hypervisor.
"""
