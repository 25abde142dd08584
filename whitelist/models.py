"""The allowlist as staff edit it: one row per rule, plus a revision counter.

Every change to the rules bumps ``AllowlistRevision`` in the same transaction, so
a running server notices a change made by any process with one tiny query.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from whitelist.audit import record_changes
from whitelist.core.namespaces import (
    NamespaceError,
    format_namespaces,
    normalise_namespaces,
    parse_namespaces,
)
from whitelist.core.origins import OriginError, Rule, parse_origin_header
from whitelist.rules.configured import index_rows, normalise_rule, parse_configured_rule


def validate_rule(value: str) -> None:
    """Form and model validator: the value must parse as a rule."""
    try:
        parse_configured_rule(value)
    except OriginError as exc:
        message = _("%(value)s is not a valid rule: %(reason)s.")
        if exc.suggestion:
            message = _("%(value)s is not a valid rule: %(reason)s. Did you mean %(suggestion)s?")
        raise ValidationError(
            message,
            code="invalid_rule",
            params={"value": value, "reason": str(exc), "suggestion": exc.suggestion},
        ) from None


def validate_namespaces(value: str) -> None:
    """Form and model validator: blank, or namespaces such as ``/chat /orders``."""
    try:
        parse_namespaces(value)
    except NamespaceError as exc:
        raise ValidationError(
            _("%(reason)s."), code="invalid_namespaces", params={"reason": str(exc)}
        ) from None


class AllowedOriginQuerySet(models.QuerySet["AllowedOrigin"]):
    """Bulk writes bypass save() and its signals: they normalise and bump the revision here.

    Raw SQL bypasses both; whoever writes it must bump ``AllowlistRevision`` too.
    """

    def update(self, **kwargs: Any) -> int:
        kwargs.setdefault("updated_at", timezone.now())
        if isinstance(kwargs.get("namespaces"), str):
            kwargs["namespaces"] = normalise_namespaces(kwargs["namespaces"])
        with transaction.atomic(using=self.db):
            patterns = list(self.values_list("pattern", flat=True))
            count = super().update(**kwargs)
            if count:
                record_changes("changed", patterns, _described(kwargs), using=self.db)
                rules_changed(self.db)
        return count

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[AllowedOrigin]:
        with transaction.atomic(using=self.db):
            created = super().bulk_create(_normalised(objs), *args, **kwargs)
            if created:
                record_changes("added", [rule.pattern for rule in created], using=self.db)
                rules_changed(self.db)
        return created

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> int:
        objs = _normalised(objs)
        with transaction.atomic(using=self.db):
            count = super().bulk_update(objs, fields, *args, **kwargs)
            if count:
                patterns = [rule.pattern for rule in objs]
                detail = "fields: " + ", ".join(fields)
                record_changes("changed", patterns, detail, using=self.db)
                rules_changed(self.db)
        return count

    def allow(
        self, origins: Iterable[tuple[str, frozenset[str]]], *, enabled: bool, note: str = ""
    ) -> list[AllowedOrigin]:
        """Create a rule for each (origin, namespaces) that has none yet; return the new rules."""
        created = []
        with transaction.atomic(using=self.db):
            for origin, namespaces in origins:
                pattern = str(parse_configured_rule(origin))
                if self.filter(pattern=pattern).exists():
                    continue
                rule = self.model(pattern=pattern, enabled=enabled, note=note[:200])
                rule.namespaces = format_namespaces(namespaces)
                rule.save(using=self.db)
                created.append(rule)
        return created

    def enabled(self) -> AllowedOriginQuerySet:
        return self.filter(enabled=True)

    def matching(self, origin: str, namespace: str | None = None) -> AllowedOrigin | None:
        """The rule among these that would admit ``origin`` (a canonical origin), or None.

        For people, not the connect path: a refused origin that a disabled rule
        would admit is told to enable it, not to add it again.
        """
        try:
            wanted = parse_origin_header(origin)
        except OriginError:
            return None
        rows = {row.pattern: row for row in self}
        indexed = index_rows(
            ((row.pattern, row.namespaces) for row in rows.values()), normalise_rule
        )
        found = indexed.index.match(wanted, namespace)
        return None if found is None else rows[indexed.patterns[found]]


def _described(changes: dict[str, Any]) -> str:
    """``enabled=False`` for a bulk update's audit line (the timestamp left out)."""
    return ", ".join(f"{name}={value!r}" for name, value in changes.items() if name != "updated_at")


