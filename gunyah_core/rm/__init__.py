"""The Resource Manager VM (RM): its RPC wire format and message catalogue.

``rpc`` packs and unpacks RM RPC packets (header, fragmentation, reassembly),
``messages`` names every message id and error code, ``payloads`` encodes the
message bodies the simulator uses. All three are pure: no trace, no I/O.
"""
