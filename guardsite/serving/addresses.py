"""The addresses runsocket listens on: parsed from the command line, bound before serving."""

from __future__ import annotations

import ipaddress
import re
import resource
import socket
from collections.abc import Sequence
from dataclasses import dataclass

_ADDRPORT = re.compile(
    r"(?:(?P<scheme>https?)://)?"
    r"(?:(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]/]+)):)?(?P<port>\d{1,5})/?"
)


class AddressError(ValueError):
    """An ADDRPORT argument that cannot be served."""


@dataclass(frozen=True)
class Endpoint:
    """One address to listen on."""

    host: str
    port: int
    tls: bool = False

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def url(self) -> str:
        """The URL people should open; loopback addresses are shown as localhost."""
        scheme = "https" if self.tls else "http"
        host = self.host
        try:
            if ipaddress.ip_address(host).is_loopback:
                host = "localhost"
        except ValueError:
            pass
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}/"


def parse_addrport(text: str, default_host: str = "127.0.0.1", tls: bool = False) -> Endpoint:
    """Parse ``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT``, optionally after ``https://``."""
    match = _ADDRPORT.fullmatch(text.strip())
    if not match:
        raise AddressError(f"{text!r} is not [https://]PORT, HOST:PORT or [IPV6]:PORT")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise AddressError(f"{text!r}: the port must be from 1 to 65535")
    if match["ipv6"]:
        try:
            host = ipaddress.IPv6Address(match["ipv6"]).compressed
        except ValueError:
            raise AddressError(f"{text!r}: {match['ipv6']!r} is not an IPv6 address") from None
    else:
        host = match["host"] or default_host
    return Endpoint(host, port, tls or match["scheme"] == "https")


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft limit on open files towards ``wanted`` (each socket is one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def listen(endpoints: Sequence[Endpoint], backlog: int) -> list[socket.socket]:
    """Bind every endpoint before serving any, so a busy port fails at once.

    The sockets are the green library's (``socket`` is monkey-patched by the
    time runsocket runs). Accepted sockets send small frames at once
    (TCP_NODELAY); TLS is each server's business, handshake included.
    """
    sockets: list[socket.socket] = []
    try:
        for endpoint in endpoints:
            try:
                sockets.append(_bind(endpoint, backlog))
            except OSError as exc:
                where = f"{endpoint.host}:{endpoint.port}"
                raise AddressError(f"cannot listen on {where}: {exc.strerror}") from None
            # Socket.IO writes many small frames back to back; with Nagle's algorithm
            # each can wait for the peer's delayed ACK (~40 ms). Accepted sockets
            # inherit this option from the listener.
            sockets[-1].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except AddressError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind(endpoint: Endpoint, backlog: int) -> socket.socket:
    """A listening socket, as eventlet.listen makes one: the address reusable at once
    after a restart; an IPv6 wildcard takes IPv4 too where the system's default does."""
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((endpoint.host, endpoint.port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
