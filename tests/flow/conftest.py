"""Fixtures of the flow-control tests: the run log on the test's schema, worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss

from ._flow_support import FlowDb, FlowProc


@pytest.fixture
async def fdb(dsn: str, schema_name: str, boss: Boss) -> AsyncIterator[FlowDb]:
    """An autocommit connection to the test's migrated schema, with its ``flow_log`` table."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        db = FlowDb(conn, schema_name)
        await db.create_log()
        yield db


@pytest.fixture
def spawn(dsn: str, schema_name: str, tmp_path: Path) -> Iterator[Callable[..., FlowProc]]:
    """Start a ``_flow_proc`` worker process (killed at teardown if still running)."""
    started: list[FlowProc] = []

    def start(name: str, queue: str, **config: Any) -> FlowProc:
        proc = FlowProc(
            name, {"dsn": dsn, "schema": schema_name, "queue": queue, **config}, tmp_path
        )
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.kill()
        for proc in started:
            print(f"--- {proc.name} (exit {proc.popen.returncode}):\n{proc.output()[-2000:]}")


@pytest.fixture
async def quick_boss(dsn: str, schema_name: str) -> AsyncIterator[Boss]:
    """A started Boss whose workers poll every 0.2 s and run maintenance every 0.5 s."""
    boss = Boss(
        dsn,
        schema=schema_name,
        poll_interval=timedelta(milliseconds=200),
        maintenance_interval=timedelta(milliseconds=500),
        lease=timedelta(seconds=5),
    )
    await boss.start()
    try:
        yield boss
    finally:
        await boss.stop(timeout=2)
