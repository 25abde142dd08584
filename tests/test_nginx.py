"""deploy/nginx.conf for real: two runsocket processes on one Redis behind a real nginx."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio
import websocket

from harness.commands import command_on
from harness.live import ROOT, GunicornServer, LiveServer, migrated_copy, wait_until
from harness.services import Nginx
from tests.admin_session import add_superuser
from tests.clients import try_connect
from tests.conftest import ALLOWED
from tests.gunicorn_releases import gunicorn_path

pytestmark = pytest.mark.live  # every test starts nodes and nginx, some by name at run time

TRANSPORTS = ["polling", "websocket"]
# Each node's per-address connection cap, small: nginx, a trusted proxy, must not meet it.
NODE_CAP = 5


def start_nodes(
    template: Path,
    folder: Path,
    queue: str,
    stack: contextlib.ExitStack,
    server_class: type[LiveServer] = LiveServer,
    **worker: str,
) -> list[LiveServer]:
    """Two started nodes sharing a database and the message queue, stopped with ``stack``.

    runsocket by default; ``GunicornServer`` with ``worker``'s environment for gunicorn.
    """
    database = migrated_copy(template, folder / "db.sqlite3")
    command_on(database, "whitelist", "add", ALLOWED)
    nodes = []
    for number in range(2):
        node = server_class(
            database,
            folder / f"node{number}.log",
            **worker,
            GUARDSITE_MESSAGE_QUEUE=queue,
            # As the README's deployment (and make cluster) sets them: nginx is trusted.
            WHITELIST_TRUSTED_PROXIES="127.0.0.1,::1",
            WHITELIST_PROXY_COUNT="1",
            GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS=str(NODE_CAP),
        )
        stack.callback(node.stop)
        nodes.append(node.start())
    return nodes


def start_nginx(
    folder: Path, nodes: list[LiveServer], stack: contextlib.ExitStack, *, sticky: bool = True
) -> Nginx:
    upstreams = [node.url.removeprefix("http://") for node in nodes]
    nginx = Nginx(folder, ROOT / "deploy" / "nginx.conf", upstreams, sticky=sticky)
    stack.callback(nginx.stop)
    return nginx.start()


@pytest.fixture(scope="module")
def cluster(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[list[LiveServer]]:
    """Two nodes for the module's proxies."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("run make test to install nginx")
    with contextlib.ExitStack() as stack:
        yield start_nodes(migrated_template, tmp_path_factory.mktemp("nginx"), redis_url, stack)


