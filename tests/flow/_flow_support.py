"""What the flow-control tests share: worker processes, the run log, waiting with a bound.

Every wait is a deadline used as a failure bound (``wait_until``), never a measurement.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: Seconds added to failure bounds for process start-up on a loaded 2-core machine.
SLACK = 10.0


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


@dataclass(frozen=True)
class Run:
    """One line of ``flow_log``: a handler run's start, end or failure."""

    job_id: str
    key: str | None
    i: int | None
    attempt: int
    pid: int
    what: str
    at: float  # seconds on the database clock


class FlowDb:
    """An autocommit connection to the test's schema; ``{s}`` in SQL is the schema."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def q(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(s=sql.Identifier(self.schema))

    async def rows(self, template: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = await self.conn.execute(self.q(template), params or None)
        return await cur.fetchall()

    async def scalar(self, template: str, params: Sequence[Any] = ()) -> Any:
        rows = await self.rows(template, params)
        return rows[0][0] if rows else None

    async def create_log(self) -> None:
        await self.conn.execute(
            self.q(
                "CREATE TABLE {s}.flow_log (job_id uuid NOT NULL, key text, i int,"
                " attempt int NOT NULL, pid int NOT NULL, what text NOT NULL,"
                " at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
        )

    async def runs(self) -> list[Run]:
        rows = await self.rows(
            "SELECT job_id::text, key, i, attempt, pid, what, extract(epoch FROM at)::float8"
            " FROM {s}.flow_log ORDER BY at"
        )
        return [Run(*row) for row in rows]

    async def states(self, queue: str) -> dict[str, int]:
        rows = await self.rows(
            "SELECT state::text, count(*)::int FROM {s}.job WHERE queue = %s GROUP BY 1", (queue,)
        )
        return dict(rows)

    async def active(self, queue: str) -> int:
        return int(
            await self.scalar(
                "SELECT count(*) FROM {s}.job WHERE queue = %s AND state = 'active'", (queue,)
            )
        )

    async def now(self) -> float:
        return float(await self.scalar("SELECT extract(epoch FROM clock_timestamp())::float8"))


def max_overlap(runs: Sequence[Run]) -> int:
    """The most handler runs in progress at once (from their start and end or fail lines)."""
    events = sorted(
        (run.at, 1 if run.what == "start" else -1) for run in runs
    )  # at equal times an end sorts first (-1 < 1): touching runs do not overlap
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


class FlowProc:
    """One ``_flow_proc`` subprocess in a process group of its own, output in files."""

    def __init__(self, name: str, config: dict[str, Any], tmp: Path) -> None:
        self.name = name
        self.out = tmp / f"{name}.out"
        self.err = tmp / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "tests.flow._flow_proc", json.dumps(config)],
                cwd=ROOT,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    async def ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        async def seen() -> bool:
            if "READY" in self.out.read_text(errors="replace"):
                return True
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.output()[-3000:]}")
            return False

        await wait_until(seen, timeout=timeout, what=f"{self.name} to start")

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)

        async def exited() -> bool:
            return self.popen.poll() is not None

        await wait_until(exited, timeout=timeout, what=f"{self.name} to stop")
        assert "Traceback" not in self.output(), self.output()[-3000:]

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
