"""System checks of the ``WHITELIST_*`` settings themselves.

Ids ``whitelist.E001``-``E003``, ``E005``-``E010``, ``W001``, ``W010``-``W012``.

What the settings mean for a deployment (deploy switches, versions, the
database driver, the rules stored) is checked in ``environment_checks``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from whitelist.conf import (
    MAX_REFRESH_INTERVAL,
    MIN_TOKEN_LENGTH,
    conf,
    is_list,
    is_permission_list,
    is_positive_number,
    is_whole_number,
)
from whitelist.core.app_origins import extra_scheme_problem
from whitelist.core.proxies import parse_network

# Switches that must be True or False (a string such as "False" would be truthy).
SWITCHES = (
    "WHITELIST_ALLOW_MISSING_ORIGIN",
    "WHITELIST_REFUSE_AT_HANDSHAKE",
    "WHITELIST_REQUIRE_SECURE",
    "WHITELIST_REPORT_ONLY",
    "WHITELIST_METRICS_PUBLIC",
    "WHITELIST_REFUSAL_LOG",
)
# Limits whose value must be a number above 0.
POSITIVE_NUMBERS = (
    "WHITELIST_CONNECT_BURST",
    "WHITELIST_CONNECT_TIMEOUT",
    "WHITELIST_REFUSAL_LOG_MAX_AGE",
    "WHITELIST_FLUSH_INTERVAL",
    "WHITELIST_USER_RECHECK_INTERVAL",
)
# Limits that count things: whole numbers above 0 (conf uses the default for 10.5).
WHOLE_NUMBERS = (
    "WHITELIST_MAX_ATTACHMENTS",
    "WHITELIST_MAX_BINARY_BYTES",
    "WHITELIST_MAX_PENDING_BINARY_BYTES",
    "WHITELIST_PRECONNECT_BYTES",
    "WHITELIST_REFUSAL_LOG_MAX_ROWS",
)
PROTECTED_NAMESPACES_EXAMPLE = '{"/account": [], "/staff": ["app.view_thing"]}'


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse settings that would break or silently weaken the guard."""
    return [
        *_refresh_interval(),
        *_texts(),
        *_switches(),
        *_limits(),
        *_changes_url(),
        *_protected_namespaces(),
        *_metrics_token(),
        *_missing_origin(),
        *_trusted_proxies(),
        *_extra_schemes(),
    ]


def _refresh_interval() -> list[CheckMessage]:
    interval = conf.raw("WHITELIST_REFRESH_INTERVAL", 0.25)
    is_number = isinstance(interval, int | float) and not isinstance(interval, bool)
    if is_number and 0 < interval <= MAX_REFRESH_INTERVAL:
        return []
    return [
        Error(
            f"WHITELIST_REFRESH_INTERVAL is {interval!r}.",
            hint="Use a number of seconds above 0 and at most 60; 0.25 is the default.",
            id="whitelist.E001",
        )
    ]


def _texts() -> list[CheckMessage]:
    return [
        Error(
            f"{name} is {value!r}.",
            hint="Use a non-empty string; clients show it to people.",
            id="whitelist.E002",
        )
        for name in ("WHITELIST_REFUSAL_MESSAGE", "WHITELIST_WELCOME_MESSAGE")
        if not isinstance(value := conf.raw(name, "default"), str) or not value.strip()
    ]


def _switches() -> list[CheckMessage]:
    return [
        Error(f"{name} is {value!r}.", hint="Use True or False.", id="whitelist.E003")
        for name in SWITCHES
        if not isinstance(value := conf.raw(name, False), bool)
    ]


def _not_positive(name: str, value: object, also: str = "") -> Error:
    allowed = f"a number above 0 {also}".strip()
    return Error(
        f"{name} is {value!r}.",
        hint=f"Use {allowed} (not a string); leave it out for the default.",
        id="whitelist.E006",
    )


def _limits() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for name in POSITIVE_NUMBERS:
        value = conf.raw(name, 1)
        if not is_positive_number(value):
            messages.append(_not_positive(name, value))
    for name in WHOLE_NUMBERS:
        value = conf.raw(name, 1)
        if not is_whole_number(value):
            messages.append(_not_positive(name, value, "and whole"))
    rate = conf.raw("WHITELIST_CONNECT_RATE", 1)
    if rate is not None and not is_positive_number(rate):
        messages.append(_not_positive("WHITELIST_CONNECT_RATE", rate, "or None for no limit"))
    pace = conf.raw("WHITELIST_REFUSAL_RATE", 1)
    if pace is not None and not is_positive_number(pace):
        messages.append(_not_positive("WHITELIST_REFUSAL_RATE", pace, "or None for no pace"))
    proxies = conf.raw("WHITELIST_PROXY_COUNT", 0)
    if not is_whole_number(proxies, minimum=0):
        messages.append(_not_positive("WHITELIST_PROXY_COUNT", proxies, "or 0, a whole number"))
    return messages


def _changes_url() -> list[CheckMessage]:
    url = conf.WHITELIST_CHANGES_URL
    if url is None or (
        isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://"))
    ):
        return []
    return [
        Error(
            f"WHITELIST_CHANGES_URL is {url!r}.",
            hint="Use a Redis URL (redis://host:port/db, rediss://, unix://), or None.",
            id="whitelist.E005",
        )
    ]


