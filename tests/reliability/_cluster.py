"""Restarting the local PostgreSQL cluster the tests run against (Debian's pg_ctlcluster)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["LocalCluster", "find_local_cluster"]


@dataclass(frozen=True)
class LocalCluster:
    version: str
    name: str
    dsn: str

    def _ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action],
            check=True,
            timeout=180,
            capture_output=True,
        )

    def reachable(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def wait_reachable(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.reachable():
            if time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL not reachable {timeout} s after the restart")
            time.sleep(0.1)

    def restart(self) -> None:
        """Restart the cluster (fast shutdown: every connection is cut) and wait until it's up."""
        try:
            self._ctl("restart")
        finally:
            self.ensure_running()

    def ensure_running(self) -> None:
        """Leave the cluster running whatever happened."""
        if self.reachable():
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("start")  # may fail when it is already starting: wait for it below
        self.wait_reachable()


def find_local_cluster(dsn: str) -> LocalCluster | None:
    """The Debian cluster serving ``dsn`` on this machine, if it is one we may restart."""
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        return None
    if not os.environ.get("QUEUES_TEST_DSN"):
        return None  # an embedded server: not ours to restart this way
    params = conninfo_to_dict(dsn)
    host = str(params.get("host", "localhost"))
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        return None
    port = str(params.get("port", "5432"))
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == port and Path("/etc/postgresql", fields[0]).exists():
            return LocalCluster(fields[0], fields[1], dsn)
    return None
