"""Fixtures of the runtime tests (a pytest plugin: ``pytest_plugins = ["rt_fixtures"]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss


@pytest.fixture
async def fast_boss(dsn: str, schema_name: str) -> AsyncIterator[Boss]:
    """A started Boss with a 1 s lease and fast polling and maintenance."""
    boss = Boss(
        dsn,
        schema=schema_name,
        lease=timedelta(seconds=1),
        poll_interval=timedelta(milliseconds=200),
        maintenance_interval=timedelta(milliseconds=300),
    )
    await boss.start()
    try:
        yield boss
    finally:
        await boss.stop(timeout=1)


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection for looking at tables directly."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        yield conn
