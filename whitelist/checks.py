"""System checks for the allowlist settings (ids ``whitelist.E00x``/``W00x``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from .conf import MAX_REFRESH_INTERVAL, conf, is_positive_number, is_whole_number
from .versions import TESTED, installed_release, parse_release

# Limits whose value must be a number above 0.
POSITIVE_NUMBERS = ("WHITELIST_CONNECT_BURST", "WHITELIST_CONNECT_TIMEOUT")
# Limits that count things: whole numbers above 0 (conf uses the default for 10.5).
WHOLE_NUMBERS = (
    "WHITELIST_MAX_ATTACHMENTS",
    "WHITELIST_MAX_BINARY_BYTES",
    "WHITELIST_PRECONNECT_BYTES",
)


def _not_positive(name: str, value: object, also: str = "") -> Error:
    allowed = f"a number above 0 {also}".strip()
    return Error(
        f"{name} is {value!r}.",
        hint=f"Use {allowed} (not a string); leave it out for the default.",
        id="whitelist.E006",
    )


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Refuse settings that would break or silently weaken the guard."""
    messages: list[CheckMessage] = []
    interval = conf.raw("WHITELIST_REFRESH_INTERVAL", 0.25)
    is_number = isinstance(interval, int | float) and not isinstance(interval, bool)
    if not is_number or not 0 < interval <= MAX_REFRESH_INTERVAL:
        messages.append(
            Error(
                f"WHITELIST_REFRESH_INTERVAL is {interval!r}.",
                hint="Use a number of seconds above 0 and at most 60; 0.25 is the default.",
                id="whitelist.E001",
            )
        )
    for name in ("WHITELIST_REFUSAL_MESSAGE", "WHITELIST_WELCOME_MESSAGE"):
        value = conf.raw(name, "default")
        if not isinstance(value, str) or not value.strip():
            messages.append(
                Error(
                    f"{name} is {value!r}.",
                    hint="Use a non-empty string; clients show it to people.",
                    id="whitelist.E002",
                )
            )
    for name in (
        "WHITELIST_ALLOW_MISSING_ORIGIN",
        "WHITELIST_REFUSE_AT_HANDSHAKE",
        "WHITELIST_REQUIRE_SECURE",
    ):
        value = conf.raw(name, False)
        if not isinstance(value, bool):
            messages.append(
                Error(f"{name} is {value!r}.", hint="Use True or False.", id="whitelist.E003")
            )
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
    url = conf.WHITELIST_CHANGES_URL
    if url is not None and not (
        isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://"))
    ):
        messages.append(
            Error(
                f"WHITELIST_CHANGES_URL is {url!r}.",
                hint="Use a Redis URL (redis://host:port/db, rediss://, unix://), or None.",
                id="whitelist.E005",
            )
        )
    if conf.WHITELIST_ALLOW_MISSING_ORIGIN is True:
        messages.append(
            Warning(
                "WHITELIST_ALLOW_MISSING_ORIGIN is True: clients that send no Origin "
                "or Referer header are admitted.",
                hint="Leave it False unless non-browser clients must connect: browsers "
                "always send one of the two, so only scripts and apps benefit.",
                id="whitelist.W001",
            )
        )
    return messages


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
