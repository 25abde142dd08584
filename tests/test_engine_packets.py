"""The packets the checks leave to python-engineio are ones it decodes without fail."""

from __future__ import annotations

import sys

import pytest
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from whitelist.engine.packets import decodes_plainly, payload_decodes_plainly

# What makes python-engineio's decode fail, or read JSON: digits of other scripts, "b"
# for base64, brackets nested past the recursion limit, the payload separator.
PIECES = ["4", "2", "0", "3", "b", "٣", "x", "[", "{", '"', "]", "1e5", "\x1e", "d=", "=="]
DEEP = "[" * (sys.getrecursionlimit() + 10)
texts = st.lists(st.sampled_from([*PIECES, DEEP]), max_size=12).map("".join)
messages = st.one_of(texts, st.binary(max_size=8), st.builds(bytearray, st.binary(max_size=8)))


@settings(max_examples=1000, deadline=None, database=None, derandomize=True)
@given(messages)
def test_a_plain_packet_always_decodes(message: str | bytes) -> None:
    if decodes_plainly(message):
        eio_packet.Packet(encoded_packet=message)


@settings(max_examples=1000, deadline=None, database=None, derandomize=True)
@given(texts)
def test_a_plain_payload_always_decodes(text: str) -> None:
    if payload_decodes_plainly(text):
        eio_payload.Payload(encoded_payload=text)


@pytest.mark.parametrize(
    "message", ["40", '42["chat","hi"]', "2", "3", "41/admin,", b"\x00\xff", '451-["a",{}]']
)
def test_socket_io_traffic_is_plain(message: str | bytes) -> None:
    assert decodes_plainly(message)
    if isinstance(message, str):  # a long-polling payload is text
        assert payload_decodes_plainly("\x1e".join([message] * 16))


@pytest.mark.parametrize(
    "message",
    ["", "b", "bAAA", "٣", "٣[", "4" + DEEP, "x", "3probe", "4{}", bytearray(b"4"), None],
)
def test_everything_else_is_decoded_by_the_check(message: object) -> None:
    assert not decodes_plainly(message)


def test_payloads_over_python_engineios_packet_count_are_decoded_by_the_check() -> None:
    count = eio_payload.Payload.max_decode_packets + 1
    assert not payload_decodes_plainly("\x1e".join(["2"] * count))
    with pytest.raises(ValueError):
        eio_payload.Payload(encoded_payload="\x1e".join(["2"] * count))
