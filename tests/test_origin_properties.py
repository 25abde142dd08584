"""The attack corpus and property tests: look-alikes of an allowed origin never pass.

Hypothesis runs derandomised and without an example database, so CI sees the
same examples on every run; a failure prints the shrunk header value.
"""

from __future__ import annotations

import string
from typing import NamedTuple

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.attack_corpus import ALLOWED, ATTACKS, ORIGIN, REFERER, RULES, Case
from whitelist.core.index import AllowlistIndex, rule_matches
from whitelist.core.origins import (
    DEFAULT_PORTS,
    MAX_HEADER_LENGTH,
    MAX_HOST_LENGTH,
    Origin,
    OriginError,
    _client_origin,
    _client_origin_thorough,
    parse_origin_header,
    parse_rule,
)
from whitelist.rules.decision import MALFORMED, NOT_ALLOWED, NULL_ORIGIN, Decision, decide_headers

PROPERTY = settings(max_examples=250, deadline=None, database=None, derandomize=True)
CORPUS_INDEX = AllowlistIndex(parse_rule(rule) for rule in RULES)
REFUSALS = {MALFORMED, NOT_ALLOWED, NULL_ORIGIN}


def decide(value: str, header: str, index: AllowlistIndex) -> Decision:
    if header == ORIGIN:
        return decide_headers(value, None, index)
    return decide_headers(None, value, index)


# The corpus.


def test_corpus_has_enough_uniquely_named_cases() -> None:
    names = [case.name for case in ATTACKS + ALLOWED]
    assert len(ATTACKS) >= 100
    assert len(ALLOWED) >= 20
    assert len(names) == len(set(names))
    assert {case.header for case in ATTACKS + ALLOWED} == {ORIGIN, REFERER}


@pytest.mark.parametrize("case", ATTACKS, ids=[case.name for case in ATTACKS])
def test_corpus_attack_is_refused(case: Case) -> None:
    decision = decide(case.value, case.header, CORPUS_INDEX)
    assert (decision.allowed, decision.rule) == (False, None)
    assert decision.reason in REFUSALS


ORIGIN_ATTACKS = [case for case in ATTACKS if case.header == ORIGIN]


@pytest.mark.parametrize("case", ORIGIN_ATTACKS, ids=[case.name for case in ORIGIN_ATTACKS])
def test_corpus_attack_in_origin_never_falls_back_to_an_allowed_referer(case: Case) -> None:
    assert not decide_headers(case.value, "https://example.com/", CORPUS_INDEX).allowed


@pytest.mark.parametrize("case", ALLOWED, ids=[case.name for case in ALLOWED])
def test_corpus_allowed_value_is_allowed(case: Case) -> None:
    assert decide(case.value, case.header, CORPUS_INDEX).allowed


# Strategies: hosts within DNS limits whose last label is a name, never an IPv4 number.

LABEL_CHARS = string.ascii_lowercase + string.digits + "-"
labels = st.text(LABEL_CHARS, min_size=1, max_size=63).filter(
    lambda label: not label.startswith("-") and not label.endswith("-")
)
top_labels = st.text(string.ascii_lowercase, min_size=1, max_size=8)
schemes = st.sampled_from(sorted(DEFAULT_PORTS))
ports = st.integers(min_value=1, max_value=65535)
# None: the header names no port. Default ports are drawn often, as browsers omit them.
header_ports = st.one_of(st.none(), st.sampled_from([80, 443]), ports)


def hosts(min_labels: int = 1) -> st.SearchStrategy[str]:
    return st.builds(
        lambda inner, top: ".".join([*inner, top]),
        st.lists(labels, min_size=min_labels - 1, max_size=4),
        top_labels,
    ).filter(lambda host: len(host) <= MAX_HOST_LENGTH)


def is_valid_host(host: str) -> bool:
    return len(host) <= MAX_HOST_LENGTH and all(len(label) <= 63 for label in host.split("."))


class Site(NamedTuple):
    """An origin as a browser would send it; ``port`` None when the header omits it."""

    scheme: str
    host: str
    port: int | None

    @property
    def effective_port(self) -> int:
        return DEFAULT_PORTS[self.scheme] if self.port is None else self.port

    def header(self, host: str | None = None) -> str:
        shown = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host if host is None else host}{shown}"


def sites(min_labels: int = 1) -> st.SearchStrategy[Site]:
    return st.builds(Site, schemes, hosts(min_labels), header_ports)


