"""Django admin for what the server reports: refused connects, and who changed the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import DataError, IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from whitelist.audit import acting_as, admin_actor
from whitelist.core.namespaces import NamespaceError, format_namespaces, parse_namespaces
from whitelist.core.origins import OriginError, parse_origin_header
from whitelist.models import AllowedOrigin
from whitelist.records import RefusedConnect, RuleChange
from whitelist.rules.configured import parse_configured_rule


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the server writes: staff read and delete them, never edit them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RefusedConnect)
class RefusedConnectAdmin(ReadOnlyAdmin):
    # Narrow enough for admin's content box at 1280 px: report-only in the reason's
    # words (not a red cross), the first sighting on the row's own page.
    list_display = [
        "origin_shown",
        "reason_shown",
        "namespace_shown",
        "count",
        "last_seen_shown",
        "address",
    ]
    list_filter = ["reason", "namespace", "report_only"]
    search_fields = ["origin", "last_address", "last_user_agent"]
    date_hierarchy = "last_seen"
    actions = ["allow_origins"]

    @admin.display(description=_("origin"), ordering="origin")
    def origin_shown(self, row: RefusedConnect) -> str:
        return row.origin or "(none)"

    @admin.display(description=_("reason"), ordering="reason")
    def reason_shown(self, row: RefusedConnect) -> str:
        if row.report_only:
            return format_html("{}<br><small>{}</small>", row.reason, _("admitted: report-only"))
        return row.reason

    @admin.display(description=_("namespace"), ordering="namespace")
    def namespace_shown(self, row: RefusedConnect) -> str:
        return row.namespace or "(handshake)"

    @admin.display(description=_("last seen"), ordering="last_seen")
    def last_seen_shown(self, row: RefusedConnect) -> str:
        return short_time(row.last_seen)

    @admin.display(description=_("address"), ordering="last_address")
    def address(self, row: RefusedConnect) -> str:
        """The last client's address (its user agent is on the row's page)."""
        return row.last_address

    @admin.action(description=_("Allow these origins"), permissions=["allow"])
    def allow_origins(
        self, request: HttpRequest, queryset: QuerySet[RefusedConnect]
    ) -> HttpResponse | None:
        """Ask enabled or disabled (and scoped or not), then create one rule per origin.

        Any client can put a row in the log, so a row no rule can come from is
        skipped and named, never a failure of the whole action.
        """
        selection = select_origins(queryset)
        if request.POST.get("post") == "yes":
            enabled = request.POST.get("state") == "enabled"
            scoped = request.POST.get("scoped") == "yes"
            planned, skipped = selection.rules(scoped=scoped)
            note = f"from the refusal log, by {request.user.get_username()}"
            for origin, names in planned:
                try:
                    with acting_as(admin_actor(request.user)):
                        created = AllowedOrigin.objects.allow(
                            [(origin, names)], enabled=enabled, note=note
                        )
                except (OriginError, NamespaceError, IntegrityError, DataError) as exc:
                    skipped.append(f"No rule for {origin}: {exc}")
                    continue
                for rule in created:
                    self.log_addition(request, rule, [{"added": {}}])  # Django's admin log too
                    self.message_user(request, *_added(rule))
                if not created:
                    self.message_user(request, *_already_there(origin))
            for message in skipped:
                self.message_user(request, message, messages.WARNING)
            for value in selection.unusable:
                self.message_user(request, f"Not an origin, so no rule: {value}", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Allow these origins"),
            "opts": self.model._meta,
            "queryset": queryset,
            "origins": [
                (origin, sorted(names), sorted(selection.odd_namespaces.get(origin, ())))
                for origin, names in selection.origins
            ],
            "unusable": selection.unusable,
            "no_rule": [f"{origin}: {why}" for origin, why in selection.no_rule],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/whitelist/allow_origins.html", context)

    def has_allow_permission(self, request: HttpRequest) -> bool:
        """Creating rules from the log needs the right to add rules."""
        return request.user.has_perm("whitelist.add_allowedorigin")


def _added(rule: AllowedOrigin) -> tuple[str, int]:
    """What staff must know of a new rule: whether it admits anyone yet."""
    if rule.enabled:
        return f"Added {rule.pattern} (enabled): it is admitted now", messages.SUCCESS
    return (
        f"Added {rule.pattern} disabled: it admits nobody until you enable it "
        '(Allowed origins, select it, "Enable selected origins")',
        messages.WARNING,
    )


def _already_there(origin: str) -> tuple[str, int]:
    rule = AllowedOrigin.objects.filter(pattern=origin).first()
    if rule is not None and not rule.enabled:
        return (
            f"A disabled rule for {origin} exists: left as it is, so it admits nobody "
            "until you enable it",
            messages.WARNING,
        )
    return f"A rule already exists for {origin}: left as it is", messages.INFO


@dataclass
class Selection:
    """What the selected rows of the refusal log can become."""

    origins: list[tuple[str, frozenset[str]]]
    """Origins a rule may name, each with the namespaces a rule may name it was refused on."""
    odd_namespaces: dict[str, set[str]]
    """Per origin, the namespaces it was refused on that no rule may name (``/a b``)."""
    no_rule: list[tuple[str, str]]
    """Origins no rule may name (``http://0.0.0.0``), and why."""
    unusable: list[str]
    """Values that are no origin: ``null``, malformed, none, the overflow row."""

    def rules(self, *, scoped: bool) -> tuple[list[tuple[str, frozenset[str]]], list[str]]:
        """The rules to create, as (origin, namespaces); and why the other origins get none."""
        skipped = [f"No rule for {origin}: {why}" for origin, why in self.no_rule]
        if not scoped:
            return [(origin, frozenset()) for origin, _names in self.origins], skipped
        planned = []
        for origin, names in self.origins:
            for name in sorted(self.odd_namespaces.get(origin, ())):
                skipped.append(f"No rule for {origin} on {name!r}: not a namespace a rule can name")
            if len(format_namespaces(names)) > MAX_NAMESPACES_TEXT:
                skipped.append(f"No rule for {origin}: its namespaces are too many for one rule")
            elif names:
                planned.append((origin, names))
            elif origin not in self.odd_namespaces:  # refused only at the handshake
                message = f"No rule for {origin}: it was refused only at the handshake, "
                skipped.append(message + "so there is no namespace to limit its rule to.")
        return planned, skipped


MAX_NAMESPACES_TEXT = AllowedOrigin._meta.get_field("namespaces").max_length


def select_origins(rows: QuerySet[RefusedConnect]) -> Selection:
    """Sort the origins of ``rows`` by what a rule can make of them."""
    namespaces: dict[str, set[str]] = {}
    odd: dict[str, set[str]] = {}
    no_rule: dict[str, str] = {}
    unusable: set[str] = set()
    for origin, namespace in rows.values_list("origin", "namespace").distinct():
        try:
            canonical = str(parse_origin_header(origin))
        except OriginError:
            unusable.add(origin or "(none)")
            continue
        try:
            parse_configured_rule(canonical)
        except OriginError as exc:
            no_rule[canonical] = str(exc)
            continue
        found = namespaces.setdefault(canonical, set())
        if not namespace.startswith("/"):  # "" or "(handshake)": refused before any namespace
            continue
        if _is_one_namespace(namespace):
            found.add(namespace)
        else:
            odd.setdefault(canonical, set()).add(namespace)
    return Selection(
        origins=[(origin, frozenset(names)) for origin, names in sorted(namespaces.items())],
        odd_namespaces=odd,
        no_rule=sorted(no_rule.items()),
        unusable=sorted(unusable),
    )


def _is_one_namespace(name: str) -> bool:
    """Whether a rule can name ``name`` as it is: ``/a b`` would be stored as two, or refused."""
    try:
        return parse_namespaces(name) == {name}
    except NamespaceError:
        return False


@admin.register(RuleChange)
class RuleChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "pattern", "detail"]
    list_filter = ["action"]
    search_fields = ["actor", "pattern", "detail"]
    date_hierarchy = "at"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an audit trail staff cannot edit


def short_time(moment: datetime) -> str:
    """``Dec 3, 07:05``: a list column's time, in the site's time zone, without the year."""
    return date_format(timezone.localtime(moment), "M j, H:i")
