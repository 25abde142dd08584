"""``manage.py gencert``: make the development TLS certificate for another server."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from guardsite.tls import DEFAULT_DAYS, MAX_DAYS, TLSError, ensure_dev_certificate, key_mode


class Command(BaseCommand):
    help = "Make (or reuse) the self-signed development certificate and key."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--host",
            action="append",
            default=[],
            dest="hosts",
            help="Extra host name or address to cover, besides localhost, 127.0.0.1 and ::1.",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"Validity in days, 1 to {MAX_DAYS} (default {DEFAULT_DAYS}).",
        )
        parser.add_argument(
            "--out", type=Path, help="Folder for the files (default: GUARDSITE_STATE_DIR/tls)."
        )
        parser.add_argument(
            "--force", action="store_true", help="Make a new one even if the current one is fine."
        )

    def handle(
        self, *args: Any, hosts: list[str], days: int, out: Path | None, **options: Any
    ) -> None:
        directory = out or Path(settings.GUARDSITE_STATE_DIR) / "tls"
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be from 1 to {MAX_DAYS}, not {days}.")
        try:
            if options["force"]:
                (directory / "dev-cert.pem").unlink(missing_ok=True)
            info = ensure_dev_certificate(directory, hosts, days)
        except (TLSError, OSError) as exc:
            raise CommandError(str(exc)) from None
        made = "Made" if info.created else "Reusing (--force makes a new one)"
        self.stdout.write(f"{made} {info.cert_path}")
        self.stdout.write(f"Key: {info.key_path} (mode {key_mode(info.key_path)})")
        self.stdout.write(f"SHA-256 fingerprint: {info.fingerprint}")
        self.stdout.write(f"Expires: {info.not_after:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(f"Covers: {', '.join(info.hosts)}")
