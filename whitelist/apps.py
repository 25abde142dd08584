"""App configuration: wires the checks and signal receivers."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WhitelistConfig(AppConfig):
    name = "whitelist"
    verbose_name = _("Socket.IO allowlist")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, environment_checks, signals  # noqa: F401 - registers them
