"""A real PgBouncer in transaction pooling mode, started on a free loopback port in front of the
test database, with its own configuration in a temporary directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["PgBouncer", "find_pgbouncer"]


def find_pgbouncer() -> str | None:
    """The pgbouncer binary (Debian installs it in /usr/sbin, often not on PATH), or None."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class PgBouncer:
    """``with PgBouncer(dsn) as bouncer:`` runs PgBouncer (pool_mode = transaction, at most
    ``pool_size`` server connections) in front of ``dsn``'s server; ``bouncer.dsn`` connects
    through it."""

    def __init__(self, binary: str, dsn: str, *, pool_size: int = 3) -> None:
        self._binary = binary
        self._target = conninfo_to_dict(dsn)
        self._pool_size = pool_size
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def dsn(self) -> str:
        params = {
            "host": "127.0.0.1",
            "port": self.port,
            "dbname": self._target.get("dbname", "postgres"),
            "user": self._target.get("user") or "postgres",
        }
        return make_conninfo(**{k: str(v) for k, v in params.items()})

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="queues-pgbouncer-"))
        self._dir.chmod(0o755)  # PgBouncer drops root for `nobody`, who must read its config
        self.port = _free_port()
        target = self._target
        user = str(target.get("user") or "postgres")
        server = {
            "host": target.get("host") or "127.0.0.1",
            "port": target.get("port") or "5432",
            "dbname": target.get("dbname", "postgres"),
            "user": user,
        }
        if target.get("password"):
            server["password"] = str(target["password"])
        users = self._dir / "userlist.txt"
        users.write_text(f'"{user}" ""\n')
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(users),
            "pool_mode": "transaction",
            "default_pool_size": str(self._pool_size),
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": "500",
            "ignore_startup_parameters": "extra_float_digits",
            "log_connections": "0",
            "log_disconnections": "0",
        }
        if self._version() >= (1, 21):
            # 1.21+ can keep prepared statements across server connections: turned off, so
            # the test sees what any transaction pooler does with them.
            settings["max_prepared_statements"] = "0"
        database = " ".join(f"{key}={_quoted(str(value))}" for key, value in server.items())
        config = self._dir / "pgbouncer.ini"
        config.write_text(
            f"[databases]\n{server['dbname']} = {database}\n\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        for path in (users, config):
            path.chmod(0o644)
        command = [self._binary]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # PgBouncer refuses to run as root
        command.append(str(config))
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=(self._dir / "log").open("wb")
        )
        self._wait_ready()

    def _version(self) -> tuple[int, ...]:
        out = subprocess.run(
            [self._binary, "--version"], capture_output=True, text=True, check=True
        ).stdout
        words = out.split()
        number = words[1] if len(words) > 1 else "0"
        return tuple(int(part) for part in number.split(".") if part.isdigit())

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.log()}")
            try:
                with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1", prepare=False)
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not answer:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        if self._dir is None or not (self._dir / "log").exists():
            return ""
        return (self._dir / "log").read_text(errors="replace")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
