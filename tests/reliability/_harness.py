"""Test-side harness: start, signal and watch real worker processes; poll the database.

Every wait is a deadline used as a failure bound (``wait_until``), never a measurement of speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

__all__ = [
    "FAST_BOSS",
    "LEASE",
    "MAINTENANCE",
    "POLL",
    "QUEUE",
    "SLACK",
    "Db",
    "JobRow",
    "Procs",
    "WorkerProcess",
    "create_record_tables",
    "log_records",
    "queue_config",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]

#: Extra seconds added to every failure bound for process start-up and a loaded 2-core machine.
SLACK = 5.0

#: Short timings the fault tests configure, in seconds: lease L, maintenance interval, poll P.
LEASE = 2.0
MAINTENANCE = 1.0
POLL = 0.5
FAST_BOSS: dict[str, Any] = {
    "lease": LEASE,
    "maintenance_interval": MAINTENANCE,
    "poll_interval": POLL,
}
QUEUE = "rel.work"

T = TypeVar("T")


def queue_config(
    name: str = QUEUE, *, concurrency: int = 10, sync: bool = False, **worker: Any
) -> dict[str, Any]:
    """One queue of a worker process: its name, concurrency, ``Worker`` options, and whether
    its handler is a sync function run in threads (through ``Boss.worker``)."""
    return {"name": name, "concurrency": concurrency, "sync": sync, "worker": worker}


@dataclass(frozen=True)
class JobRow:
    """The columns of a job row the fault tests look at."""

    id: str
    state: str
    retry_count: int
    fence: int
    output: Any
    started_on: Any
    completed_on: Any
    lease_until: Any


async def wait_until(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 - a failure bound, not a cancellation scope
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}: {value!r}")
        await asyncio.sleep(interval)


class Db:
    """An autocommit connection for the test's own queries; ``{s}`` in SQL is the schema."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def q(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(s=sql.Identifier(self.schema))

    async def execute(self, template: str, params: Sequence[Any] = ()) -> None:
        await self.conn.execute(self.q(template), params or None)

    async def rows(self, template: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = await self.conn.execute(self.q(template), params or None)
        return await cur.fetchall()

    async def scalar(self, template: str, params: Sequence[Any] = ()) -> Any:
        cur = await self.conn.execute(self.q(template), params or None)
        row = await cur.fetchone()
        return None if row is None else row[0]

    async def jobs(self, ids: Sequence[Any] | None = None) -> dict[str, JobRow]:
        """Job rows of the schema (all, or those with the given ids), by id."""
        rows = await self.rows(
            "SELECT id::text, state::text, retry_count, fence, output, started_on, completed_on,"
            " lease_until FROM {s}.job WHERE %s::uuid[] IS NULL OR id = ANY(%s::uuid[])",
            (None if ids is None else [str(i) for i in ids],) * 2,
        )
        return {row[0]: JobRow(*row) for row in rows}

    async def count_states(self, queue: str = QUEUE) -> dict[str, int]:
        rows = await self.rows(
            "SELECT state::text, count(*) FROM {s}.job WHERE queue = %s GROUP BY 1", (queue,)
        )
        return {state: count for state, count in rows}

    async def all_completed(self, ids: Sequence[Any]) -> bool:
        jobs = await self.jobs(ids)
        return len(jobs) == len(ids) and all(j.state == "completed" for j in jobs.values())

    async def effects(self) -> dict[str, int]:
        """Executions that reached their side effect, per job id."""
        rows = await self.rows("SELECT job_id::text, count(*) FROM {s}.rel_effects GROUP BY 1")
        return {job_id: count for job_id, count in rows}

    async def started(self) -> list[tuple[str, int, int]]:
        """(job id, attempt, pid) of every execution that began."""
        rows = await self.rows("SELECT job_id::text, attempt, pid FROM {s}.rel_started ORDER BY at")
        return [(job_id, attempt, pid) for job_id, attempt, pid in rows]


async def create_record_tables(db: Db) -> None:
    """The tables the worker processes record their executions in (see ``_worker_proc``)."""
    await db.execute("CREATE SCHEMA IF NOT EXISTS {s}")
    for table in ("rel_started", "rel_effects"):
        await db.conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (job_id uuid NOT NULL, attempt int NOT NULL,"
                " pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ).format(sql.Identifier(db.schema), sql.Identifier(table))
        )


@dataclass
class WorkerProcess:
    """One ``_worker_proc`` subprocess, its own process group, output in files."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    async def wait_output(self, marker: str, *, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until ``marker`` appears on the process's stdout or stderr."""

        async def seen() -> bool:
            if marker in self.stdout() or marker in self.stderr():
                return True
            if not self.alive():
                raise AssertionError(
                    f"worker {self.name} exited ({self.popen.returncode}) before {marker!r}:\n"
                    f"{self.stderr()[-4000:]}"
                )
            return False

        await wait_until(seen, timeout=timeout, what=f"{marker!r} from worker {self.name}")

    ready_marker: str = "READY"

    async def wait_ready(self, *, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        await self.wait_output(self.ready_marker, timeout=timeout)

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait()

    async def wait_exit(self, *, timeout: float) -> int:  # noqa: ASYNC109
        async def exited() -> bool:
            return not self.alive()

        await wait_until(exited, timeout=timeout, what=f"worker {self.name} to exit")
        return self.popen.returncode

    def cleanup(self) -> None:
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait()

    def assert_no_tracebacks(self) -> None:
        text = self.stderr()
        assert "Traceback" not in text, f"worker {self.name} logged a traceback:\n{text[-4000:]}"


class Procs:
    """Starts worker processes for one test and kills whatever is left at teardown."""

    def __init__(self, dsn: str, schema: str, tmp_dir: Path) -> None:
        self.dsn = dsn
        self.schema = schema
        self.tmp_dir = tmp_dir
        self.started: list[WorkerProcess] = []

    def app_dsn(self, name: str, **options: Any) -> str:
        return make_conninfo(self.dsn, application_name=f"rel-{name}", **options)

    def config(
        self,
        name: str,
        *,
        queues: Sequence[dict[str, Any]] = (),
        boss: dict[str, Any] | None = None,
        dsn_options: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The JSON configuration of one ``_worker_proc`` process."""
        return {
            "dsn": self.app_dsn(name, **(dsn_options or {})),
            "schema": self.schema,
            "queues": list(queues),
            "boss": boss or {},
            **extra,
        }

    def _popen(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> WorkerProcess:
        stdout_path = self.tmp_dir / f"{name}.out"
        stderr_path = self.tmp_dir / f"{name}.err"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        proc = WorkerProcess(name, popen, stdout_path, stderr_path)
        self.started.append(proc)
        return proc

    def spawn(self, name: str, **kwargs: Any) -> WorkerProcess:
        """Start a ``_worker_proc`` process (see ``config`` for the options)."""
        config = self.config(name, **kwargs)
        argv = [sys.executable, "-m", "tests.reliability._worker_proc", json.dumps(config)]
        return self._popen(name, argv)

    def spawn_cli(self, name: str, *, shutdown_grace: float, **kwargs: Any) -> WorkerProcess:
        """Run the real ``queues worker`` command on the workers of a ``_worker_proc`` config."""
        config = self.config(name, **kwargs)
        env = {**os.environ, "REL_WORKER_CONFIG": json.dumps(config)}
        argv = [
            sys.executable,
            "-m",
            "typed_queues.runtime.cli",
            "worker",
            "--app",
            "tests.reliability._worker_proc:cli_workers",
            "--shutdown-grace",
            str(shutdown_grace),
            "--log-format",
            "json",
        ]
        proc = self._popen(name, argv, env)
        proc.ready_marker = "workers running"
        return proc

    async def start(self, name: str, **kwargs: Any) -> WorkerProcess:
        proc = self.spawn(name, **kwargs)
        await proc.wait_ready()
        return proc

    def cleanup(self) -> None:
        """Kill what is left; print each process's last output (pytest shows it on failure)."""
        for proc in self.started:
            proc.cleanup()
        for proc in self.started:
            print(f"--- {proc.name} (pid {proc.pid}, exit {proc.popen.returncode}) stderr tail:")
            print(proc.stderr()[-3000:])


def log_records(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a worker's stderr (other lines are skipped)."""
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
