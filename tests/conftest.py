"""Shared fixtures: a migrated database template and real runsocket servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, manage, migrated_copy

ALLOWED = "http://allowed.test:8080"
WILDCARD = "https://*.example.com"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each server gets its own copy."""
    database = tmp_path_factory.mktemp("template") / "template.sqlite3"
    result = manage(database, "migrate", "--no-input", "-v0")
    assert result.returncode == 0, result.stderr
    return database


@pytest.fixture(scope="session")
def start_server(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveServer]]:
    """Start a runsocket with its own database; every server is stopped at the end."""
    servers: list[LiveServer] = []

    def start(*rules: str, migrated: bool = True, ports: int = 1, **env: str) -> LiveServer:
        folder = tmp_path_factory.mktemp("server")
        database = folder / "db.sqlite3"
        if migrated:
            migrated_copy(migrated_template, database)
        else:
            database.touch()
        if rules:
            result = manage(database, "whitelist", "add", *rules, **env)
            assert result.returncode == 0, result.stderr
        server = LiveServer(database, folder / "server.log", ports=ports, **env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def socket_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """The shared server: one exact rule and one subdomain rule."""
    return start_server(ALLOWED, WILDCARD)
