"""Memory: page ownership, stage-2 views and the RM's memparcels (hyp/mem in the
hypervisor source and the RM's memparcel.c; facts §8).
"""
