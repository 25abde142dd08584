"""What the gate answers itself, before Django: no host check, no redirect, no log line.

* ``/healthz``: 200 when the server can decide (its rules are loaded, or load
  now), 503 when it cannot, for load balancers;
* ``/metrics``: Prometheus text (``whitelist.reporting.metrics``), only with
  ``Authorization: Bearer <WHITELIST_METRICS_TOKEN>`` (or to anyone with
  ``WHITELIST_METRICS_PUBLIC``, for a private network); without either setting
  the path is Django's like any other, so the metrics are never public by default.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from whitelist.conf import conf
from whitelist.gate.responses import respond_json
from whitelist.reporting.metrics import GuardMetrics
from whitelist.rules.cache import allowlist

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def health(start_response: Callable[..., Any]) -> Any:
    """200 with the revision in force, or 503 when the rules cannot be loaded."""
    try:
        snapshot = allowlist.snapshot()  # from memory, once loaded
    except Exception:
        return respond_json(start_response, "503 Service Unavailable", {"status": "no rules"})
    body = {"status": "ok", "revision": snapshot.revision, "rules": len(snapshot.index)}
    return respond_json(start_response, "200 OK", body)


def metrics_response(
    environ: dict[str, Any], start_response: Callable[..., Any], metrics: GuardMetrics
) -> Any:
    """The metrics for a scraper holding the token (or anyone, if public); 401 for others."""
    if conf.WHITELIST_METRICS_PUBLIC:
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
