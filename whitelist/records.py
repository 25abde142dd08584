"""What the server reports to staff: refused connects, rule activity, and who changed the rules.

None of these rows is written on the connect path: the server counts in memory
and ``whitelist.reporting.flushing`` writes the counts every ``WHITELIST_FLUSH_INTERVAL``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class RefusedConnect(models.Model):
    """Refused connects of one origin for one reason on one namespace: one row, however many."""

    origin = models.CharField(_("origin"), max_length=300, blank=True)
    reason = models.CharField(_("reason"), max_length=40, db_index=True)
    namespace = models.CharField(_("namespace"), max_length=100, blank=True)
    report_only = models.BooleanField(
        _("report-only"),
        default=False,
        help_text=_("Admitted all the same, because WHITELIST_REPORT_ONLY was on."),
    )
    count = models.PositiveBigIntegerField(_("attempts"), default=0)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"), db_index=True)
    last_address = models.CharField(_("last client address"), max_length=64, blank=True)
    last_user_agent = models.CharField(_("last user agent"), max_length=300, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        verbose_name = _("refused connect")
        verbose_name_plural = _("refused connects")
        constraints = [
            models.UniqueConstraint(
                fields=["origin", "reason", "namespace", "report_only"],
                name="whitelist_refusal_per_origin_reason_namespace",
            )
        ]

    def __str__(self) -> str:
        return f"{self.origin or '(no origin)'} on {self.namespace or '(handshake)'}: {self.reason}"


class RuleActivity(models.Model):
    """What one server process saw of one rule: sockets it admitted lately, and open now."""

    node = models.CharField(_("server"), max_length=100)
    pattern = models.CharField(_("rule"), max_length=300, db_index=True)
    open_now = models.PositiveIntegerField(_("open now"), default=0)
    admitted_recently = models.PositiveBigIntegerField(_("admitted in the last hour"), default=0)
    reported_at = models.DateTimeField(_("reported"), db_index=True)

    class Meta:
        verbose_name = _("rule activity")
        verbose_name_plural = _("rule activity")
        constraints = [
            models.UniqueConstraint(fields=["node", "pattern"], name="whitelist_activity_per_node")
        ]

    def __str__(self) -> str:
        return f"{self.pattern} on {self.node}"


class RuleChange(models.Model):
    """Who changed which rule, when, and how: from admin, the CLI or code."""

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.CharField(_("who"), max_length=150)
    action = models.CharField(_("action"), max_length=20)
    pattern = models.CharField(_("rule"), max_length=300, db_index=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("rule change")
        verbose_name_plural = _("rule changes")

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.pattern}"
