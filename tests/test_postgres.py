"""Two runsocket nodes on one real PostgreSQL: pushed changes, a green driver, few backends."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.live import (
    LiveServer,
    free_port,
    manage,
    running,
    server_env,
    start_gunicorn,
    wait_for_gunicorn,
    wait_until,
)
from harness.services import PostgresServer
from tests.clients import try_connect, welcomed
from tests.conftest import ALLOWED
from tests.gunicorn_releases import gunicorn_path

OTHER = "http://other.test:8080"
WHILE_DOWN = "https://while-the-database-is-down.test"
REFUSED_WHILE_DOWN = 5
# Per server process: the allowlist watcher's connection and the LISTEN connection.
BACKENDS_PER_NODE = 2


@pytest.fixture(scope="module")
def database(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a migrated PostgreSQL database with one rule."""
    env = {"DATABASE_URL": postgres.url}
    unused = tmp_path_factory.mktemp("pg") / "unused.sqlite3"
    for command in (("migrate", "--no-input", "-v0"), ("whitelist", "add", ALLOWED)):
        result = manage(unused, *command, **env)
        assert result.returncode == 0, result.stderr
    return env


@pytest.fixture(scope="module")
def nodes(
    database: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LiveServer]]:
    """Two runsocket processes on the database, the first eventlet, the second gevent (as
    in a move from one to the other); their poll is far slower than any bound here."""
    folder = tmp_path_factory.mktemp("pg-cluster")
    env = database | {"WHITELIST_REFRESH_INTERVAL": "60"}
    modes = [{}, {"GUARDSITE_SOCKETIO_ASYNC_MODE": "gevent"}]
    servers = [
        LiveServer(folder / "unused.sqlite3", folder / f"node{i}.log", **env, **mode)
        for i, mode in enumerate(modes)
    ]
    with running(servers):
        yield servers


