"""The app's settings, with their defaults, read from Django settings on first access.

Values are read on first access (never at import) and cached, because the guard
reads them on every connect; the ``setting_changed`` receiver in signals.py
calls ``conf.reset()``, so ``override_settings`` keeps working in tests.
"""

from __future__ import annotations

from functools import cached_property

from django.conf import settings


class WhitelistSettings:
    """Typed access to the ``WHITELIST_*`` settings."""

    def reset(self) -> None:
        """Forget every cached value (settings changed)."""
        self.__dict__.clear()

    @cached_property
    def WHITELIST_REFUSAL_MESSAGE(self) -> str:  # noqa: N802 - named like the setting
        """The ``message`` of a refused client's ``connect_error``."""
        return getattr(settings, "WHITELIST_REFUSAL_MESSAGE", "Who invited you to this party?")

    @cached_property
    def WHITELIST_WELCOME_MESSAGE(self) -> str:  # noqa: N802
        """The text of the ``permission.message`` event sent to an allowed client."""
        return getattr(settings, "WHITELIST_WELCOME_MESSAGE", "Okay, you're cool.")

    @cached_property
    def WHITELIST_ALLOW_MISSING_ORIGIN(self) -> bool:  # noqa: N802
        """Admit clients that send neither ``Origin`` nor ``Referer`` (not browsers)."""
        return getattr(settings, "WHITELIST_ALLOW_MISSING_ORIGIN", False)

    @cached_property
    def WHITELIST_REFUSE_AT_HANDSHAKE(self) -> bool:  # noqa: N802
        """Refuse with HTTP 403 before any Engine.IO session instead of ``connect_error``."""
        return getattr(settings, "WHITELIST_REFUSE_AT_HANDSHAKE", False)

    @cached_property
    def WHITELIST_REQUIRE_SECURE(self) -> bool:  # noqa: N802
        """Refuse sockets that did not come over TLS (https:// or wss://)."""
        return getattr(settings, "WHITELIST_REQUIRE_SECURE", False)

    @cached_property
    def SECURE_PROXY_SSL_HEADER(self) -> tuple[str, str] | None:  # noqa: N802
        """Django's own setting: the only way a proxy may vouch for TLS."""
        return getattr(settings, "SECURE_PROXY_SSL_HEADER", None)

    @cached_property
    def WHITELIST_REFRESH_INTERVAL(self) -> float:  # noqa: N802
        """Seconds between checks for rule changes made by other processes.

        0.25 by default; 5 when changes are pushed (PostgreSQL's ``LISTEN``, or
        ``WHITELIST_CHANGES_URL``), where the poll is only the safety net (and
        0.25 again while the listener is not subscribed).
        """
        from .changes import push_source

        default = 5.0 if push_source() else 0.25
        return getattr(settings, "WHITELIST_REFRESH_INTERVAL", default)

    @cached_property
    def WHITELIST_CHANGES_URL(self) -> str | None:  # noqa: N802
        """A Redis URL on which rule changes are pushed to every server (not on PostgreSQL)."""
        return getattr(settings, "WHITELIST_CHANGES_URL", None) or None

    @cached_property
    def WHITELIST_CHANGES_CHANNEL(self) -> str:  # noqa: N802
        """The channel of rule changes, in Redis or PostgreSQL (not python-socketio's)."""
        return getattr(settings, "WHITELIST_CHANGES_CHANNEL", "whitelist.changes")


conf = WhitelistSettings()
