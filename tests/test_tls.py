"""TLS: the development certificate, the served chain, wss:// and clean failures."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command
from django.core.management.base import CommandError

from guardsite.tls import (
    CERT_NAME,
    KEY_NAME,
    TLSError,
    ensure_dev_certificate,
    generate,
    is_constrained,
    server_context,
)
from harness.commands import command_on
from harness.live import (
    LiveServer,
    free_port,
    manage,
    migrated_copy,
    server_env,
    start_gunicorn,
    wait_for_gunicorn,
)
from tests.clients import try_connect
from tests.conftest import ALLOWED, TLS_ALLOWED


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_dev_certificate_is_p256_with_san_and_server_auth(tmp_path: Path) -> None:
    info = ensure_dev_certificate(tmp_path, ["dev.test", "10.1.2.3"])
    certificate = load(info.cert_path)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "dev.test"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.1.2.3",
    }
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=30, minutes=5)
    assert info.created


def test_private_key_file_is_owner_only(tmp_path: Path) -> None:
    info = ensure_dev_certificate(tmp_path)
    assert info.key_path.stat().st_mode & 0o777 == 0o600


def test_dev_certificate_is_reused(tmp_path: Path) -> None:
    first = ensure_dev_certificate(tmp_path)
    second = ensure_dev_certificate(tmp_path)
    assert not second.created
    assert second.fingerprint == first.fingerprint


def test_expired_certificate_is_replaced(tmp_path: Path) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    cert_pem, key_pem = generate(["localhost"], days=30, now=long_ago)
    (tmp_path / CERT_NAME).write_bytes(cert_pem)
    (tmp_path / KEY_NAME).write_bytes(key_pem)
    info = ensure_dev_certificate(tmp_path)
    assert info.created
    assert info.not_after > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)


def test_certificate_about_to_expire_is_replaced(tmp_path: Path) -> None:
    almost = dt.datetime.now(dt.UTC) - dt.timedelta(days=29)
    cert_pem, key_pem = generate(["localhost"], days=30, now=almost)
    (tmp_path / CERT_NAME).write_bytes(cert_pem)
    (tmp_path / KEY_NAME).write_bytes(key_pem)
    assert ensure_dev_certificate(tmp_path).created


def test_certificate_not_covering_a_host_is_replaced(tmp_path: Path) -> None:
    first = ensure_dev_certificate(tmp_path)
    second = ensure_dev_certificate(tmp_path, ["other.test"])
    assert second.created
    assert second.fingerprint != first.fingerprint
    assert "other.test" in second.hosts


@pytest.mark.parametrize("days", [0, 398])
def test_validity_is_bounded(days: int) -> None:
    with pytest.raises(TLSError, match="from 1 to 397"):
        generate(["localhost"], days=days)


def test_context_refuses_below_tls_1_2(tmp_path: Path) -> None:
    info = ensure_dev_certificate(tmp_path)
    assert server_context(info.cert_path, info.key_path).minimum_version == ssl.TLSVersion.TLSv1_2


# --- the real server -------------------------------------------------------------------


def tls_port(server: LiveServer) -> int:
    return server.tls_ports[0]


def test_served_chain_and_host_name_verify_against_the_dev_certificate(
    socket_server: LiveServer, dev_ca: Path
) -> None:
    context = ssl.create_default_context(cafile=str(dev_ca))
    with (
        socket.create_connection(("127.0.0.1", tls_port(socket_server)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert served == load(dev_ca)


def test_wrong_host_name_fails_verification(socket_server: LiveServer, dev_ca: Path) -> None:
    context = ssl.create_default_context(cafile=str(dev_ca))
    with (
        socket.create_connection(("127.0.0.1", tls_port(socket_server)), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="not-covered.test")


def test_tls_1_1_client_is_refused(socket_server: LiveServer) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    with warnings.catch_warnings():  # an obsolete client, on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection(("127.0.0.1", tls_port(socket_server)), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        context.wrap_socket(raw, server_hostname="localhost")
    assert "PROTOCOL_VERSION" in str(refused.value) or "UNSUPPORTED_PROTOCOL" in str(refused.value)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_wss_client_is_told_wss(socket_server: LiveServer, dev_ca: Path, transport: str) -> None:
    outcome, _ = try_connect(
        socket_server.tls_url,
        origin=TLS_ALLOWED.replace("*", "8443"),
        transport=transport,
        ca=dev_ca,
    )
    assert outcome.welcome is not None
    sent = {
        "websocket": "using the wss:// protocol",
        "polling": "by long-polling over https://, before any upgrade to wss://",
    }
    assert outcome.hello == {
        "message": f"This is a message from the server. It was sent {sent[transport]}",
        "protocol": "wss://",
        "secure": True,
    }


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_ws_client_is_told_ws(socket_server: LiveServer, transport: str) -> None:
    outcome, _ = try_connect(socket_server.url, origin=ALLOWED, transport=transport)
    assert outcome.hello is not None
    assert outcome.hello["protocol"] == "ws://"


def test_forwarded_proto_is_ignored_unless_trusted(socket_server: LiveServer) -> None:
    outcome, _ = try_connect(
        socket_server.url, origin=ALLOWED, extra_headers={"X-Forwarded-Proto": "https"}
    )
    assert outcome.hello is not None
    assert outcome.hello["protocol"] == "ws://"


def test_rules_stay_scheme_exact_over_tls(socket_server: LiveServer, dev_ca: Path) -> None:
    outcome, _ = try_connect(
        socket_server.tls_url, origin=ALLOWED.replace("http", "https"), ca=dev_ca
    )
    assert outcome.refusal_reason == "origin-not-allowed"


@pytest.fixture(scope="module")
def secure_only(start_server: Callable[..., LiveServer]) -> LiveServer:
    """Insecure connections refused; X-Forwarded-Proto trusted (this server's proxy)."""
    return start_server(
        ALLOWED,
        TLS_ALLOWED,
        tls_ports=1,
        WHITELIST_REQUIRE_SECURE="1",
        DJANGO_TRUST_X_FORWARDED_PROTO="1",
    )


def test_insecure_connections_can_be_refused(secure_only: LiveServer) -> None:
    outcome, _ = try_connect(secure_only.url, origin=ALLOWED)
    assert outcome.error == {
        "message": "Who invited you to this party?",
        "data": {"reason": "insecure-transport", "origin": None},
    }


def test_secure_connections_pass_when_insecure_are_refused(
    secure_only: LiveServer, tls_state: Path
) -> None:
    outcome, _ = try_connect(
        secure_only.tls_url,
        origin=f"https://localhost:{secure_only.tls_ports[0]}",
        ca=tls_state / "tls" / "dev-cert.pem",
    )
    assert outcome.hello is not None
    assert outcome.hello["protocol"] == "wss://"


def test_trusted_proxy_header_counts_as_secure(secure_only: LiveServer) -> None:
    plain, _ = try_connect(secure_only.url, origin=ALLOWED)
    proxied, _ = try_connect(
        secure_only.url, origin=ALLOWED, extra_headers={"X-Forwarded-Proto": "https"}
    )
    assert plain.refusal_reason == "insecure-transport"
    assert proxied.hello is not None
    assert proxied.hello["protocol"] == "wss://"


def test_given_certificate_and_key_are_served_as_given(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    given = ensure_dev_certificate(tmp_path / "given", ["given.test"])
    server = start_server(
        tls_ports=1, options=("--cert", str(given.cert_path), "--key", str(given.key_path))
    )
    served = ssl.get_server_certificate(("127.0.0.1", server.tls_ports[0]), timeout=10)
    assert x509.load_pem_x509_certificate(served.encode()) == load(given.cert_path)
    assert given.fingerprint in server.log()
    assert "PRIVATE KEY" not in server.log()


def runsocket(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return manage(database, "runsocket", f"https://127.0.0.1:{free_port()}", *args)


@pytest.fixture
def certificate_files(tmp_path: Path) -> Path:
    """A folder of good, mismatched, missing and garbage certificate files."""
    mine = ensure_dev_certificate(tmp_path / "mine")
    other = ensure_dev_certificate(tmp_path / "other")
    (tmp_path / "cert.pem").write_bytes(mine.cert_path.read_bytes())
    (tmp_path / "key.pem").write_bytes(mine.key_path.read_bytes())
    (tmp_path / "other-key.pem").write_bytes(other.key_path.read_bytes())
    (tmp_path / "garbage.pem").write_text("hello")
    (tmp_path / "folder").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("missing.pem", "key.pem"), "certificate file {dir}/missing.pem does not exist"),
        (("cert.pem", "missing.pem"), "key file {dir}/missing.pem does not exist"),
        (("cert.pem", "other-key.pem"), "does not belong to the certificate"),
        (("garbage.pem", "key.pem"), "{dir}/garbage.pem is not a PEM certificate"),
        (("folder", "key.pem"), "certificate path {dir}/folder is not a file"),
    ],
)
def test_bad_certificate_files_are_named(
    certificate_files: Path, files: tuple[str, str], message: str
) -> None:
    cert, key = (certificate_files / name for name in files)
    with pytest.raises(TLSError) as refused:
        server_context(cert, key)
    assert message.format(dir=certificate_files) in str(refused.value)


