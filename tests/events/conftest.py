"""Fixtures of the events tests: a quick Boss and a direct connection to the test's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss


@pytest.fixture
async def quick_boss(dsn: str, schema_name: str) -> AsyncIterator[Boss]:
    """A started Boss whose workers poll every 0.2 s, with a 3 s lease, without maintenance
    and scheduler rounds of its own (the tests run those when they need them)."""
    boss = Boss(
        dsn,
        schema=schema_name,
        poll_interval=timedelta(milliseconds=200),
        lease=timedelta(seconds=3),
        maintenance=False,
        schedules=False,
    )
    await boss.start()
    try:
        yield boss
    finally:
        await boss.stop(timeout=1)


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection for looking at the tables directly."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        yield conn
