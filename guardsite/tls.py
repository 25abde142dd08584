"""TLS for runsocket and gunicorn: the development certificate and the server context.

The development certificate is made with the ``cryptography`` package (no
openssl binary): ECDSA P-256, self-signed, serverAuth only, valid for a short
time, covering ``localhost``, ``127.0.0.1``, ``::1`` and any extra host names.
It lives in a git-ignored state folder and is reused until it expires, is about
to expire, or does not cover a requested host. Nothing here needs Django.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_DAYS = 30
MAX_DAYS = 397  # the CA/Browser Forum limit for server certificates
RENEW_BEFORE = dt.timedelta(days=2)
CERT_NAME = "dev-cert.pem"
KEY_NAME = "dev-key.pem"


class TLSError(Exception):
    """A certificate or key that cannot be served; the message is one clear line."""


@dataclass(frozen=True)
class CertificateInfo:
    """Where a certificate is and what people need to know about it."""

    cert_path: Path
    key_path: Path
    fingerprint: str
    not_after: dt.datetime
    hosts: tuple[str, ...]
    created: bool = False


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint as browsers show it: colon-separated upper-case hex."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host.lower()))
    return entries


def _permitted_subtrees(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Name constraints: the certificate's own hosts, and nothing else, may be certified."""
    subtrees: list[x509.GeneralName] = []
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            subtrees.append(x509.DNSName(host.lower()))
        else:
            subtrees.append(x509.IPAddress(ipaddress.ip_network(address)))
    return subtrees


def is_constrained(certificate: x509.Certificate) -> bool:
    """Whether a certificate limits what its key may certify to named subtrees."""
    try:
        certificate.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return False
    return True


def covered_hosts(certificate: x509.Certificate) -> set[str]:
    """The host names and addresses a certificate's SubjectAltName covers."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    addresses = {str(address) for address in san.get_values_for_type(x509.IPAddress)}
    return names | addresses


def normalise_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Defaults first, then extras; unspecified addresses (0.0.0.0, ::) are skipped."""
    result: list[str] = []
    for host in (*DEFAULT_HOSTS, *hosts):
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            name = host.lower().rstrip(".")
        else:
            if address.is_unspecified:
                continue
            name = str(address)
        if name and name not in result:
            result.append(name)
    return tuple(result)


def generate(
    hosts: Iterable[str], days: int = DEFAULT_DAYS, now: dt.datetime | None = None
) -> tuple[bytes, bytes]:
    """Return a new self-signed certificate and its private key, both as PEM."""
    if not 1 <= days <= MAX_DAYS:
        raise TLSError(f"--days must be from 1 to {MAX_DAYS}, not {days}")
    names = normalise_hosts(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Guardsite development"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    now = now or _utcnow()
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        # CA:TRUE with path length 0 lets clients take this very certificate as
        # their trust anchor (Python's ssl and browsers' "Authorities" refuse a
        # CA:FALSE one). Its key could still sign a leaf for any host, so name
        # constraints limit what it may certify to its own hosts: a certificate
        # for any other name, signed with dev-key.pem, fails verification.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=_permitted_subtrees(names), excluded_subtrees=None
            ),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` set before any byte lands on disk."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _reusable(cert_path: Path, key_path: Path, hosts: tuple[str, ...]) -> x509.Certificate | None:
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if certificate.not_valid_after_utc - RENEW_BEFORE <= _utcnow():
        return None
    if not set(hosts) <= covered_hosts(certificate):
        return None
    if not is_constrained(certificate):
        return None  # made before name constraints: its key could certify any host
    return certificate


def ensure_dev_certificate(
    directory: Path, hosts: Iterable[str] = (), days: int = DEFAULT_DAYS
) -> CertificateInfo:
    """Reuse the development certificate in ``directory`` or make a new one."""
    names = normalise_hosts(hosts)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    certificate = _reusable(cert_path, key_path, names)
    created = certificate is None
    if certificate is None:
        cert_pem, key_pem = generate(names, days)
        _write(key_path, key_pem, 0o600)
        _write(cert_path, cert_pem, 0o644)
        certificate = x509.load_pem_x509_certificate(cert_pem)
    else:
        _keep_private(key_path)
    return CertificateInfo(
        cert_path,
        key_path,
        fingerprint(certificate),
        certificate.not_valid_after_utc,
        tuple(sorted(covered_hosts(certificate))),
        created,
    )


def _keep_private(key_path: Path) -> None:
    """A reused key readable by others (copied, restored from a backup) becomes 0600 again."""
    if stat.S_IMODE(key_path.stat().st_mode) & 0o077:
        try:
            key_path.chmod(0o600)
        except OSError as exc:
            raise TLSError(
                f"the key {key_path} is readable by others and cannot be made private: "
                f"{exc.strerror}"
            ) from None


def key_mode(key_path: Path) -> str:
    """The key file's permission bits, as ls shows them in octal (0600)."""
    return f"{stat.S_IMODE(key_path.stat().st_mode):04o}"


def describe_certificate(cert_path: Path) -> CertificateInfo:
    """Fingerprint and expiry of a given certificate file, for the banner."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise TLSError(f"cannot read the certificate {cert_path}: {exc.strerror}") from None
    except ValueError:
        raise TLSError(f"{cert_path} is not a PEM certificate") from None
    return CertificateInfo(
        cert_path,
        Path(),
        fingerprint(certificate),
        certificate.not_valid_after_utc,
        tuple(sorted(covered_hosts(certificate))),
    )


def server_context(cert: Path, key: Path, chain: Path | None = None) -> ssl.SSLContext:
    """An SSL context for serving: TLS 1.2 at least, the chain appended to the certificate."""
    for label, path in (("certificate", cert), ("key", key), ("chain", chain)):
        if path is not None and not path.exists():
            raise TLSError(f"the {label} file {path} does not exist")
        if path is not None and not path.is_file():
            raise TLSError(f"the {label} path {path} is not a file")
        if path is not None and not os.access(path, os.R_OK):
            raise TLSError(f"the {label} file {path} is not readable")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    describe_certificate(cert)
    try:
        if chain is None:
            context.load_cert_chain(cert, key)
        else:
            with tempfile.NamedTemporaryFile(suffix=".pem") as bundle:
                bundle.write(cert.read_bytes().rstrip(b"\n") + b"\n" + chain.read_bytes())
                bundle.flush()
                context.load_cert_chain(bundle.name, key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TLSError(f"the key {key} does not belong to the certificate {cert}") from None
        raise TLSError(f"cannot load {cert} with {key}: {exc.reason or exc}") from None
    return context
