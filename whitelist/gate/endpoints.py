"""What the gate answers itself, before Django: no redirect, no log line.

* ``/healthz``: 200 when the server can decide (its rules are loaded, or load
  now), 503 when it cannot, for load balancers, which ask by address: any
  ``Host``, and nothing but that status (the revision and rule count are
  metrics);
* ``/metrics``: Prometheus text (``whitelist.reporting.metrics``), only with
  ``Authorization: Bearer <WHITELIST_METRICS_TOKEN>`` (or without it, with
  ``WHITELIST_METRICS_PUBLIC``, for a private network: then only to a ``Host``
  Django allows or an IP address, so that no page elsewhere can read them by
  DNS rebinding); without either setting the path is Django's like any other,
  so the metrics are never public by default.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from whitelist.conf import conf
from whitelist.gate.responses import respond_json
from whitelist.reporting.metrics import GuardMetrics
from whitelist.rules.cache import allowlist

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def health(start_response: Callable[..., Any]) -> Any:
    """200 when the rules are loaded (or load now), 503 when they cannot be."""
    try:
        allowlist.snapshot()  # from memory, once loaded
    except Exception:
        return respond_json(start_response, "503 Service Unavailable", {"status": "no rules"})
    # The status only: the revision and rule count are metrics, for whoever holds the token.
    return respond_json(start_response, "200 OK", {"status": "ok"})


def metrics_response(
    environ: dict[str, Any], start_response: Callable[..., Any], metrics: GuardMetrics
) -> Any:
    """The metrics for a scraper holding the token (or anyone, if public); 401 for others."""
    if conf.WHITELIST_METRICS_PUBLIC and host_allowed(environ):
        return metrics_text(start_response, metrics)
    expected = f"Bearer {conf.WHITELIST_METRICS_TOKEN}".encode()
    given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
    if not hmac.compare_digest(given, expected):
        headers = [("WWW-Authenticate", "Bearer")]
        return respond_json(start_response, "401 Unauthorized", {"error": "token"}, headers)
    return metrics_text(start_response, metrics)


def metrics_served() -> bool:
    """Is /metrics ours? Only with a token, or made public on purpose (else Django's 404)."""
    return bool(conf.WHITELIST_METRICS_TOKEN) or conf.WHITELIST_METRICS_PUBLIC


def metrics_text(start_response: Callable[..., Any], metrics: GuardMetrics) -> Any:
    body = metrics.exposition()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))],
    )
    return [body]


def host_allowed(environ: dict[str, Any]) -> bool:
    """Does the request name a host Django allows, or an IP address?

    A page that rebinds its own name to this server's address reaches it with
    that name as ``Host``, never an address; a scraper asks by address or by a
    name listed in ``ALLOWED_HOSTS``.
    """
    domain, _port = split_domain_port(environ.get("HTTP_HOST", ""))
    if not domain:
        return False
    try:
        ipaddress.ip_address(domain.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    else:
        return True
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # as Django's HttpRequest.get_host()
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return validate_host(domain, allowed)
