"""``make bench``'s scale-out measurements: nodes on PostgreSQL and Redis, behind nginx.

Everything runs on this one 2-core machine: the nodes are not pinned to a core
(two nodes on one core would measure nothing), the load generator stays on
core 1, so the figures show what nginx and a second node cost and carry, not
how a cluster of real machines scales.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import socketio
import websocket

from bench.scenarios import Target, run_connects
from bench.servers import PYTHON, ROOT, cpu_seconds, manage, spawn, stop, wait_for
from harness.live import free_port
from harness.services import Nginx, PostgresServer

ANY_CORE = "0,1"
LATE = "/late"  # tests.live_settings' namespace: "shout" broadcasts "shouted", "pid"


def start_nodes(
    work: Path, env: dict[str, str], count: int, stack: contextlib.ExitStack
) -> list[Target]:
    nodes = []
    for number in range(count):
        port = free_port()
        log = work / f"node{number}-{port}.log"
        command = [PYTHON, "manage.py", "runsocket", f"127.0.0.1:{port}"]
        process = spawn(command, env, log, ANY_CORE)
        stack.callback(stop, process)
        wait_for(log, "Quit with CONTROL-C.", process)
        nodes.append(Target(f"node{number}", f"http://127.0.0.1:{port}", process))
    return nodes


def start_nginx(work: Path, nodes: list[Target], stack: contextlib.ExitStack) -> Target:
    """deploy/nginx.conf without stickiness: the load generator's sockets are WebSocket-only."""
    folder = work / f"nginx-{free_port()}"
    folder.mkdir()
    upstreams = [node.url.removeprefix("http://") for node in nodes]
    nginx = Nginx(folder, ROOT / "deploy" / "nginx.conf", upstreams, sticky=False)
    stack.callback(nginx.stop)
    nginx.start()
    assert nginx.process is not None
    return Target("nginx, two nodes", nginx.url, nginx.process)


def connects_through_nginx(
    work: Path, env: dict[str, str], origin: str, concurrency: int, seconds: float, rounds: int
) -> list[dict]:
    """Allowed connects per second: one node direct, then two nodes behind nginx."""
    rows = []
    for round_number in range(rounds):
        for label, count in (("one node, direct", 1), ("two nodes behind nginx", 2)):
            with contextlib.ExitStack() as stack:
                nodes = start_nodes(work, env, count, stack)
                target = nodes[0] if count == 1 else start_nginx(work, nodes, stack)
                before = sum(cpu_seconds(node.process.pid) for node in nodes)
                row = run_connects(target, origin, concurrency, seconds)
                nodes_cpu = sum(cpu_seconds(node.process.pid) for node in nodes) - before
                rows.append(
                    {
                        "round": round_number,
                        "setup": label,
                        **row,
                        "nodes_cpu": nodes_cpu / row["seconds"],
                    }
                )
    return rows


def _client(url: str, origin: str) -> socketio.Client:
    client = socketio.Client(reconnection=False, websocket_extra_options={"suppress_origin": True})
    client.connect(
        url,
        headers={"Origin": origin},
        transports=["websocket"],
        namespaces=[LATE],
        wait_timeout=10,
    )
    return client


def emit_latency(sender_url: str, receiver_url: str, origin: str, count: int) -> dict:
    """Milliseconds from one client's emit to another client's receipt of the broadcast."""
    sender, receiver = _client(sender_url, origin), _client(receiver_url, origin)
    arrived: dict[int, float] = {}
    got = threading.Condition()

    def on_shouted(data: dict) -> None:
        with got:
            arrived[data["n"]] = time.perf_counter()
            got.notify_all()

    receiver.on("shouted", on_shouted, namespace=LATE)
    samples = []
    try:
        for n in range(count):
            sent = time.perf_counter()
            sender.emit("shout", {"n": n}, namespace=LATE)
            with got:
                if not got.wait_for(lambda n=n: n in arrived, timeout=10):
                    raise RuntimeError(f"broadcast {n} never arrived")
            samples.append((arrived[n] - sent) * 1000)
    finally:
        sender.disconnect()
        receiver.disconnect()
    return {"count": count, "median_ms": statistics.median(samples), "p99_ms": _p99(samples)}


