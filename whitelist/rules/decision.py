"""The decision: may the page behind this request open a socket?

``decide`` never raises. Any failure, including a database fault while loading
the rules, becomes a refusal with reason ``internal-error``: python-socketio
treats an unexpected exception in a connect handler as anything but a refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from whitelist.conf import conf
from whitelist.core.index import AllowlistIndex
from whitelist.core.origins import (
    MAX_HEADER_LENGTH,
    OriginError,
    origin_of_referer,
    parse_origin_header,
)
from whitelist.rules.cache import AllowlistCache, allowlist

logger = logging.getLogger(__name__)

# Machine-readable reasons, sent to refused clients in ``connect_error.data``.
ALLOWED = "allowed"
NO_ORIGIN = "missing-origin"
NULL_ORIGIN = "null-origin"
MALFORMED = "malformed-origin"
NOT_ALLOWED = "origin-not-allowed"
INSECURE = "insecure-transport"
INTERNAL_ERROR = "internal-error"
# What WHITELIST_REPORT_ONLY may admit: an origin the rules do not list (yet). Never
# plain ws:// under WHITELIST_REQUIRE_SECURE, never a guard that failed.
REPORTABLE = frozenset({NO_ORIGIN, NULL_ORIGIN, MALFORMED, NOT_ALLOWED})


class Decision(NamedTuple):
    """The outcome for one request, and why (a tuple: cheap on every connect)."""

    allowed: bool
    reason: str
    origin: str | None = None
    source: str | None = None
    rule: str | None = None
    detail: str = ""
    secure: bool = False

    def as_error_data(self) -> dict[str, Any]:
        """What a refused client may learn: the reason and the origin we saw."""
        return {"reason": self.reason, "origin": self.origin}


def decide_headers(
    origin: str | None, referer: str | None, index: AllowlistIndex, namespace: str | None = None
) -> Decision:
    """Judge an ``Origin`` header, else the origin of ``Referer``, against ``index``.

    A present but bad ``Origin`` is refused; it never falls back to ``Referer``.
    With a ``namespace``, only rules that apply to it count.
    """
    if origin is not None:
        header, value = "origin", origin
        if value == "null":
            return Decision(False, NULL_ORIGIN, "null", header, detail="Origin is null")
        parse = parse_origin_header
    elif referer is not None:
        header, value, parse = "referer", referer, origin_of_referer
    elif conf.WHITELIST_ALLOW_MISSING_ORIGIN:
        return Decision(True, ALLOWED, detail="no Origin or Referer; allowed by setting")
    else:
        return Decision(False, NO_ORIGIN, detail="no Origin or Referer header")
    try:
        parsed = parse(value)
    except OriginError as exc:
        return Decision(False, MALFORMED, None, header, detail=f"{header.title()}: {exc}")
    rule = index.match(parsed, namespace)
    if rule is None:
        detail = "no rule matches" if namespace is None else f"no rule matches on {namespace}"
        return Decision(False, NOT_ALLOWED, str(parsed), header, None, detail)
    return Decision(True, ALLOWED, str(parsed), header, str(rule))


class HeaderDecisions:
    """``decide_headers``, each distinct answer kept for the index it was decided on.

    A site's visitors send the same few ``Origin`` and ``Referer`` values, and
    each connect is decided several times: the gate on every request (its CORS
    answer), the handshake, the connect. A new index (the rules changed) starts
    afresh. Bounded: past ``size`` answers it starts afresh, and an answer whose
    headers and namespace together are longer than an origin may be is not kept
    (a server that takes every namespace lets a client name one of a megabyte),
    so a flood of invented values costs what deciding each anew costs. Without
    either header the answer depends on a setting, and is not kept; nor is one for
    a namespace that is not a string (msgpack may carry any type).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        # One attribute, read once a call: an index and its answers are always replaced
        # together, so an answer is never kept under another index than its own.
        self._kept: tuple[AllowlistIndex | None, dict[tuple[Any, ...], Decision]] = (None, {})

    def decide(
        self,
        origin: str | None,
        referer: str | None,
        index: AllowlistIndex,
        namespace: str | None = None,
    ) -> Decision:
        if (origin is None and referer is None) or not (
            namespace is None or type(namespace) is str
        ):
            return decide_headers(origin, referer, index, namespace)
        kept_index, kept = self._kept
        if kept_index is not index:
            kept = {}
            self._kept = (index, kept)
        key = (origin, referer, namespace)
        decision = kept.get(key)
        if decision is None:
            decision = decide_headers(origin, referer, index, namespace)
            if len(origin or "") + len(referer or "") + len(namespace or "") <= MAX_HEADER_LENGTH:
                if len(kept) >= self.size:
                    kept.clear()
                kept[key] = decision
        return decision


header_decisions = HeaderDecisions()


def request_origin(environ: Mapping[str, Any]) -> str | None:
    """The origin a browser request names: ``Origin``, else the origin of ``Referer``.

    Canonical when it parses, the header as sent when it does not (so that two
    different values never compare equal); None when there is neither.
    """
    origin, referer = environ.get("HTTP_ORIGIN"), environ.get("HTTP_REFERER")
    if origin is not None:
        value, parse = origin, parse_origin_header
    elif referer is not None:
        value, parse = referer, origin_of_referer
    else:
        return None
    try:
        return str(parse(value))
    except OriginError:
        return value


def admitted_by_report_only(decision: Decision, namespace: str | None) -> bool:
    """Does report-only mode let this refusal in? Only for origins, and never on a namespace
    that needs a logged-in user: there the origin check is what stops cross-site use of
    the visitor's session cookie."""
    return (
        not decision.allowed
        and conf.WHITELIST_REPORT_ONLY
        and decision.reason in REPORTABLE
        and namespace not in conf.WHITELIST_PROTECTED_NAMESPACES
    )


def is_secure(environ: Mapping[str, Any]) -> bool:
    """Did the request come over TLS? A proxy header counts only if Django trusts it."""
    if environ.get("wsgi.url_scheme") == "https":
        return True
    proxy_header = conf.SECURE_PROXY_SSL_HEADER
    if not proxy_header:
        return False
    header, secure_value = proxy_header
    value = environ.get(header)
    return value is not None and value.split(",", 1)[0].strip() == secure_value


def decide(
    environ: Mapping[str, Any], cache: AllowlistCache = allowlist, namespace: str | None = None
) -> Decision:
    """Judge a WSGI request (a connect to ``namespace``, or a handshake); every error refuses."""
    try:
        secure = is_secure(environ)
        if conf.WHITELIST_REQUIRE_SECURE and not secure:
            return Decision(False, INSECURE, detail="the connection is not encrypted")
        decision = header_decisions.decide(
            environ.get("HTTP_ORIGIN"),
            environ.get("HTTP_REFERER"),
            cache.snapshot().index,
            namespace,
        )
    except Exception:
        _log_failure()
        return Decision(False, INTERNAL_ERROR, detail="the guard failed")
    if _failures:
        _log_recovery()
    return decision._replace(secure=True) if secure else decision


_failures = 0


def _log_failure() -> None:
    """A failing database would log on every connect: loudly once, then quietly."""
    global _failures
    _failures += 1
    if _failures == 1:
        logger.exception("The origin guard failed; refusing connections until it works")
    else:
        logger.info("The origin guard failed again (%d times); refusing", _failures, exc_info=True)


def _log_recovery() -> None:
    """Say so once, and let the next failure be loud again."""
    global _failures
    logger.warning("The origin guard works again after %d failed decisions", _failures)
    _failures = 0
