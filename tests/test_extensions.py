"""Extensions and apps against runsocket: a real Chromium extension, and app origins.

The extension is unpacked into a temporary folder: a page that opens a socket
with the official client (from npm, copied beside it, as an extension must
carry its scripts), and a manifest ``key``, which fixes the extension's id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import BrowserContext, sync_playwright

from harness.commands import command_on
from harness.live import ROOT, LiveServer, wait_until
from tests.clients import try_connect
from tests.test_browser import CHROMIUM, OFFLINE_FLAGS, pytestmark  # noqa: F401 - skip rule

WELCOME = "Okay, you're cool."
REFUSAL = "Who invited you to this party?"
CLIENT = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
OTHER_EXTENSION = "chrome-extension://" + "b" * 32
UUID = "2c127fa4-62c7-7e4f-90e5-472b45eecfdc"
APPS = ["capacitor://localhost", "tauri://localhost"]
PAGE = """<!doctype html><meta charset="utf-8"><title>probe</title>
<script src="socket.io.min.js"></script><script src="page.js"></script>"""
# Resolves with what the server said: the welcome and its transport, or the refusal.
SCRIPT = """
window.connectTo = (url) => new Promise((done) => {
  const socket = io(url, { reconnection: false, timeout: 10000 });
  socket.on("permission.message", (text, details) => {
    const finish = () => { done({ welcome: text, origin: details.origin,
                                  transport: socket.io.engine.transport.name });
                           socket.disconnect(); };
    if (socket.io.engine.transport.name === "websocket") finish();
    else socket.io.engine.once("upgrade", finish);
  });
  socket.on("connect_error", (err) => done({ refusal: err.message, data: err.data }));
});
"""


def extension_id(public_key_der: bytes) -> str:
    """Chromium's id for a key: the first 128 bits of its SHA-256, each hex digit as a-p."""
    digest = hashlib.sha256(public_key_der).hexdigest()[:32]
    return "".join(chr(ord("a") + int(digit, 16)) for digit in digest)


@pytest.fixture(scope="module")
def extension(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An unpacked extension and its id."""
    folder = tmp_path_factory.mktemp("extension")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    manifest = {
        "manifest_version": 3,
        "name": "Guardsite probe",
        "version": "1.0",
        "key": base64.b64encode(der).decode(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "page.html").write_text(PAGE)
    (folder / "page.js").write_text(SCRIPT)
    shutil.copy(CLIENT, folder / "socket.io.min.js")
    return folder, extension_id(der)


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("{url0}", *APPS)


@pytest.fixture(scope="module")
def browser(
    extension: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    """Chromium with the extension loaded (extensions need a persistent profile)."""
    folder, _ = extension
    flags = [flag for flag in OFFLINE_FLAGS if flag != "--disable-extensions"]
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*flags, f"--disable-extensions-except={folder}", f"--load-extension={folder}"],
        )
        yield context
        context.close()


def connect_from_extension(context: BrowserContext, ext_id: str, url: str) -> dict[str, Any]:
    page = context.new_page()
    try:
        page.goto(f"chrome-extension://{ext_id}/page.html")
        assert page.evaluate("location.origin") == f"chrome-extension://{ext_id}"
        return page.evaluate("(url) => connectTo(url)", url)
    finally:
        page.close()


def welcomes(server: LiveServer, origin: str) -> bool:
    """python-socketio's client is welcomed from ``origin`` (the server has that rule)."""
    return try_connect(server.url, origin=origin)[0].welcome_args[:1] == (WELCOME,)


def test_an_extension_is_welcomed_only_with_a_rule_for_its_id(
    server: LiveServer, extension: tuple[Path, str], browser: BrowserContext
) -> None:
    _, ext_id = extension
    origin = f"chrome-extension://{ext_id}"
    refused = {"refusal": REFUSAL, "data": {"reason": "origin-not-allowed", "origin": origin}}
    assert connect_from_extension(browser, ext_id, server.url) == refused

    command_on(server.database, "whitelist", "add", OTHER_EXTENSION)
    assert wait_until(lambda: welcomes(server, OTHER_EXTENSION))
    assert connect_from_extension(browser, ext_id, server.url) == refused

    command_on(server.database, "whitelist", "add", origin)
    assert wait_until(lambda: welcomes(server, origin))
    welcomed = {"welcome": WELCOME, "origin": origin, "transport": "websocket"}
    assert connect_from_extension(browser, ext_id, server.url) == welcomed


@pytest.mark.parametrize("transport", ["polling", "websocket"])
@pytest.mark.parametrize("origin", APPS)
def test_an_app_is_welcomed_by_its_rule(server: LiveServer, origin: str, transport: str) -> None:
    outcome, _ = try_connect(server.url, origin=origin, transport=transport)
    details = {"origin": origin, "rule": origin, "transport": transport}
    assert outcome.welcome_args == (WELCOME, details)


@pytest.mark.parametrize(
    "origin",
    ["ionic://localhost", "capacitor://app.example", "http://localhost", "moz-extension://" + UUID],
)
def test_an_app_without_a_rule_is_refused(server: LiveServer, origin: str) -> None:
    outcome, _ = try_connect(server.url, origin=origin)
    assert outcome.welcome is None
    assert outcome.error == {
        "message": REFUSAL,
        "data": {"reason": "origin-not-allowed", "origin": origin},
    }
