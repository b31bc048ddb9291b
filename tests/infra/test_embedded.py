"""The embedded PostgreSQL: starts, serves, stops, and never outlives its owner."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from typed_queues.runtime.embedded import EmbeddedPostgres, EmbeddedPostgresError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux only (prctl, /proc)")

_OWNER_SCRIPT = """
import sys, time
from typed_queues.runtime.embedded import EmbeddedPostgres
server = EmbeddedPostgres()
server.start()
print(server.pid, server.data_dir, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state


def _wait_gone(pid: int, limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])


def test_start_connect_stop() -> None:
    with EmbeddedPostgres() as server:
        pid, base = server.pid, server.data_dir
        assert _alive(pid)
        assert oct(base.stat().st_mode & 0o777) == oct(0o700)
        with psycopg.connect(server.dsn) as conn:
            row = conn.execute("SELECT current_user, current_setting('fsync'), 6 * 7").fetchone()
        assert row == ("postgres", "off", 42)
        if os.geteuid() == 0:
            assert _uid_of(pid) != 0, "the server must not run as root"
    assert _wait_gone(pid)
    assert not base.exists()


def test_stop_is_idempotent_and_dsn_needs_a_running_server() -> None:
    server = EmbeddedPostgres()
    with pytest.raises(EmbeddedPostgresError):
        _ = server.dsn
    server.start()
    server.stop()
    server.stop()
    with pytest.raises(EmbeddedPostgresError):
        _ = server.dsn


def test_tcp_loopback() -> None:
    with EmbeddedPostgres(tcp=True) as server:
        assert "127.0.0.1" in server.dsn
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def _start_owner() -> tuple[subprocess.Popen[str], int, Path]:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert owner.stdout is not None
    line = owner.stdout.readline().split()
    assert line, "the owner process did not start a server"
    return owner, int(line[0]), Path(line[1])


def test_no_orphan_after_kill_9_of_the_owner() -> None:
    owner, pid, base = _start_owner()
    try:
        assert _alive(pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert _wait_gone(pid), f"postgres {pid} outlived its owner"
        deadline = time.monotonic() + 15
        while base.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not base.exists(), f"{base} was left behind"
    finally:
        owner.kill()
        owner.wait()


def test_server_dies_with_its_watchdog() -> None:
    """Even if the watchdog itself is killed, the parent-death signal takes the server down."""
    owner, pid, base = _start_owner()
    try:
        watchdog = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(watchdog, signal.SIGKILL)
        assert _wait_gone(pid), f"postgres {pid} outlived its watchdog"
    finally:
        owner.kill()
        owner.wait()
        shutil.rmtree(base, ignore_errors=True)  # the owner died too, before its cleanup
