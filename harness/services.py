"""Real service processes for the tests, on free loopback ports, owned by the test run."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from harness.live import free_port

START_TIMEOUT = 20


class Service:
    """One service process of the test run, on ``port``, logging to ``folder``."""

    name = "service"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self, command: list[str], ready: Callable[[], bool]) -> None:
        """Start ``command`` and wait (bounded) until ``ready()``; raise with its output."""
        log = self.folder / f"{self.name}.log"
        with log.open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = log.read_text(errors="replace")
                raise RuntimeError(f"{self.name} did not start:\n{text}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class RedisServer(Service):
    """An unprivileged redis-server in a folder of its own; nothing is saved to disk."""

    name = "redis-server"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        # Other users of the machine may reach loopback ports too.
        self.password = secrets.token_urlsafe(18)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        options = {"bind": "127.0.0.1", "port": str(self.port), "dir": str(self.folder)}
        options |= {"save": "", "appendonly": "no", "protected-mode": "yes"}
        options["requirepass"] = self.password
        command = [
            binary,
            *(part for key, value in options.items() for part in (f"--{key}", value)),
        ]
        client = redis.Redis.from_url(self.url)

        def ready() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        self.launch(command, ready)
        return self


STICKY = "hash $remote_addr consistent;"


class Nginx(Service):
    """nginx serving deploy/nginx.conf in front of ``upstreams``, from a folder of its own."""

    name = "nginx"

    def __init__(
        self, folder: Path, conf: Path, upstreams: list[str], *, sticky: bool = True
    ) -> None:
        super().__init__(folder)
        site = conf.read_text()
        if not sticky:  # round robin, as for WebSocket-only clients
            assert STICKY in site
            site = site.replace(STICKY, "")
        site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        for default, address in zip(("127.0.0.1:8001", "127.0.0.1:8002"), upstreams, strict=True):
            site = site.replace(f"server {default};", f"server {address};")
        (folder / "site.conf").write_text(site)
        temp = folder / "temp"
        temp.mkdir()
        (folder / "nginx.conf").write_text(
            f"daemon off;\n"
            f"pid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  access_log {folder}/access.log;\n"
            f"  client_body_temp_path {temp}/body;\n"
            f"  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n"
            f"  uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n"
            f"  include {folder}/site.conf;\n"
            "}\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        command = [binary, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")]
        self.launch(command, lambda: answers(self.port))
        return self


class PostgresServer(Service):
    """An unprivileged PostgreSQL cluster in a temporary folder, on a loopback port.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the
    ``postgres`` user of Debian's package and its commands run as that user
    (through ``runuser``, which does not pass signals on: ``pg_ctl`` stops it).
    ``stop()`` is a fast shutdown; ``start()`` again reuses the same cluster.
    """

    name = "postgres"
    user = "guardsite"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        # Outside pytest's temporary folders, which only root may enter.
        self.cluster = Path(tempfile.mkdtemp(prefix="guardsite-pg-"))
        self.data = self.cluster / "data"
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.cluster, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self._initialised = False
        # Other users of the machine may reach loopback ports too.
        self.password = secrets.token_urlsafe(18)

    @property
    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.user}"

    def connect(self, dbname: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname or self.user,
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement, on a connection of its own (closed after)."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def start(self) -> PostgresServer:
        if not self._initialised:
            self._initialise()
        options = {"listen_addresses": "127.0.0.1", "port": str(self.port)}
        options |= {"unix_socket_directories": str(self.cluster), "fsync": "off"}
        options |= {"synchronous_commit": "off", "full_page_writes": "off"}
        command = [*self.as_owner, str(BINARIES / "postgres"), "-D", str(self.data)]
        command += [part for key, value in options.items() for part in ("-c", f"{key}={value}")]
        self.launch(command, self._ready)
        self._create_database()
        return self

    def _initialise(self) -> None:
        """initdb with a password for every connection, TCP or Unix socket."""
        password_file = self.cluster / "password"
        password_file.write_text(self.password)
        password_file.chmod(0o600)
        if self.as_owner:
            shutil.chown(password_file, "postgres", "postgres")
        try:
            auth = ["--auth=scram-sha-256", f"--pwfile={password_file}"]
            self._run("initdb", "-D", str(self.data), "-U", self.user, "-E", "UTF8", *auth)
        finally:
            password_file.unlink()
        self._initialised = True

    def stop(self) -> None:
        """A fast shutdown, waited for (a plain SIGTERM would wait for every client to leave)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")
            except RuntimeError:
                if (self.data / "postmaster.pid").exists():
                    raise  # else it was stopping already (a Ctrl-C reaches it too)
        super().stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.cluster, ignore_errors=True)

    def _ready(self) -> bool:
        try:
            self.connect("postgres").close()
        except Exception:
            return False
        return True

    def _create_database(self) -> None:
        admin = self.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.user])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{self.user}"')
        admin.close()

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_owner, str(BINARIES / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed:\n{result.stdout}{result.stderr}")


def postgres_binaries() -> Path | None:
    """The newest PostgreSQL server of Debian's packages, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: p.parent)
    return found[-1].parent if found else None


BINARIES = postgres_binaries() or Path("/usr/lib/postgresql/15/bin")
