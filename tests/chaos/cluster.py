"""A private PostgreSQL cluster for one soak: initdb into a temporary directory, a free
loopback port, trust authentication, fsync off; restarted with ``pg_ctl restart -m fast`` as a
fault, and stopped and deleted at the end.

It never touches another cluster: its socket directory is its own temporary directory and it
listens on 127.0.0.1 only. As root it runs as the ``postgres`` system user (initdb refuses
root). A reaper process (this module run with ``--reap``) holds the read end of a pipe whose
write end only the controller has: when the controller ends, however it ends (``kill -9``
included), the reaper stops the cluster and deletes its directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PrivateCluster", "find_bin_dir"]

RUN_AS = "postgres"


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb`` and ``pg_ctl``."""
    found = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    if not found:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ids() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(RUN_AS)
    return entry.pw_uid, entry.pw_gid


@dataclass
class PrivateCluster:
    """One throwaway cluster; ``start()`` returns once it accepts connections."""

    bin_dir: Path = field(default_factory=find_bin_dir)
    base: Path | None = None
    port: int = 0
    _reaper: subprocess.Popen[bytes] | None = None
    _reaper_pipe: int = -1

    @property
    def data(self) -> Path:
        assert self.base is not None, "the cluster is not started"
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "the cluster is not started"
        return self.base / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=5"

    def _run(self, *argv: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
        ids = _ids()
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=self.base,
            env={"PATH": os.defpath, "LC_ALL": "C", "LANG": "C"},
            user=ids[0] if ids else None,
            group=ids[1] if ids else None,
            extra_groups=[] if ids else None,
        )

    def _ctl(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
        return self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            *args,
            timeout=timeout,
        )

    def start(self) -> str:
        """initdb, configure and start the cluster (and its reaper); returns the DSN."""
        self.base = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self._start_reaper()
        ids = _ids()
        if ids is not None:
            os.chown(self.base, *ids)
        result = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")
        for _ in range(3):  # the free port may be taken between the probe and the start
            self.port = _free_port()
            self._configure()
            if self._ctl("start", "-w", "-t", "60").returncode == 0:
                return self.dsn
        raise RuntimeError(f"the private PostgreSQL did not start:\n{self.log_tail()}")

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "'64MB'",
            "log_min_messages": "warning",
        }
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        auto = self.data / "postgresql.auto.conf"
        auto.write_text(text)
        ids = _ids()
        if ids is not None:
            os.chown(auto, *ids)

    def restart(self) -> float:
        """``pg_ctl restart -m fast`` (every connection is cut); returns the seconds it took."""
        began = time.monotonic()
        result = self._ctl("restart", "-m", "fast", "-w", "-t", "60")
        if result.returncode != 0:
            self.ensure_running()
        return time.monotonic() - began

    def running(self) -> bool:
        return self._ctl("status", timeout=30).returncode == 0

    def ensure_running(self) -> None:
        if not self.running():
            self._ctl("start", "-w", "-t", "60")
        if not self.running():
            raise RuntimeError(f"the private PostgreSQL is down:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server, delete its directory, end the reaper. Idempotent."""
        if self.base is not None and self.data.exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._ctl("stop", "-m", "immediate", "-w", "-t", "60", timeout=90)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        if self._reaper_pipe >= 0:
            os.close(self._reaper_pipe)  # EOF: the reaper finds nothing left and exits
            self._reaper_pipe = -1
        if self._reaper is not None:
            try:
                self._reaper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait()
            self._reaper = None

    def _start_reaper(self) -> None:
        assert self.base is not None
        read_end, write_end = os.pipe()
        os.set_inheritable(read_end, True)
        argv = [sys.executable, "-m", "tests.chaos.cluster", "--reap", str(self.base)]
        argv += ["--bin-dir", str(self.bin_dir), "--fd", str(read_end)]
        self._reaper = subprocess.Popen(
            argv,
            pass_fds=(read_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the controller's group must not end it first
            cwd=Path(__file__).resolve().parents[2],
        )
        os.close(read_end)
        os.set_inheritable(write_end, False)
        self._reaper_pipe = write_end


def _reap(base: Path, bin_dir: Path, fd: int) -> int:
    """Wait for end-of-file on ``fd`` (the controller is gone), then stop and delete."""
    while True:
        try:
            if not os.read(fd, 4096):
                break
        except InterruptedError:
            continue
    if (base / "data").exists():
        cluster = PrivateCluster(bin_dir=bin_dir, base=base)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster._ctl("stop", "-m", "immediate", "-w", "-t", "60", timeout=90)
    shutil.rmtree(base, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the private cluster's reaper")
    parser.add_argument("--reap", type=Path, required=True)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    return _reap(args.reap, args.bin_dir, args.fd)


if __name__ == "__main__":
    sys.exit(main())
