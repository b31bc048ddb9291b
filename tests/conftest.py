"""Shared fixtures: a real PostgreSQL for every test, each test in its own schema.

The DSN comes from ``QUEUES_TEST_DSN``; when it is unset the suite starts an
embedded PostgreSQL (``typed_queues.runtime.embedded``) once per session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from typed_queues.runtime import Boss


@pytest.fixture(scope="session")
def dsn() -> Iterator[str]:
    configured = os.environ.get("QUEUES_TEST_DSN")
    if configured:
        yield configured
        return
    from typed_queues.runtime.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as server:
        yield server.dsn


@pytest.fixture
def schema_name(dsn: str) -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def boss(dsn: str, schema_name: str) -> AsyncIterator[Boss]:
    """A started ``Boss`` migrated into the test's own schema."""
    async with Boss(dsn, schema=schema_name) as started:
        yield started