class Held:
    """One raw Socket.IO socket, read in a thread until the server closes it."""

    def __init__(self, url: str, origin: str) -> None:
        endpoint = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(endpoint, origin=origin, timeout=60)
        self.ws.recv()  # Engine.IO open
        self.ws.send("40")
        while not self.ws.recv().startswith("40"):
            pass
        self.closed_at: float | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                message = self.ws.recv()
                if message == "2":
                    self.ws.send("3")
                elif not message or message.startswith(("1", "41")):
                    break
        self.closed_at = time.time()
        self.ws.close()


def revocation(
    node_url: str, env: dict[str, str], stamp: Callable[[], float], origin: str, count: int
) -> dict:
    """Milliseconds from a rule's removal (its stamp) until ``count`` sockets on a node close."""
    held = [Held(node_url, origin) for _ in range(count)]
    manage(env, "whitelist", "remove", origin)
    deadline = time.monotonic() + 30
    for socket in held:
        socket.thread.join(max(0.0, deadline - time.monotonic()))
    closed = [socket.closed_at for socket in held if socket.closed_at is not None]
    if len(closed) != count:
        raise RuntimeError(f"{count - len(closed)} of {count} sockets were not revoked")
    changed = stamp()
    return {
        "count": count,
        "first_ms": (min(closed) - changed) * 1000,
        "last_ms": (max(closed) - changed) * 1000,
    }


def postgres_changed_at(postgres: PostgresServer) -> float:
    """When the last change was stamped, as a Unix time."""
    ((stamp,),) = postgres.query(
        "SELECT extract(epoch FROM changed_at) FROM whitelist_allowlistrevision WHERE id = 1"
    )
    return float(stamp)


def log_every_statement(postgres: PostgresServer) -> Path:
    """Turn on ``log_statement = all``; the server's log is returned."""
    connection = postgres.connect()
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("ALTER SYSTEM SET log_statement = 'all'")
            cursor.execute("SELECT pg_reload_conf()")
    finally:
        connection.close()
    time.sleep(1)  # the reload reaches every backend
    return postgres.folder / "postgres.log"


def count_statements(log: Path, during: Callable[[], object]) -> dict:
    """Statements the cluster's servers ran while ``during()`` ran, per second."""
    start = log.stat().st_size
    started = time.monotonic()
    during()
    seconds = time.monotonic() - started
    time.sleep(0.5)  # the log catches up
    with log.open("rb") as text:
        text.seek(start)
        added = text.read().decode(errors="replace")
    statements = added.count("statement: ")
    polls = added.count('FROM "whitelist_allowlistrevision"')
    return {
        "seconds": seconds,
        "statements_per_second": statements / seconds,
        "revision_polls_per_second": polls / seconds,
    }


def watcher_queries(
    postgres: PostgresServer, nodes: list[Target], proxy: Target, origin: str, seconds: float
) -> dict:
    """The nodes' database statements per second: idle, holding sockets, under connect load."""
    log = log_every_statement(postgres)
    rows = {"idle": count_statements(log, lambda: time.sleep(seconds))}
    held: list[Held] = []
    try:
        held = [Held(node.url, origin) for node in nodes for _ in range(500)]
        rows["1,000 open sockets"] = count_statements(log, lambda: time.sleep(seconds))
    finally:
        for socket in held:
            socket.ws.close()
    load: dict = {}
    rows["connect load"] = count_statements(
        log, lambda: load.update(run_connects(proxy, origin, 32, seconds))
    )
    rows["connect load"]["connects_per_second"] = load["connected"] / load["seconds"]
    return rows


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]
