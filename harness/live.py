"""Start the real ``manage.py runsocket`` on free loopback ports, for integration tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "Quit with CONTROL-C."


# Ports for servers come from below Linux's ephemeral range (32768 and up), so no client
# socket takes one. Each is claimed with a lock file held until the claiming process ends:
# no other worker, and no other test run on the machine, gets it meanwhile.
PORTS_FIRST, PORTS_END = 20000, 32000
PORT_LOCKS = Path(tempfile.gettempdir()) / f"guardsite-ports-{os.getuid()}"
_claimed: dict[int, int] = {}  # port: the descriptor holding its lock
_ports_lock = threading.Lock()


def free_port() -> int:
    """A loopback port free now that no other process of any test run was given.

    Probing port 0 and closing it raced: the kernel could give the same port
    to the next caller, another worker or a client, before the server bound it.
    """
    PORT_LOCKS.mkdir(exist_ok=True)
    size = PORTS_END - PORTS_FIRST
    offset = random.randrange(size)  # concurrent runs rarely try the same ports first
    with _ports_lock:
        for step in range(size):
            port = PORTS_FIRST + (offset + step) % size
            if port not in _claimed and _claim(port) and _bindable(port):
                return port
    raise RuntimeError(f"no free port left in {PORTS_FIRST}-{PORTS_END - 1}")


def _claim(port: int) -> bool:
    """Lock the port's file for this process (released when it ends, however it ends)."""
    descriptor = os.open(PORT_LOCKS / str(port), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return False
    _claimed[port] = descriptor
    return True


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# What coverage.py's subprocess patch puts in the environment to measure each child.
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def server_env(database: Path, *, measured: bool = True, **extra: str) -> dict[str, str]:
    """A server's environment; ``measured=False`` keeps coverage out of it (a server under
    load, whose tracing cost CPU time and proved nothing new)."""
    prefixes = ("DJANGO_", "WHITELIST_", "GUARDSITE_")  # a developer's own never leak in
    if not measured:
        prefixes += COVERAGE_VARIABLES
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        DJANGO_SETTINGS_MODULE="tests.live_settings",
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    env.update(extra)
    return env


def manage(database: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run a management command in another process, against ``database``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=server_env(database, **extra_env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def migrated_copy(template: Path, target: Path) -> Path:
    shutil.copyfile(template, target)
    return target


class LiveServer:
    """One runsocket process; ``url`` is its first address."""

    def __init__(
        self,
        database: Path,
        log: Path,
        ports: int = 1,
        tls_ports: int = 0,
        options: tuple[str, ...] = (),
        measured: bool = True,
        **extra_env: str,
    ) -> None:
        self.database = database
        self.measured = measured
        self.log_path = log
        self.ports = [free_port() for _ in range(ports)]
        self.tls_ports = [free_port() for _ in range(tls_ports)]
        self.options = options
        self.extra_env = extra_env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.urls()[0]

    @property
    def tls_url(self) -> str:
        return f"https://localhost:{self.tls_ports[0]}"

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def addresses(self) -> list[str]:
        plain = [f"127.0.0.1:{port}" for port in self.ports]
        return plain + [f"https://127.0.0.1:{port}" for port in self.tls_ports]

    def log(self, since: int = 0) -> str:
        """Its output, from byte ``since`` on (a ``log_size()`` taken earlier)."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_size(self) -> int:
        """Where its output ends now: for reading only what comes after."""
        return self.log_path.stat().st_size

    def start(self, timeout: float = 30) -> LiveServer:
        command = ["runsocket", *self.addresses(), *self.options]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), *command],
                env=server_env(self.database, measured=self.measured, **self.extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"runsocket exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"runsocket not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        return self

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return manage(self.database, *args, **(self.extra_env | env))

    def stop(self, timeout: float = 15, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise


class GunicornServer(LiveServer):
    """One ``gunicorn -c gunicorn.conf.py`` in place of runsocket: the worker comes from
    ``GUARDSITE_WORKER`` in its environment (and gunicorn 27 from ``PYTHONPATH``)."""

    def start(self, timeout: float = 60) -> GunicornServer:
        env = server_env(self.database, GUARDSITE_BIND=self.addresses()[0], **self.extra_env)
        self.process = start_gunicorn(env, self.log_path)
        try:
            wait_for_gunicorn(self.url, self.process, self.log_path)
        except RuntimeError:
            self.stop()
            raise
        return self


@contextlib.contextmanager
def running(servers: list[LiveServer]) -> Iterator[list[LiveServer]]:
    """Start every server; stop every one that started when the block ends."""
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)
            server.start()
        yield servers


def start_gunicorn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``gunicorn -c gunicorn.conf.py`` with ``env``, its output in ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for_gunicorn(
    url: str, process: subprocess.Popen[bytes], log: Path, ca: Path | None = None
) -> None:
    """Ready when a worker answers a page (the master listens before that); ``ca`` for https."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        try:  # the server writes its development certificate as it starts
            context = ssl.create_default_context(cafile=str(ca)) if ca else None
            opener = urllib.request.build_opener(  # loopback only: no proxy from the environment
                urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
            )
            opener.open(url + "/", timeout=5).close()
            return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer:\n{log.read_text()}")


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; never asserts a time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
