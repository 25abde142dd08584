"""The project as an app, so that Django finds its management commands."""

from __future__ import annotations

from django.apps import AppConfig


class GuardsiteConfig(AppConfig):
    name = "guardsite"
    verbose_name = "Guardsite"
