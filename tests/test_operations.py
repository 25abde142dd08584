"""Operations on a live server: the refusal log, the admin action, namespace-scoped rules,
rule activity and the change history, through real clients and the real admin."""

from __future__ import annotations

import getpass
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.commands import command_on
from harness.live import LiveServer, wait_until
from tests.admin_session import add_superuser, logged_in, refusals, rows
from tests.clients import try_connect, welcomed

ALLOWED = "http://allowed.test"
EVIL = "https://evil.test"
STAFF, PASSWORD = "alice", "a-long-password-for-the-tests"


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    server = start_server(ALLOWED)
    add_superuser(server, STAFF, PASSWORD)
    return server


@pytest.fixture
def staff(server: LiveServer) -> Iterator[Any]:
    session = logged_in(server, STAFF, PASSWORD)
    yield session
    session.close()


def test_many_refusals_from_one_origin_are_one_row(server: LiveServer) -> None:
    agent = {"User-Agent": "refusal-log-test/1"}
    for _ in range(25):
        outcome, _client = try_connect(server.url, origin=EVIL, extra_headers=agent)
        assert outcome.refusal_reason == "origin-not-allowed"
    assert wait_until(lambda: [row[3] for row in refusals(server, EVIL)] == [25])
    ((reason, namespace, report_only, count, address, user_agent),) = refusals(server, EVIL)
    assert (reason, namespace, report_only, address) == ("origin-not-allowed", "/", 0, "127.0.0.1")
    assert user_agent == "refusal-log-test/1"


def test_each_namespace_and_reason_has_its_own_row(server: LiveServer) -> None:
    origin = "https://other-namespace.test"
    try_connect(server.url, origin=origin, namespace="/late")
    try_connect(server.url, origin="null")
    assert wait_until(lambda: len(refusals(server, origin)) == 1)
    assert refusals(server, origin)[0][:2] == ("origin-not-allowed", "/late")
    assert wait_until(lambda: bool(refusals(server, "null")))
    assert refusals(server, "null")[0][0] == "null-origin"


def allow_from_the_log(staff: Any, server: LiveServer, origin: str, **choice: str) -> str:
    """Select ``origin``'s refusal rows in admin and run "Allow these origins"."""
    (pk,) = rows(server, "SELECT id FROM whitelist_refusedconnect WHERE origin = ?", origin)[0]
    url = f"{server.url}/admin/whitelist/refusedconnect/"
    form = {
        "action": "allow_origins",
        "_selected_action": str(pk),
        "csrfmiddlewaretoken": staff.cookies["csrftoken"],
    }
    confirmation = staff.post(url, data=form, timeout=10)
    assert confirmation.status_code == 200
    assert "Create them disabled, for review" in confirmation.text
    assert origin in confirmation.text
    done = staff.post(url, data={**form, "post": "yes", **choice}, timeout=10)
    assert done.status_code == 200
    return done.text


def test_the_admin_action_allows_refused_origins_enabled(server: LiveServer, staff: Any) -> None:
    origin = "https://partner.test"
    assert try_connect(server.url, origin=origin)[0].refusal_reason == "origin-not-allowed"
    assert wait_until(lambda: bool(refusals(server, origin)))
    page = allow_from_the_log(staff, server, origin, state="enabled")
    assert f"Added {origin} (enabled): it is admitted now" in page
    assert rows(
        server, "SELECT enabled FROM whitelist_allowedorigin WHERE pattern = ?", origin
    ) == [(1,)]
    assert wait_until(lambda: welcomed(server.url, origin))
    changes = rows(
        server, "SELECT actor, action FROM whitelist_rulechange WHERE pattern = ?", origin
    )
    assert changes == [(f"admin: {STAFF}", "added")]
    logged = rows(server, "SELECT object_repr FROM django_admin_log WHERE object_repr = ?", origin)
    assert logged == [(origin,)]


def test_the_admin_action_can_create_rules_disabled(server: LiveServer, staff: Any) -> None:
    origin = "https://candidate.test"
    try_connect(server.url, origin=origin, namespace="/late")
    assert wait_until(lambda: bool(refusals(server, origin)))
    page = allow_from_the_log(staff, server, origin, state="disabled", scoped="yes")
    said = f"Added {origin} disabled: it admits nobody until you enable it"
    assert f'<li class="warning">{said}' in page
    stored = rows(
        server,
        "SELECT enabled, namespaces FROM whitelist_allowedorigin WHERE pattern = ?",
        origin,
    )
    assert stored == [(0, "/late")]
    assert try_connect(server.url, origin=origin, namespace="/late")[0].refusal_reason == (
        "origin-not-allowed"
    )


def test_a_scoped_rule_admits_only_to_its_namespaces(server: LiveServer) -> None:
    origin = "https://chat-only.test"
    command_on(server.database, "whitelist", "add", origin, "--namespaces", "/late")
    assert wait_until(lambda: try_connect(server.url, origin=origin, namespace="/late")[0].welcome)
    refused, _client = try_connect(server.url, origin=origin, namespace="/")
    assert refused.refusal_reason == "origin-not-allowed"
    on_chat = server.manage("whitelist", "check", origin, "--namespace", "/late")
    on_root = server.manage("whitelist", "check", origin, "--namespace", "/")
    assert (on_chat.returncode, on_root.returncode) == (0, 1)
    assert "no rule matches on /" in on_root.stdout
    assert f"{origin}  on /late" in command_on(server.database, "whitelist", "list")


