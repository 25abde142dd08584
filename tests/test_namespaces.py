"""Rules limited to namespaces: parsing what staff write, and matching a connect's namespace."""

from __future__ import annotations

import pytest

from whitelist.core.index import AllowlistIndex
from whitelist.core.namespaces import NamespaceError, format_namespaces, parse_namespaces
from whitelist.core.origins import parse_origin_header, parse_rule
from whitelist.rules.decision import NOT_ALLOWED, decide_headers

SHOP = parse_rule("https://shop.example.com")
CORP = parse_rule("https://*.corp.test")
ANY_PORT = parse_rule("https://shop.example.com:*")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", frozenset()),
        ("   ", frozenset()),
        ("/chat", frozenset({"/chat"})),
        ("/chat /orders", frozenset({"/chat", "/orders"})),
        ("/orders, /chat,/chat", frozenset({"/chat", "/orders"})),
        ("/", frozenset({"/"})),
    ],
)
def test_namespace_lists_parse(text: str, names: frozenset[str]) -> None:
    assert parse_namespaces(text) == names


@pytest.mark.parametrize("text", ["chat", "/chat orders", "/a\x00b", "*", "/" + "x" * 100])
def test_what_is_no_namespace_is_refused(text: str) -> None:
    with pytest.raises(NamespaceError):
        parse_namespaces(text)


def test_the_stored_form_is_sorted_and_spaced() -> None:
    assert format_namespaces(parse_namespaces("/orders,/chat")) == "/chat /orders"


def match(index: AllowlistIndex, origin: str, namespace: str | None) -> str | None:
    rule = index.match(parse_origin_header(origin), namespace)
    return None if rule is None else str(rule)


def test_a_scoped_rule_admits_only_on_its_namespaces() -> None:
    index = AllowlistIndex([SHOP], {SHOP: frozenset({"/chat"})})
    assert match(index, "https://shop.example.com", "/chat") == "https://shop.example.com"
    assert match(index, "https://shop.example.com", "/") is None
    assert match(index, "https://shop.example.com", "/chat/x") is None


def test_without_a_namespace_any_rule_counts() -> None:
    """The handshake names no namespace: an origin allowed somewhere passes it."""
    index = AllowlistIndex([SHOP], {SHOP: frozenset({"/chat"})})
    assert match(index, "https://shop.example.com", None) == "https://shop.example.com"


def test_an_unscoped_rule_admits_everywhere() -> None:
    index = AllowlistIndex([SHOP, CORP], {SHOP: frozenset()})
    assert match(index, "https://shop.example.com", "/anything") == "https://shop.example.com"
    assert match(index, "https://a.corp.test", "/x") == "https://*.corp.test"


def test_a_second_rule_for_the_same_origin_is_found_past_a_scoped_one() -> None:
    index = AllowlistIndex([SHOP, ANY_PORT], {SHOP: frozenset({"/chat"})})
    assert match(index, "https://shop.example.com", "/") == "https://shop.example.com:*"


def test_a_scoped_subdomain_rule_is_looked_past_to_a_deeper_one() -> None:
    deep = parse_rule("https://*.a.corp.test")
    index = AllowlistIndex([deep, CORP], {CORP: frozenset({"/chat"})})
    assert match(index, "https://x.a.corp.test", "/chat") == "https://*.corp.test"
    assert match(index, "https://x.a.corp.test", "/") == "https://*.a.corp.test"
    assert match(index, "https://x.b.corp.test", "/") is None


def test_the_decision_says_which_namespace_found_no_rule() -> None:
    index = AllowlistIndex([SHOP], {SHOP: frozenset({"/chat"})})
    decision = decide_headers("https://shop.example.com", None, index, "/admin")
    assert (decision.allowed, decision.reason) == (False, NOT_ALLOWED)
    assert decision.detail == "no rule matches on /admin"
    assert decide_headers("https://shop.example.com", None, index, "/chat").allowed


def test_an_app_rule_can_be_limited_to_namespaces() -> None:
    app = parse_rule("capacitor://localhost")
    index = AllowlistIndex([app], {app: frozenset({"/chat"})})
    assert match(index, "capacitor://localhost", "/chat") == "capacitor://localhost"
    assert match(index, "capacitor://localhost", "/") is None
    refused = decide_headers("capacitor://localhost", None, index, "/")
    assert (refused.reason, refused.origin) == (NOT_ALLOWED, "capacitor://localhost")
