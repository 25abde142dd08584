"""Two real nodes on one real redis-server: emits reach the clients of every node.

The nodes are runsocket (eventlet) processes, and again gevent ones: gunicorn 27's
gevent worker, the path for new deployments, beside a gevent runsocket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import socketio

from harness.commands import command_on
from harness.live import GunicornServer, LiveServer, migrated_copy, running, wait_until
from harness.services import RedisServer
from tests.clients import Outcome, try_connect, welcomed
from tests.conftest import ALLOWED
from tests.gunicorn_releases import gunicorn_path


def cluster(template: Path, folder: Path, queue: str, kind: str = "runsocket") -> list[LiveServer]:
    """Two server processes (not started) sharing one database and one message queue.

    Their poll is far slower than the tests' bounds: only the push can explain
    a fast change. ``kind`` is runsocket (eventlet), or gevent for gunicorn 27's gevent
    worker beside a gevent runsocket.
    """
    database = migrated_copy(template, folder / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    env = {"GUARDSITE_MESSAGE_QUEUE": queue, "WHITELIST_REFRESH_INTERVAL": "60"}
    if kind == "gevent":
        worker = {"GUARDSITE_WORKER": "gevent", **gunicorn_path("current")}
        return [
            GunicornServer(database, folder / "node0.log", **env, **worker),
            LiveServer(
                database, folder / "node1.log", **env, GUARDSITE_SOCKETIO_ASYNC_MODE="gevent"
            ),
        ]
    return [LiveServer(database, folder / f"node{i}.log", **env) for i in range(2)]


@pytest.fixture(scope="module", params=["runsocket", "gevent"])
def nodes(
    request: pytest.FixtureRequest,
    migrated_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[list[LiveServer]]:
    """Two server processes sharing one database and one message queue."""
    folder = tmp_path_factory.mktemp(f"cluster-{request.param}")
    servers = cluster(migrated_template, folder, redis_url, request.param)
    with running(servers):
        yield servers


def received(outcome: Outcome, event: str) -> list[Any]:
    """The arguments of each ``event``: the only one, or all of them as a tuple."""
    found = [args for name, args in outcome.events if name == event]
    return [args[0] if len(args) == 1 else args or None for args in found]


@pytest.fixture
def clients(nodes: list[LiveServer]) -> Iterator[list[tuple[Outcome, socketio.Client]]]:
    """One welcomed client on each node, on the default namespace."""
    pairs = [try_connect(node.url, origin=ALLOWED, keep=True) for node in nodes]
    try:
        assert all(outcome.welcome is not None for outcome, _ in pairs)
        yield pairs
    finally:
        for _, client in pairs:
            client.disconnect()


def test_every_node_listens_on_the_queue_before_any_client(
    nodes: list[LiveServer], redis_url: str
) -> None:
    """python-socketio alone would subscribe at the first client connect."""
    queue = redis.Redis.from_url(redis_url)
    assert wait_until(lambda: queue.pubsub_numsub("socketio") == [(b"socketio", 2)])


def test_every_node_listens_for_rule_changes(nodes: list[LiveServer], redis_url: str) -> None:
    queue = redis.Redis.from_url(redis_url)
    assert wait_until(
        lambda: queue.pubsub_numsub("whitelist.changes") == [(b"whitelist.changes", 2)]
    )


def test_a_rule_added_on_one_node_is_enforced_by_the_other_without_waiting_for_its_poll(
    nodes: list[LiveServer],
) -> None:
    origin = "https://pushed.test"
    assert try_connect(nodes[1].url, origin=origin)[0].welcome is None
    assert nodes[0].manage("whitelist", "add", origin).returncode == 0
    assert wait_until(lambda: try_connect(nodes[1].url, origin=origin)[0].welcome is not None)


def test_removing_a_rule_revokes_its_sockets_on_every_node(nodes: list[LiveServer]) -> None:
    origin = "https://leaving.test"
    assert nodes[0].manage("whitelist", "add", origin).returncode == 0
    assert wait_until(lambda: try_connect(nodes[1].url, origin=origin)[0].welcome is not None)
    pairs = [try_connect(node.url, origin=origin, keep=True) for node in nodes]
    try:
        assert all(outcome.welcome is not None for outcome, _ in pairs)
        assert nodes[0].manage("whitelist", "remove", origin).returncode == 0
        expected = (
            "Who invited you to this party?",
            {"reason": "origin-not-allowed", "origin": origin},
        )
        for outcome, client in pairs:
            assert wait_until(lambda client=client: not client.connected)
            assert wait_until(
                lambda outcome=outcome: received(outcome, "permission.revoked") == [expected]
            ), outcome.events
    finally:
        for _, client in pairs:
            client.disconnect()


def test_a_broadcast_on_one_node_reaches_the_clients_of_the_other(
    nodes: list[LiveServer],
) -> None:
    pairs = [try_connect(node.url, origin=ALLOWED, namespace="/late", keep=True) for node in nodes]
    (sender, sender_client), (listener, listener_client) = pairs
    try:
        assert sender.welcome is not None and listener.welcome is not None
        sender_client.emit("shout", {"n": 1}, namespace="/late")
        assert wait_until(lambda: received(listener, "shouted") == [{"n": 1}])
        assert wait_until(lambda: received(sender, "shouted") == [{"n": 1}])
    finally:
        sender_client.disconnect()
        listener_client.disconnect()


def test_manage_py_emit_reaches_the_clients_of_every_node(
    nodes: list[LiveServer], clients: list[tuple[Outcome, socketio.Client]], redis_url: str
) -> None:
    result = nodes[0].manage("emit", "news", "--data", json.dumps({"headline": "hi"}))
    assert result.returncode == 0, result.stderr
    for outcome, _ in clients:
        assert wait_until(lambda outcome=outcome: received(outcome, "news") == [{"headline": "hi"}])


def test_any_write_only_manager_on_the_same_url_reaches_them(
    clients: list[tuple[Outcome, socketio.Client]], redis_url: str
) -> None:
    """The default channel: a worker process needs no Guardsite code to emit."""
    socketio.RedisManager(redis_url, write_only=True).emit("plain", {"from": "worker"})
    for outcome, _ in clients:
        assert wait_until(
            lambda outcome=outcome: received(outcome, "plain") == [{"from": "worker"}]
        )


def test_an_emit_to_one_sid_reaches_only_that_client(
    clients: list[tuple[Outcome, socketio.Client]], redis_url: str
) -> None:
    (first, _), (second, second_client) = clients
    sid = second_client.get_sid()
    assert sid is not None
    socketio.RedisManager(redis_url, write_only=True).emit("private", "psst", room=sid)
    assert wait_until(lambda: received(second, "private") == ["psst"])
    assert received(first, "private") == []


def test_welcomes_do_not_travel_through_the_queue(nodes: list[LiveServer], redis_url: str) -> None:
    """The guard's own events go to a socket of this very node."""
    listener = redis.Redis.from_url(redis_url).pubsub()
    listener.subscribe("socketio")
    try:
        outcome, client = try_connect(nodes[0].url, origin=ALLOWED)
        assert outcome.welcome is not None
        published = []
        while (message := listener.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                published.append(message["data"])
        assert not any(b"permission.message" in data for data in published)
    finally:
        listener.close()


def test_emit_without_a_queue_is_a_clear_error(nodes: list[LiveServer]) -> None:
    result = nodes[0].manage("emit", "news", GUARDSITE_MESSAGE_QUEUE="")
    assert result.returncode == 1
    assert "GUARDSITE_MESSAGE_QUEUE is not set" in result.stderr


def test_nodes_keep_serving_while_redis_is_down_and_resubscribe_when_it_returns(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A queue of its own, stopped and started again on the same port."""
    folder = tmp_path_factory.mktemp("outage")
    queue = RedisServer(folder).start()
    servers = cluster(migrated_template, folder, queue.url)
    try:
        for server in servers:
            server.start()
        queue.stop()
        # The outage is kept short: python-socketio's listener retries after 1, 2, 4, 8,
        # 16 and 32 s, so every second of it can cost the wait for the resubscribe double.
        with ThreadPoolExecutor(max_workers=1) as background:
            emitted = background.submit(servers[0].manage, "emit", "lost")
            # Each node still admits and welcomes its own clients ...
            for server in servers:
                assert try_connect(server.url, origin=ALLOWED)[0].welcome is not None
            # ... and keeps following rule changes (its listener's retries wake the
            # watcher, which polls as often as without a push meanwhile).
            command_on(servers[0].database, "whitelist", "add", "https://meanwhile.test")
            for server in servers:
                assert wait_until(
                    lambda server=server: welcomed(server.url, "https://meanwhile.test")
                )
            result = emitted.result()
        assert result.returncode == 1 and "Could not publish" in result.stderr
        queue.start()
        subscribers = redis.Redis.from_url(queue.url)
        assert wait_until(lambda: subscribers.pubsub_numsub("socketio") == [(b"socketio", 2)], 60)
        changes = [(b"whitelist.changes", 2)]
        assert wait_until(lambda: subscribers.pubsub_numsub("whitelist.changes") == changes, 60)
        pairs = [try_connect(node.url, origin=ALLOWED, keep=True) for node in servers]
        try:
            socketio.RedisManager(queue.url, write_only=True).emit("back", "again")
            for outcome, _ in pairs:
                assert wait_until(lambda outcome=outcome: received(outcome, "back") == ["again"])
        finally:
            for _, client in pairs:
                client.disconnect()
        for server in servers:  # python-socketio's retries, and ours, logged once
            log = server.log()
            assert log.count("ERROR guardsite.messaging.queue: Cannot receive from redis") == 1
            assert log.count("WARNING whitelist.rules.changes: Lost the rule-change feed") == 1
    finally:
        for server in servers:
            server.stop()
        queue.stop()
