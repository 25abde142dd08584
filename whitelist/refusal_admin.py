"""Django admin for what the server reports: refused connects, and who changed the rules."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from whitelist.audit import acting_as, admin_actor
from whitelist.core.origins import OriginError, parse_origin_header
from whitelist.models import AllowedOrigin
from whitelist.records import RefusedConnect, RuleChange


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the server writes: staff read and delete them, never edit them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RefusedConnect)
class RefusedConnectAdmin(ReadOnlyAdmin):
    list_display = [
        "origin_shown",
        "reason",
        "namespace_shown",
        "report_only",
        "count",
        "first_seen",
        "last_seen",
        "last_address",
    ]
    list_filter = ["reason", "namespace", "report_only"]
    search_fields = ["origin", "last_address", "last_user_agent"]
    date_hierarchy = "last_seen"
    actions = ["allow_origins"]

    @admin.display(description=_("origin"), ordering="origin")
    def origin_shown(self, row: RefusedConnect) -> str:
        return row.origin or "(none)"

    @admin.display(description=_("namespace"), ordering="namespace")
    def namespace_shown(self, row: RefusedConnect) -> str:
        return row.namespace or "(handshake)"

    @admin.action(description=_("Allow these origins"), permissions=["allow"])
    def allow_origins(
        self, request: HttpRequest, queryset: QuerySet[RefusedConnect]
    ) -> HttpResponse | None:
        """Ask enabled or disabled (and scoped or not), then create one rule per origin."""
        origins, unusable = allowable_origins(queryset)
        if request.POST.get("post") == "yes":
            enabled = request.POST.get("state") == "enabled"
            scoped = request.POST.get("scoped") == "yes"
            if scoped:  # an origin refused only at the handshake names no namespace
                unscoped = [origin for origin, names in origins if not names]
                origins = [(origin, names) for origin, names in origins if names]
                for origin in unscoped:
                    message = f"No rule for {origin}: it was refused only at the handshake, "
                    message += "so there is no namespace to limit its rule to."
                    self.message_user(request, message, messages.WARNING)
            with acting_as(admin_actor(request.user)):
                created = AllowedOrigin.objects.allow(
                    ((origin, names if scoped else frozenset()) for origin, names in origins),
                    enabled=enabled,
                    note=f"from the refusal log, by {request.user.get_username()}",
                )
            state = _("enabled") if enabled else _("disabled, for review")
            for rule in created:
                self.log_addition(request, rule, [{"added": {}}])  # Django's admin log too
                self.message_user(request, f"Added {rule.pattern} ({state})", messages.SUCCESS)
            new = {rule.pattern for rule in created}
            for origin, _names in origins:
                if origin not in new:
                    message = f"A rule already exists for {origin}: left as it is"
                    self.message_user(request, message, messages.INFO)
            for value in unusable:
                self.message_user(request, f"Not an origin, so no rule: {value}", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Allow these origins"),
            "opts": self.model._meta,
            "queryset": queryset,
            "origins": [(origin, sorted(names)) for origin, names in origins],
            "unusable": unusable,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/whitelist/allow_origins.html", context)

    def has_allow_permission(self, request: HttpRequest) -> bool:
        """Creating rules from the log needs the right to add rules."""
        return request.user.has_perm("whitelist.add_allowedorigin")


def allowable_origins(
    rows: QuerySet[RefusedConnect],
) -> tuple[list[tuple[str, frozenset[str]]], list[str]]:
    """The origins of ``rows`` a rule can name, each with the namespaces it was refused on;
    and the values that are no origin (``null``, malformed, none, the overflow row)."""
    namespaces: dict[str, set[str]] = {}
    unusable: list[str] = []
    for origin, namespace in rows.values_list("origin", "namespace").distinct():
        try:
            canonical = str(parse_origin_header(origin))
        except OriginError:
            unusable.append(origin or "(none)")
            continue
        found = namespaces.setdefault(canonical, set())
        if namespace.startswith("/"):
            found.add(namespace)
    origins = [(origin, frozenset(names)) for origin, names in sorted(namespaces.items())]
    return origins, sorted(set(unusable))


@admin.register(RuleChange)
class RuleChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "pattern", "detail"]
    list_filter = ["action"]
    search_fields = ["actor", "pattern", "detail"]
    date_hierarchy = "at"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an audit trail staff cannot edit
