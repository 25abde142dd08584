"""Django users on sockets (whitelist.server.users), on a live server with real logins.

The demo's ``/account`` namespace needs a logged-in user (settings'
``WHITELIST_PROTECTED_NAMESPACES``); its ``whoami`` answers through ``get_user``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import override_settings

from harness.commands import on_server_database
from harness.live import LiveServer, wait_until
from tests.admin_session import add_superuser, add_user, logged_in
from tests.clients import try_connect
from whitelist.rules.decision import Decision
from whitelist.server.open_sockets import OpenSocket, OpenSockets
from whitelist.server.users import SocketUsers, check_users, session_key

ALLOWED = "http://allowed.test"
USER, PASSWORD = "bob", "another-long-password-for-tests"


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    server = start_server(ALLOWED)
    add_superuser(server, USER, PASSWORD)
    return server


def session_cookie(session: Any) -> dict[str, str]:
    return {"Cookie": f"sessionid={session.cookies['sessionid']}"}


def connect_account(server: LiveServer, headers: dict[str, str] | None = None, **kwargs: Any):
    return try_connect(
        server.url, origin=ALLOWED, namespace="/account", extra_headers=headers, **kwargs
    )


def test_the_logged_in_user_is_seen_on_the_socket(server: LiveServer) -> None:
    browser = logged_in(server, USER, PASSWORD)
    outcome, client = connect_account(server, session_cookie(browser), keep=True)
    try:
        assert outcome.welcome is not None
        answer = client.call("whoami", namespace="/account", timeout=10)
        assert (answer["username"], answer["staff"]) == (USER, True)
    finally:
        client.disconnect()
        browser.close()


def test_an_anonymous_client_is_refused_from_a_protected_namespace(server: LiveServer) -> None:
    outcome, _client = connect_account(server)
    assert outcome.welcome is None
    assert outcome.error == {
        "message": "Who invited you to this party?",
        "data": {"reason": "login-required", "origin": ALLOWED},
    }
    forged, _client = connect_account(server, {"Cookie": "sessionid=not-a-session"})
    assert forged.refusal_reason == "login-required"


def test_the_origin_is_checked_before_the_user(server: LiveServer) -> None:
    browser = logged_in(server, USER, PASSWORD)
    outcome, _client = try_connect(
        server.url,
        origin="https://evil.test",
        namespace="/account",
        extra_headers=session_cookie(browser),
    )
    assert outcome.refusal_reason == "origin-not-allowed"
    browser.close()


def test_an_unprotected_namespace_admits_anonymous_clients(server: LiveServer) -> None:
    assert connect_account(server)[0].welcome is None
    assert try_connect(server.url, origin=ALLOWED)[0].welcome is not None


def revoked_reasons(outcome: Any) -> list[str]:
    return [args[1]["reason"] for event, args in outcome.events if event == "permission.revoked"]


def test_logging_out_disconnects_the_users_sockets_without_waiting_for_the_check(
    start_server: Callable[..., LiveServer],
) -> None:
    """An hour between checks: the logout itself ends the sockets (by the session's key:
    Django sends user_logged_out before it flushes the session)."""
    server = start_server(ALLOWED, WHITELIST_USER_RECHECK_INTERVAL="3600")
    add_superuser(server, USER, PASSWORD)
    browser = logged_in(server, USER, PASSWORD)
    outcome, client = connect_account(server, session_cookie(browser), keep=True)
    try:
        assert outcome.welcome is not None
        browser.post(
            f"{server.url}/admin/logout/",
            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            timeout=10,
        )
        assert wait_until(lambda: not client.connected, timeout=15)
        assert wait_until(lambda: revoked_reasons(outcome) == ["logged-out"]), outcome.events
    finally:
        client.disconnect()
        browser.close()


def test_a_session_ended_by_another_process_disconnects_within_seconds(
    server: LiveServer,
) -> None:
    """No signal reaches the server: its periodic check finds the session gone."""
    browser = logged_in(server, USER, PASSWORD)
    outcome, client = connect_account(server, session_cookie(browser), keep=True)
    try:
        assert outcome.welcome is not None
        on_server_database(server.database, Session.objects.all().delete)
        assert wait_until(lambda: not client.connected, timeout=15)
        assert wait_until(lambda: revoked_reasons(outcome) == ["logged-out"]), outcome.events
    finally:
        client.disconnect()
        browser.close()


def test_a_namespace_needing_a_permission_refuses_users_without_it(server: LiveServer) -> None:
    add_user(server, "carol", "carols-long-password")
    carol = logged_in(server, "carol", "carols-long-password")
    bob = logged_in(server, USER, PASSWORD)
    try:
        refused, _client = try_connect(
            server.url, origin=ALLOWED, namespace="/staffonly", extra_headers=session_cookie(carol)
        )
        assert refused.refusal_reason == "permission-denied"
        outcome, client = try_connect(
            server.url,
            origin=ALLOWED,
            namespace="/staffonly",
            extra_headers=session_cookie(bob),
            keep=True,
        )
        assert outcome.welcome is not None  # a superuser has every permission
        assert client.call("whoami", namespace="/staffonly", timeout=10) == USER
        client.disconnect()
    finally:
        carol.close()
        bob.close()


@pytest.mark.parametrize(
    ("cookie", "key"),
    [
        ("sessionid=abcdefgh12345678", "abcdefgh12345678"),
        ("theme=dark; sessionid=eyJhIjoxfQ:1tQ2b3:Xy_z-9", "eyJhIjoxfQ:1tQ2b3:Xy_z-9"),
        ("sessionid=a\x00b", None),
        ('sessionid="a b"', None),
        ("sessionid=", None),
        ("other=1", None),
        ("", None),
    ],
)
def test_only_a_value_some_session_engine_writes_is_looked_up(cookie: str, key: str | None) -> None:
    assert session_key({"HTTP_COOKIE": cookie}) == key


@pytest.mark.django_db
def test_a_session_logged_out_here_ends_while_it_is_still_stored(
    django_user_model: Any, client: Any
) -> None:
    """user_logged_out comes before the session is flushed: reading it again would not do."""
    user = django_user_model.objects.create_user("dora", password="doras-long-password")
    client.force_login(user)
    key = client.session.session_key
    users = SocketUsers()
    environ = {"HTTP_COOKIE": f"sessionid={key}"}
    with override_settings(WHITELIST_PROTECTED_NAMESPACES={"/account": []}):
        assert users.resolve("/account", "sid-1", environ).user == user
        assert list(users.ended()) == []  # the session is valid
        users.end_session(key)
        assert list(users.ended()) == [("/account", "sid-1", "logged-out")]
        users.discard("/account", "sid-1")
        assert list(users.ended()) == []
        assert users._ended_sessions == set()  # forgotten with its last socket


@pytest.mark.django_db
def test_a_socket_still_connecting_is_ended_once_it_is_admitted() -> None:
    """python-socketio cannot disconnect a socket whose connect is pending: wait for it."""
    disconnected: list[str] = []
    server = SimpleNamespace(
        users=SocketUsers(),
        open_sockets=OpenSockets(),
        emit=lambda *args, **kwargs: None,
        disconnect=lambda sid, **kwargs: disconnected.append(sid),
    )
    with override_settings(WHITELIST_PROTECTED_NAMESPACES={"/account": []}):
        server.users.resolve("/account", "sid-1", {"HTTP_COOKIE": "sessionid=gone12345678"})
        check_users(server)  # anonymous now, but not admitted yet
        assert disconnected == []
        decision = Decision(True, "allowed", ALLOWED, "origin", ALLOWED)
        server.open_sockets.add(OpenSocket("sid-1", "/account", decision))
        check_users(server)
        assert disconnected == ["sid-1"]
