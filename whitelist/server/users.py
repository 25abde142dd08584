"""The Django user behind a socket: the session cookie of the handshake, as ``request.user``.

``get_user(server, sid, namespace)`` is the helper for event handlers: it
returns exactly the user Django's ``AuthenticationMiddleware`` would put on
``request.user`` for the handshake's cookies (an ``AnonymousUser`` without a
valid session), resolved once per socket. A socket that only report-only mode
admitted has no user: its cookies came from a page on a site the rules do not
list, which must not act as the visitor.

Namespaces in ``WHITELIST_PROTECTED_NAMESPACES`` need a logged-in user, and
the permissions listed for them; their sockets are checked again every
``WHITELIST_USER_RECHECK_INTERVAL`` seconds (and at once after a logout in this
process), so that a logout, an expired session or a lost permission disconnects them.
With ``signed_cookies`` sessions, which Django cannot end on the server, only a
logout in the same process does.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user as get_request_user
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from whitelist.conf import conf
from whitelist.core.outages import OutageLog
from whitelist.engine.blocking import off_the_loop
from whitelist.rules.decision import Decision
from whitelist.server.revocation import revoke

logger = logging.getLogger(__name__)

LOGIN_REQUIRED = "login-required"
PERMISSION_DENIED = "permission-denied"
LOGGED_OUT = "logged-out"

# The servers of this process, told at once of a logout here (whitelist.signals).
servers: weakref.WeakSet[Any] = weakref.WeakSet()


# What any of Django's session engines puts in the cookie (signed_cookies: base64 and ":").
_SESSION_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,4096}")


def session_key(environ: Mapping[str, Any]) -> str | None:
    """The Django session key in the handshake's cookies, if any and if it could be one.

    A value no engine writes (a NUL, a space) is no session: looked up, it would
    make the database driver raise on every such connect.
    """
    cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
    key = cookies.get(settings.SESSION_COOKIE_NAME)
    return key if key and _SESSION_KEY.fullmatch(key) else None


def user_for_session(key: str | None) -> Any:
    """The user Django would see on a request carrying session ``key`` (may be anonymous).

    Its queries run off eventlet's loop (``whitelist.engine.blocking``), at connect too.
    """
    request = HttpRequest()
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(key)
    with off_the_loop():
        return get_request_user(request)


@dataclass(slots=True)
class Binding:
    """The user of one socket, and the session that named them."""

    session_key: str | None
    user: Any


def refusal_reason(user: Any, namespace: str) -> str | None:
    """Why ``user`` may not use ``namespace`` (None: they may, or it is not protected)."""
    permissions = conf.WHITELIST_PROTECTED_NAMESPACES.get(namespace)
    if permissions is None:
        return None
    if not user.is_authenticated:
        return LOGIN_REQUIRED
    if permissions:
        with off_the_loop():  # the permissions are read once per user object
            if not user.has_perms(permissions):
                return PERMISSION_DENIED
    return None


class SocketUsers:
    """The resolved user of each socket, by (namespace, sid)."""

    def __init__(self) -> None:
        self._bindings: dict[tuple[str, str], Binding] = {}
        # Sessions logged out in this process, ended without reading them again:
        # Django sends user_logged_out before it flushes the session.
        self._ended_sessions: set[str] = set()
        # A failing database, logged once per outage by check_users.
        self.check_outage = OutageLog(
            logger,
            "Could not check the users of protected sockets",
            "The users of protected sockets are checked again",
        )

    def resolve(self, namespace: str, sid: str, environ: Mapping[str, Any]) -> Binding:
        binding = self._bindings.get((namespace, sid))
        if binding is None:
            key = session_key(environ)
            binding = Binding(key, user_for_session(key))
            self._bindings[(namespace, sid)] = binding
        return binding

    def bind_anonymous(self, namespace: str, sid: str) -> None:
        """This socket has no user, whatever cookie it sent (admitted by report-only)."""
        from django.contrib.auth.models import AnonymousUser

        self._bindings[(namespace, sid)] = Binding(None, AnonymousUser())

    def discard(self, namespace: str, sid: str) -> None:
        self._bindings.pop((namespace, sid), None)

    def protected(self) -> Iterator[tuple[str, str, Binding]]:
        """The bindings of sockets on protected namespaces."""
        protected = conf.WHITELIST_PROTECTED_NAMESPACES
        for (namespace, sid), binding in list(self._bindings.items()):
            if namespace in protected:
                yield namespace, sid, binding

    def end_session(self, key: str | None) -> None:
        """The session ``key`` was logged out here: its sockets go at the next check."""
        if key:
            self._ended_sessions.add(key)

    def ended(self) -> Iterator[tuple[str, str, str]]:
        """Sockets whose user has logged out or lost a permission: (namespace, sid, reason).

        Each session is read once per call, however many sockets share it.
        """
        protected = list(self.protected())
        # Forget logouts no socket refers to any more.
        self._ended_sessions &= {binding.session_key for _, _, binding in protected}
        fresh: dict[str | None, Any] = {}
        for namespace, sid, binding in protected:
            if binding.session_key in self._ended_sessions:
                yield namespace, sid, LOGGED_OUT
                continue
            if binding.session_key not in fresh:
                fresh[binding.session_key] = user_for_session(binding.session_key)
            user = fresh[binding.session_key]
            if not user.is_authenticated or user.pk != binding.user.pk:
                yield namespace, sid, LOGGED_OUT
                continue
            reason = refusal_reason(user, namespace)
            if reason is not None:
                yield namespace, sid, reason


def check_users(server: Any) -> None:
    """One round: disconnect the admitted sockets whose user logged out or lost a permission.

    A socket still connecting is left for the next round (python-socketio
    cannot disconnect it yet); its binding stays, so that round sees it. A
    failing database is logged once per outage and tried again next round.
    """
    users: SocketUsers = server.users
    try:
        ended = list(users.ended())
    except Exception:
        users.check_outage.failed()
        return
    users.check_outage.succeeded()
    for namespace, sid, reason in ended:
        socket = server.open_sockets.get(namespace, sid)
        if socket is None:
            continue
        logger.info("Disconnecting %s on %s: %s", sid, namespace, reason)
        users.discard(namespace, sid)
        revoke(server, namespace, sid, Decision(False, reason, socket.decision.origin))


def get_user(server: Any, sid: str, namespace: str = "/") -> Any:
    """The Django user of socket ``sid`` on ``namespace`` (``AnonymousUser`` if not logged in)."""
    return server.users.resolve(namespace, sid, server.get_environ(sid, namespace)).user
