"""Fixtures of the multi-database tests: a second real PostgreSQL server started for the
session (the embedded server of the ``embedded`` extra, on TCP), beside the test server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture(scope="session")
def second_server() -> Iterator[str]:
    """The DSN of a second PostgreSQL server, started for these tests."""
    from typed_queues.runtime.embedded import EmbeddedPostgres

    with EmbeddedPostgres(tcp=True) as server:
        yield server.dsn


@pytest.fixture
def second_dsn(second_server: str, schema_name: str) -> Iterator[str]:
    """The second server's DSN; the test's schema is dropped there afterwards too."""
    yield second_server
    with psycopg.connect(second_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"
