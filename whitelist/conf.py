"""The app's settings, with their defaults, read from Django settings on first access.

Values are read on first access (never at import) and cached, because the guard
reads them on every connect; the ``setting_changed`` receiver in signals.py
calls ``conf.reset()``, so ``override_settings`` keeps working in tests.

A setting of the wrong type never weakens the guard: the server uses a safe
value instead (the default, or the stricter one) and logs an error, and
``manage.py check`` (run by runsocket and by gunicorn.conf.py before serving)
reports it (``whitelist.E001``-``E003``). ``raw()`` is what the checks read.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

from django.conf import settings

from whitelist.core.app_origins import extra_scheme_problem
from whitelist.core.proxies import TrustedProxies, parse_network

logger = logging.getLogger(__name__)

DEFAULT_REFUSAL_MESSAGE = "Who invited you to this party?"
DEFAULT_WELCOME_MESSAGE = "Okay, you're cool."
MAX_REFRESH_INTERVAL = 60
MIN_TOKEN_LENGTH = 16
DEFAULT_REFUSAL_RATE = 200.0


def _unusable(name: str, value: object, used: object) -> None:
    logger.error("%s is %r, which is not usable: using %r instead", name, value, used)


def is_positive_number(value: object) -> bool:
    """An int or float above 0 (not a bool, not a string that looks like one)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def is_list(value: object) -> bool:
    """A list, tuple or set of entries (not a string, whose letters would be the entries)."""
    return isinstance(value, list | tuple | set | frozenset)