def index_for(site: Site) -> AllowlistIndex:
    """The widest allowlist for ``site``: its origin and all of its subdomains."""
    port = site.effective_port
    rules = [f"{site.scheme}://{site.host}:{port}", f"{site.scheme}://*.{site.host}:{port}"]
    return AllowlistIndex(parse_rule(rule) for rule in rules)


def assert_never_allowed(value: str, index: AllowlistIndex) -> None:
    """Refused as an Origin, and as the start of a Referer URL."""
    assert not decide(value, ORIGIN, index).allowed, value
    assert not decide(value + "/page", REFERER, index).allowed, value


# Normalisation: what the documented semantics make equal.


@PROPERTY
@given(site=sites())
def test_origin_header_round_trips_to_its_canonical_form(site: Site) -> None:
    parsed = parse_origin_header(site.header())
    default = site.effective_port == DEFAULT_PORTS[site.scheme]
    canonical = Site(site.scheme, site.host, None if default else site.effective_port).header()
    assert parsed == Origin(site.scheme, site.host, site.effective_port)
    assert str(parsed) == canonical
    assert parse_origin_header(str(parsed)) == parsed


@PROPERTY
@given(site=sites(min_labels=2), data=st.data())
def test_scheme_and_host_case_do_not_matter(site: Site, data: st.DataObject) -> None:
    value = site.header()
    upper = data.draw(st.lists(st.booleans(), min_size=len(value), max_size=len(value)))
    shouted = "".join(c.upper() if up else c for c, up in zip(value, upper, strict=True))
    assert parse_origin_header(shouted) == parse_origin_header(value)
    assert decide(shouted, ORIGIN, index_for(site)).allowed


@PROPERTY
@given(site=sites())
def test_default_port_written_or_omitted_is_the_same_origin(site: Site) -> None:
    default = DEFAULT_PORTS[site.scheme]
    other_default = DEFAULT_PORTS["https" if site.scheme == "http" else "http"]
    index = AllowlistIndex([parse_rule(f"{site.scheme}://{site.host}")])
    bare, explicit = Site(site.scheme, site.host, None), Site(site.scheme, site.host, default)
    assert parse_origin_header(bare.header()) == parse_origin_header(explicit.header())
    assert decide(explicit.header(), ORIGIN, index).allowed
    assert not decide(f"{site.scheme}://{site.host}:{other_default}", ORIGIN, index).allowed


# Matching: allowed exactly when scheme, host (or a strict subdomain) and port agree.


class Pair(NamedTuple):
    rule: str
    scheme: str
    host: str
    any_port: bool
    port: int
    subdomains: bool
    site: Site


@st.composite
def rules_and_sites(draw: st.DrawFn) -> Pair:
    scheme, host = draw(schemes), draw(hosts())
    subdomains = "." in host and draw(st.booleans())
    rule_port = draw(st.one_of(st.none(), st.just("*"), ports))
    any_port = rule_port == "*"
    port = DEFAULT_PORTS[scheme] if rule_port in (None, "*") else rule_port
    suffix = "" if rule_port is None else f":{rule_port}"
    rule = f"{scheme}://{'*.' if subdomains else ''}{host}{suffix}"
    parent = host.partition(".")[2] or host
    # Mostly near misses of the rule: the same host, a subdomain, a parent, glued text.
    site_host = draw(
        st.one_of(
            st.just(host),
            st.lists(labels, min_size=1, max_size=3).map(lambda sub: ".".join([*sub, host])),
            st.lists(labels, min_size=1, max_size=2).map(lambda sub: ".".join([*sub, host])),
            st.just(parent),
            labels.map(lambda glue: glue + host),
            top_labels.map(lambda glue: f"{host}.{glue}"),
            hosts(),
        )
    )
    assume(is_valid_host(site_host))
    other_scheme, other_port = draw(st.integers(0, 3)) == 0, draw(st.integers(0, 3)) == 0
    site_scheme = draw(schemes) if other_scheme else scheme
    site_port = draw(header_ports) if other_port else port
    site = Site(site_scheme, site_host, site_port)
    return Pair(rule, scheme, host, any_port, port, subdomains, site)


def documented_match(pair: Pair) -> bool:
    site = pair.site
    if site.scheme != pair.scheme or not (pair.any_port or site.effective_port == pair.port):
        return False
    if pair.subdomains:
        return site.host.endswith("." + pair.host)
    return site.host == pair.host


