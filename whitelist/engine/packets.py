"""Engine.IO packets python-engineio decodes without reading JSON or base64: they cannot fail.

python-engineio reads a text packet's type from its first character with ``int()``,
then JSON from the rest unless the second character is a digit; ``b`` starts
base64; bytes are a binary message as they are. Every Socket.IO packet (``40``,
``42[...]``) has a digit after its type and a ping or pong has nothing: for those
python-engineio keeps the rest as a string, and no input can make the decode
fail. The checks ahead of python-engineio (``websockets``, ``polling``) decode
only the other packets, so the common ones are decoded once, by python-engineio
(contract ``whitelist.E111``).
"""

from __future__ import annotations

from engineio import payload

SEPARATOR = "\x1e"


def decodes_plainly(message: object) -> bool:
    """Is ``message`` a packet python-engineio decodes without JSON or base64?"""
    if type(message) is bytes:
        return True
    if type(message) is not str:
        return False
    head = message[:2]
    return head.isdigit() and head.isascii()


def payload_decodes_plainly(text: str) -> bool:
    """Is every packet of this long-polling payload one python-engineio decodes plainly?

    An empty payload is no packet at all; a JSONP one (``d=``) never qualifies.
    """
    if not text:
        return True
    packets = text.split(SEPARATOR)
    return len(packets) <= payload.Payload.max_decode_packets and all(map(decodes_plainly, packets))
