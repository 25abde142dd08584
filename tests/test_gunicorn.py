"""gunicorn's gthread worker with python-socketio's threading mode, the path gunicorn 26+ keeps."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis

from harness.commands import command_on
from harness.live import (
    ROOT,
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

TRANSPORTS = ["polling", "websocket"]


# make test installs the newest gunicorn here, beside the pinned one (Makefile).
CURRENT_GUNICORN = ROOT / ".venv" / "gunicorn-current"


def gunicorn_path(release: str) -> dict[str, str]:
    """The environment that runs the pinned gunicorn (<26) or the newest one."""
    if release == "pinned":
        return {}
    if not (CURRENT_GUNICORN / "gunicorn").is_dir():
        pytest.skip("run make test to install the newest gunicorn")
    return {"PYTHONPATH": str(CURRENT_GUNICORN)}


def installed_version(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", "import gunicorn; print(gunicorn.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


# The database of each gthread server, by URL, for tests that read what it recorded.
DATABASES: dict[str, Path] = {}


@contextlib.contextmanager
def gthread_server(database: Path, folder: Path, **extra: str) -> Iterator[tuple[str, str]]:
    """gunicorn -c gunicorn.conf.py with GUARDSITE_WORKER=gthread on ``database``: its URL and
    the gunicorn release it runs; stopped (gracefully) when the block ends."""
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_WORKER="gthread",
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


@pytest.fixture(scope="module", params=["pinned", "current"])
def gthread(
    request: pytest.FixtureRequest,
    migrated_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[str]:
    """gunicorn's gthread worker with the message queue.

    Once with the pinned gunicorn (<26), once with the newest (27, which has no
    eventlet worker left).
    """
    folder = tmp_path_factory.mktemp("gthread")
    database = migrated_copy(migrated_template, folder / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    with gthread_server(
        database,
        folder,
        GUARDSITE_MESSAGE_QUEUE=redis_url,
        GUARDSITE_THREADS="20",
        **gunicorn_path(request.param),
    ) as (url, version):
        assert (version < "26") == (request.param == "pinned"), version
        DATABASES[url] = database
        yield url


def test_gthread_worker_listens_on_the_queue_before_any_client(
    gthread: str, redis_url: str
) -> None:
    """gunicorn.conf.py's post_worker_init starts the manager and the rule listener."""
    queue = redis.Redis.from_url(redis_url)
    assert wait_until(lambda: queue.pubsub_numsub("socketio")[0][1] >= 1)
    assert wait_until(lambda: queue.pubsub_numsub("whitelist.changes")[0][1] >= 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gthread_worker_welcomes_an_allowed_origin(gthread: str, transport: str) -> None:
    outcome, _ = try_connect(gthread, origin=ALLOWED, transport=transport)
    assert outcome.welcome is not None and outcome.welcome["transport"] == transport
    assert outcome.hello is not None and outcome.hello["protocol"] == "ws://"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gthread_worker_refuses_another_origin_politely(gthread: str, transport: str) -> None:
    outcome, _ = try_connect(gthread, origin="https://evil.test", transport=transport)
    assert outcome.error == {
        "message": "Who invited you to this party?",
        "data": {"reason": "origin-not-allowed", "origin": "https://evil.test"},
    }


def test_gthread_worker_guards_namespaces_added_by_handler_modules(gthread: str) -> None:
    outcome, client = try_connect(gthread, origin=ALLOWED, namespace="/late", keep=True)
    try:
        assert outcome.welcome is not None
        assert client.call("echo", "hi", namespace="/late", timeout=10) == "hi"
    finally:
        client.disconnect()
    refused, _ = try_connect(gthread, origin="https://evil.test", namespace="/late")
    assert refused.error is not None and refused.error["data"]["reason"] == "origin-not-allowed"


def test_the_eventlet_worker_serves_without_noise(migrated_template: Path, tmp_path: Path) -> None:
    """The pinned eventlet worker: no deprecation notices, no run-on shutdown errors."""
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="guardsite.settings",
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
    assert "Using worker: eventlet" in text
    for noise in ("Traceback", "deprecated", "DEPRECATED", "socket shutdown error"):
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


def test_gthread_worker_records_refusals_in_the_log(gthread: str) -> None:
    """The flusher is a thread here, started by gunicorn.conf.py's post_worker_init."""
    origin = f"https://logged-{gthread.rsplit(':', 1)[1]}.test"
    for _ in range(3):
        assert try_connect(gthread, origin=origin)[0].refusal_reason == "origin-not-allowed"

    def logged() -> list[tuple[str, int]]:
        with closing(sqlite3.connect(DATABASES[gthread], timeout=10)) as db:
            query = "SELECT namespace, count FROM whitelist_refusedconnect WHERE origin = ?"
            return db.execute(query, (origin,)).fetchall()

    assert wait_until(lambda: logged() == [("/", 3)]), logged()


def test_gthread_worker_refuses_anonymous_clients_on_protected_namespaces(gthread: str) -> None:
    outcome, _ = try_connect(gthread, origin=ALLOWED, namespace="/account")
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
        running = gthread_server(database, tmp_path, WHITELIST_FLUSH_INTERVAL="3600")
    with closing(sqlite3.connect(database, timeout=10)) as db:
        with running as (url, _version):
            for _ in range(3):
                assert try_connect(url, origin=origin)[0].refusal_reason == "origin-not-allowed"
            assert db.execute(query, (origin,)).fetchall() == []  # not flushed yet
        assert db.execute(query, (origin,)).fetchall() == [(3,)]


@contextlib.contextmanager
def stopped_at_the_end(server: LiveServer) -> Iterator[tuple[str, str]]:
    """A running runsocket as ``gthread_server`` gives gunicorn: its URL, stopped after."""
    try:
        yield server.url, ""
    finally:
        server.stop()