@settings(PROPERTY, max_examples=300)
@given(pair=rules_and_sites())
def test_rule_allows_exactly_the_documented_origins(pair: Pair) -> None:
    rule = parse_rule(pair.rule)
    index = AllowlistIndex([rule])
    expected = documented_match(pair)
    assert rule_matches(rule, parse_origin_header(pair.site.header())) is expected
    assert decide(pair.site.header(), ORIGIN, index).allowed is expected
    assert decide(pair.site.header() + "/page?q=1", REFERER, index).allowed is expected


@PROPERTY
@given(site=sites(min_labels=2), sub=st.lists(labels, min_size=1, max_size=3), glue=labels)
def test_wildcard_allows_strict_subdomains_only(site: Site, sub: list[str], glue: str) -> None:
    subdomain = ".".join([*sub, site.host])
    assume(is_valid_host(subdomain) and is_valid_host(glue + site.host))
    index = AllowlistIndex([parse_rule(f"{site.scheme}://*.{site.host}:{site.effective_port}")])
    assert decide(site.header(subdomain), ORIGIN, index).allowed
    assert not decide(site.header(), ORIGIN, index).allowed
    assert not decide(site.header(glue + site.host), ORIGIN, index).allowed


# Look-alikes of an allowed host: never allowed, as Origin or as Referer.

GLUE_CHARS = string.ascii_lowercase + string.digits + "-._"


@PROPERTY
@given(
    site=sites(min_labels=2),
    glue=st.text(GLUE_CHARS, min_size=1, max_size=12),
    before=st.booleans(),
)
def test_text_glued_to_the_host_is_never_allowed(site: Site, glue: str, before: bool) -> None:
    if before:
        assume(not glue.endswith("."))  # "sub." + host is a real subdomain
        host = glue + site.host
    else:
        host = site.host + glue
        assume(not host.endswith("." + site.host))  # "a.b" + ".a.b" is one as well
    assert_never_allowed(site.header(host), index_for(site))


USERINFO_FORMS = (
    "{scheme}://{host}@{other}",
    "{scheme}://{other}@{host}",
    "{scheme}://{host}{port}@{other}",
    "{scheme}://user:pass@{host}{port}",
    "{scheme}://@{host}{port}",
    "{scheme}://{host}:@{host}{port}",
)


@PROPERTY
@given(site=sites(min_labels=2), other=hosts(), form=st.sampled_from(USERINFO_FORMS))
def test_userinfo_is_never_allowed(site: Site, other: str, form: str) -> None:
    port = f":{site.port}" if site.port is not None else ""
    value = form.format(scheme=site.scheme, host=site.host, port=port, other=other)
    assert_never_allowed(value, index_for(site))


@PROPERTY
@given(site=sites(min_labels=2), dots=st.integers(min_value=1, max_value=3))
def test_trailing_dot_is_never_allowed(site: Site, dots: int) -> None:
    assert_never_allowed(site.header(site.host + "." * dots), index_for(site))


@PROPERTY
@given(site=sites(min_labels=2), data=st.data(), upper=st.booleans())
def test_percent_encoded_host_character_is_never_allowed(
    site: Site, data: st.DataObject, upper: bool
) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(site.host) - 1))
    code = f"%{ord(site.host[at]):02x}"
    host = site.host[:at] + (code.upper() if upper else code) + site.host[at + 1 :]
    assert_never_allowed(site.header(host), index_for(site))


# Letters a reader takes for ASCII; every ASCII character also has a full-width twin.
CONFUSABLES = {
    "a": "\u0430",
    "c": "\u0441",
    "d": "\u0501",
    "e": "\u0435",
    "h": "\u04bb",
    "i": "\u0456",
    "j": "\u0458",
    "k": "\u212a",
    "l": "\u04cf",
    "o": "\u043e",
    "p": "\u0440",
    "s": "\u0455",
    "x": "\u0445",
    "y": "\u0443",
    "0": "\u041e",
    "1": "\u0406",
    "-": "\u2010",
    ".": "\u3002\uff61",
}
INVISIBLE = "\u00ad\u034f\u180e\u200b\u200c\u200d\u2060\ufeff"


@PROPERTY
@given(site=sites(min_labels=2), data=st.data(), insert=st.booleans())
def test_confusable_or_invisible_character_is_never_allowed(
    site: Site, data: st.DataObject, insert: bool
) -> None:
    host = site.host
    if insert:
        at = data.draw(st.integers(min_value=0, max_value=len(host)))
        host = host[:at] + data.draw(st.sampled_from(INVISIBLE)) + host[at:]
    else:
        at = data.draw(st.integers(min_value=0, max_value=len(host) - 1))
        twins = [chr(ord(host[at]) + 0xFEE0), *CONFUSABLES.get(host[at], "")]
        host = host[:at] + data.draw(st.sampled_from(twins)) + host[at + 1 :]
    assert_never_allowed(site.header(host), index_for(site))


