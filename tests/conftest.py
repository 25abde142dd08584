"""Shared fixtures: a migrated database template and real runsocket servers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import commands
from harness.commands import command_on
from harness.live import LiveServer, manage, migrated_copy
from harness.services import BINARIES, PostgresServer, RedisServer

ALLOWED = "http://allowed.test:8080"
WILDCARD = "https://*.example.com"
TLS_ALLOWED = "https://localhost:*"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each server gets its own copy."""
    database = tmp_path_factory.mktemp("template") / "template.sqlite3"
    result = manage(database, "migrate", "--no-input", "-v0")
    assert result.returncode == 0, result.stderr
    return database


@pytest.fixture(scope="session")
def tls_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state folder of the test servers (their development certificate)."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session", autouse=True)
def server_databases(django_db_blocker: Any) -> None:
    """``harness.commands`` may open live servers' SQLite files; the test database stays
    blocked outside tests marked for it."""
    commands.database_access = django_db_blocker.unblock


@pytest.fixture(scope="session")
def start_server(
    migrated_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    tls_state: Path,
) -> Iterator[Callable[..., LiveServer]]:
    """Start a runsocket with its own database; every server is stopped at the end.

    Its rules are added in this process (``harness.commands``): the server is
    another process all the same, and reads them as it starts.
    """
    servers: list[LiveServer] = []

    def start(
        *rules: str,
        migrated: bool = True,
        ports: int = 1,
        tls_ports: int = 0,
        options: tuple[str, ...] = (),
        measured: bool = True,
        **env: str,
    ) -> LiveServer:
        """Rules may name the server's own pages: ``{url0}``, ``{url1}``, ``{tls0}``;
        ``measured=False`` serves without coverage (harness.live.server_env)."""
        folder = tmp_path_factory.mktemp("server")
        env.setdefault("GUARDSITE_STATE_DIR", str(tls_state))
        database = folder / "db.sqlite3"
        if migrated:
            migrated_copy(migrated_template, database)
        else:
            database.touch()
        server = LiveServer(
            database,
            folder / "server.log",
            ports=ports,
            tls_ports=tls_ports,
            options=options,
            measured=measured,
            **env,
        )
        if rules:
            names = {f"url{i}": f"http://localhost:{port}" for i, port in enumerate(server.ports)}
            names |= {
                f"tls{i}": f"https://localhost:{port}" for i, port in enumerate(server.tls_ports)
            }
            command_on(database, "whitelist", "add", *(rule.format(**names) for rule in rules))
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def socket_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """The shared server: one exact rule and one subdomain rule; plain and TLS addresses."""
    return start_server(ALLOWED, WILDCARD, TLS_ALLOWED, tls_ports=1)


@pytest.fixture
def shared_log(socket_server: LiveServer) -> Callable[[], str]:
    """The shared server's output since this test began: an earlier test's errors are not
    blamed on this one."""
    start = socket_server.log_size()
    return lambda: socket_server.log(since=start)


@pytest.fixture(scope="session")
def dev_ca(socket_server: LiveServer, tls_state: Path) -> Path:
    """The development certificate the shared server made, as a client's trust anchor."""
    return tls_state / "tls" / "dev-cert.pem"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An on-disk SQLite test database: in-process servers read it from their own threads.

    Shared-cache in-memory SQLite fails at once ("table is locked") when two
    threads meet; a file in WAL mode waits instead.
    """
    from django.db import connections

    database = connections["default"].settings_dict
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("testdb") / "test.sqlite3")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of this test run (Debian's package; make test installs it)."""
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        pytest.skip("run make test to install redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster of this test run (Debian's package; make test installs it)."""
    if not (BINARIES / "postgres").exists():
        pytest.skip("run make test to install postgresql")
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        yield server.start()
    finally:
        server.remove()


# Fixtures that start real processes: a test using one belongs to the live tier, which
# make check leaves out (make test runs both). Modules whose tests start processes
# themselves say so with ``pytestmark = pytest.mark.live``.
LIVE_FIXTURES = {"migrated_template", "start_server", "redis_url", "postgres"}


# The files that take longest under make test, longest first. make test hands whole files
# to its workers (--dist loadfile, so each module's servers start once) in collection
# order: these start at once instead of holding up the end of the run. Only a scheduling
# hint: a file missing here costs time, never a result.
LONGEST_FIRST = [
    "test_postgres.py",
    "test_message_queue.py",
    "test_serving.py",
    "test_gunicorn.py",
    "test_origin_properties.py",
    "test_socketio.py",
    "test_wheel.py",
    "test_runsocket_gevent.py",
    "test_socketio_gevent.py",
    "test_fuzz.py",
    "test_serving_gevent.py",
    "test_fuzz_gevent.py",
    "test_tls.py",
    "test_cleanup.py",
    "test_deadlines.py",
    "test_live_guard.py",
    "test_instrument.py",
    "test_commands.py",
    "test_browser.py",
    "test_nginx.py",
    "test_operations.py",
    "test_metrics.py",
    "test_live_operations.py",
    "test_flushing.py",
    "test_browser_gevent.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file


@pytest.fixture(autouse=True)
def no_process_in_the_quick_tier(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test not marked live that starts a process fails, in either tier, naming the mark:
    make check must stay in-process."""
    if request.node.get_closest_marker("live") is not None:
        yield
        return

    def refuse(self: subprocess.Popen[Any], args: Any, *more: Any, **options: Any) -> None:
        raise AssertionError(
            f"{request.node.nodeid} starts a process ({args!r}): mark it pytest.mark.live"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse)
        yield
