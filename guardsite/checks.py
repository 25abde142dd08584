"""System checks of the project's settings and servers (``guardsite.E001``-``E005``, ``W00x``)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from whitelist.conf import is_positive_number, is_whole_number

# A certificate that expires sooner than this is worth a warning before deploying.
EXPIRY_WARNING_DAYS = 14


@register(Tags.security, deploy=True)
def check_tls_certificate_expiry(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """GUARDSITE_TLS_CERT expired, or expiring within EXPIRY_WARNING_DAYS days."""
    from .tls import TLSError, describe_certificate

    if not settings.GUARDSITE_TLS_CERT:
        return []
    try:
        info = describe_certificate(Path(settings.GUARDSITE_TLS_CERT))
    except TLSError as exc:
        return [Error(str(exc), hint="Check GUARDSITE_TLS_CERT.", id="guardsite.E001")]
    left = info.not_after - dt.datetime.now(dt.UTC)
    if left.total_seconds() <= 0:
        return [
            Error(
                f"The TLS certificate {info.cert_path} expired on {info.not_after:%Y-%m-%d}.",
                hint="Renew it: browsers refuse the site and every wss:// socket.",
                id="guardsite.E002",
            )
        ]
    if left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        return [
            Warning(
                f"The TLS certificate {info.cert_path} expires on {info.not_after:%Y-%m-%d}, "
                f"in {left.days} day(s).",
                hint="Renew it before then.",
                id="guardsite.W001",
            )
        ]
    return []


@register(Tags.compatibility)
def check_eventlet_protocol(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The eventlet internals ``serving.Protocol`` overrides are still there (runsocket).

    Checked once eventlet is imported, as runsocket does before its checks;
    whitelist/engine/REACH.md lists the override.
    """
    if "eventlet" not in sys.modules:
        return []
    from .serving.eventlet_server import protocol_contract_breaches

    return [
        Error(
            f"eventlet.wsgi.HttpProtocol changed: {breach}.",
            hint="Install an eventlet release in the tested range, or update "
            "guardsite/serving/eventlet_server.py's Protocol.",
            id="guardsite.E003",
        )
        for breach in protocol_contract_breaches()
    ]


@register(Tags.compatibility)
def check_gevent_handler(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The gevent.pywsgi methods ``gevent_server`` overrides are still there (runsocket
    in gevent mode); whitelist/engine/REACH.md lists the overrides."""
    if getattr(settings, "GUARDSITE_SOCKETIO_ASYNC_MODE", None) != "gevent":
        return []
    from .serving.gevent_server import handler_contract_breaches

    return [
        Error(
            f"gevent.pywsgi changed: {breach}.",
            hint="Install a gevent release in the tested range, or update "
            "guardsite/serving/gevent_server.py.",
            id="guardsite.E005",
        )
        for breach in handler_contract_breaches()
    ]


@register(Tags.security)
def check_connection_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """runsocket's request-head deadline and per-address cap (guardsite/serving/)."""
    timeout = getattr(settings, "GUARDSITE_REQUEST_HEAD_TIMEOUT", 20.0)
    cap = getattr(settings, "GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS", 100)
    pool = getattr(settings, "GUARDSITE_MAX_CONNECTIONS", 10_000)
    messages: list[CheckMessage] = []
    if not is_positive_number(timeout):
        messages.append(
            Error(
                f"GUARDSITE_REQUEST_HEAD_TIMEOUT is {timeout!r}.",
                hint="Use a number of seconds above 0 (20 is the default).",
                id="guardsite.E004",
            )
        )
    if not is_whole_number(cap):
        messages.append(
            Error(
                f"GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS is {cap!r}.",
                hint="Use a whole number above 0 (100 is the default).",
                id="guardsite.E004",
            )
        )
    elif is_whole_number(pool) and cap >= pool:
        messages.append(
            Warning(
                f"GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS ({cap}) is not below "
                f"GUARDSITE_MAX_CONNECTIONS ({pool}): one address can hold every connection.",
                hint="Keep it a small part of the pool; a proxy in WHITELIST_TRUSTED_PROXIES "
                "is not capped, whatever the cap.",
                id="guardsite.W002",
            )
        )
    return messages
