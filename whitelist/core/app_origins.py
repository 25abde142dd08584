"""Origins that are not web sites: browser extensions and apps built from web code.

A Chrome extension's pages send ``Origin: chrome-extension://<id>``, Firefox's
``moz-extension://<uuid>``, Capacitor on iOS ``capacitor://localhost``. Each
names one extension or one app, so a rule for it is exact: the host as the
platform writes it, no wildcard, no port. A scheme without a host
(``file:``, ``data:``, ``javascript:``) names no one: browsers send
``Origin: null`` for such pages, and null is never allowed.

Pure Python and a leaf: ``origins`` asks these functions why a value is not
usable and raises its own ``OriginError`` with the answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

# The port of an extension or app origin, which has none (a web port is 1 to 65535).
NO_PORT = 0

WEB_SCHEMES = frozenset({"http", "https"})
# The socket's own address, not a page's: a rule names the page that opens the socket.
SOCKET_SCHEMES = frozenset({"ws", "wss"})
# URLs without a host: their pages send ``Origin: null``, or the origin of the page
# that made them (``blob:``), never an origin of their own.
HOSTLESS_SCHEMES = frozenset(
    {"about", "blob", "data", "file", "filesystem", "javascript", "mailto", "tel", "view-source"}
)
SCHEME_NAME = re.compile(r"[a-z][a-z0-9+.-]*")

CHROMIUM_EXTENSION_ID = re.compile(r"[a-p]{32}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BRACED_UUID = re.compile(r"\{([0-9a-fA-F-]{36})\}")


@dataclass(frozen=True, slots=True)
class AppScheme:
    """What sends a scheme, and what its host is (``form``: None for any host name)."""

    platform: str
    names: str
    form: re.Pattern[str] | None = None


APP_SCHEMES: Mapping[str, AppScheme] = MappingProxyType(
    {
        "chrome-extension": AppScheme(
            "Chrome, Edge and other Chromium browsers' extensions",
            "extension id (32 letters from a to p, as chrome://extensions shows it)",
            CHROMIUM_EXTENSION_ID,
        ),
        "moz-extension": AppScheme(
            "Firefox extensions",
            "installation's Internal UUID (about:debugging shows it)",
            UUID,
        ),
        "safari-web-extension": AppScheme(
            "Safari web extensions", "installation's UUID (Safari's Develop menu shows it)", UUID
        ),
        "capacitor": AppScheme("Capacitor apps on iOS", "app host (localhost by default)"),
        "ionic": AppScheme("Ionic's legacy WebView on iOS", "app host (localhost by default)"),
        "tauri": AppScheme("Tauri apps on macOS and Linux", "app host (localhost by default)"),
    }
)
EXTRA_SCHEME = AppScheme("WHITELIST_EXTRA_SCHEMES", "app host")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a value is not a usable origin, and what was probably meant."""

    reason: str
    suggestion: str | None = None


def scheme_problem(scheme: str) -> Problem | None:
    """Why no origin, sent or allowed, can have ``scheme`` (a hostless or socket scheme)."""
    if scheme in HOSTLESS_SCHEMES:
        return Problem(
            f"{scheme}: URLs have no host, so their pages have no origin of their own "
            "(browsers send Origin: null for them, which is never allowed)"
        )
    if scheme in SOCKET_SCHEMES:
        web = "https" if scheme == "wss" else "http"
        return Problem(
            f"{scheme}:// is the socket's address; a rule names the origin of the page "
            f"that opens the socket, such as {web}://"
        )
    return None


def rule_scheme_problem(scheme: str, extra_schemes: Collection[str]) -> Problem | None:
    """Why staff may not write a rule for ``scheme``, or None."""
    if scheme in WEB_SCHEMES or scheme in APP_SCHEMES or scheme in extra_schemes:
        return None
    return scheme_problem(scheme) or Problem(
        f"the scheme must be http or https, or one that extensions and apps send "
        f"({', '.join(APP_SCHEMES)}); add another to WHITELIST_EXTRA_SCHEMES if its "
        "pages send it with a host"
    )


def authority_problem(scheme: str, authority: str) -> Problem | None:
    """Why ``authority`` cannot follow ``scheme://`` in an extension or app origin, or None.

    Known schemes have their host checked against the platform's form, case aside;
    any other scheme takes a host name, which the caller checks.
    """
    known = APP_SCHEMES.get(scheme, EXTRA_SCHEME)
    if "*" in authority:
        return Problem(f"a {scheme} origin names one {known.names}: no wildcard")
    braced = _BRACED_UUID.fullmatch(authority)
    if braced is not None and known.form is UUID:
        return _suggest(f"the {known.names} is written without braces", scheme, braced[1])
    if "@" in authority:
        if scheme == "moz-extension":
            return Problem(
                "a moz-extension origin names the installation's Internal UUID, "
                "not the add-on's ID from its manifest (about:debugging shows both)"
            )
        return Problem("must not contain user information (user@host)")
    if ":" in authority:
        return Problem(f"a {scheme} origin has no port")
    if known.form is None or known.form.fullmatch(authority.lower()):
        return None
    return _wrong_form(scheme, known, authority.lower())


def _wrong_form(scheme: str, known: AppScheme, host: str) -> Problem:
    if known.form is CHROMIUM_EXTENSION_ID and UUID.fullmatch(host):
        reason = "that is a UUID, which Firefox and Safari give an installed extension"
        return _suggest(reason, "moz-extension", host)
    if known.form is UUID and CHROMIUM_EXTENSION_ID.fullmatch(host):
        return _suggest("that is a Chromium extension id", "chrome-extension", host)
    return Problem(f"a {scheme} origin names the {known.names}; {host!r} is not one")


def _suggest(reason: str, scheme: str, host: str) -> Problem:
    return Problem(reason, f"{scheme}://{host.lower()}")


def extra_scheme_problem(name: object) -> str | None:
    """Why ``name`` cannot be listed in ``WHITELIST_EXTRA_SCHEMES``, or None."""
    if not isinstance(name, str) or not SCHEME_NAME.fullmatch(name):
        return "not a scheme name (in lower case: a letter, then letters, digits, +, - or .)"
    problem = scheme_problem(name)
    return problem.reason if problem else None
