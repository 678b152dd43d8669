"""Inter-VM communication objects: message queues and doorbells (hyp/ipc/msgqueue,
hyp/ipc/doorbell in the hypervisor source; facts §3, §4).
"""