def backends(postgres: PostgresServer) -> list[tuple[str, str]]:
    """The servers' connections: (application_name, query) of every other client backend."""
    return postgres.query(
        "SELECT application_name, query FROM pg_stat_activity"
        " WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )


def listeners(postgres: PostgresServer) -> int:
    return sum(name == "whitelist listener" for name, _ in backends(postgres))


def test_every_node_listens_for_rule_changes(
    nodes: list[LiveServer], postgres: PostgresServer
) -> None:
    """Each node subscribes in a background task of its own, soon after it serves."""
    assert wait_until(lambda: listeners(postgres) == len(nodes), timeout=15), backends(postgres)


def test_a_rule_added_elsewhere_is_enforced_by_every_node_without_waiting_for_the_poll(
    nodes: list[LiveServer], database: dict[str, str], tmp_path: Path
) -> None:
    assert not any(welcomed(node.url, OTHER) for node in nodes)
    assert manage(tmp_path / "unused", "whitelist", "add", OTHER, **database).returncode == 0
    try:
        for node in nodes:
            assert wait_until(lambda node=node: welcomed(node.url, OTHER), timeout=15), node.log()
    finally:
        manage(tmp_path / "unused", "whitelist", "remove", OTHER, **database)


def test_removing_a_rule_revokes_its_sockets_on_every_node(
    nodes: list[LiveServer], database: dict[str, str], tmp_path: Path
) -> None:
    assert manage(tmp_path / "unused", "whitelist", "add", OTHER, **database).returncode == 0
    assert wait_until(lambda: all(welcomed(node.url, OTHER) for node in nodes), timeout=15)
    pairs = [try_connect(node.url, origin=OTHER, keep=True) for node in nodes]
    try:
        assert manage(tmp_path / "unused", "whitelist", "remove", OTHER, **database).returncode == 0
        for outcome, client in pairs:
            assert wait_until(lambda client=client: not client.connected, timeout=15)
            assert wait_until(
                lambda outcome=outcome: any(
                    name == "permission.revoked" for name, _ in outcome.events
                )
            ), outcome.events
    finally:
        for _, client in pairs:
            client.disconnect()


def test_a_slow_query_does_not_hold_up_other_sockets(nodes: list[LiveServer]) -> None:
    """With a driver that blocked the hub, nobody else could connect during the sleep."""
    assert_a_slow_query_holds_up_no_one(nodes[0].url)


@pytest.mark.parametrize("server", ["gevent runsocket", "gunicorn's gevent worker"])
def test_a_slow_query_does_not_hold_up_other_sockets_under_gevent(
    server: str, nodes: list[LiveServer], request: pytest.FixtureRequest
) -> None:
    """gevent's patching makes no driver green by itself: the engine installs psycopg2's
    wait callback (whitelist.engine.green_psycopg2)."""
    url = nodes[1].url if server == "gevent runsocket" else request.getfixturevalue("gevent_node")
    assert_a_slow_query_holds_up_no_one(url)


def assert_a_slow_query_holds_up_no_one(url: str) -> None:
    slow, client = try_connect(url, origin=ALLOWED, namespace="/late", keep=True)
    answered = threading.Event()
    try:
        assert slow.welcome is not None
        client.emit("sleep_in_database", 8, namespace="/late", callback=lambda *_: answered.set())
        for _ in range(2):
            other_outcome, other = try_connect(url, origin=ALLOWED, namespace="/late")
            assert other_outcome.welcome is not None
            assert not answered.is_set(), "the other socket waited for the slow query"
        assert connect_and_call(url) >= 1
        assert not answered.is_set(), "the other sockets waited for the slow query"
        assert answered.wait(30), "the slow query never answered"
    finally:
        client.disconnect()


def connect_and_call(url: str) -> int:
    outcome, client = try_connect(url, origin=ALLOWED, namespace="/late", keep=True)
    try:
        assert outcome.welcome is not None
        return client.call("count_rules", namespace="/late", timeout=15)
    finally:
        client.disconnect()


def test_database_connections_stay_bounded_under_connects_and_events(
    nodes: list[LiveServer], postgres: PostgresServer
) -> None:
    urls = [node.url for node in nodes] * 60  # 30 times the connections allowed
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(connect_and_call, urls))
    assert len(counts) == 120 and all(count >= 1 for count in counts)
    bound = BACKENDS_PER_NODE * listeners(postgres)  # every server process has one listener
    assert listeners(postgres) >= len(nodes)
    assert wait_until(lambda: len(backends(postgres)) <= bound, timeout=15), backends(postgres)


