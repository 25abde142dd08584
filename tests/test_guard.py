"""The decision for a request: which header, which reason, and failing closed."""

from __future__ import annotations

import pytest
from django.test import override_settings

from whitelist.core.index import AllowlistIndex
from whitelist.core.origins import parse_rule
from whitelist.rules import decision as guard
from whitelist.rules.cache import AllowlistCache, Snapshot

INDEX = AllowlistIndex([parse_rule("https://shop.example.com"), parse_rule("https://*.corp.test")])


def cache_with(*rules: str) -> AllowlistCache:
    index = AllowlistIndex(parse_rule(rule) for rule in rules)
    return AllowlistCache(load=lambda: Snapshot(1, index), revision=lambda: 1)


def test_allowed_origin_names_the_rule() -> None:
    decision = guard.decide_headers("https://a.corp.test", None, INDEX)
    assert decision == guard.Decision(
        True, guard.ALLOWED, "https://a.corp.test", "origin", "https://*.corp.test"
    )


def test_unknown_origin_is_refused() -> None:
    decision = guard.decide_headers("https://evil.test", None, INDEX)
    assert (decision.allowed, decision.reason, decision.origin) == (
        False,
        guard.NOT_ALLOWED,
        "https://evil.test",
    )


def test_referer_is_the_fallback() -> None:
    decision = guard.decide_headers(None, "https://shop.example.com/basket", INDEX)
    assert (decision.allowed, decision.source) == (True, "referer")


def test_null_origin_never_falls_back_to_referer() -> None:
    decision = guard.decide_headers("null", "https://shop.example.com/", INDEX)
    assert (decision.allowed, decision.reason) == (False, guard.NULL_ORIGIN)


def test_malformed_origin_never_falls_back_to_referer() -> None:
    decision = guard.decide_headers(
        "https://shop.example.com, x", "https://shop.example.com/", INDEX
    )
    assert (decision.allowed, decision.reason) == (False, guard.MALFORMED)


def test_missing_headers_are_refused_by_default() -> None:
    decision = guard.decide_headers(None, None, INDEX)
    assert (decision.allowed, decision.reason) == (False, guard.NO_ORIGIN)


@override_settings(WHITELIST_ALLOW_MISSING_ORIGIN=True)
def test_missing_headers_can_be_allowed_by_setting() -> None:
    assert guard.decide_headers(None, None, INDEX).allowed


@override_settings(WHITELIST_ALLOW_MISSING_ORIGIN=True)
def test_allow_missing_origin_still_refuses_bad_origins() -> None:
    assert not guard.decide_headers("https://evil.test", None, INDEX).allowed


def test_decide_reads_the_wsgi_environ() -> None:
    environ = {"HTTP_ORIGIN": "https://shop.example.com"}
    assert guard.decide(environ, cache_with("https://shop.example.com")).allowed


def test_decide_fails_closed_when_the_rules_cannot_load() -> None:
    def broken_load() -> Snapshot:
        raise ConnectionError("database is down")

    cache = AllowlistCache(load=broken_load, revision=lambda: 0)
    decision = guard.decide({"HTTP_ORIGIN": "https://shop.example.com"}, cache)
    assert (decision.allowed, decision.reason) == (False, guard.INTERNAL_ERROR)


def test_refusal_data_reveals_only_reason_and_origin() -> None:
    decision = guard.decide_headers("https://evil.test", None, INDEX)
    assert decision.as_error_data() == {"reason": guard.NOT_ALLOWED, "origin": "https://evil.test"}


@pytest.mark.django_db
def test_decide_fails_closed_on_a_real_database_error() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE whitelist_allowedorigin")
    decision = guard.decide({"HTTP_ORIGIN": "https://shop.example.com"}, AllowlistCache())
    assert (decision.allowed, decision.reason) == (False, guard.INTERNAL_ERROR)


def test_guard_recovers_when_the_rules_load_again(caplog: pytest.LogCaptureFixture) -> None:
    attempts = {"n": 0}

    def flaky_load() -> Snapshot:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("database is down")
        return Snapshot(2, INDEX)

    cache = AllowlistCache(load=flaky_load, revision=lambda: 2)
    environ = {"HTTP_ORIGIN": "https://shop.example.com"}
    assert guard.decide(environ, cache).reason == guard.INTERNAL_ERROR
    assert guard.decide(environ, cache).allowed
    assert "works again" in caplog.text


@pytest.mark.parametrize("mistyped", ["False", "True", 1, None])
def test_a_mistyped_allow_missing_origin_never_admits_header_less_clients(
    mistyped: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A string "False" is truthy: read as written it would have admitted everyone."""
    with override_settings(WHITELIST_ALLOW_MISSING_ORIGIN=mistyped):
        decision = guard.decide({}, cache_with("https://shop.example.com"))
    assert (decision.allowed, decision.reason) == (False, guard.NO_ORIGIN)
    assert "WHITELIST_ALLOW_MISSING_ORIGIN is" in caplog.text


def test_a_mistyped_require_secure_refuses_clear_text() -> None:
    environ = {"HTTP_ORIGIN": "https://shop.example.com", "wsgi.url_scheme": "http"}
    with override_settings(WHITELIST_REQUIRE_SECURE="False"):
        decision = guard.decide(environ, cache_with("https://shop.example.com"))
    assert not decision.allowed


@pytest.mark.parametrize("mistyped", ["0.25", 0, -1, 61, True])
def test_a_mistyped_refresh_interval_falls_back_to_the_default(mistyped: object) -> None:
    from whitelist.rules.changes import refresh_interval

    with override_settings(WHITELIST_REFRESH_INTERVAL=mistyped):
        assert refresh_interval() == 0.25
