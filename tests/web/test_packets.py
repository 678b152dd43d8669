"""Packets the server sends: JSON only, encoded without walking the payload for bytes."""

from __future__ import annotations

from socketio import packet

from webapp.packets import TolerantPacket


class Payload(dict):
    """A dict that counts how often something walks its values."""

    walked = 0

    def values(self):
        Payload.walked += 1
        return super().values()


def test_an_outgoing_event_is_not_searched_for_binary_parts():
    Payload.walked = 0
    data = ["sim:trace", Payload(events=[Payload(seq=1, kind="hvc")])]
    pkt = TolerantPacket(packet.EVENT, data=data, namespace="/")
    assert pkt.packet_type == packet.EVENT
    assert pkt.encode() == '2["sim:trace",{"events":[{"seq":1,"kind":"hvc"}]}]'
    assert Payload.walked == 0
