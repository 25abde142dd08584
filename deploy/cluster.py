"""``make cluster``: the deployment in miniature, on loopback ports, until Ctrl-C.

Starts a PostgreSQL cluster and a redis-server of its own (in a temporary
folder), migrates, allows the proxy's own origin, starts two runsocket nodes
on the message queue and nginx with deploy/nginx.conf in front of them, and
prints the address. Ctrl-C stops everything and removes the folder but its
logs, which say what happened (a node that would not start, a refused login).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.live import ROOT, LiveServer, manage  # noqa: E402
from harness.services import Nginx, PostgresServer, RedisServer  # noqa: E402


def folder(work: Path, name: str) -> Path:
    path = work / name
    path.mkdir()
    return path


def run(work: Path, stack: contextlib.ExitStack) -> list[LiveServer]:
    redis = RedisServer(folder(work, "redis"))
    stack.callback(redis.stop)
    postgres = PostgresServer(folder(work, "postgres"))
    stack.callback(postgres.remove)
    redis.start()
    postgres.start()
    env = {
        "DJANGO_SETTINGS_MODULE": "guardsite.settings",
        "DATABASE_URL": postgres.url,
        "GUARDSITE_MESSAGE_QUEUE": redis.url,
        "GUARDSITE_STATE_DIR": str(work),
        "WHITELIST_PROXY_COUNT": "1",  # nginx appends the client's address ...
        "WHITELIST_TRUSTED_PROXIES": "127.0.0.1,::1",  # ... and connects from loopback
    }
    unused = work / "unused.sqlite3"  # harness.live names a SQLite file; DATABASE_URL wins
    nodes = [LiveServer(unused, work / f"node{n}.log", **env) for n in range(2)]
    nginx = Nginx(
        folder(work, "nginx"),
        ROOT / "deploy" / "nginx.conf",
        [node.url.removeprefix("http://") for node in nodes],
    )
    site = [f"http://localhost:{nginx.port}", f"http://127.0.0.1:{nginx.port}"]
    for command in (("migrate", "--no-input", "-v0"), ("whitelist", "add", *site)):
        result = manage(unused, *command, **env)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
    for node in nodes:
        stack.callback(node.stop)
        node.start()
    stack.callback(nginx.stop)
    nginx.start()
    print(f"""
Guardsite cluster: two nodes behind nginx, on PostgreSQL and Redis.
  Open   {site[0]}/  (allowed), or a node directly: {nodes[0].url}/ (not allowed yet)
  Admin  DATABASE_URL={postgres.url} {sys.executable} manage.py createsuperuser
         then {site[0]}/admin/
  Logs   {work}/node0.log, node1.log, nginx/, redis/ (kept at exit)
Ctrl-C stops everything.""")
    return nodes


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="guardsite-cluster-"))
    try:
        with contextlib.ExitStack() as stack:
            nodes = run(work, stack)
            # Ctrl-C reaches the whole process group: the nodes stop first.
            while all(node.process and node.process.poll() is None for node in nodes):
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        keep_only_logs(work)
    print(f"\nCluster stopped. Its logs are in {work} (remove it when done).")


def keep_only_logs(work: Path) -> None:
    """Everything but the logs goes: the databases, sockets, keys, temporary files."""
    for path in sorted(work.rglob("*"), reverse=True):  # a folder's contents before it
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):  # removed once empty, so kept if it holds a log
                path.rmdir()
        elif path.suffix != ".log":
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
