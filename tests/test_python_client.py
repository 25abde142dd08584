"""The documented python-socketio client recipe, run as written against runsocket over TLS."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.live import LiveServer
from tests.documentation import section

DEMO_ORIGIN = '"https://localhost:5443"'
DEMO_CA = '"var/tls/dev-cert.pem"'
SUPPRESS_ORIGIN = '    websocket_extra_options={"suppress_origin": True},\n'


def recipe() -> str:
    """The first Python block of docs/clients.md's section on Python clients."""
    text = section("clients.md", "## Connecting from Python and other non-browser clients")
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, "the section has no python block"
    return match[1]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("{tls0}", tls_ports=1)


def run(code: str, url: str, origin: str, ca: Path) -> str:
    assert code.count(DEMO_ORIGIN) == 2 and code.count(DEMO_CA) == 1  # URL, ORIGIN and CA
    code = code.replace(DEMO_ORIGIN, repr(url), 1).replace(DEMO_ORIGIN, repr(origin), 1)
    code = code.replace(DEMO_CA, repr(str(ca)))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_recipe_is_welcomed_and_upgrades(server: LiveServer, tls_state: Path) -> None:
    output = run(recipe(), server.tls_url, server.tls_url, ca_of(tls_state))
    assert output == "Okay, you're cool. (websocket)\n"


def test_without_suppress_origin_the_upgrade_is_refused(
    server: LiveServer, tls_state: Path
) -> None:
    code = recipe()
    assert SUPPRESS_ORIGIN in code
    output = run(
        code.replace(SUPPRESS_ORIGIN, ""), server.tls_url, server.tls_url, ca_of(tls_state)
    )
    assert output == "Okay, you're cool. (polling)\n"


def test_the_recipe_says_why_it_was_refused(server: LiveServer, tls_state: Path) -> None:
    output = run(recipe(), server.tls_url, "https://evil.example", ca_of(tls_state))
    assert output == (
        "Refused: {'message': 'Who invited you to this party?', "
        "'data': {'reason': 'origin-not-allowed', 'origin': 'https://evil.example'}}\n"
    )


def ca_of(tls_state: Path) -> Path:
    return tls_state / "tls" / "dev-cert.pem"
