"""Socket.IO packets from the wire, decoded without letting a malformed one escape.

python-socketio decodes a packet before any handler runs: JSON that does not parse
(truncated, an integer of more than 100 digits, which python-engineio's JSON refuses,
100,000 levels deep), an event packet whose data is not a list starting with a name (a
dict there is unhashable), or a packet type a client never sends raised inside the library,
which logged a traceback and sent no ack. Here each of them becomes the event
``BAD_PACKET_EVENT`` carrying a reason, so the handler of that event answers it like any
other refusal: an error ack when the packet had an ack id, else ``server:error``.
"""

from __future__ import annotations

from typing import Any

from socketio import packet

from .protocol import MAX_NAME_CHARS

BAD_PACKET_EVENT = "\x00bad-packet"  # no client can mean it: event names are for people
# What a client may send: connect, disconnect, event, and acks of server events.
_CLIENT_TYPES = (packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK)


class TolerantPacket(packet.Packet):
    """A Packet whose decode() never raises; binary packets are not used here.

    Nor sent: the server emits JSON only, so a packet need not walk its payload looking
    for bytes, which python-socketio otherwise does for every value of every event of a
    sim:trace batch (as long as encoding it to JSON, under load)."""

    uses_binary_events = False

    def decode(self, encoded_packet: Any) -> int:
        try:
            attachments = super().decode(encoded_packet)
        except (ValueError, RecursionError, TypeError) as err:
            return self._refuse(f"the packet does not decode ({_reason(err)})")
        if self.packet_type not in _CLIENT_TYPES or attachments:
            return self._refuse(f"packet type {str(self.packet_type)[:MAX_NAME_CHARS]!r} "
                                "is not accepted from a client")
        if self.packet_type == packet.EVENT and (not isinstance(self.data, list)
                                                 or not self.data
                                                 or not isinstance(self.data[0], str)):
            return self._refuse("an event packet must be a list: [name (a string), payload?]")
        return 0

    def _refuse(self, reason: str) -> int:
        if self.packet_type == packet.ACK:  # an ack of ours that does not parse: no args
            self.data = []
            return 0
        if self.packet_type == packet.CONNECT:  # an auth that does not decode: no resume
            self.data = None
            return 0
        self.packet_type = packet.EVENT  # the ack id, read before the JSON, is kept
        self.data = [BAD_PACKET_EVENT, reason]
        return 0


def _reason(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err)[:MAX_NAME_CHARS]