def test_narrowing_a_rule_revokes_sockets_on_the_other_namespaces(server: LiveServer) -> None:
    origin = "https://narrowed.test"
    command_on(server.database, "whitelist", "add", origin)
    assert wait_until(lambda: welcomed(server.url, origin))
    outcome, client = try_connect(server.url, origin=origin, namespace="/late", keep=True)
    try:
        assert outcome.welcome is not None
        narrowed = command_on(
            server.database, "whitelist", "add", origin, "--namespaces", "/orders"
        )
        assert narrowed.strip() == f"updated {origin}"
        assert wait_until(lambda: not client.connected, timeout=15)
        expected = {"reason": "origin-not-allowed", "origin": origin}
        assert wait_until(
            lambda: (
                [args[1] for event, args in outcome.events if event == "permission.revoked"]
                == [expected]
            )
        ), outcome.events
    finally:
        client.disconnect()


def cell(page: str, pattern: str, column: str) -> str:
    """The text of ``column`` in the rule list's row for ``pattern``."""
    row = next(row for row in page.split("<tr") if f">{pattern}</a>" in row)
    found = re.search(rf'class="field-{column}[^"]*">(.*?)</t[dh]>', row, re.S)
    assert found, row
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_the_rule_list_shows_activity_and_who_changed_it(server: LiveServer, staff: Any) -> None:
    origin = "https://busy.test"

    # Over WebSocket the server sees each client go when its connection closes. A polling
    # client's going rests on its last POST: if that never arrives, the server keeps the
    # socket open until Engine.IO's ping timeout, and "open now" with it.
    def visit() -> bool:
        return try_connect(server.url, origin=origin, transport="websocket")[0].welcome is not None

    command_on(server.database, "whitelist", "add", origin)
    # A handshake refused under the old rules whose connect the new rules allow is closed
    # for the client to retry (refused_websockets): python-socketio's client then waits
    # out its whole timeout, which must leave the loop time for the retry. Only one
    # visit can straddle the change; a shorter timeout could give up on a slow admitted
    # one, which the server counts all the same.
    assert wait_until(visit, timeout=40)
    for _ in range(2):
        assert visit()
    outcome, client = try_connect(server.url, origin=origin, transport="websocket", keep=True)
    try:
        assert outcome.welcome is not None

        def shown() -> tuple[str, str]:
            page = staff.get(f"{server.url}/admin/whitelist/allowedorigin/", timeout=10).text
            return cell(page, origin, "sockets")

        assert wait_until(lambda: shown() == "1 open 4 in the last hour", timeout=20), shown()
        page = staff.get(f"{server.url}/admin/whitelist/allowedorigin/", timeout=10).text
        changed = cell(page, origin, "changed_by")
        assert changed.startswith(f"cli: {getpass.getuser()} (whitelist add) ")
    finally:
        client.disconnect()
    assert wait_until(lambda: shown().startswith("0 open"), timeout=20)


def test_every_rule_change_names_who_made_it(server: LiveServer, staff: Any) -> None:
    origin = "https://audited.test"
    command_on(server.database, "whitelist", "add", origin)
    (pk,) = rows(server, "SELECT id FROM whitelist_allowedorigin WHERE pattern = ?", origin)[0]
    staff.post(
        f"{server.url}/admin/whitelist/allowedorigin/",
        data={
            "action": "disable_rules",
            "_selected_action": str(pk),
            "csrfmiddlewaretoken": staff.cookies["csrftoken"],
        },
        timeout=10,
    )
    command_on(server.database, "whitelist", "remove", origin)
    changes = rows(
        server,
        "SELECT actor, action, detail FROM whitelist_rulechange WHERE pattern = ? ORDER BY id",
        origin,
    )
    cli = f"cli: {getpass.getuser()}"
    assert changes == [
        (f"{cli} (whitelist add)", "added", "enabled, all namespaces"),
        (f"admin: {STAFF}", "changed", "enabled=False"),
        (f"{cli} (whitelist remove)", "deleted", ""),
    ]
    logged = rows(server, "SELECT change_message FROM django_admin_log WHERE object_id = ?", pk)
    assert logged == [('[{"changed": {"fields": ["Enabled"]}}]',)]


def test_limiting_to_namespaces_skips_origins_refused_only_at_the_handshake(
    server: LiveServer, staff: Any
) -> None:
    """A handshake refusal names no namespace: scoping it would mean 'every namespace'."""
    origin = "https://handshake-only.test"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")  # older rows would be pruned
    with closing(sqlite3.connect(server.database, timeout=10)) as db, db:
        db.execute(
            "INSERT INTO whitelist_refusedconnect (origin, reason, namespace, report_only, count,"
            " first_seen, last_seen, last_address, last_user_agent)"
            " VALUES (?, 'origin-not-allowed', '', 0, 1, ?, ?, '', '')",
            (origin, now, now),
        )
    page = allow_from_the_log(staff, server, origin, state="enabled", scoped="yes")
    assert f"No rule for {origin}: it was refused only at the handshake" in page
    assert rows(server, "SELECT id FROM whitelist_allowedorigin WHERE pattern = ?", origin) == []
