"""Every decision on logger ``whitelist.decisions``, with its fields, at levels a site can tune.

* admitted: DEBUG;
* refused: INFO, at most 10 a minute per reason, the rest at DEBUG, counted
  (clients can neither flood the log nor mute it);
* report-only (would be refused, admitted): WARNING, rate-limited the same way.

Each record carries ``record.decision``: outcome, origin, source header, client
address, namespace, rule, reason and detail, which ``whitelist.jsonlog``
writes as JSON fields.
"""

from __future__ import annotations

import logging
from typing import Any

from whitelist.core.ratelimited_log import RateLimitedLog
from whitelist.rules.decision import Decision

logger = logging.getLogger("whitelist.decisions")
refusals = RateLimitedLog(logger)

ADMITTED = "admitted"
REFUSED = "refused"
REPORT_ONLY = "report-only"


def decision_fields(
    outcome: str, decision: Decision, namespace: str | None, address: str | None
) -> dict[str, Any]:
    """The structured form of one decision."""
    return {
        "outcome": outcome,
        "origin": decision.origin,
        "source": decision.source,
        "address": address,
        "namespace": namespace,
        "rule": decision.rule,
        "reason": decision.reason,
        "detail": decision.detail,
    }


def log_decision(
    outcome: str, decision: Decision, namespace: str | None, address: str | None = None
) -> None:
    """Log one decision at its outcome's level."""
    extra = {"decision": decision_fields(outcome, decision, namespace, address)}
    if outcome == ADMITTED:
        logger.debug(
            "Admitted %s on %s from %s: rule %s",
            decision.origin, namespace, address, decision.rule, extra=extra,
        )  # fmt: skip
        return
    if outcome == REPORT_ONLY:
        level, kind, verb = logging.WARNING, f"report-only ({decision.reason})", "Would refuse"
    else:
        level, kind, verb = logging.INFO, f"refusals ({decision.reason})", "Refused"
    refusals.log(
        kind,
        level,
        "%s %s on %s from %s: %s",
        verb,
        decision.origin,
        namespace,
        address,
        decision.detail,
        extra=extra,
    )
