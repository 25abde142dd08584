"""The seed demo in a real Chromium (Debian's), driven by Playwright, as a person sees it.

Screenshots of each step go to tests/artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from harness.commands import command_on, on_server_database
from harness.live import ROOT, LiveServer, wait_until
from tests.admin_session import add_superuser
from tests.clients import try_connect, welcomed

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
WELCOME = "Okay, you're cool."
REFUSAL = "Who invited you to this party?"
# Keep Chromium off the network: this machine has none, and tests must not need it.
OFFLINE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]

# `make test` installs Chromium; only outside CI may a missing browser skip these.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"), reason="run make test to install chromium"
)


def spki_hash(certificate: Path) -> str:
    """The certificate's public key hash, for --ignore-certificate-errors-spki-list."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def staff_password() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def demo(start_server: Callable[..., LiveServer], staff_password: str) -> LiveServer:
    """The seed demo: two plain ports (the first allowed) and one TLS port (allowed)."""
    server = start_server("{url0}", "{tls0}", ports=2, tls_ports=1)
    add_superuser(server, "staff", staff_password)
    return server


@pytest.fixture(scope="module")
def browser(demo: LiveServer, tls_state: Path) -> Iterator[Browser]:
    trusted = spki_hash(tls_state / "tls" / "dev-cert.pem")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*OFFLINE_FLAGS, f"--ignore-certificate-errors-spki-list={trusted}"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def page_url(server: LiveServer, index: int) -> str:
    return f"http://localhost:{server.ports[index]}/"


def test_allowed_page_shows_the_welcome(demo: LiveServer, page: Page) -> None:
    page.goto(page_url(demo, 0))
    expect(page.locator("h1")).to_have_text(WELCOME, timeout=15_000)
    expect(page.locator("#seen-origin")).to_have_text(f"http://localhost:{demo.ports[0]}")
    expect(page.locator("#protocol")).to_have_text("ws://")
    # Sent right after the welcome, on the browser's first transport, and said so.
    expect(page.locator("#hello")).to_have_text(
        "This is a message from the server. It was sent by long-polling over http://, "
        "before any upgrade to ws://"
    )
    shot(page, "1-allowed-5000")


def test_other_port_shows_the_refusal_and_what_to_do(demo: LiveServer, page: Page) -> None:
    page.goto(page_url(demo, 1))
    expect(page.locator("h1")).to_have_text(REFUSAL, timeout=15_000)
    expect(page.locator("#reason")).to_have_text("origin-not-allowed")
    expect(page.locator("#next-step")).to_be_visible()
    filled_in = f"?pattern=http%3A%2F%2Flocalhost%3A{demo.ports[1]}"  # the add form, filled in
    expect(page.locator("#next-step a")).to_have_attribute(
        "href", "/admin/whitelist/allowedorigin/add/" + filled_in
    )
    shot(page, "2-refused-5001")


def test_denied_site_reads_the_refusal_over_cross_origin_polling(
    demo: LiveServer, page: Page
) -> None:
    page.goto(page_url(demo, 1))  # a refused origin, talking to the other port
    message = page.evaluate(
        """(url) => new Promise((done) => {
            const socket = io(url, { transports: ["polling"], reconnection: false });
            socket.on("connect_error", (err) => done(err.message + " / " + err.data.reason));
            socket.on("permission.message", () => done("welcomed"));
        })""",
        page_url(demo, 0),
    )
    assert message == f"{REFUSAL} / origin-not-allowed"


def test_allowed_site_is_welcomed_over_cross_origin_polling(demo: LiveServer, page: Page) -> None:
    page.goto(page_url(demo, 0))  # the allowed origin, talking to the other port
    message = page.evaluate(
        """(url) => new Promise((done) => {
            const socket = io(url, { transports: ["polling"], reconnection: false,
                                     withCredentials: true });
            socket.on("connect_error", (err) => done("refused: " + err.message));
            socket.on("permission.message", (message) => done(message));
        })""",
        page_url(demo, 1),
    )
    assert message == WELCOME


def test_the_recipes_own_client_code_shows_the_welcome(demo: LiveServer, page: Page) -> None:
    """The cookbook recipe writes the event's data straight into the page."""
    page.goto(page_url(demo, 0))
    page.evaluate(
        """() => {
            const h1 = document.createElement("h1");
            h1.id = "recipe";
            document.body.append(h1);
            const socket = io();
            socket.on('permission.message', data => h1.innerHTML = data)
        }"""
    )
    expect(page.locator("#recipe")).to_have_text(WELCOME, timeout=15_000)


