"""Fixtures of the fault suite: real worker processes and a test connection, per test schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from typed_queues.runtime import Boss

from ._harness import Db, Procs, create_record_tables


@pytest.fixture
def procs(dsn: str, schema_name: str, tmp_path: Path) -> Iterator[Procs]:
    """Worker processes of this test; every one still alive is killed at teardown."""
    started = Procs(dsn, schema_name, tmp_path)
    try:
        yield started
    finally:
        started.cleanup()


@pytest.fixture
async def db(dsn: str, schema_name: str, boss: Boss) -> AsyncIterator[Db]:
    """An autocommit connection, with the record tables created in the test's migrated schema."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        test_db = Db(conn, schema_name)
        await create_record_tables(test_db)
        yield test_db