def test_bad_certificate_files_stop_runsocket_with_one_line(
    migrated_template: Path, certificate_files: Path
) -> None:
    cert, key = certificate_files / "cert.pem", certificate_files / "other-key.pem"
    result = runsocket(migrated_template, "--cert", str(cert), "--key", str(key))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("CommandError: ")
    assert "does not belong to the certificate" in line


def test_cert_without_key_is_refused(migrated_template: Path, tmp_path: Path) -> None:
    result = runsocket(migrated_template, "--cert", str(tmp_path / "cert.pem"))
    assert result.returncode == 1
    assert "--cert and --key go together" in result.stderr


def gencert(*args: str) -> str:
    """``manage.py gencert`` in this process: it serves nothing and reads no database."""
    out = io.StringIO()
    call_command("gencert", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_gencert_makes_and_reuses(tmp_path: Path) -> None:
    made = gencert("--host", "box.test", "--out", str(tmp_path))
    again = gencert("--out", str(tmp_path))
    with pytest.raises(CommandError, match="--days must be from 1 to 397"):
        gencert("--days", "398", "--out", str(tmp_path))
    assert made.startswith(f"Made {tmp_path}/dev-cert.pem")
    assert "box.test" in made
    assert again.startswith("Reusing")
    assert "PRIVATE KEY" not in made
    assert (tmp_path / "dev-key.pem").stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def gunicorn(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    database = migrated_copy(migrated_template, tmp_path / "db.sqlite3")  # its own rules
    port = free_port()
    env = server_env(
        database,
        GUARDSITE_TLS="1",
        GUARDSITE_BIND=f"127.0.0.1:{port}",
        GUARDSITE_STATE_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="guardsite.settings",
    )
    command_on(database, "whitelist", "add", f"https://localhost:{port}")
    log = tmp_path / "gunicorn.log"
    process = start_gunicorn(env, log)
    url, ca = f"https://localhost:{port}", tmp_path / "tls" / "dev-cert.pem"
    try:
        wait_for_gunicorn(url, process, log, ca)
        yield url, ca
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_gunicorn_serves_wss_with_the_eventlet_worker(
    gunicorn: tuple[str, Path], transport: str
) -> None:
    url, ca = gunicorn
    outcome, _ = try_connect(url, origin=url, transport=transport, ca=ca)
    assert outcome.welcome is not None
    assert outcome.hello is not None
    assert outcome.hello["protocol"] == "wss://"


def test_gencert_makes_a_reused_key_private_again(tmp_path: Path) -> None:
    """A key copied or restored as 0644 was reported as 'mode 0600' and left readable."""
    gencert("--out", str(tmp_path))
    key = tmp_path / "dev-key.pem"
    key.chmod(0o644)
    again = gencert("--out", str(tmp_path))
    assert again.startswith("Reusing")
    assert f"Key: {key} (mode 0600)" in again
    assert key.stat().st_mode & 0o777 == 0o600


def pem_pair(
    certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, stem: Path
) -> tuple[Path, Path]:
    cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def signed_certificate(
    host: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: Any
) -> x509.Certificate:
    """A one-day certificate for ``host`` (self-signed when ``issuer`` is None)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return builder.sign(signer, hashes.SHA256())


def forged_leaf(ca_cert: Path, ca_key: Path, host: str, folder: Path) -> tuple[Path, Path]:
    """A server certificate for ``host`` signed with the development key."""
    issuer = x509.load_pem_x509_certificate(ca_cert.read_bytes()).subject
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    return pem_pair(signed_certificate(host, key, issuer, signer), key, folder / host)


def handshake(server_cert: Path, server_key: Path, trusted: Path, host: str) -> None:
    """A TLS handshake over a socket pair; raises what the client's verification raises."""
    server_side, client_side = socket.socketpair()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert, server_key)

    def serve() -> None:
        with contextlib.suppress(OSError):
            context.wrap_socket(server_side, server_side=True).close()

    served = threading.Thread(target=serve, daemon=True)
    served.start()
    try:
        client = ssl.create_default_context(cafile=str(trusted))
        client.wrap_socket(client_side, server_hostname=host).close()
    finally:
        client_side.close()
        served.join(10)
        server_side.close()


def test_the_development_key_cannot_certify_other_hosts(tmp_path: Path) -> None:
    """Trusting the development certificate must not let its key impersonate any site."""
    info = ensure_dev_certificate(tmp_path / "tls", ["localhost"])
    own, own_key = forged_leaf(info.cert_path, info.key_path, "app.localhost", tmp_path)
    handshake(own, own_key, info.cert_path, "app.localhost")  # within its names: verifies
    other, other_key = forged_leaf(info.cert_path, info.key_path, "accounts.google.com", tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
        handshake(other, other_key, info.cert_path, "accounts.google.com")


def test_an_unconstrained_development_certificate_is_replaced(tmp_path: Path) -> None:
    """One made before name constraints (its key could certify any host) is not reused."""
    folder = tmp_path / "tls"
    folder.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    pem_pair(signed_certificate("localhost", key, None, key), key, folder / "dev-cert")
    (folder / "dev-cert.key").rename(folder / "dev-key.pem")
    replaced = ensure_dev_certificate(folder, ["localhost"])
    assert replaced.created
    assert is_constrained(x509.load_pem_x509_certificate(replaced.cert_path.read_bytes()))
