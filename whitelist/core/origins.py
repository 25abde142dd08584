"""Parse and normalise web origins and rules: the pure core of the allowlist.

Nothing here imports Django, so it can be tested and benchmarked on its own.

Two kinds of input arrive here and they are treated differently:

* *Rules* typed by staff (``parse_rule``) are normalised: scheme and host are
  lower-cased, international names become punycode, a default port is dropped.
* *Header values* sent by clients (``parse_origin_header``, ``origin_of_referer``)
  are parsed strictly. Case and default ports are normalised, but anything a
  browser would never send (white space, control characters, backslashes,
  userinfo, two values joined by a comma, odd ports) is refused, never repaired.

Origins are compared as ``(scheme, host, port)`` tuples with the default port
filled in, never as strings, so ``https://example.com.evil.com`` or
``https://example.com@evil.com`` can never pass a rule for ``example.com``.

Browser extensions and packaged apps send origins of other schemes
(``chrome-extension://<id>``, ``capacitor://localhost``): exact, without a port
(``NO_PORT``), their hosts checked by ``app_origins``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import idna

from whitelist.core.app_origins import (
    NO_PORT,
    Problem,
    authority_problem,
    rule_scheme_problem,
    scheme_problem,
)

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_HEADER_LENGTH = 4096
MAX_HOST_LENGTH = 253

_AUTHORITY = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:/@]+))(?::(?P<port>[^:]*))?"
)
# A port as browsers serialise it: no sign, no leading zero.
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Printable ASCII without the backslash and the comma: what a canonical header holds.
_CLEAN_CLASS = r"[\x21-\x2b\x2d-\x5b\x5d-\x7e]"
_CLEAN = re.compile(f"{_CLEAN_CLASS}*")
# The common case of a client header, as browsers send it: lower case, a plain host
# name, an optional port. Anything else (IP addresses, capitals, odd input) takes
# the thorough path; a test proves both paths agree.
_FAST_HOST = r"(https?)://([a-z0-9_.-]{1,253})(?::([1-9][0-9]{0,4}))?"
_FAST_ORIGIN = re.compile(_FAST_HOST)
_FAST_REFERER = re.compile(rf"{_FAST_HOST}(?:[/?#]{_CLEAN_CLASS}*)?")
# WHATWG URL: a host whose last label "ends in a number" is parsed as IPv4.
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")


class OriginError(ValueError):
    """A value that is not a usable origin or rule; the message says why.

    ``suggestion`` is what was probably meant, for people to be offered.
    """

    def __init__(self, reason: str, suggestion: str | None = None) -> None:
        super().__init__(reason)
        self.suggestion = suggestion

    @classmethod
    def of(cls, problem: Problem) -> OriginError:
        return cls(problem.reason, problem.suggestion)


class Origin(NamedTuple):
    """A normalised origin; ``port`` is the effective port (``NO_PORT`` for an app's).

    A tuple, so that it is cheap to build on every connect and is its own index key.
    """

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return _serialise(self.scheme, self.host, self.port)


@dataclass(frozen=True, slots=True)
class Rule:
    """An allowlist rule: one origin, or every subdomain of ``host``.

    ``port`` is the effective port, or ``None`` for any port; an extension's or
    app's rule is exact, with ``NO_PORT``.
    """

    scheme: str
    host: str
    port: int | None
    subdomains: bool = False

    def __str__(self) -> str:
        host = f"*.{self.host}" if self.subdomains else self.host
        return _serialise(self.scheme, host, self.port)


def _serialise(scheme: str, host: str, port: int | None) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    if port == NO_PORT:
        return f"{scheme}://{shown_host}"
    if port is None:
        return f"{scheme}://{shown_host}:*"
    if port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown_host}"
    return f"{scheme}://{shown_host}:{port}"


def _check_characters(value: str, *, allow_unicode: bool = False) -> None:
    if len(value) > MAX_HEADER_LENGTH:
        raise OriginError(f"longer than {MAX_HEADER_LENGTH} characters")
    if _CLEAN.fullmatch(value):  # the usual case, in one C-level scan
        return
    for char in value:
        printable_ascii = "\x21" <= char <= "\x7e"
        if not printable_ascii and not (allow_unicode and char > "\x7f" and char.isprintable()):
            raise OriginError(f"contains the character {char!r}")
        if char.isspace():
            raise OriginError(f"contains the white space {char!r}")
    if "\\" in value:
        raise OriginError("contains a backslash")
    if "," in value:
        raise OriginError("contains a comma (two origins joined?)")


def _split(value: str, extra_schemes: Collection[str] | None) -> tuple[str, str, str, str]:
    """Return scheme, authority, path and the rest (query/fragment) of a URL.

    ``extra_schemes`` is None for a client's header, whose scheme may be any
    that can have a host; a rule's must be a web, extension or app scheme.
    """
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise OriginError(f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if extra_schemes is None:
        problem = scheme_problem(scheme) if scheme not in DEFAULT_PORTS else None
    else:
        problem = rule_scheme_problem(scheme, extra_schemes)
    if problem is not None:
        raise OriginError.of(problem)
    if not value.lower().startswith(f"{scheme}://") or not parts.netloc:
        raise OriginError("expected scheme://host")
    rest = value[len(scheme) + 3 + len(parts.netloc) :]
    return scheme, parts.netloc, parts.path, rest[len(parts.path) :]


def _parse_host(raw: str, *, from_client: bool) -> str:
    """Return the host in canonical form: lower-case, punycode, compressed IPv6."""
    if not raw.isascii():
        if from_client:
            raise OriginError("the host is not ASCII")
        try:
            raw = idna.encode(raw, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise OriginError(f"the host is not a valid international name ({exc})") from None
    host = raw.lower()
    if len(host) > MAX_HOST_LENGTH:
        raise OriginError(f"the host is longer than {MAX_HOST_LENGTH} characters")
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise OriginError(f"{raw!r} is not a valid IPv4 address") from None
        if str(address) != host:
            raise OriginError(f"{raw!r} is not a canonical IPv4 address")
        return host
    if not _HOST_NAME.fullmatch(host):
        raise OriginError(f"{raw!r} is not a valid host name")
    return host


def _parse_authority(
    authority: str, scheme: str, *, from_client: bool, allow_wildcards: bool
) -> tuple[str, int | None, bool]:
    if "@" in authority:
        raise OriginError("must not contain user information (user@host)")
    match = _AUTHORITY.fullmatch(authority)
    if not match:
        raise OriginError("the host or port is malformed")
    port_text = match["port"]
    if port_text is None:
        port: int | None = DEFAULT_PORTS[scheme]
    elif port_text == "*" and allow_wildcards:
        port = None
    elif _PORT.fullmatch(port_text) and int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise OriginError(f"the port {port_text!r} is not a number from 1 to 65535")
    if match["ipv6"] is not None:
        try:
            address = ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            raise OriginError(f"{match['ipv6']!r} is not a valid IPv6 address") from None
        return address.compressed, port, False
    name = match["name"]
    subdomains = allow_wildcards and name.startswith("*.")
    if subdomains:
        name = name[2:]
    if "*" in name:
        raise OriginError("a wildcard may only stand as the first label, as in *.example.com")
    host = _parse_host(name, from_client=from_client)
    if subdomains and host != "localhost" and ("." not in host or host.replace(".", "").isdigit()):
        raise OriginError("*. needs a domain of at least two labels, as in *.example.com")
    return host, port, subdomains


def _app_host(scheme: str, authority: str, *, from_client: bool) -> str:
    """The host of an extension's or app's origin, which is exact and has no port."""
    problem = authority_problem(scheme, authority)
    if problem is not None:
        raise OriginError.of(problem)
    return _parse_host(authority, from_client=from_client)


def parse_rule(value: str, extra_schemes: Collection[str] = ()) -> Rule:
    """Parse and normalise a rule typed by staff.

    Accepted: ``scheme://host[:port]`` and ``scheme://*.domain[:port]``; the port
    may be ``*`` for any port. A single trailing slash is tolerated. Extension
    and app schemes (``app_origins``, and ``extra_schemes``) take one exact host.
    """
    text = value.strip()
    if text == "*":
        raise OriginError("a rule must name an origin; allowing everyone is not supported")
    if text.lower() == "null":
        raise OriginError(
            "null is the origin of sandboxed frames, file: pages and some Electron apps, "
            "which any page can take on: it is never allowed"
        )
    problem = scheme_problem(text.partition(":")[0].lower())
    if problem is not None:  # before the characters: "data:text/html,..." has a comma
        raise OriginError.of(problem)
    if "://" not in text:
        raise OriginError(
            "a rule starts with its scheme, such as https://", _with_scheme(text, extra_schemes)
        )
    _check_characters(text, allow_unicode=True)
    scheme, authority, path, rest = _split(text, extra_schemes)
    if path not in ("", "/") or rest:
        raise OriginError("a rule is an origin (scheme://host[:port]) without a path or query")
    if scheme not in DEFAULT_PORTS:
        return Rule(scheme, _app_host(scheme, authority, from_client=False), NO_PORT)
    host, port, subdomains = _parse_authority(
        authority, scheme, from_client=False, allow_wildcards=True
    )
    return Rule(scheme, host, port, subdomains)


def _with_scheme(text: str, extra_schemes: Collection[str]) -> str | None:
    """``text`` typed without its scheme, as a rule: http:// for this machine, else https://."""
    scheme = "http" if text.split(":")[0].lower() in {"localhost", "127.0.0.1"} else "https"
    try:
        return str(parse_rule(f"{scheme}://{text}", extra_schemes))
    except OriginError:
        return None


# Characters a URL's path, query and fragment keep as they are (RFC 3986), with "%".
URL_PUNCTUATION = "/?#[]@!$&'()*+,;=:%-._~"


def as_browsers_send(value: str) -> str:
    """``value`` with an international host name in the ASCII form browsers send (punycode).

    For operators who type ``https://bücher.example``: a browser's ``Origin``
    header says ``https://xn--bcher-kva.example``. Anything it cannot convert is
    returned as it is, for the parser to refuse with its own message.
    """
    if value.isascii() or "://" not in value:
        return value
    scheme, rest = value.split("://", 1)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority or authority.startswith("["):
        return value
    host, colon, port = authority.partition(":")
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return value
    # A path or query with non-ASCII characters goes out percent-encoded, as browsers send it.
    return f"{scheme}://{ascii_host}{colon}{port}{quote(tail, safe=URL_PUNCTUATION)}"


def parse_origin_header(value: str) -> Origin:
    """Parse the value of an ``Origin`` header strictly."""
    return _client_origin(value, bare=True)


def origin_of_referer(value: str) -> Origin:
    """Return the origin of a ``Referer`` URL, parsed strictly."""
    return _client_origin(value, bare=False)


# A site's visitors send the same few Origin (and Referer) values, and a connect's
# requests are judged more than once (the gate, the session, the connect): each value
# is parsed once. Refused values raise and are not kept; kept ones are immutable.
@functools.lru_cache(maxsize=256)
def _client_origin(value: str, *, bare: bool) -> Origin:
    match = (_FAST_ORIGIN if bare else _FAST_REFERER).fullmatch(value)
    if match is not None and len(value) <= MAX_HEADER_LENGTH:
        scheme, host, port_text = match.groups()
        port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
        if port <= 65535 and _is_plain_host_name(host):
            return Origin(scheme, host, port)
    return _client_origin_thorough(value, bare=bare)


def _is_plain_host_name(host: str) -> bool:
    """Labels of 1 to 63 characters, no hyphen at either end, not an IPv4 address."""
    if ".." in host or ".-" in host or "-." in host or host[0] in ".-" or host[-1] in ".-":
        return False
    if len(host) > 63 and max(map(len, host.split("."))) > 63:
        return False
    return not _NUMERIC_LABEL.fullmatch(host.rpartition(".")[2])


def _client_origin_thorough(value: str, *, bare: bool) -> Origin:
    """Every check, one by one, each with its own message."""
    _check_characters(value)
    scheme, authority, path, rest = _split(value, None)
    if bare and (path or rest):
        raise OriginError("an Origin header has no path, query or fragment")
    if scheme not in DEFAULT_PORTS:
        return Origin(scheme, _app_host(scheme, authority, from_client=True), NO_PORT)
    host, port, _ = _parse_authority(authority, scheme, from_client=True, allow_wildcards=False)
    if port is None:  # pragma: no cover - "*" is refused without allow_wildcards
        raise OriginError("the port must be a number")
    return Origin(scheme, host, port)
