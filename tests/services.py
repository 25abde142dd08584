"""Real service processes for the tests, on free loopback ports, owned by the test run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.live import free_port

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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        options = {"bind": "127.0.0.1", "port": str(self.port), "dir": str(self.folder)}
        options |= {"save": "", "appendonly": "no", "protected-mode": "yes"}
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


class Nginx(Service):
    """nginx serving deploy/nginx.conf in front of ``upstreams``, from a folder of its own."""

    name = "nginx"

    def __init__(self, folder: Path, conf: Path, upstreams: list[str]) -> None:
        super().__init__(folder)
        site = conf.read_text()
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
