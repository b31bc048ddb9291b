"""Fixtures of the flow-control tests: the run log on the test's schema, worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
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