def _protected_namespaces() -> list[CheckMessage]:
    """A namespace whose entry is unusable refuses everyone; a non-dict protects nothing."""
    value = conf.raw("WHITELIST_PROTECTED_NAMESPACES", {})
    if not isinstance(value, dict):
        return [_bad_namespaces(f"WHITELIST_PROTECTED_NAMESPACES is {value!r}, not a dict.")]
    return [
        _bad_namespaces(f"WHITELIST_PROTECTED_NAMESPACES has {namespace!r}: {permissions!r}.")
        for namespace, permissions in value.items()
        if not (isinstance(namespace, str) and namespace.startswith("/"))
        or not is_permission_list(permissions)
    ]


def _bad_namespaces(message: str) -> Error:
    return Error(
        message,
        hint="Map each namespace (starting with /) to None or a list of permissions named "
        f"app_label.codename: {PROTECTED_NAMESPACES_EXAMPLE}.",
        id="whitelist.E007",
    )


def _metrics_token() -> list[CheckMessage]:
    """Describe the token by its type and length only: check output ends up in logs."""
    token = conf.raw("WHITELIST_METRICS_TOKEN", None)
    if token is None or (isinstance(token, str) and len(token) >= MIN_TOKEN_LENGTH):
        return []
    if isinstance(token, str):
        described = f"only {len(token)} characters long"
    else:
        described = f"of type {type(token).__name__}, not a string"
    return [
        Error(
            f"WHITELIST_METRICS_TOKEN is {described}: /metrics is served to nobody.",
            hint=f"Use a random string of at least {MIN_TOKEN_LENGTH} characters, such as "
            'python -c "import secrets; print(secrets.token_urlsafe())", or None for no metrics.',
            id="whitelist.E008",
        )
    ]


def _missing_origin() -> list[CheckMessage]:
    if conf.WHITELIST_ALLOW_MISSING_ORIGIN is not True:
        return []
    return [
        Warning(
            "WHITELIST_ALLOW_MISSING_ORIGIN is True: clients that send no Origin "
            "or Referer header are admitted.",
            hint="Leave it False unless non-browser clients must connect: browsers "
            "always send one of the two, so only scripts and apps benefit.",
            id="whitelist.W001",
        )
    ]


def _trusted_proxies() -> list[CheckMessage]:
    return _list_setting(
        "WHITELIST_TRUSTED_PROXIES",
        "whitelist.E009",
        'a list of addresses or networks, such as ["127.0.0.1", "10.0.0.0/8"]',
        "no proxy is trusted",
        _network_problem,
    )


def _network_problem(entry: object) -> str | None:
    try:
        parse_network(entry)
    except ValueError as exc:
        return str(exc)
    return None


def _extra_schemes() -> list[CheckMessage]:
    return _list_setting(
        "WHITELIST_EXTRA_SCHEMES",
        "whitelist.E010",
        'a list of the schemes your apps\' pages send with a host, such as ["myapp"]',
        "no extra scheme is accepted",
        extra_scheme_problem,
    )


def _list_setting(
    name: str,
    check_id: str,
    example: str,
    nothing: str,
    problem_of: Callable[[object], str | None],
) -> list[CheckMessage]:
    """A setting that lists entries: an error if it is no list, and one per entry left out
    (conf leaves it out, with ``problem_of`` saying why)."""
    value = conf.raw(name, ())
    if not is_list(value):
        return [Error(f"{name} is {value!r}: {nothing}.", hint=f"Use {example}.", id=check_id)]
    return [
        Error(
            f"{name} has {entry!r}, which is left out: {problem}.",
            hint=f"Correct or remove it; use {example}.",
            id=check_id,
        )
        for entry in value
        if (problem := problem_of(entry)) is not None
    ]


@register(Tags.security)
def check_forwarded_for(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """X-Forwarded-For needs both: which peers may write it, and how many hops to read."""
    value = conf.raw("WHITELIST_TRUSTED_PROXIES", ())
    count = conf.WHITELIST_PROXY_COUNT
    messages: list[CheckMessage] = []
    if count and not value:
        messages.append(
            Warning(
                f"WHITELIST_PROXY_COUNT is {count} but WHITELIST_TRUSTED_PROXIES is empty: "
                "X-Forwarded-For is never read, and every client behind the proxy "
                "shares its address's handshake limit.",
                hint="List the proxies' addresses in WHITELIST_TRUSTED_PROXIES; a header "
                "from any other peer is the client's own writing.",
                id="whitelist.W010",
            )
        )
    elif value and not count:
        messages.append(
            Warning(
                "WHITELIST_TRUSTED_PROXIES is set but WHITELIST_PROXY_COUNT is 0: "
                "X-Forwarded-For is never read.",
                hint="Set WHITELIST_PROXY_COUNT to the number of proxies in front (1 behind "
                "one nginx), or leave WHITELIST_TRUSTED_PROXIES empty.",
                id="whitelist.W011",
            )
        )
    everyone = [
        str(network)
        for network in conf.WHITELIST_TRUSTED_PROXIES.networks
        if network.prefixlen == 0
    ]
    if everyone:
        messages.append(
            Warning(
                f"WHITELIST_TRUSTED_PROXIES has {', '.join(everyone)}: every peer is a "
                "trusted proxy, so any client writes its own address in X-Forwarded-For "
                "and escapes the per-address limits.",
                hint="List only the proxies' own addresses or networks.",
                id="whitelist.W012",
            )
        )
    return messages
