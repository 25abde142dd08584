"""Django admin for the allowlist: staff add, edit, enable and disable rules.

The rule list also shows what the servers report (``RuleActivity``: sockets
each rule admitted in the last hour and open now, summed over the servers
that reported lately) and who changed each rule last (``RuleChange``). The
refusal log and the change history are in ``whitelist.refusal_admin``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Field, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from whitelist.audit import acting_as, admin_actor
from whitelist.conf import conf
from whitelist.core.app_origins import APP_SCHEMES
from whitelist.core.display import spelling
from whitelist.models import AllowedOrigin, RuleActivity, RuleChange
from whitelist.reporting.flushing import ALIVE_SECONDS

from . import refusal_admin  # noqa: F401 - registers the refusal log and change history


@admin.register(AllowedOrigin)
class AllowedOriginAdmin(admin.ModelAdmin):
    list_display = [
        "pattern",
        "international_name",
        "namespaces_shown",
        "enabled",
        "admitted_recently",
        "open_now",
        "note",
        "changed_by",
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

    def formfield_for_dbfield(self, db_field: Field, request: HttpRequest, **kwargs: Any) -> Any:
        """The origin's help names every scheme a rule may have, the settings' extra ones too."""
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "pattern" and field is not None:
            field.help_text = f"{db_field.help_text} {accepted_app_schemes()}"
        return field

    def get_queryset(self, request: HttpRequest) -> QuerySet[AllowedOrigin]:
        """The rules with their activity and last change, in the list's one query."""
        alive = RuleActivity.objects.filter(
            pattern=OuterRef("pattern"),
            reported_at__gte=timezone.now() - timedelta(seconds=ALIVE_SECONDS),
        ).values("pattern")
        last_change = RuleChange.objects.filter(pattern=OuterRef("pattern")).order_by("-at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_sockets=Coalesce(
                    Subquery(alive.annotate(total=Sum("open_now")).values("total")),
                    0,
                    output_field=IntegerField(),
                ),
                admitted_last_hour=Coalesce(
                    Subquery(alive.annotate(total=Sum("admitted_recently")).values("total")),
                    0,
                    output_field=IntegerField(),
                ),
                last_actor=Subquery(last_change.values("actor")[:1]),
            )
        )

    @admin.display(description=_("namespaces"), ordering="namespaces")
    def namespaces_shown(self, rule: AllowedOrigin) -> str:
        return rule.namespaces or _("all")

    @admin.display(description=_("admitted (last hour)"), ordering="admitted_last_hour")
    def admitted_recently(self, rule: AllowedOrigin) -> int:
        return getattr(rule, "admitted_last_hour", 0)

    @admin.display(description=_("open now"), ordering="open_sockets")
    def open_now(self, rule: AllowedOrigin) -> int:
        return getattr(rule, "open_sockets", 0)

    @admin.display(description=_("last changed by"))
    def changed_by(self, rule: AllowedOrigin) -> str:
        return getattr(rule, "last_actor", None) or "–"

    # Every change made through admin names the staff member (whitelist.audit).
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with acting_as(admin_actor(request.user)):
            return super().changeform_view(request, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with acting_as(admin_actor(request.user)):
            return super().changelist_view(request, *args, **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with acting_as(admin_actor(request.user)):
            return super().delete_view(request, *args, **kwargs)

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
        changing = list(queryset.exclude(enabled=enabled))
        count = queryset.exclude(enabled=enabled).update(enabled=enabled)
        state = _("enabled") if enabled else _("disabled")
        for rule in changing:  # Django's admin log, as for a change made in the form
            self.log_change(request, rule, [{"changed": {"fields": ["Enabled"]}}])
        message = ngettext("%(count)d origin %(state)s.", "%(count)d origins %(state)s.", count)
        self.message_user(request, message % {"count": count, "state": state}, messages.SUCCESS)


def accepted_app_schemes() -> str:
    """The schemes of extensions and apps a rule may name, for the form's help."""
    schemes = [*APP_SCHEMES, *sorted(conf.WHITELIST_EXTRA_SCHEMES)]
    return _(
        "Extensions and apps, one exact origin each (no wildcard, no port): %(schemes)s, "
        "as in chrome-extension://<id> or capacitor://localhost."
    ) % {"schemes": ", ".join(f"{scheme}://" for scheme in schemes)}