def test_database_connections_stay_bounded_under_gevent(
    gevent_node: str, postgres: PostgresServer
) -> None:
    """A greenlet per socket, each handler's query on a connection of its own: closed after."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(connect_and_call, [gevent_node] * 60))
    assert len(counts) == 60 and all(count >= 1 for count in counts)
    bound = BACKENDS_PER_NODE * listeners(postgres)
    assert wait_until(lambda: len(backends(postgres)) <= bound, timeout=15), backends(postgres)


def test_a_stalled_revision_table_neither_freezes_sockets_nor_the_watcher(
    nodes: list[LiveServer], postgres: PostgresServer
) -> None:
    """A lock held on the revision row: sockets keep being served, the watcher gives up in 2 s."""
    node = nodes[0]
    start = len(node.log())
    locker = postgres.connect()
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE whitelist_allowlistrevision IN ACCESS EXCLUSIVE MODE")
        waker = postgres.connect()
        waker.autocommit = True
        with waker.cursor() as cursor:  # wake every watcher: its read now waits on the lock
            cursor.execute("SELECT pg_notify('whitelist.changes', 'stall')")
        waker.close()
        assert connect_and_call(node.url) >= 1  # while the lock is still held
        assert wait_until(lambda: "Allowlist refresh failed" in node.log()[start:], 15)
        assert "canceling statement due to statement timeout" in node.log()[start:]
    finally:
        locker.rollback()
        locker.close()
    assert welcomed(node.url, ALLOWED)


@contextlib.contextmanager
def gunicorn_node(
    database: dict[str, str], folder: Path, worker: str, **extra: str
) -> Iterator[str]:
    """gunicorn's ``worker`` on the module's database: its URL, until the block ends."""
    port = free_port()
    env = server_env(
        folder / "unused.sqlite3",
        **database,
        GUARDSITE_WORKER=worker,
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(folder),
        WHITELIST_REFRESH_INTERVAL="60",
        DJANGO_SETTINGS_MODULE="tests.live_settings",
        **extra,
    )
    log = folder / "gunicorn.log"
    process = start_gunicorn(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_gunicorn(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture(scope="module")
def gthread_node(
    database: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """gunicorn's gthread worker (python-socketio's threading mode) on the same database."""
    folder = tmp_path_factory.mktemp("pg-gthread")
    with gunicorn_node(database, folder, "gthread", GUARDSITE_THREADS="20") as url:
        yield url


@pytest.fixture(scope="module")
def gevent_node(
    database: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """gunicorn 27's gevent worker (python-socketio's gevent mode) on the same database."""
    folder = tmp_path_factory.mktemp("pg-gevent")
    with gunicorn_node(database, folder, "gevent", **gunicorn_path("current")) as url:
        yield url


@pytest.mark.parametrize("node", ["gthread_node", "gevent_node"])
def test_the_gunicorn_workers_follow_pushed_changes_too(
    node: str, request: pytest.FixtureRequest, database: dict[str, str], tmp_path: Path
) -> None:
    url = request.getfixturevalue(node)
    assert welcomed(url, ALLOWED) and not welcomed(url, OTHER)
    assert manage(tmp_path / "unused", "whitelist", "add", OTHER, **database).returncode == 0
    try:
        assert wait_until(lambda: welcomed(url, OTHER), timeout=15)
    finally:
        manage(tmp_path / "unused", "whitelist", "remove", OTHER, **database)
    assert wait_until(lambda: not welcomed(url, OTHER), timeout=15)


def test_nodes_keep_their_rules_while_postgresql_is_down_and_listen_again_when_it_returns(
    nodes: list[LiveServer], postgres: PostgresServer, database: dict[str, str], tmp_path: Path
) -> None:
    """Runs last: it stops the cluster of the whole module and starts it again."""
    listening = listeners(postgres)  # the nodes', and the gthread worker's
    assert listening >= len(nodes)
    before = [len(node.log()) for node in nodes]  # earlier tests' outages are theirs
    postgres.stop()
    try:
        for node in nodes:
            assert wait_until(lambda node=node: "Lost the rule-change feed" in node.log(), 30)
            assert welcomed(node.url, ALLOWED)
            assert not welcomed(node.url, OTHER)
            for _ in range(REFUSED_WHILE_DOWN):
                assert not welcomed(node.url, WHILE_DOWN)
        for node in nodes:  # the refusal log's counts wait in memory
            assert wait_until(lambda node=node: "Could not write the refusal log" in node.log(), 15)
    finally:
        postgres.start()

    assert wait_until(lambda: listeners(postgres) == listening, timeout=30), backends(postgres)
    assert manage(tmp_path / "unused", "whitelist", "add", OTHER, **database).returncode == 0
    for node, start in zip(nodes, before, strict=True):
        assert wait_until(lambda node=node: welcomed(node.url, OTHER), timeout=15), node.log()
        assert "Listening for rule changes again" in node.log()
        log = node.log()[start:]  # each failure once per outage, however many retries
        assert log.count("WARNING whitelist.rules.changes: Lost the rule-change feed") == 1
        assert log.count("ERROR whitelist.rules.cache: Allowlist refresh failed") == 1
        assert log.count("ERROR whitelist.reporting.flushing: Could not write the refusal log") == 1

    def logged() -> list[tuple[str, int]]:
        query = "SELECT namespace, count FROM whitelist_refusedconnect WHERE origin = %s"
        return postgres.query(query, (WHILE_DOWN,))

    # Every refusal made while the database was down, once it is back: none lost.
    assert wait_until(lambda: logged() == [("/", 2 * REFUSED_WHILE_DOWN)], timeout=15), logged()
