"""The project as an app, so that Django finds its management commands and checks."""

from __future__ import annotations

from django.apps import AppConfig


class GuardsiteConfig(AppConfig):
    name = "guardsite"
    verbose_name = "Guardsite"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the checks
