"""The gate reads the query string exactly as parse_qs, quicker where nothing is encoded."""

from __future__ import annotations

from urllib.parse import parse_qs

from hypothesis import given, settings
from hypothesis import strategies as st

from whitelist.gate.origin_gate import query_fields

PIECES = ["EIO", "4", "j", "sid", "t", "=", "&", "%", "6A", "%6a", "+", " ", "é", ";", "%zz"]


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
def test_it_is_parse_qs_keeping_blank_values(query: str) -> None:
    """The gate finds sid= and j= (JSONP) in it: any difference from python-engineio's
    reading (parse_qs) could let a request through as another kind."""
    assert query_fields(query) == parse_qs(query, keep_blank_values=True)


def test_a_socket_io_query_without_escapes() -> None:
    assert query_fields("EIO=4&transport=polling&t=abc&sid=x1&j") == {
        "EIO": ["4"],
        "transport": ["polling"],
        "t": ["abc"],
        "sid": ["x1"],
        "j": [""],
    }
