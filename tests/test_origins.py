"""Parsing, normalising and matching origins (pure, no Django)."""

from __future__ import annotations

import pytest

from whitelist.core.origins import (
    Origin,
    OriginError,
    origin_of_referer,
    parse_origin_header,
    parse_rule,
)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://Shop.Example.COM", "https://shop.example.com"),
        ("HTTPS://shop.example.com:443", "https://shop.example.com"),
        ("http://localhost:80/", "http://localhost"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("https://*.Example.com", "https://*.example.com"),
        ("https://*.example.com:*", "https://*.example.com:*"),
        ("http://localhost:*", "http://localhost:*"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://*.BÜCHER.example", "https://*.xn--bcher-kva.example"),
        ("http://[0:0:0:0:0:0:0:1]:5000", "http://[::1]:5000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("  https://padded.example  ", "https://padded.example"),
    ],
)
def test_rules_are_stored_normalised(typed: str, stored: str) -> None:
    assert str(parse_rule(typed)) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "*",
        "example.com",
        "ftp://example.com",
        "https://",
        "https://example.com/path",
        "https://example.com?q=1",
        "https://user@example.com",
        "https://example.com:0",
        "https://example.com:65536",
        "https://example.com:08080",
        "https://example..com",
        "https://example.com.",
        "https://-example.com",
        "https://exa mple.com",
        "https://example.com\\evil",
        "https://a.com,https://b.com",
        "https://*.com",
        "https://*.127.0.0.1",
        "https://a.*.example.com",
        "https://*example.com",
        "http://0x7f.0.0.1",
        "http://127.1",
        "http://[::1",
        "http://[fe80::1%eth0]",
        "null",
    ],
)
def test_malformed_rules_are_rejected(typed: str) -> None:
    with pytest.raises(OriginError):
        parse_rule(typed)


def test_rule_error_explains_the_problem() -> None:
    with pytest.raises(OriginError, match="without a path"):
        parse_rule("https://example.com/app")


@pytest.mark.parametrize(
    ("header", "origin"),
    [
        ("https://example.com", Origin("https", "example.com", 443)),
        ("https://EXAMPLE.com:443", Origin("https", "example.com", 443)),
        ("http://example.com:8080", Origin("http", "example.com", 8080)),
        ("http://[::1]:5000", Origin("http", "::1", 5000)),
        ("https://xn--bcher-kva.example", Origin("https", "xn--bcher-kva.example", 443)),
    ],
)
def test_origin_header_is_parsed(header: str, origin: Origin) -> None:
    assert parse_origin_header(header) == origin


@pytest.mark.parametrize(
    "header",
    [
        "null",
        "",
        "https://example.com/",
        "https://example.com/path",
        "https://example.com?x",
        "https://example.com#x",
        "https://user:pass@example.com",
        "https://example.com@evil.com",
        "https://example.com\tx",
        "https://example.com\r\nSet-Cookie: x=1",
        " https://example.com",
        "https://example.com\\@evil.com",
        "https://example.com, https://evil.com",
        "https://example.com,https://evil.com",
        "https://example.com:99999",
        "https://example.com:-1",
        "https://example.com:*",
        "https://*.example.com",
        "https://bücher.example",
        "file://",
        "chrome-extension://abcdef",
        "https://" + "a" * 4100,
    ],
)
def test_non_canonical_origin_headers_are_refused(header: str) -> None:
    with pytest.raises(OriginError):
        parse_origin_header(header)


def test_referer_yields_its_origin() -> None:
    assert origin_of_referer("https://Shop.example.com:443/cart?id=1#top") == Origin(
        "https", "shop.example.com", 443
    )


@pytest.mark.parametrize(
    "referer", ["https://user@example.com/", "https://example.com\n/", "/relative/path"]
)
def test_malformed_referer_is_refused(referer: str) -> None:
    with pytest.raises(OriginError):
        origin_of_referer(referer)


FAST_PATH_CASES = [
    "https://example.com",
    "https://Example.com",
    "https://a..b.example",
    "https://a.-b.example",
    "https://a-.b.example",
    "https://.example.com",
    "https://example.com-",
    "https://_dmarc.example.com",
    "https://" + "b" * 63 + ".example",
    "https://" + "b" * 64 + ".example",
    "https://x." + "b" * 64,
    "HTTPS://Example.COM:443",
    "http://example.com:8080",
    "http://localhost:5000",
    "http://under_score.example",
    "http://example.com:65535",
    "http://example.com:65536",
    "http://example.com:0",
    "http://example.com:080",
    "http://127.0.0.1:5000",
    "http://0x7f.1",
    "http://1.2.3.999",
    "http://[::1]:5000",
    "http://-bad.example",
    "http://bad-.example",
    "http://" + "a" * 64 + ".example",
    "http://" + ".".join(["a" * 60] * 5),
    "https://example.com/",
    "https://example.com/path?q=1#f",
    "https://example.com/pa\\th",
    "https://example.com/a,b",
    "https://example.com/ space",
    "https://user@example.com/",
    "https://example.com:443@evil.com/",
    "https://example.com.",
    "ftp://example.com",
]


@pytest.mark.parametrize("value", FAST_PATH_CASES)
@pytest.mark.parametrize("bare", [True, False])
def test_fast_path_agrees_with_the_thorough_path(value: str, bare: bool) -> None:
    from whitelist.core.origins import _client_origin, _client_origin_thorough

    def outcome(parse: object) -> object:
        try:
            return parse(value, bare=bare)  # type: ignore[operator]
        except OriginError:
            return "refused"

    assert outcome(_client_origin) == outcome(_client_origin_thorough)
