"""The guard's decoded event is the one python-socketio dispatches: no second decode."""

from __future__ import annotations

import socketio
from socketio import packet

from whitelist.engine.decoded_once import DecodedOnce

EVENT = '2["chat",{"text":"hi"}]'  # a Socket.IO EVENT, as python-engineio hands it on


def installed() -> tuple[socketio.Server, DecodedOnce]:
    server = socketio.Server(async_mode="threading")
    return server, DecodedOnce(server)


def test_the_handed_over_packet_is_what_python_socketio_gets() -> None:
    server, once = installed()
    decoded = once.packet_class(encoded_packet=EVENT)
    once.hand_over(server, EVENT, decoded)
    assert server.packet_class(encoded_packet=EVENT) is decoded


def test_only_once_and_only_for_that_very_message() -> None:
    server, once = installed()
    decoded = once.packet_class(encoded_packet=EVENT)
    equal_but_another = "".join(EVENT)  # equal, not the same object
    once.hand_over(server, EVENT, decoded)
    assert equal_but_another is not EVENT
    assert server.packet_class(encoded_packet=equal_but_another) is not decoded
    assert server.packet_class(encoded_packet=EVENT) is decoded
    again = server.packet_class(encoded_packet=EVENT)
    assert again is not decoded and again.data == decoded.data


def test_the_servers_own_packet_class_is_back_after_take_back() -> None:
    server, once = installed()
    once.hand_over(server, EVENT, once.packet_class(encoded_packet=EVENT))
    once.take_back(server)
    assert server.packet_class is packet.Packet
    assert server.packet_class(encoded_packet=EVENT).data == ["chat", {"text": "hi"}]


def test_packets_python_socketio_builds_meanwhile_are_its_own() -> None:
    server, once = installed()
    once.hand_over(server, EVENT, once.packet_class(encoded_packet=EVENT))
    built = server.packet_class(packet.EVENT, namespace="/chat", data=["said", 1], id=7)
    plain = packet.Packet(packet.EVENT, namespace="/chat", data=["said", 1], id=7)
    assert isinstance(built, packet.Packet)
    assert built.encode() == plain.encode()


def test_a_packet_class_the_application_set_is_left_alone() -> None:
    server, once = installed()

    class Custom(packet.Packet):
        pass

    server.packet_class = Custom
    once.hand_over(server, EVENT, once.packet_class(encoded_packet=EVENT))
    assert server.packet_class is Custom
    once.take_back(server)
    assert server.packet_class is Custom


def test_the_guard_decodes_with_the_class_the_application_set() -> None:
    """Else a serializer set after the guard would be read one way and dispatched another."""
    server, once = installed()

    class Custom(packet.Packet):
        pass

    assert once.decoder(server) is packet.Packet
    once.hand_over(server, EVENT, once.packet_class(encoded_packet=EVENT))
    assert once.decoder(server) is packet.Packet  # the hand-over's class is not the app's
    once.take_back(server)
    server.packet_class = Custom
    assert once.decoder(server) is Custom
