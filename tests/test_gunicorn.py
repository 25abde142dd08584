"""gunicorn's gthread worker with python-socketio's threading mode, the path gunicorn 26+ keeps."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.clients import try_connect
from tests.conftest import ALLOWED
from tests.live import free_port, manage, migrated_copy, server_env, start_gunicorn, wait_until

TRANSPORTS = ["polling", "websocket"]


@pytest.fixture(scope="module")
def gthread(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[str]:
    """gunicorn -c gunicorn.conf.py with GUARDSITE_WORKER=gthread and the message queue."""
    folder = tmp_path_factory.mktemp("gthread")
    database = migrated_copy(migrated_template, folder / "db.sqlite3")
    assert manage(database, "whitelist", "add", ALLOWED).returncode == 0
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_WORKER="gthread",
        GUARDSITE_MESSAGE_QUEUE=redis_url,
        GUARDSITE_THREADS="20",
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(folder),
        DJANGO_SETTINGS_MODULE="tests.live_settings",
    )
    log = folder / "gunicorn.log"
    process = start_gunicorn(env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_worker(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(15)


def wait_for_worker(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            urllib.request.urlopen(url + "/", timeout=5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()}")


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