def _normalised(rules: Any) -> list[AllowedOrigin]:
    """The rules with their fields normalised; a malformed one raises OriginError/NamespaceError."""
    rules = list(rules)
    for rule in rules:
        rule.normalise()
    return rules


class AllowedOrigin(models.Model):
    """One allowlist rule: ``scheme://host[:port]`` or ``scheme://*.domain[:port]``."""

    pattern = models.CharField(
        _("origin"),
        max_length=300,
        unique=True,
        validators=[validate_rule],
        help_text=_(
            "An origin such as https://shop.example.com or http://localhost:5000, "
            "or every subdomain: https://*.example.com. The port may be * for any port."
        ),
    )
    namespaces = models.CharField(
        _("namespaces"),
        max_length=500,
        blank=True,
        default="",
        db_default="",  # rows written by raw SQL or older code admit every namespace
        validators=[validate_namespaces],
        help_text=_(
            "Socket.IO namespaces this rule admits to, such as /chat /orders. "
            "Blank: every namespace."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True, db_index=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = AllowedOriginQuerySet.as_manager()

    class Meta:
        ordering = ["pattern"]
        verbose_name = _("allowed origin")
        verbose_name_plural = _("allowed origins")

    def __str__(self) -> str:
        return self.pattern

    @property
    def rule(self) -> Rule:
        return normalise_rule(self.pattern)

    def clean_fields(self, exclude: Any = None) -> None:
        """Store the normalised form, so uniqueness is checked on what is stored."""
        with contextlib.suppress(OriginError):  # the field validator reports it
            self.pattern = str(normalise_rule(self.pattern))
        with contextlib.suppress(NamespaceError):
            self.namespaces = normalise_namespaces(self.namespaces)
        super().clean_fields(exclude=exclude)

    def normalise(self) -> None:
        """Normalise pattern and namespaces (OriginError or NamespaceError if one is bad)."""
        self.pattern = str(parse_configured_rule(self.pattern))
        self.namespaces = normalise_namespaces(self.namespaces)


class AllowlistRevision(models.Model):
    """A single row whose number grows with every change to the rules."""

    number = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("allowlist revision")

    def __str__(self) -> str:
        return f"revision {self.number}"

    @classmethod
    def current(cls, using: str | None = None) -> int:
        number = cls.objects.using(using).filter(pk=1).values_list("number", flat=True).first()
        return number if number is not None else 0

    @classmethod
    def bump(cls, using: str | None = None) -> None:
        revisions = cls.objects.using(using)
        updated = revisions.filter(pk=1).update(number=F("number") + 1, changed_at=timezone.now())
        if not updated:
            revisions.get_or_create(pk=1, defaults={"number": 1})


# Sent with ``using`` inside the transaction of every change to the rules, once the
# revision is bumped: ``signals`` tells this process and pushes the change to the others.
revision_bumped = Signal()


def rules_changed(using: str | None = None) -> None:
    """Bump the revision, which every server polls, and announce the change."""
    using = using or router.db_for_write(AllowlistRevision)
    with transaction.atomic(using=using):
        AllowlistRevision.bump(using)
        revision_bumped.send(sender=AllowlistRevision, using=using)


# Registered with the app through this module, which Django imports.
from whitelist.records import RefusedConnect, RuleActivity, RuleChange  # noqa: E402

__all__ = [
    "AllowedOrigin",
    "AllowlistRevision",
    "RefusedConnect",
    "RuleActivity",
    "RuleChange",
    "revision_bumped",
    "rules_changed",
    "validate_namespaces",
    "validate_rule",
]
