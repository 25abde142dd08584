"""System checks for the allowlist settings (ids ``whitelist.E00x``/``W00x``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from .conf import (
    MAX_REFRESH_INTERVAL,
    MIN_TOKEN_LENGTH,
    conf,
    is_permission_list,
    is_positive_number,
    is_whole_number,
)
from .origins import OriginError, parse_rule
from .scope import too_broad
from .versions import TESTED, installed_release, parse_release

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


@register(Tags.security, deploy=True)
def check_deploy_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """In production, Socket.IO should never travel in clear text."""
    if conf.WHITELIST_REQUIRE_SECURE is True:
        return []
    return [
        Warning(
            "WHITELIST_REQUIRE_SECURE is off: sockets may connect over plain ws:// and http://.",
            hint="Serve over TLS (or behind a TLS proxy that Django trusts through "
            "SECURE_PROXY_SSL_HEADER) and set WHITELIST_REQUIRE_SECURE = True.",
            id="whitelist.W002",
        )
    ]


@register(Tags.security, deploy=True)
def check_debug(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """DEBUG costs more in a socket server than in a request-response one."""
    if settings.DEBUG is not True:
        return []
    return [
        Warning(
            "DEBUG is True: Socket.IO handler errors show tracebacks, and Django keeps "
            "every query in memory, which grows without end in a long-running socket server.",
            hint="Set DEBUG = False in production (this project reads DJANGO_DEBUG=0).",
            id="whitelist.W007",
        )
    ]


@register(Tags.security, deploy=True)
def check_report_only(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report-only is for rolling an allowlist out, not for staying in."""
    if conf.WHITELIST_REPORT_ONLY is not True:
        return []
    return [
        Warning(
            "WHITELIST_REPORT_ONLY is True: every refused origin is admitted all the same.",
            hint="Finish the roll-out: review Refused connects in the admin, allow the "
            "origins that belong, then set WHITELIST_REPORT_ONLY = False.",
            id="whitelist.W008",
        )
    ]


@register(Tags.security, deploy=True)
def check_metrics_public(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Metrics show the guard's traffic and state: for the operators' scraper only."""
    if conf.WHITELIST_METRICS_PUBLIC is not True:
        return []
    return [
        Warning(
            "WHITELIST_METRICS_PUBLIC is True: /metrics answers anyone who asks.",
            hint="Set WHITELIST_METRICS_TOKEN and give it to the scraper instead "
            "(it sends Authorization: Bearer <token>).",
            id="whitelist.W009",
        )
    ]


@register(Tags.compatibility)
def check_socketio_versions(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """python-socketio and python-engineio releases outside the range the guard is tested with."""
    messages: list[CheckMessage] = []
    for distribution, tested in TESTED.items():
        version = installed_release(distribution)
        if version is None:
            continue  # the server cannot start without it; Django will say so on import
        release = parse_release(version)
        if release is not None and release < tested.lowest:
            messages.append(
                Error(
                    f"{distribution} {version} is older than whitelist supports "
                    f"({tested.describe()}): {tested.why_lowest}.",
                    hint=f"pip install '{distribution}{tested.describe()}'",
                    id="whitelist.E004",
                )
            )
        elif release is None or release >= tested.untested:
            messages.append(
                Warning(
                    f"{distribution} {version} is outside the range whitelist is tested "
                    f"with ({tested.describe()}).",
                    hint="The guard may still work; run its tests on this release, or "
                    f"pin '{distribution}{tested.describe()}'.",
                    id="whitelist.W003",
                )
            )
    return messages


@register(Tags.compatibility)
def check_database_driver(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """psycopg 3: no pushed rule changes, and under eventlet a query blocks every socket."""
    return [
        Warning(
            f"Database {alias!r} uses psycopg 3: rule changes are not pushed by "
            "LISTEN/NOTIFY (servers poll for them), and under eventlet every socket "
            "of a process waits while one query waits.",
            hint="Install psycopg2 (pip install psycopg2-binary) and uninstall psycopg: "
            "Django prefers psycopg 3 when both are there, and eventlet makes only "
            "psycopg2 cooperative.",
            id="whitelist.W004",
        )
        for alias in connections
        if connections[alias].vendor == "postgresql"
        and getattr(connections[alias].Database, "__name__", "") == "psycopg"
    ]


@register(Tags.security, deploy=True)
def check_some_rule_enabled(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With no enabled rule every socket is refused: rarely what a deployment means."""
    from django.db import DatabaseError

    from .models import AllowedOrigin

    try:
        if AllowedOrigin.objects.enabled().exists():
            return []
    except DatabaseError:  # not migrated yet: the migrate check says so
        return []
    return [
        Warning(
            "No rule is enabled: every Socket.IO connect will be refused.",
            hint="Add the origins of your own pages: manage.py whitelist add https://www.example.com",
            id="whitelist.W005",
        )
    ]


@register(Tags.security)
def check_broad_rules(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Enabled rules over a public suffix, which admin and the CLI refuse to write.

    They exist only when listed in WHITELIST_BROAD_RULES (then they admit every
    site under the suffix) or written by raw SQL or older code (then the server
    ignores them until someone lists them), so they deserve a look either way.
    """
    from django.db import DatabaseError

    from .models import AllowedOrigin

    try:
        patterns = list(AllowedOrigin.objects.enabled().values_list("pattern", flat=True))
    except DatabaseError:  # not migrated yet: the migrate check says so
        return []
    broad = [f"{pattern} ({reason})" for pattern, reason in _too_broad(patterns)]
    if not broad:
        return []
    return [
        Warning(
            f"Enabled rules too broad to mean what they seem: {'; '.join(broad)}.",
            hint="Disable them and add the subdomains you really serve from instead "
            "(https://me.github.io, not https://*.github.io).",
            id="whitelist.W006",
        )
    ]


def _too_broad(patterns: list[str]) -> list[tuple[str, str]]:
    found = []
    for pattern in patterns:
        try:
            reason = too_broad(parse_rule(pattern))
        except OriginError:  # malformed: the server skips it and logs it
            continue
        if reason is not None:
            found.append((pattern, reason))
    return found