def is_whole_number(value: object, minimum: int = 1) -> bool:
    """An int of at least ``minimum`` (not a bool, not a float, not a string)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# A permission no user has (a protected namespace whose setting is unusable).
UNGRANTABLE_PERMISSION = "whitelist.(unusable setting)"


def is_permission_list(value: object) -> bool:
    """None, or a list or tuple of ``app_label.codename`` strings."""
    if value is None:
        return True
    return isinstance(value, list | tuple) and all(
        isinstance(name, str) and name.count(".") == 1 and all(name.split(".")) for name in value
    )


class WhitelistSettings:
    """Typed access to the ``WHITELIST_*`` settings."""

    def reset(self) -> None:
        """Forget every cached value (settings changed)."""
        self.__dict__.clear()

    @staticmethod
    def raw(name: str, default: Any = None) -> Any:
        """The setting as written, for the system checks."""
        return getattr(settings, name, default)

    def _flag(self, name: str, *, default: bool, when_unusable: bool) -> bool:
        value = self.raw(name, default)
        if isinstance(value, bool):
            return value
        _unusable(name, value, when_unusable)
        return when_unusable

    def _text(self, name: str, default: str) -> str:
        value = self.raw(name, default)
        if isinstance(value, str) and value.strip():
            return value
        _unusable(name, value, default)
        return default

    @cached_property
    def WHITELIST_REFUSAL_MESSAGE(self) -> str:  # noqa: N802 - named like the setting
        """The ``message`` of a refused client's ``connect_error``."""
        return self._text("WHITELIST_REFUSAL_MESSAGE", DEFAULT_REFUSAL_MESSAGE)

    @cached_property
    def WHITELIST_WELCOME_MESSAGE(self) -> str:  # noqa: N802
        """The text of the ``permission.message`` event sent to an allowed client."""
        return self._text("WHITELIST_WELCOME_MESSAGE", DEFAULT_WELCOME_MESSAGE)

    @cached_property
    def WHITELIST_ALLOW_MISSING_ORIGIN(self) -> bool:  # noqa: N802
        """Admit clients that send neither ``Origin`` nor ``Referer`` (not browsers)."""
        return self._flag("WHITELIST_ALLOW_MISSING_ORIGIN", default=False, when_unusable=False)

    @cached_property
    def WHITELIST_REFUSE_AT_HANDSHAKE(self) -> bool:  # noqa: N802
        """Refuse with HTTP 403 before any Engine.IO session instead of ``connect_error``."""
        return self._flag("WHITELIST_REFUSE_AT_HANDSHAKE", default=False, when_unusable=False)

    @cached_property
    def WHITELIST_REQUIRE_SECURE(self) -> bool:  # noqa: N802
        """Refuse sockets that did not come over TLS (https:// or wss://)."""
        return self._flag("WHITELIST_REQUIRE_SECURE", default=False, when_unusable=True)

    @cached_property
    def SECURE_PROXY_SSL_HEADER(self) -> tuple[str, str] | None:  # noqa: N802
        """Django's own setting: the only way a proxy may vouch for TLS."""
        return getattr(settings, "SECURE_PROXY_SSL_HEADER", None)

    @cached_property
    def WHITELIST_REFRESH_INTERVAL(self) -> float | None:  # noqa: N802
        """Seconds between checks for rule changes made by other processes (None: unset).

        Unset, it depends on whether changes are pushed (``rules.changes.refresh_interval``).
        """
        value = self.raw("WHITELIST_REFRESH_INTERVAL", None)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is None or (is_number and 0 < value <= MAX_REFRESH_INTERVAL):
            return value if value is None else float(value)
        _unusable("WHITELIST_REFRESH_INTERVAL", value, "the default")
        return None

    def _count(self, name: str, default: int) -> int:
        value = self.raw(name, default)
        if is_whole_number(value):
            return value
        _unusable(name, value, default)
        return default

    def _positive(self, name: str, default: float) -> float:
        value = self.raw(name, default)
        if is_positive_number(value):
            return float(value)
        _unusable(name, value, default)
        return default

    @cached_property
    def WHITELIST_CONNECT_RATE(self) -> float | None:  # noqa: N802
        """Handshakes per second one client address may sustain (None: no limit)."""
        if self.raw("WHITELIST_CONNECT_RATE", 50.0) is None:
            return None
        return self._positive("WHITELIST_CONNECT_RATE", 50.0)

    @cached_property
    def WHITELIST_REFUSAL_RATE(self) -> float | None:  # noqa: N802
        """Refusals of unlisted origins a second, past which each waits its turn (None: none
        waits; ``whitelist.core.refusal_pace``)."""
        if self.raw("WHITELIST_REFUSAL_RATE", DEFAULT_REFUSAL_RATE) is None:
            return None
        return self._positive("WHITELIST_REFUSAL_RATE", DEFAULT_REFUSAL_RATE)

    @cached_property
    def WHITELIST_CONNECT_BURST(self) -> float:  # noqa: N802
        """Handshakes one client address may make at once, before the rate applies."""
        return self._positive("WHITELIST_CONNECT_BURST", 200.0)

    @cached_property
    def WHITELIST_PROXY_COUNT(self) -> int:  # noqa: N802
        """Proxy hops in front that append to ``X-Forwarded-For``: as many entries are read.

        Only from a peer in ``WHITELIST_TRUSTED_PROXIES`` (``whitelist.core.proxies``).
        """
        value = self.raw("WHITELIST_PROXY_COUNT", 0)
        if is_whole_number(value, minimum=0):
            return value
        _unusable("WHITELIST_PROXY_COUNT", value, 0)
        return 0

    @cached_property
    def WHITELIST_TRUSTED_PROXIES(self) -> TrustedProxies:  # noqa: N802
        """The proxies' addresses or networks: only their ``X-Forwarded-For`` is read.

        An unusable entry is left out (trusting less never lets a client choose
        its address); ``whitelist.E009`` names it.
        """
        value = self.raw("WHITELIST_TRUSTED_PROXIES", ())
        if not is_list(value):
            _unusable("WHITELIST_TRUSTED_PROXIES", value, ())
            return TrustedProxies()
        networks = []
        for entry in value:
            try:
                networks.append(parse_network(entry))
            except ValueError:
                _unusable("WHITELIST_TRUSTED_PROXIES entry", entry, "nothing")
        return TrustedProxies(networks)

    @cached_property
    def WHITELIST_METRICS_TOKEN(self) -> str | None:  # noqa: N802
        """The bearer token a Prometheus scraper sends for /metrics (None: no metrics)."""
        value = self.raw("WHITELIST_METRICS_TOKEN", None)
        if value is None or (isinstance(value, str) and len(value) >= MIN_TOKEN_LENGTH):
            return value
        _unusable("WHITELIST_METRICS_TOKEN", "<hidden>", None)
        return None

    @cached_property
    def WHITELIST_METRICS_PUBLIC(self) -> bool:  # noqa: N802
        """Serve /metrics without a token (a private network's scraper); deploy check W009."""
        return self._flag("WHITELIST_METRICS_PUBLIC", default=False, when_unusable=False)

    @cached_property
    def WHITELIST_REPORT_ONLY(self) -> bool:  # noqa: N802
        """Record and log would-be refusals, but admit those sockets (rolling out an allowlist)."""
        return self._flag("WHITELIST_REPORT_ONLY", default=False, when_unusable=False)

    @cached_property
    def WHITELIST_REFUSAL_LOG(self) -> bool:  # noqa: N802
        """Record refused connects in the database (``RefusedConnect``, shown in admin)."""
        return self._flag("WHITELIST_REFUSAL_LOG", default=True, when_unusable=True)

    @cached_property
    def WHITELIST_REFUSAL_LOG_MAX_ROWS(self) -> int:  # noqa: N802
        """The refusal log keeps at most this many rows (the least recently seen go first)."""
        return self._count("WHITELIST_REFUSAL_LOG_MAX_ROWS", 10_000)

    @cached_property
    def WHITELIST_REFUSAL_LOG_MAX_AGE(self) -> float:  # noqa: N802
        """Days a refusal log row is kept after it was last seen."""
        return self._positive("WHITELIST_REFUSAL_LOG_MAX_AGE", 30.0)

    @cached_property
    def WHITELIST_FLUSH_INTERVAL(self) -> float:  # noqa: N802
        """Seconds between writes of the refusal log and the rule counters to the database."""
        return self._positive("WHITELIST_FLUSH_INTERVAL", 1.0)

    @cached_property
    def WHITELIST_PROTECTED_NAMESPACES(self) -> dict[str, tuple[str, ...]]:  # noqa: N802
        """Namespaces that need a logged-in Django user, each with the permissions it needs.

        ``{"/account": [], "/staff": ["app.view_thing"]}``. A namespace whose
        permissions are unusable needs one nobody has: it refuses everyone.
        """
        value = self.raw("WHITELIST_PROTECTED_NAMESPACES", {})
        if not isinstance(value, dict):
            _unusable("WHITELIST_PROTECTED_NAMESPACES", value, {})
            return {}
        protected: dict[str, tuple[str, ...]] = {}
        for namespace, permissions in value.items():
            if is_permission_list(permissions):
                protected[namespace] = tuple(permissions or ())
            else:
                _unusable(f"WHITELIST_PROTECTED_NAMESPACES[{namespace!r}]", permissions, "deny all")
                protected[namespace] = (UNGRANTABLE_PERMISSION,)
        return protected

    @cached_property
    def WHITELIST_USER_RECHECK_INTERVAL(self) -> float:  # noqa: N802
        """Seconds between checks that the users on protected namespaces are still logged in."""
        return self._positive("WHITELIST_USER_RECHECK_INTERVAL", 2.0)

    @cached_property
    def WHITELIST_PRECONNECT_BYTES(self) -> int:  # noqa: N802
        """The largest WebSocket message a session may send before it has a welcomed socket."""
        return self._count("WHITELIST_PRECONNECT_BYTES", 16 * 1024)

    @cached_property
    def WHITELIST_CONNECT_TIMEOUT(self) -> float:  # noqa: N802
        """Seconds an Engine.IO session may go without a welcomed socket before it is closed."""
        return self._positive("WHITELIST_CONNECT_TIMEOUT", 10.0)

    @cached_property
    def WHITELIST_MAX_ATTACHMENTS(self) -> int:  # noqa: N802
        """Binary attachments one Socket.IO packet may announce (more closes the session)."""
        return self._count("WHITELIST_MAX_ATTACHMENTS", 10)

    @cached_property
    def WHITELIST_MAX_BINARY_BYTES(self) -> int:  # noqa: N802
        """Bytes of binary attachments one packet may carry in all (more closes the session)."""
        return self._count("WHITELIST_MAX_BINARY_BYTES", 10_000_000)

    @cached_property
    def WHITELIST_MAX_PENDING_BINARY_BYTES(self) -> int:  # noqa: N802
        """Bytes of attachments all sessions of a server may hold for unfinished packets."""
        return self._count("WHITELIST_MAX_PENDING_BINARY_BYTES", 50_000_000)

    @cached_property
    def WHITELIST_BROAD_RULES(self) -> frozenset[str]:  # noqa: N802
        """Rules staff mean although they are too broad (``whitelist.core.scope``), normalised."""
        from whitelist.core.origins import OriginError, parse_rule

        value = self.raw("WHITELIST_BROAD_RULES", ())
        if not is_list(value):
            _unusable("WHITELIST_BROAD_RULES", value, ())
            return frozenset()
        rules = set()
        for pattern in value:
            try:
                rules.add(str(parse_rule(pattern)))
            except (OriginError, TypeError, AttributeError):
                _unusable("WHITELIST_BROAD_RULES entry", pattern, "nothing")
        return frozenset(rules)

    @cached_property
    def WHITELIST_EXTRA_SCHEMES(self) -> frozenset[str]:  # noqa: N802
        """Schemes that rules may name besides http, https and the known extension and app
        ones (``whitelist.core.app_origins``); an unusable entry is left out (``E010``)."""
        value = self.raw("WHITELIST_EXTRA_SCHEMES", ())
        if not is_list(value):
            _unusable("WHITELIST_EXTRA_SCHEMES", value, ())
            return frozenset()
        schemes = set()
        for name in value:
            if extra_scheme_problem(name) is None:
                schemes.add(name)
            else:
                _unusable("WHITELIST_EXTRA_SCHEMES entry", name, "nothing")
        return frozenset(schemes)

    @cached_property
    def WHITELIST_CHANGES_URL(self) -> str | None:  # noqa: N802
        """A Redis URL on which rule changes are pushed to every server (not on PostgreSQL)."""
        return getattr(settings, "WHITELIST_CHANGES_URL", None) or None

    @cached_property
    def WHITELIST_CHANGES_CHANNEL(self) -> str:  # noqa: N802
        """The channel of rule changes, in Redis or PostgreSQL (not python-socketio's)."""
        return getattr(settings, "WHITELIST_CHANGES_CHANNEL", "whitelist.changes")


conf = WhitelistSettings()
