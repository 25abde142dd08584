"""Header decisions are kept per index: the same answers as deciding anew, never a stale one."""

from __future__ import annotations

import pytest
from django.test import override_settings

from whitelist.core.index import AllowlistIndex
from whitelist.core.origins import MAX_HEADER_LENGTH, parse_rule
from whitelist.rules.decision import NOT_ALLOWED, HeaderDecisions, decide_headers


def index_of(*rules: str, scopes: dict[str, frozenset[str]] | None = None) -> AllowlistIndex:
    parsed = {rule: parse_rule(rule) for rule in rules}
    return AllowlistIndex(
        parsed.values(), {parsed[rule]: names for rule, names in (scopes or {}).items()}
    )


@pytest.mark.parametrize(
    ("origin", "referer"),
    [
        ("https://shop.example.com", None),
        ("https://SHOP.example.com:443", None),
        ("https://evil.example", None),
        ("null", None),
        ("https://shop.example.com/", None),
        (None, "https://shop.example.com/cart?x=1"),
        (None, "https://evil.example/"),
        ("https://evil.example", "https://shop.example.com/"),
    ],
)
def test_a_kept_answer_is_the_answer_decided_anew(origin: str | None, referer: str | None) -> None:
    index = index_of("https://shop.example.com")
    decisions = HeaderDecisions()
    first = decisions.decide(origin, referer, index)
    assert first == decide_headers(origin, referer, index)
    assert decisions.decide(origin, referer, index) is first  # kept, not decided again


def test_a_new_index_is_never_answered_from_the_last_one() -> None:
    decisions = HeaderDecisions()
    allowed = decisions.decide(
        "https://shop.example.com", None, index_of("https://shop.example.com")
    )
    assert allowed.allowed
    refused = decisions.decide("https://shop.example.com", None, index_of("https://other.example"))
    assert (refused.allowed, refused.reason) == (False, NOT_ALLOWED)


def test_the_namespace_is_part_of_the_answer() -> None:
    index = index_of(
        "https://shop.example.com", scopes={"https://shop.example.com": frozenset({"/chat"})}
    )
    decisions = HeaderDecisions()
    assert decisions.decide("https://shop.example.com", None, index, "/chat").allowed
    assert not decisions.decide("https://shop.example.com", None, index, "/admin").allowed
    assert decisions.decide("https://shop.example.com", None, index, "/chat").allowed


def test_a_flood_of_invented_origins_keeps_it_bounded() -> None:
    index = index_of("https://shop.example.com")
    decisions = HeaderDecisions(size=8)
    for number in range(100):
        assert not decisions.decide(f"https://x{number}.example", None, index).allowed
        assert len(decisions._kept[1]) <= 8
    assert decisions.decide("https://shop.example.com", None, index).allowed


def test_a_header_longer_than_an_origin_may_be_is_not_kept() -> None:
    index = index_of("https://shop.example.com")
    decisions = HeaderDecisions()
    referer = "https://shop.example.com/" + "a" * MAX_HEADER_LENGTH
    decision = decisions.decide(None, referer, index)
    assert decision == decide_headers(None, referer, index)
    assert decisions._kept[1] == {}


def test_without_either_header_the_setting_decides_each_time() -> None:
    index = index_of("https://shop.example.com")
    decisions = HeaderDecisions()
    with override_settings(WHITELIST_ALLOW_MISSING_ORIGIN=True):
        assert decisions.decide(None, None, index).allowed
    assert not decisions.decide(None, None, index).allowed


def test_an_answer_for_a_namespace_longer_than_an_origin_may_be_is_not_kept() -> None:
    """A server that takes every namespace lets a client name one of a megabyte: 256 of
    them kept would hold half a gigabyte until the rules change."""
    index = index_of("https://shop.example.com")
    decisions = HeaderDecisions()
    namespace = "/" + "x" * MAX_HEADER_LENGTH
    decision = decisions.decide("https://evil.example", None, index, namespace)
    assert decision == decide_headers("https://evil.example", None, index, namespace)
    assert decisions._kept[1] == {}


def test_a_namespace_that_is_not_a_string_is_decided_without_being_kept() -> None:
    index = index_of("https://shop.example.com")
    decisions = HeaderDecisions()
    for namespace in (7, ["/chat"]):
        decision = decisions.decide("https://shop.example.com", None, index, namespace)  # type: ignore[arg-type]
        assert decision.allowed
    assert decisions._kept[1] == {}
