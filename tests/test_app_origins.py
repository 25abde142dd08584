"""Extensions' and apps' origins: exact rules, hosts in the platform's form, hostless refused."""

from __future__ import annotations

import pytest

from whitelist.core.app_origins import NO_PORT, extra_scheme_problem
from whitelist.core.index import AllowlistIndex
from whitelist.core.origins import (
    Origin,
    OriginError,
    origin_of_referer,
    parse_origin_header,
    parse_rule,
)

CHROME_ID = "abcdefghijklmnopabcdefghijklmnop"
UUID = "2c127fa4-62c7-7e4f-90e5-472b45eecfdc"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (f"chrome-extension://{CHROME_ID}", f"chrome-extension://{CHROME_ID}"),
        (f"Chrome-Extension://{CHROME_ID.upper()}/", f"chrome-extension://{CHROME_ID}"),
        (f"moz-extension://{UUID.upper()}", f"moz-extension://{UUID}"),
        (f"safari-web-extension://{UUID}", f"safari-web-extension://{UUID}"),
        ("capacitor://localhost", "capacitor://localhost"),
        ("ionic://localhost", "ionic://localhost"),
        ("tauri://localhost", "tauri://localhost"),
        ("capacitor://App.Example.com", "capacitor://app.example.com"),
    ],
)
def test_extension_and_app_rules_are_stored_exact_and_normalised(typed: str, stored: str) -> None:
    rule = parse_rule(typed)
    assert (str(rule), rule.port, rule.subdomains) == (stored, NO_PORT, False)
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("chrome-extension://*", "names one extension id .*: no wildcard"),
        (f"chrome-extension://*.{CHROME_ID}", "no wildcard"),
        ("moz-extension://*", "no wildcard"),
        ("capacitor://*.localhost", "no wildcard"),
        ("tauri://localhost:*", "no wildcard"),
        ("capacitor://localhost:8080", "a capacitor origin has no port"),
        ("capacitor://user@localhost", "user information"),
        (f"chrome-extension://{CHROME_ID}/popup.html", "without a path"),
        ("chrome-extension://abc", "names the extension id .*; 'abc' is not one"),
        ("chrome-extension://" + "q" * 32, "32 letters from a to p"),
        ("moz-extension://not-a-uuid", "Internal UUID"),
        ("moz-extension://addon@example.com", "not the add-on's ID from its manifest"),
        ("safari-web-extension://" + CHROME_ID, "that is a Chromium extension id"),
        ("file:///home/me/page.html", "file: URLs have no host"),
        ("file://server/share", "file: URLs have no host"),
        ("data:text/html,<p>hi", "data: URLs have no host"),
        ("javascript:alert(1)", "javascript: URLs have no host"),
        ("blob:https://example.com/1", "blob: URLs have no host"),
        ("about:blank", "about: URLs have no host"),
        ("null", "never allowed"),
        ("NULL", "never allowed"),
        ("ws://localhost:5000", "ws:// is the socket's address"),
        ("wss://example.com", "such as https://"),
        ("ftp://example.com", "the scheme must be http or https, or one that extensions"),
        ("myapp://localhost", "WHITELIST_EXTRA_SCHEMES"),
        ("chrome://settings", "WHITELIST_EXTRA_SCHEMES"),
    ],
)
def test_rules_that_name_no_one_are_refused_with_the_reason(typed: str, reason: str) -> None:
    with pytest.raises(OriginError, match=reason):
        parse_rule(typed)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        (f"chrome-extension://{UUID}", f"moz-extension://{UUID}"),
        (f"moz-extension://{CHROME_ID}", f"chrome-extension://{CHROME_ID}"),
        (f"moz-extension://{{{UUID.upper()}}}", f"moz-extension://{UUID}"),
        (f"safari-web-extension://{{{UUID}}}", f"safari-web-extension://{UUID}"),
    ],
)
def test_an_id_in_the_wrong_form_comes_with_what_was_meant(typed: str, meant: str) -> None:
    with pytest.raises(OriginError) as refused:
        parse_rule(typed)
    assert refused.value.suggestion == meant
    assert str(parse_rule(meant)) == meant


