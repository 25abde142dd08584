"""Django admin for the allowlist: staff add, edit, enable and disable rules."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .display import spelling
from .models import AllowedOrigin


@admin.register(AllowedOrigin)
class AllowedOriginAdmin(admin.ModelAdmin):
    list_display = [
        "pattern",
        "international_name",
        "namespaces_shown",
        "enabled",
        "note",
        "updated_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["pattern", "note", "namespaces"]
    readonly_fields = ["international_name", "created_at", "updated_at"]
    fields = [
        "pattern",
        "international_name",
        "namespaces",
        "enabled",
        "note",
        "created_at",
        "updated_at",
    ]
    actions = ["enable_rules", "disable_rules"]

    @admin.display(description=_("namespaces"), ordering="namespaces")
    def namespaces_shown(self, rule: AllowedOrigin) -> str:
        return rule.namespaces or _("all")

    @admin.display(description=_("international name"))
    def international_name(self, rule: AllowedOrigin) -> str:
        """The Unicode form of a punycode host, with mixed-script look-alikes flagged."""
        shown = spelling(rule.pattern) if rule.pattern else None
        if shown is None:
            return "–"
        if shown.mixed_scripts:
            scripts = " + ".join(script.title() for script in shown.mixed_scripts)
            return _("%(name)s ⚠ mixes %(scripts)s letters: a look-alike?") % {
                "name": shown.unicode,
                "scripts": scripts,
            }
        return shown.unicode

    @admin.action(description=_("Enable selected origins"), permissions=["change"])
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description=_("Disable selected origins"), permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[AllowedOrigin]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[AllowedOrigin], *, enabled: bool
    ) -> None:
        count = queryset.exclude(enabled=enabled).update(enabled=enabled)
        state = _("enabled") if enabled else _("disabled")
        message = ngettext("%(count)d origin %(state)s.", "%(count)d origins %(state)s.", count)
        self.message_user(request, message % {"count": count, "state": state}, messages.SUCCESS)
