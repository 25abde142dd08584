"""What an open socket costs gunicorn's gthread worker, in operating-system threads.

python-socketio's threading mode gives every Engine.IO session a thread of its
own for the ping timer, and a WebSocket (or a long-poll waiting for data) holds
one of the worker's request threads. This opens sockets one kind at a time
against ``gunicorn -k gthread`` on a loopback port and counts the worker's
threads (``/proc/PID/task``) and whether a page still answers. The gthread
figures in docs/deployment.md come from here::

    .venv/bin/python bench/gthread_threads.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import requests
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.live import (  # noqa: E402
    free_port,
    manage,
    server_env,
    start_gunicorn,
    wait_for_gunicorn,
)

ORIGIN = "http://localhost:8000"
THREADS = 8  # the worker's request threads (GUARDSITE_THREADS)
SOCKETS = 6  # of each kind; below THREADS so that every socket gets in
PAGE_TIMEOUT = 5.0


def worker_pid(master: int) -> int:
    """gunicorn's only worker: the master's child."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def page_answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(url + "/", timeout=PAGE_TIMEOUT).close()
    except OSError:
        return False
    return True


def open_sockets(url: str, transport: str, count: int) -> list[socketio.Client]:
    clients = []
    for _ in range(count):
        session = requests.Session()
        session.trust_env = False
        client = socketio.Client(  # one Origin header, not two (websocket-client adds its own)
            reconnection=False,
            http_session=session,
            websocket_extra_options={"suppress_origin": True},
        )
        client.connect(url, headers={"Origin": ORIGIN}, transports=[transport], wait_timeout=10)
        clients.append(client)
    return clients


def settle(pid: int, seconds: float = 2.0) -> int:
    """The worker's thread count once the last connect's threads have started."""
    time.sleep(seconds)
    return thread_count(pid)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "db.sqlite3"
        manage(database, "migrate", "--no-input", "-v0")
        manage(database, "whitelist", "add", ORIGIN)
        port = free_port()
        env = server_env(
            database,
            GUARDSITE_WORKER="gthread",
            GUARDSITE_THREADS=str(THREADS),
            GUARDSITE_BIND=f"127.0.0.1:{port}",
            GUARDSITE_STATE_DIR=folder,
        )
        url = f"http://127.0.0.1:{port}"
        log = Path(folder) / "gunicorn.log"
        process = start_gunicorn(env, log)
        try:
            wait_for_gunicorn(url, process, log)
            pid = worker_pid(process.pid)
            idle = settle(pid)
            print(f"gthread worker, --threads {THREADS}: {idle} threads with no socket open")
            for transport in ("polling", "websocket"):
                clients = open_sockets(url, transport, SOCKETS)
                busy = settle(pid)
                per_socket = (busy - idle) / SOCKETS
                print(
                    f"{SOCKETS} {transport} sockets: {busy} threads "
                    f"(+{per_socket:.1f} per socket); a page answers: {page_answers(url)}"
                )
                for client in clients:
                    client.disconnect()
                idle = settle(pid, 5.0)
                print(f"  after they close: {idle} threads")
            clients = open_sockets(url, "websocket", THREADS)
            print(
                f"{THREADS} websocket sockets (= --threads): {thread_count(pid)} threads; "
                f"a page answers within {PAGE_TIMEOUT:.0f} s: {page_answers(url)}"
            )
            for client in clients:
                client.disconnect()
        finally:
            process.terminate()
            process.wait(15)


if __name__ == "__main__":
    main()
