"""gunicorn 26+'s workers: gthread with python-socketio's threading mode, and gevent.

gunicorn 26 removed the eventlet worker; gthread (on the pinned and the newest
gunicorn) and gevent (on the newest) are the paths it keeps.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis
import socketio
import websocket

from harness.commands import command_on
from harness.live import (
    LiveServer,
    free_port,
    migrated_copy,
    server_env,
    start_gunicorn,
    wait_for_gunicorn,
    wait_until,
)
from tests.clients import try_connect
from tests.conftest import ALLOWED
from tests.gunicorn_releases import gunicorn_path
from tests.test_websocket import close_code
from whitelist.engine.wsproto_websocket import MESSAGE_TOO_BIG

TRANSPORTS = ["polling", "websocket"]


def installed_version(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", "import gunicorn; print(gunicorn.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


# The database of each gunicorn server, by URL, for tests that read what it recorded.
DATABASES: dict[str, Path] = {}


@contextlib.contextmanager
def gunicorn_server(
    database: Path, folder: Path, worker: str = "gthread", **extra: str
) -> Iterator[tuple[str, str]]:
    """gunicorn -c gunicorn.conf.py with GUARDSITE_WORKER=``worker`` on ``database``: its URL
    and the gunicorn release it runs; stopped (gracefully) when the block ends."""
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_WORKER=worker,
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(folder),
        DJANGO_SETTINGS_MODULE="tests.live_settings",
        **extra,
    )
    version = installed_version(env)
    log = folder / "gunicorn.log"
    process = start_gunicorn(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_gunicorn(url, process, log)
        assert f"Starting gunicorn {version}" in log.read_text()
        yield url, version
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture(
    scope="module",
    params=[("gthread", "pinned"), ("gthread", "current"), ("gevent", "current")],
    ids=["gthread-pinned", "gthread-current", "gevent-current"],
)
def worker(
    request: pytest.FixtureRequest,
    migrated_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[str]:
    """A gunicorn worker that gunicorn 26+ keeps, with the message queue: its URL.

    gthread with the pinned gunicorn (<26) and with the newest (27, which has no
    eventlet worker left); gevent with the newest.
    """
    kind, release = request.param
    folder = tmp_path_factory.mktemp(kind)
    database = migrated_copy(migrated_template, folder / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    with gunicorn_server(
        database,
        folder,
        kind,
        GUARDSITE_MESSAGE_QUEUE=redis_url,
        GUARDSITE_THREADS="20",
        **gunicorn_path(release),
    ) as (url, version):
        assert (version < "26") == (release == "pinned"), version
        DATABASES[url] = database
        yield url


def test_the_worker_listens_on_the_queue_before_any_client(worker: str, redis_url: str) -> None:
    """gunicorn.conf.py's post_worker_init starts the manager and the rule listener."""
    queue = redis.Redis.from_url(redis_url)
    assert wait_until(lambda: queue.pubsub_numsub("socketio")[0][1] >= 1)
    assert wait_until(lambda: queue.pubsub_numsub("whitelist.changes")[0][1] >= 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_worker_welcomes_an_allowed_origin(worker: str, transport: str) -> None:
    outcome, _ = try_connect(worker, origin=ALLOWED, transport=transport)
    assert outcome.welcome is not None and outcome.welcome["transport"] == transport
    assert outcome.hello is not None and outcome.hello["protocol"] == "ws://"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_worker_refuses_another_origin_politely(worker: str, transport: str) -> None:
    outcome, _ = try_connect(worker, origin="https://evil.test", transport=transport)
    assert outcome.error == {
        "message": "Who invited you to this party?",
        "data": {"reason": "origin-not-allowed", "origin": "https://evil.test"},
    }


def test_the_worker_guards_namespaces_added_by_handler_modules(worker: str) -> None:
    outcome, client = try_connect(worker, origin=ALLOWED, namespace="/late", keep=True)
    try:
        assert outcome.welcome is not None
        assert client.call("echo", "hi", namespace="/late", timeout=10) == "hi"
    finally:
        client.disconnect()
    refused, _ = try_connect(worker, origin="https://evil.test", namespace="/late")
    assert refused.error is not None and refused.error["data"]["reason"] == "origin-not-allowed"


def test_the_workers_websockets_cap_messages_and_inflate_nothing(worker: str) -> None:
    """python-engineio built these modes' WebSockets (simple-websocket) with no message
    limit, and accepted permessage-deflate: a client could make the worker buffer any
    size, or inflate a megabyte on the wire into a gigabyte."""
    connection = websocket.create_connection(
        worker.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        origin=ALLOWED,
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
        timeout=15,
    )
    try:
        assert "sec-websocket-extensions" not in connection.getheaders()
        assert connection.recv().startswith("0{")
        connection.send("40/late,")
        while not connection.recv().startswith("40/late,"):
            pass
        fragment = b"x" * 65_536
        opcode = websocket.ABNF.OPCODE_TEXT
        for _ in range(16):  # 1,048,576 bytes: past python-engineio's 1,000,000
            connection.send_frame(websocket.ABNF.create_frame(fragment, opcode, fin=0))
            opcode = websocket.ABNF.OPCODE_CONT
        assert close_code(connection) == MESSAGE_TOO_BIG
    finally:
        connection.shutdown()


def test_the_worker_upgrades_a_client_from_polling_to_websocket(worker: str) -> None:
    """A client's default transports, as a browser's: the handshake polls, then upgrades."""
    client = socketio.Client(reconnection=False, websocket_extra_options={"suppress_origin": True})
    welcomed = threading.Event()
    client.on("permission.message", lambda *args: welcomed.set(), namespace="/late")
    client.connect(worker, headers={"Origin": ALLOWED}, namespaces=["/late"], wait_timeout=10)
    try:
        assert welcomed.wait(10)
        assert client.transport() == "websocket"
        said = client.call("echo", "after the upgrade", namespace="/late", timeout=10)
        assert said == "after the upgrade"
    finally:
        client.disconnect()


@pytest.mark.parametrize("kind", ["eventlet", "gevent"])
def test_a_green_worker_serves_without_noise(
    kind: str, migrated_template: Path, tmp_path: Path
) -> None:
    """eventlet (pinned gunicorn) and gevent (the newest): no deprecation notices, no
    run-on shutdown errors, no client bytes read as a request after a WebSocket's close."""
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_WORKER=kind,
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="guardsite.settings",
        **gunicorn_path("pinned" if kind == "eventlet" else "current"),
    )
    env.pop("PYTHONWARNINGS")  # as an operator runs it: warnings shown
    log = tmp_path / "gunicorn.log"
    process = start_gunicorn(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_gunicorn(url, process, log)
        for transport in TRANSPORTS:
            assert try_connect(url, origin=ALLOWED, transport=transport)[0].welcome is not None
            refused, _ = try_connect(url, origin="https://evil.test", transport=transport)
            assert refused.refusal_reason == "origin-not-allowed"
    finally:
        process.terminate()
        process.wait(15)
    text = log.read_text()
    assert f"Using worker: {kind}" in text
    noises = ("Traceback", "deprecated", "DEPRECATED", "socket shutdown error", "Invalid HTTP")
    for noise in (*noises, "Expected GET"):
        assert noise not in text, text


def test_gunicorn_refuses_to_serve_when_a_system_check_fails(
    migrated_template: Path, tmp_path: Path
) -> None:
    """runsocket runs the checks; gunicorn served header-less clients with this setting."""
    port = free_port()
    env = server_env(
        migrated_copy(migrated_template, tmp_path / "db.sqlite3"),
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="tests.mistyped_settings",
    )
    log = tmp_path / "gunicorn.log"
    process = start_gunicorn(env, log)
    try:
        assert process.wait(60) != 0
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "System check failed, not serving" in text and "whitelist.E003" in text, text
    assert "Worker failed to boot" in text


def test_the_worker_records_refusals_in_the_log(worker: str) -> None:
    """The flusher is a thread here, started by gunicorn.conf.py's post_worker_init."""
    origin = f"https://logged-{worker.rsplit(':', 1)[1]}.test"
    for _ in range(3):
        assert try_connect(worker, origin=origin)[0].refusal_reason == "origin-not-allowed"

    def logged() -> list[tuple[str, int]]:
        with closing(sqlite3.connect(DATABASES[worker], timeout=10)) as db:
            query = "SELECT namespace, count FROM whitelist_refusedconnect WHERE origin = ?"
            return db.execute(query, (origin,)).fetchall()

    assert wait_until(lambda: logged() == [("/", 3)]), logged()


def test_the_worker_refuses_anonymous_clients_on_protected_namespaces(worker: str) -> None:
    outcome, _ = try_connect(worker, origin=ALLOWED, namespace="/account")
    assert outcome.refusal_reason == "login-required"


@pytest.mark.parametrize("server", ["runsocket", "gunicorn"])
def test_the_last_refusals_are_written_as_the_server_stops(
    server: str,
    start_server: Callable[..., LiveServer],
    migrated_template: Path,
    tmp_path: Path,
) -> None:
    """With an hour between flushes, only the flush at shutdown can write these."""
    origin = "https://refused-just-before-the-stop.test"
    query = "SELECT count FROM whitelist_refusedconnect WHERE origin = ?"
    if server == "runsocket":
        live = start_server(ALLOWED, WHITELIST_FLUSH_INTERVAL="3600")
        database, running = live.database, stopped_at_the_end(live)
    else:
        database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
        running = gunicorn_server(database, tmp_path, WHITELIST_FLUSH_INTERVAL="3600")
    with closing(sqlite3.connect(database, timeout=10)) as db:
        with running as (url, _version):
            for _ in range(3):
                assert try_connect(url, origin=origin)[0].refusal_reason == "origin-not-allowed"
            assert db.execute(query, (origin,)).fetchall() == []  # not flushed yet
        assert db.execute(query, (origin,)).fetchall() == [(3,)]


@contextlib.contextmanager
def stopped_at_the_end(server: LiveServer) -> Iterator[tuple[str, str]]:
    """A running runsocket as ``gunicorn_server`` gives gunicorn: its URL, stopped after."""
    try:
        yield server.url, ""
    finally:
        server.stop()
