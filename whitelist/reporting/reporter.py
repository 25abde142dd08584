"""Tell every report of one decision: metrics, the decision log and the refusal log.

All three only count in memory or log on the connect path; the refusal log and
the rule counters reach the database through ``whitelist.reporting.flushing``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from whitelist.conf import conf
from whitelist.core.proxies import client_address
from whitelist.reporting.decision_log import ADMITTED, REFUSED, REPORT_ONLY, log_decision
from whitelist.reporting.decision_log import logger as decision_logger
from whitelist.reporting.flushing import Recorder
from whitelist.reporting.metrics import GuardMetrics
from whitelist.rules.decision import Decision


class Reporter:
    """Reports the decisions of one server."""

    def __init__(self, metrics: GuardMetrics, recorder: Recorder) -> None:
        self.metrics = metrics
        self.recorder = recorder

    def admitted(self, decision: Decision, namespace: str, environ: Mapping[str, Any]) -> None:
        self.metrics.count_connect(ADMITTED, decision.reason, namespace)
        self.recorder.admissions.admitted(decision.rule)
        if decision_logger.isEnabledFor(logging.DEBUG):  # admissions log only at DEBUG
            log_decision(ADMITTED, decision, namespace, self._address(environ))

    def refused(
        self,
        decision: Decision,
        namespace: str,
        environ: Mapping[str, Any],
        *,
        report_only: bool = False,
    ) -> None:
        """A refusal, or with ``report_only`` one that was admitted all the same."""
        outcome = REPORT_ONLY if report_only else REFUSED
        address = self._address(environ)
        self.metrics.count_connect(outcome, decision.reason, namespace)
        log_decision(outcome, decision, namespace, address)
        if conf.WHITELIST_REFUSAL_LOG:
            self.recorder.refusals.add(
                decision.origin,
                decision.reason,
                namespace,
                report_only,
                address,
                environ.get("HTTP_USER_AGENT", ""),
            )

    @staticmethod
    def _address(environ: Mapping[str, Any]) -> str:
        return client_address(environ, conf.WHITELIST_TRUSTED_PROXIES, conf.WHITELIST_PROXY_COUNT)
