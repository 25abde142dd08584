"""System checks of what surrounds the app: deploy switches, versions, the driver, stored rules.

Ids ``whitelist.W002``-``W009``, ``W013``, ``W014`` and ``E004``; the settings' own types and
ranges are checked in ``checks``.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections, router

from whitelist.conf import conf
from whitelist.core.origins import OriginError
from whitelist.core.scope import too_broad
from whitelist.engine import contracts
from whitelist.engine.versions import SUPPORTED, installed_release, parse_release
from whitelist.rules.configured import normalise_rule


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


@register(Tags.security, deploy=True)
def check_proxy_count(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A proxy trusted for the protocol is a proxy in front: the handshake limit must know it."""
    if not conf.SECURE_PROXY_SSL_HEADER or conf.WHITELIST_PROXY_COUNT:
        return []
    return [
        Warning(
            "SECURE_PROXY_SSL_HEADER trusts a proxy in front, but WHITELIST_PROXY_COUNT is 0: "
            "every client behind the proxy counts as the proxy's address and shares one "
            "handshake limit, and flood detection can drop them all together.",
            hint="Set WHITELIST_PROXY_COUNT to the number of proxies in front (1 behind one "
            "nginx) and list them in WHITELIST_TRUSTED_PROXIES.",
            id="whitelist.W013",
        )
    ]


@register(Tags.compatibility)
def check_socketio_versions(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Upstream releases older than the engine layer supports, or newer than it was tested on."""
    messages: list[CheckMessage] = []
    for distribution, supported in SUPPORTED.items():
        version = installed_release(distribution)
        if version is None:
            continue  # eventlet is optional; the server cannot start without the others
        release = parse_release(version)
        if release is not None and supported.is_older(release):
            messages.append(
                Error(
                    f"{distribution} {version} is older than whitelist supports "
                    f"({supported.requirement}): {supported.why_lowest}.",
                    hint=f"pip install '{supported.requirement}'",
                    id="whitelist.E004",
                )
            )
        elif release is None or supported.is_newer_than_tested(release):
            messages.append(
                Warning(
                    f"{distribution} {version} is newer than the releases whitelist was "
                    f"tested on (up to {supported.newest}).",
                    hint="The engine layer's start-up contracts passed on it (whitelist.E1xx "
                    "would say otherwise); run 'make test-newest' to run the guard's tests on it.",
                    id="whitelist.W003",
                )
            )
    return messages


@register(Tags.compatibility)
def check_engine_contracts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """What the engine layer assumes of python-socketio, python-engineio and eventlet.

    The threading mode always; eventlet's when eventlet is imported (runsocket,
    gunicorn's eventlet worker). A ``GuardedServer`` checks its own mode as it
    is built, and does not start on an error.
    """
    modes = ["threading", *(["eventlet"] if "eventlet" in sys.modules else [])]
    messages: list[CheckMessage] = []
    reported = set()
    for mode in modes:
        for breach in contracts.verify(mode):
            if breach.contract.check_id in reported:
                continue
            reported.add(breach.contract.check_id)
            kind = Error if breach.contract.severity == contracts.ERROR else Warning
            messages.append(
                kind(
                    f"{breach.contract.symbol} is not what Guardsite's engine layer relies on "
                    f"({mode} mode): {breach.found}.",
                    hint="Install python-socketio, python-engineio and eventlet releases in "
                    "the tested range, or update whitelist/engine (REACH.md lists each reach).",
                    id=breach.contract.check_id,
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

    from whitelist.models import AllowedOrigin

    try:
        if AllowedOrigin.objects.enabled().exists():
            return []
    except DatabaseError:
        unreachable = _unreachable(router.db_for_read(AllowedOrigin))
        if unreachable is None:  # reached, but not migrated yet: migrate says so
            return []
        return [
            Warning(
                f"The database cannot be reached ({unreachable}): the server cannot load "
                "the rules, and refuses every Socket.IO connect until it can.",
                hint="Check DATABASE (DATABASE_URL here) and that the database server runs.",
                id="whitelist.W014",
            )
        ]
    return [
        Warning(
            "No rule is enabled: every Socket.IO connect will be refused.",
            hint="Add the origins of your own pages: manage.py whitelist add https://www.example.com",
            id="whitelist.W005",
        )
    ]


def _unreachable(alias: str) -> str | None:
    """Why the database ``alias`` cannot be connected to (its error's first line), or None."""
    from django.db import DatabaseError

    try:
        connections[alias].ensure_connection()
    except DatabaseError as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


@register(Tags.security)
def check_broad_rules(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Enabled rules over a public suffix, which admin and the CLI refuse to write.

    They exist only when listed in WHITELIST_BROAD_RULES (then they admit every
    site under the suffix) or written by raw SQL or older code (then the server
    ignores them until someone lists them), so they deserve a look either way.
    """
    from django.db import DatabaseError

    from whitelist.models import AllowedOrigin

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
            reason = too_broad(normalise_rule(pattern))
        except OriginError:  # malformed: the server skips it and logs it
            continue
        if reason is not None:
            found.append((pattern, reason))
    return found
