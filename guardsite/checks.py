"""System checks of the project's own settings (ids ``guardsite.W00x``)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

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
    from .serving import protocol_contract_breaches

    return [
        Error(
            f"eventlet.wsgi.HttpProtocol changed: {breach}.",
            hint="Install an eventlet release in the tested range, or update "
            "guardsite/serving.py's Protocol.",
            id="guardsite.E003",
        )
        for breach in protocol_contract_breaches()
    ]