def test_extra_schemes_take_one_exact_host() -> None:
    extra = frozenset({"myapp"})
    assert str(parse_rule("MyApp://Main.Window", extra)) == "myapp://main.window"
    for typed in ("myapp://*.window", "myapp://main:1"):
        with pytest.raises(OriginError):
            parse_rule(typed, extra)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("myapp", None),
        ("com.example.app", None),
        ("x-app+v2", None),
        ("MyApp", "not a scheme name"),
        ("my app", "not a scheme name"),
        ("1app", "not a scheme name"),
        ("", "not a scheme name"),
        (7, "not a scheme name"),
        ("file", "have no host"),
        ("wss", "the socket's address"),
    ],
)
def test_an_extra_scheme_must_be_a_scheme_that_can_have_a_host(
    name: object, problem: str | None
) -> None:
    found = extra_scheme_problem(name)
    assert found == problem if problem is None else problem in (found or "")


@pytest.mark.parametrize(
    ("header", "origin"),
    [
        (f"chrome-extension://{CHROME_ID}", Origin("chrome-extension", CHROME_ID, NO_PORT)),
        (f"moz-extension://{UUID}", Origin("moz-extension", UUID, NO_PORT)),
        (f"safari-web-extension://{UUID.upper()}", Origin("safari-web-extension", UUID, NO_PORT)),
        ("capacitor://localhost", Origin("capacitor", "localhost", NO_PORT)),
        ("tauri://localhost", Origin("tauri", "localhost", NO_PORT)),
        # A scheme only the settings may allow is still an origin: refused by no rule.
        ("myapp://main", Origin("myapp", "main", NO_PORT)),
    ],
)
def test_extension_and_app_headers_are_origins(header: str, origin: Origin) -> None:
    assert parse_origin_header(header) == origin
    assert str(origin) == header.lower()


@pytest.mark.parametrize(
    "header",
    [
        "chrome-extension://abc",
        f"chrome-extension://{UUID}",
        "moz-extension://*",
        "capacitor://localhost:8080",
        "capacitor://localhost/",
        "capacitor://user@localhost",
        "capacitor://bücher",
        "file://host",
        "ws://localhost",
        "chrome-extension://",
        "myapp://",
    ],
)
def test_malformed_extension_and_app_headers_are_refused(header: str) -> None:
    with pytest.raises(OriginError):
        parse_origin_header(header)


def test_an_extension_pages_referer_yields_its_origin() -> None:
    referer = f"chrome-extension://{CHROME_ID}/popup.html?x=1"
    assert origin_of_referer(referer) == Origin("chrome-extension", CHROME_ID, NO_PORT)


def test_an_app_rule_admits_its_own_origin_and_no_other() -> None:
    index = AllowlistIndex(
        [
            parse_rule("capacitor://localhost"),
            parse_rule(f"chrome-extension://{CHROME_ID}"),
            parse_rule("https://*.example.com"),
            parse_rule("http://localhost:*"),
        ]
    )
    admitted = {
        "capacitor://localhost": "capacitor://localhost",
        f"chrome-extension://{CHROME_ID}": f"chrome-extension://{CHROME_ID}",
        "http://localhost": "http://localhost:*",
        "https://app.example.com": "https://*.example.com",
    }
    for header, rule in admitted.items():
        assert str(index.match(parse_origin_header(header))) == rule
    refused = [
        "ionic://localhost",
        "tauri://localhost",
        "capacitor://app.example.com",
        f"moz-extension://{UUID}",
        "chrome-extension://" + "b" * 32,
        "https://localhost",
    ]
    for header in refused:
        assert index.match(parse_origin_header(header)) is None, header
