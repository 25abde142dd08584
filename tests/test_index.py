"""Matching whole origins against the rule index."""

from __future__ import annotations

import pytest

from whitelist.core.index import AllowlistIndex, rule_matches
from whitelist.core.origins import parse_origin_header, parse_rule


@pytest.fixture
def index() -> AllowlistIndex:
    rules = [
        "https://example.com",
        "https://*.example.org",
        "http://localhost:5000",
        "http://devbox:*",
        "https://*.ports.test:*",
        "http://[::1]:8000",
    ]
    return AllowlistIndex(parse_rule(rule) for rule in rules)


def match(index: AllowlistIndex, header: str) -> str | None:
    rule = index.match(parse_origin_header(header))
    return None if rule is None else str(rule)


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        ("https://example.com", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("https://EXAMPLE.COM", "https://example.com"),
        ("https://a.example.org", "https://*.example.org"),
        ("https://a.b.c.example.org", "https://*.example.org"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://devbox", "http://devbox:*"),
        ("http://devbox:1234", "http://devbox:*"),
        ("https://x.ports.test:8443", "https://*.ports.test:*"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_index_matches_whole_origins(index: AllowlistIndex, header: str, rule: str) -> None:
    assert match(index, header) == rule


@pytest.mark.parametrize(
    "header",
    [
        "https://example.com.evil.com",
        "https://evilexample.com",
        "https://sub.example.com",
        "http://example.com",
        "https://example.com:8443",
        "https://example.org",
        "https://evilexample.org",
        "https://a.example.org.evil.com",
        "http://a.example.org",
        "https://a.example.org:444",
        "http://localhost:5001",
        "http://localhost",
        "https://localhost:5000",
        "http://127.0.0.1:5000",
        "http://[::1]:8001",
        "https://devbox",
        "https://ports.test",
    ],
)
def test_index_refuses_look_alikes(index: AllowlistIndex, header: str) -> None:
    assert match(index, header) is None


def test_subdomain_rule_does_not_match_bare_domain() -> None:
    rule = parse_rule("https://*.example.com")
    assert not rule_matches(rule, parse_origin_header("https://example.com"))
    assert rule_matches(rule, parse_origin_header("https://www.example.com"))


def test_rules_are_scheme_exact() -> None:
    rule = parse_rule("https://example.com")
    assert not rule_matches(rule, parse_origin_header("http://example.com"))


def test_empty_index_matches_nothing() -> None:
    assert AllowlistIndex([]).match(parse_origin_header("https://example.com")) is None
