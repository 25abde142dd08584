"""``make cluster`` (deploy/cluster.py) for real: it serves through nginx; Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.live import ROOT, wait_until
from harness.services import BINARIES, answers
from tests.clients import try_connect

pytestmark = pytest.mark.live  # starts processes of its own

BANNER_END = "Ctrl-C stops everything."


def test_the_local_cluster_serves_guarded_sockets_until_ctrl_c(tmp_path: Path) -> None:
    if not (BINARIES / "postgres").exists():
        pytest.skip("run make test to install postgresql")
    output = tmp_path / "cluster.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "cluster.py")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
            env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        )
    try:
        assert wait_until(lambda: BANNER_END in output.read_text(), 90), output.read_text()
        banner = output.read_text()
        site = re.search(r"Open\s+(http://localhost:\d+)/", banner)[1]  # type: ignore[index]
        node = re.search(r"directly: (http://127\.0\.0\.1:\d+)/", banner)[1]  # type: ignore[index]
        work = Path(re.search(r"Logs\s+(\S+)/node0\.log", banner)[1])  # type: ignore[index]
        ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", banner)]
        ports.append(int(site.rsplit(":", 1)[1]))
        assert len(ports) == 3 and all(answers(port) for port in ports)  # node, PostgreSQL, nginx
        assert try_connect(site, origin=site)[0].welcome is not None
        assert try_connect(site, origin=node)[0].refusal_reason == "origin-not-allowed"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(60)
    try:
        assert f"Cluster stopped. Its logs are in {work}" in output.read_text()
        kept = sorted(str(path.relative_to(work)) for path in work.rglob("*") if path.is_file())
        assert {"node0.log", "node1.log", "nginx/access.log"} <= set(kept), kept
        assert all(name.endswith(".log") for name in kept), kept  # no database, key or socket
        assert "GET /" in (work / "nginx" / "access.log").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert not any(answers(port) for port in ports)
