"""deploy/nginx.conf for real: two runsocket processes on one Redis behind a real nginx."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import try_connect
from tests.conftest import ALLOWED
from tests.live import ROOT, LiveServer, manage, migrated_copy, wait_until
from tests.services import Nginx

TRANSPORTS = ["polling", "websocket"]


@pytest.fixture(scope="module")
def proxy(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[str]:
    """nginx's URL, in front of two nodes sharing a database and the message queue."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("run make test to install nginx")
    folder = tmp_path_factory.mktemp("nginx")
    database = migrated_copy(migrated_template, folder / "db.sqlite3")
    assert manage(database, "whitelist", "add", ALLOWED).returncode == 0
    nodes = [
        LiveServer(database, folder / f"node{i}.log", GUARDSITE_MESSAGE_QUEUE=redis_url)
        for i in range(2)
    ]
    nginx = None
    try:
        for node in nodes:
            node.start()
        upstreams = [node.url.removeprefix("http://") for node in nodes]
        nginx = Nginx(folder, ROOT / "deploy" / "nginx.conf", upstreams).start()
        yield nginx.url
    finally:
        if nginx is not None:
            nginx.stop()
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_allowed_origin_is_welcomed_through_nginx(proxy: str, transport: str) -> None:
    outcome, client = try_connect(proxy, origin=ALLOWED, transport=transport, keep=True)
    try:
        assert outcome.welcome is not None and outcome.welcome["origin"] == ALLOWED
        assert client.call("whoami", timeout=10)["origin"] == ALLOWED
    finally:
        client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_other_origin_is_refused_through_nginx(proxy: str, transport: str) -> None:
    outcome, _ = try_connect(proxy, origin="https://evil.test", transport=transport)
    assert outcome.error == {
        "message": "Who invited you to this party?",
        "data": {"reason": "origin-not-allowed", "origin": "https://evil.test"},
    }


def test_long_polling_sessions_stay_on_one_node(proxy: str) -> None:
    """Every request of a polling session must reach the node that holds it."""
    outcomes = [try_connect(proxy, origin=ALLOWED, transport="polling") for _ in range(5)]
    assert all(outcome.welcome is not None for outcome, _ in outcomes)


def test_a_broadcast_reaches_clients_behind_nginx(proxy: str) -> None:
    pairs = [
        try_connect(proxy, origin=ALLOWED, namespace="/late", transport=transport, keep=True)
        for transport in TRANSPORTS
    ]
    try:
        (sender, sender_client), (listener, _) = pairs
        assert sender.welcome is not None and listener.welcome is not None
        sender_client.emit("shout", {"n": 2}, namespace="/late")
        assert wait_until(lambda: ("shouted", ({"n": 2},)) in listener.events)
    finally:
        for _, client in pairs:
            client.disconnect()