odd_characters = st.one_of(
    st.sampled_from("\t\n\r\x00\x0b\x0c \x7f\x85\xa0\u2028\u3000\\,"),
    st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp")),
)


@PROPERTY
@given(site=sites(min_labels=2), data=st.data(), char=odd_characters)
def test_white_space_control_characters_and_backslashes_are_never_allowed(
    site: Site, data: st.DataObject, char: str
) -> None:
    value = site.header()
    at = data.draw(st.integers(min_value=0, max_value=len(value)))
    assert_never_allowed(value[:at] + char + value[at:], index_for(site))


def subdomain_of_length(host: str, length: int) -> str:
    """A subdomain of ``host`` exactly ``length`` characters long, labels of at most 63."""
    room, padding = length - len(host), []
    while room:
        size = min(63, room - 1)
        if room - size - 1 == 1:  # a single character left over would fit no label
            size -= 1
        padding.append("a" * size)
        room -= size + 1
    return ".".join([*padding, host])


@PROPERTY
@given(site=sites(min_labels=2), extra=st.integers(min_value=0, max_value=40))
def test_limits_are_exact_and_anything_longer_is_never_allowed(site: Site, extra: int) -> None:
    assume(len(site.host) <= MAX_HOST_LENGTH - 64 - 41)  # room for the longest label below
    index = index_for(site)
    longest_label, too_long_label = "b" * 63, "b" * (64 + extra)
    assert decide(site.header(f"{longest_label}.{site.host}"), ORIGIN, index).allowed
    assert_never_allowed(site.header(f"{too_long_label}.{site.host}"), index)
    longest_host = subdomain_of_length(site.host, MAX_HOST_LENGTH)
    assert decide(site.header(longest_host), ORIGIN, index).allowed
    too_long_host = subdomain_of_length(site.host, MAX_HOST_LENGTH + 1 + extra)
    assert_never_allowed(site.header(too_long_host), index)
    longest_referer = site.header() + "/" + "c" * (MAX_HEADER_LENGTH - len(site.header()) - 1)
    assert decide(longest_referer, REFERER, index).allowed
    assert not decide(longest_referer + "c" * (1 + extra), REFERER, index).allowed


JOINERS = (",", ", ", " ", "\t", ";", "|", "\n")
ORIGIN_TAILS = ("/", "/page", "?", "?q=1", "#", "#top", ";x", "/?#")


@PROPERTY
@given(
    site=sites(min_labels=2),
    other=sites(),
    joiner=st.sampled_from(JOINERS),
    first=st.booleans(),
    tail=st.sampled_from(ORIGIN_TAILS),
)
def test_two_origins_or_a_path_in_origin_are_never_allowed(
    site: Site, other: Site, joiner: str, first: bool, tail: str
) -> None:
    pair = (site.header(), other.header())
    index = index_for(site)
    assert_never_allowed(joiner.join(pair if first else pair[::-1]), index)
    assert not decide(site.header() + tail, ORIGIN, index).allowed


# Any text at all: the fast path agrees with the thorough one, and whatever parses
# is already canonical up to case and the default port, and round-trips.

SOUP = st.lists(
    st.one_of(
        st.sampled_from(
            ["http", "https", "HTTPS", "://", "//", ".", "-", "_", ":", "@", "/", "?", "#"]
            + ["example", "com", "xn--", "127", "0", "0x7f", "[::1]", "443", "80", "65536"]
            + ["%2e", "\\", ",", " ", "\t", "\n", "\u0430", "\u3002", "*"]
        ),
        st.text(string.ascii_letters + string.digits + ".-:", max_size=3),
    ),
    max_size=12,
).map("".join)


def outcome(parse: object, value: str, bare: bool) -> Origin | str:
    try:
        return parse(value, bare=bare)  # type: ignore[operator]
    except OriginError:
        return "refused"


@settings(PROPERTY, max_examples=300)
@given(value=st.one_of(SOUP, st.builds("{}://{}".format, schemes, SOUP)), bare=st.booleans())
def test_any_value_parses_the_same_on_both_paths_and_round_trips(value: str, bare: bool) -> None:
    parsed = outcome(_client_origin, value, bare)
    assert parsed == outcome(_client_origin_thorough, value, bare)
    if isinstance(parsed, Origin):
        assert parse_origin_header(str(parsed)) == parsed
        assert str(parse_origin_header(str(parsed))) == str(parsed)
