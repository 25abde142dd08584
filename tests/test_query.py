"""The query string read exactly as parse_qs reads it, quicker where nothing is encoded."""

from __future__ import annotations

from urllib.parse import parse_qs

from hypothesis import given, settings
from hypothesis import strategies as st

from whitelist.core.query import query_fields, request_query, session_id

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


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(
    st.lists(st.sampled_from([*PIECES, "sid", "sid=", "sid=a", "&sid=b"]), max_size=16).map("".join)
)
def test_the_session_is_the_one_python_engineio_serves(query: str) -> None:
    """A request is refused or served for this sid: python-engineio must look up the same."""
    assert session_id(query_fields(query)) == parse_qs(query).get("sid", [None])[0]


def test_a_request_query_is_read_once_and_again_after_a_rewrite() -> None:
    environ = {"QUERY_STRING": "EIO=4&transport=polling"}
    first = request_query(environ)
    assert first == {"EIO": ["4"], "transport": ["polling"]}
    assert request_query(environ) is first
    environ["QUERY_STRING"] = "EIO=4&transport=polling&sid=abc"  # a middleware's rewrite
    assert session_id(request_query(environ)) == "abc"
    assert request_query({}) == {}