@pytest.fixture(scope="module")
def proxy(cluster: list[LiveServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx's URL with deploy/nginx.conf as it is (sticky), in front of the cluster."""
    with contextlib.ExitStack() as stack:
        yield start_nginx(tmp_path_factory.mktemp("sticky"), cluster, stack).url


@pytest.fixture(scope="module")
def gevent_proxy(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[str]:
    """nginx, sticky, in front of two gunicorn 27 gevent workers on the same queue."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("run make test to install nginx")
    folder = tmp_path_factory.mktemp("nginx-gevent")
    worker = {"GUARDSITE_WORKER": "gevent", **gunicorn_path("current")}
    with contextlib.ExitStack() as stack:
        nodes = start_nodes(migrated_template, folder, redis_url, stack, GunicornServer, **worker)
        yield start_nginx(folder, nodes, stack).url


@pytest.fixture(params=["runsocket", "gevent"])
def any_proxy(request: pytest.FixtureRequest) -> str:
    """nginx in front of runsocket nodes, or of gunicorn's gevent workers."""
    return request.getfixturevalue("proxy" if request.param == "runsocket" else "gevent_proxy")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_allowed_origin_is_welcomed_through_nginx(any_proxy: str, transport: str) -> None:
    proxy = any_proxy
    outcome, client = try_connect(proxy, origin=ALLOWED, transport=transport, keep=True)
    try:
        assert outcome.welcome is not None and outcome.welcome["origin"] == ALLOWED
        assert client.call("whoami", timeout=10)["origin"] == ALLOWED
    finally:
        client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_other_origin_is_refused_through_nginx(any_proxy: str, transport: str) -> None:
    outcome, _ = try_connect(any_proxy, origin="https://evil.test", transport=transport)
    assert outcome.error == {
        "message": "Who invited you to this party?",
        "data": {"reason": "origin-not-allowed", "origin": "https://evil.test"},
    }


def test_long_polling_sessions_stay_on_one_node(any_proxy: str) -> None:
    """Every request of a polling session must reach the node that holds it."""
    outcomes = [try_connect(any_proxy, origin=ALLOWED, transport="polling") for _ in range(5)]
    assert all(outcome.welcome is not None for outcome, _ in outcomes)


def test_a_broadcast_reaches_clients_behind_nginx(any_proxy: str) -> None:
    pairs = [
        try_connect(any_proxy, origin=ALLOWED, namespace="/late", transport=transport, keep=True)
        for transport in TRANSPORTS
    ]
    try:
        (sender, sender_client), (listener, _) = pairs
        assert sender.welcome is not None and listener.welcome is not None
        sender_client.emit("shout", {"n": 2}, namespace="/late")
        assert wait_until(lambda: ("shouted", ({"n": 2},)) in listener.events)
    finally:
        for _, client in pairs:
            client.disconnect()


def test_websocket_only_clients_work_with_round_robin(
    cluster: list[LiveServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No stickiness: each WebSocket is one long request, whichever node takes it."""
    with contextlib.ExitStack() as stack:
        nginx = start_nginx(tmp_path_factory.mktemp("round-robin"), cluster, stack, sticky=False)
        pids = set()
        for _ in range(4):
            outcome, client = try_connect(
                nginx.url, origin=ALLOWED, namespace="/late", transport="websocket", keep=True
            )
            stack.callback(client.disconnect)
            assert outcome.welcome is not None
            pids.add(client.call("pid", namespace="/late", timeout=10))
        assert pids == {node.process.pid for node in cluster}  # both nodes took sockets
        for _ in range(2):
            refused, _ = try_connect(nginx.url, origin="https://evil.test", transport="websocket")
            assert refused.refusal_reason == "origin-not-allowed"


def reconnecting_client(url: str, transport: str) -> tuple[socketio.Client, list[object]]:
    """A client that reconnects by itself, as browsers' socket.io-client does."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: loopback only
    client = socketio.Client(
        http_session=session,
        reconnection_delay=0.2,
        reconnection_delay_max=1,
        websocket_extra_options={"suppress_origin": True},  # else two Origin headers
    )
    welcomes: list[object] = []
    client.on("permission.message", lambda *args: welcomes.append(args), namespace="/late")
    client.connect(
        url,
        headers={"Origin": ALLOWED},
        transports=[transport],
        namespaces=["/late"],
        wait_timeout=15,
    )
    assert wait_until(lambda: len(welcomes) == 1)
    return client, welcomes


def test_clients_of_a_killed_node_reconnect_through_nginx_to_the_other(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> None:
    folder = tmp_path_factory.mktemp("killed")
    with contextlib.ExitStack() as stack:
        nodes = start_nodes(migrated_template, folder, redis_url, stack)
        nginx = start_nginx(folder, nodes, stack)
        pairs = [reconnecting_client(nginx.url, transport) for transport in TRANSPORTS]
        for client, _ in pairs:
            stack.callback(client.disconnect)
        pids = {client.call("pid", namespace="/late", timeout=10) for client, _ in pairs}
        assert len(pids) == 1  # one client address: one node, sticky
        (killed,) = (node for node in nodes if node.process.pid in pids)
        killed.stop(sig=signal.SIGKILL)
        for client, welcomes in pairs:
            # Welcomed again (guarded again) by the node that is left.
            assert wait_until(lambda welcomes=welcomes: len(welcomes) == 2, timeout=30)
            (left,) = (node for node in nodes if node is not killed)
            assert client.call("pid", namespace="/late", timeout=10) == left.process.pid
        refused, _ = try_connect(nginx.url, origin="https://evil.test")
        assert refused.refusal_reason == "origin-not-allowed"


def test_nginx_as_a_trusted_proxy_is_not_held_to_the_per_address_cap(proxy: str) -> None:
    """Every client behind nginx comes from nginx's address: capped, the site would hold
    NODE_CAP sockets in all."""
    url = proxy.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    opened: list[websocket.WebSocket] = []
    try:
        for _ in range(NODE_CAP * 2 + 2):
            connection = websocket.create_connection(url, timeout=10, origin=ALLOWED)
            opened.append(connection)
            assert connection.recv().startswith("0{"), "no Engine.IO open packet"
    finally:
        for connection in opened:
            connection.close()


def test_staff_log_in_to_admin_through_nginx_on_its_port(
    cluster: list[LiveServer], proxy: str
) -> None:
    """As a browser does: the login form's POST carries Origin, which Django's CSRF check
    compares with the Host nginx passed on, port included; the page names that origin."""
    password = secrets.token_urlsafe(16)
    add_superuser(cluster[0], "nginx-staff", password)  # the nodes share one database
    site = proxy.replace("127.0.0.1", "localhost")
    session = requests.Session()
    session.trust_env = False
    assert session.get(f"{site}/admin/login/", timeout=10).status_code == 200
    answer = session.post(
        f"{site}/admin/login/?next=/admin/",
        data={
            "username": "nginx-staff",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Origin": site, "Referer": f"{site}/admin/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert (answer.status_code, answer.headers.get("Location")) == (302, "/admin/"), answer.text
    assert "Log out" in session.get(f"{site}/admin/", timeout=10).text
    page = session.get(f"{site}/", timeout=10).text
    assert f'<dd id="page-origin">{site}</dd>' in page
