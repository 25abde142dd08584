"""Django admin for the allowlist: staff add, edit, enable and disable rules.

The rule list also shows what the servers report (``RuleActivity``: sockets
each rule admitted in the last hour and open now, summed over the servers
that reported lately) and who changed each rule last (``RuleChange``). The
refusal log and the change history are in ``whitelist.refusal_admin``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Field, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from whitelist.audit import acting_as, admin_actor
from whitelist.conf import conf
from whitelist.core.app_origins import APP_SCHEMES
from whitelist.core.display import spelling
from whitelist.core.origins import OriginError
from whitelist.models import AllowedOrigin, RuleActivity, RuleChange

# Registers the refusal log and change history.
from whitelist.refusal_admin import short_time
from whitelist.reporting.flushing import ALIVE_SECONDS
from whitelist.rules.configured import parse_configured_rule


class AllowedOriginForm(forms.ModelForm):
    """The rule form: an origin that already has a rule leads to that rule."""

    admin_site_name = "admin"

    class Meta:
        model = AllowedOrigin
        fields = "__all__"

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"]
        try:
            normalised = str(parse_configured_rule(pattern))
        except OriginError:
            return pattern  # the model's validator says why
        existing = AllowedOrigin.objects.filter(pattern=normalised).exclude(pk=self.instance.pk)
        existing = existing.first()
        if existing is None:
            return pattern
        url = reverse(f"{self.admin_site_name}:whitelist_allowedorigin_change", args=[existing.pk])
        if existing.enabled:
            message = 'A rule for {} already exists: <a href="{}">open it</a>.'
        else:
            message = 'A rule for {} already exists, disabled: <a href="{}">enable it</a>.'
        raise ValidationError(format_html(message, existing, url))


@admin.register(AllowedOrigin)
class AllowedOriginAdmin(admin.ModelAdmin):
    form = AllowedOriginForm
    # Narrow enough for admin's content box at 1280 px (beside its menu and filter):
    # the international name only under a rule that has one, a state in words.
    list_display = [
        "origin_shown",
        "namespaces_shown",
        "state",
        "sockets",
        "note",
        "changed_by",
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

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.admin_site_name = self.admin_site.name  # for the link to an existing rule
        return form

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

    @admin.display(description=_("origin"), ordering="pattern")
    def origin_shown(self, rule: AllowedOrigin) -> str:
        """The rule, and under it its international name when it has one."""
        name = self.international_name(rule)
        if name == "–":
            return rule.pattern
        return format_html("{}<br><small>{}</small>", rule.pattern, name)

    @admin.display(description=_("namespaces"), ordering="namespaces")
    def namespaces_shown(self, rule: AllowedOrigin) -> str:
        return rule.namespaces or _("all")

    @admin.display(description=_("state"), ordering="enabled")
    def state(self, rule: AllowedOrigin) -> str:
        """In words: a disabled rule is a choice, not a fault to paint red."""
        return _("enabled") if rule.enabled else _("disabled")

    @admin.display(description=_("sockets"), ordering="open_sockets")
    def sockets(self, rule: AllowedOrigin) -> str:
        """Open now, and admitted in the last hour, over the servers that reported lately."""
        return format_html(
            "{} open<br><small>{} in the last hour</small>",
            getattr(rule, "open_sockets", 0),
            getattr(rule, "admitted_last_hour", 0),
        )

    @admin.display(description=_("last change"))
    def changed_by(self, rule: AllowedOrigin) -> str:
        actor = getattr(rule, "last_actor", None) or "–"
        return format_html("{}<br><small>{}</small>", actor, short_time(rule.updated_at))

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
