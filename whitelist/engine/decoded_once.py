"""Each Socket.IO event decoded once: the guard's decode handed on to python-socketio.

The guard reads an event before python-socketio dispatches it (``messages``),
and python-socketio decodes every message again
(``self.packet_class(encoded_packet=data)``, contract ``whitelist.W104``): an
event's JSON was parsed twice. For the moment python-socketio dispatches an
event the guard has decoded, ``DecodedOnce`` sets the server's packet class to
a subclass whose constructor, asked to decode that very message object, returns
the guard's packet. Only then: the subclass's constructor costs every packet
python-socketio builds a Python call, more than a connect's small packet saves.

The hand-over is a plain attribute, not a thread-local (whose every access cost
more than the decode under eventlet): a packet is reused only for the identical
object it was decoded from, which the hand-over keeps alive, so threads that
overlap only make python-socketio decode again, as before.
"""

from __future__ import annotations

from typing import Any

_NOTHING: tuple[Any, Any] = (None, None)


class DecodedOnce:
    """The hand-over of one server's decoded events."""

    def __init__(self, server: Any) -> None:
        self.packet_class: type = server.packet_class  # what the guard decodes with
        self.handed = _NOTHING
        once = self

        class ReusingPacket(self.packet_class):  # type: ignore[misc,valid-type]
            def __new__(cls, *args: Any, encoded_packet: Any = None, **kwargs: Any) -> Any:
                if encoded_packet is not None:
                    data, decoded = once.handed
                    if encoded_packet is data:
                        once.handed = _NOTHING  # once: a second decode of it decodes
                        return decoded  # not a ReusingPacket: not initialised again
                return super().__new__(cls)

        self.reusing_class = ReusingPacket

    def decoder(self, server: Any) -> type:
        """The class python-socketio decodes this server's messages with now: the
        application may set its own after the guard was installed."""
        current = server.packet_class
        return self.packet_class if current is self.reusing_class else current

    def hand_over(self, server: Any, data: Any, decoded: Any) -> None:
        """python-socketio's next decode of ``data`` gets ``decoded``, until ``take_back``.

        Not if another packet class was set on the server since (then it is its own).
        """
        if server.packet_class is self.packet_class:
            self.handed = (data, decoded)
            server.packet_class = self.reusing_class

    def take_back(self, server: Any) -> None:
        """The event is dispatched: the server's own packet class again."""
        if server.packet_class is self.reusing_class:
            server.packet_class = self.packet_class
        self.handed = _NOTHING