def test_staff_allows_the_other_port_in_admin(
    demo: LiveServer, page: Page, staff_password: str
) -> None:
    other = f"http://localhost:{demo.ports[1]}"
    page.goto(page_url(demo, 0) + "admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", staff_password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible(timeout=15_000)
    page.goto(page_url(demo, 0) + "admin/whitelist/allowedorigin/add/")
    page.fill("#id_pattern", other)
    page.fill("#id_note", "allowed by a browser test")
    shot(page, "3-admin-add")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully", timeout=15_000)
    shot(page, "4-admin-added")

    page.goto(other + "/")
    expect(page.locator("h1")).to_have_text(WELCOME, timeout=15_000)
    shot(page, "5-allowed-5001-after-admin")


def test_revoking_the_rule_updates_the_open_page(
    demo: LiveServer, browser: Browser, page: Page
) -> None:
    pattern = f"http://localhost:{demo.ports[1]}"
    command_on(demo.database, "whitelist", "add", pattern)
    assert wait_until(lambda: welcomed(demo.url, pattern))  # the page connects just once
    page.goto(page_url(demo, 1))
    expect(page.locator("h1")).to_have_text(WELCOME, timeout=15_000)
    command_on(demo.database, "whitelist", "remove", pattern)
    expect(page.locator("h1")).to_have_text(REFUSAL, timeout=15_000)
    expect(page.locator("#reason")).to_contain_text("permission revoked")
    shot(page, "6-revoked-live")


def test_https_page_shows_the_wss_message(demo: LiveServer, page: Page) -> None:
    page.goto(f"https://localhost:{demo.tls_ports[0]}/")
    expect(page.locator("h1")).to_have_text(WELCOME, timeout=15_000)
    expect(page.locator("#hello")).to_have_text(
        "This is a message from the server. It was sent by long-polling over https://, "
        "before any upgrade to wss://"
    )
    expect(page.locator("#protocol")).to_have_text("wss://")
    shot(page, "7-https-wss")


def test_an_untrusted_certificate_is_one_line_in_the_log(
    demo: LiveServer, browser: Browser
) -> None:
    """What a newcomer does first: open the TLS page before trusting the certificate."""
    distrusting = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True, args=OFFLINE_FLAGS
    )
    try:
        page = distrusting.new_page()
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(f"https://localhost:{demo.tls_ports[0]}/")
    finally:
        distrusting.close()
    assert wait_until(lambda: "TLS handshake from 127.0.0.1 failed" in demo.log())


def disable_the_shop_rule() -> None:
    from whitelist.models import AllowedOrigin

    AllowedOrigin.objects.filter(pattern="https://*.shop.example").update(enabled=False)


def log_in(page: Page, server: LiveServer, password: str) -> None:
    page.goto(page_url(server, 0) + "admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible(timeout=15_000)


def test_admin_lists_fit_1280_pixels_and_paint_no_state_red(
    demo: LiveServer, browser: Browser, staff_password: str
) -> None:
    """At 1280 px neither the rules nor the refusal log scrolls sideways, and a state that is
    no fault (a disabled rule, a refusal that was not report-only) is not a red cross."""
    partner = "https://a-partner-with-a-long-name.example.com"
    command_on(demo.database, "whitelist", "add", "https://bücher.example", "--note", "books")
    command_on(demo.database, "whitelist", "add", "https://*.shop.example", "--namespaces", "/chat")
    on_server_database(demo.database, disable_the_shop_rule)
    for origin in (partner, "http://localhost:5999"):
        try_connect(demo.url, origin=origin)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    found = []  # (page, widths, red crosses)
    try:
        log_in(page, demo, staff_password)
        for path, name in [
            ("admin/whitelist/allowedorigin/", "8-admin-rules-1280"),
            ("admin/whitelist/refusedconnect/", "9-admin-refusals-1280"),
        ]:
            page.goto(page_url(demo, 0) + path)
            if "refused" in path:
                expect(page.locator("#result_list")).to_contain_text(partner, timeout=15_000)
            shot(page, name)
            # The page, and the list's own box (admin scrolls a wide table inside it).
            widths = page.evaluate(
                """() => [document.documentElement.scrollWidth,
                          document.querySelector("#changelist .results").scrollWidth,
                          document.querySelector("#changelist .results").clientWidth]"""
            )
            reds = page.locator("#result_list img[src*='icon-no']").count()
            found.append((path, widths, reds))
    finally:
        context.close()
    assert found == [(path, [1280, box, box], 0) for path, (_, _, box), _ in found]


def test_the_demo_session_logged_no_traceback(demo: LiveServer) -> None:
    """Runs last: every page above (allowed, refused, admin, TLS trusted and not) was quiet."""
    log = demo.log()
    for noise in ("Traceback", "Removing descriptor", "Not Found: /favicon.ico", "Session is"):
        assert noise not in log, log
