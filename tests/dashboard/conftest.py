"""Fixtures of the dashboard tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from typed_queues.runtime import Boss

from .dash_support import CHROMIUM, with_password


@pytest.fixture
def browser_available() -> None:
    """Skip a browser test when the system's Chromium is not installed (.ci/run installs it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    pytest.importorskip("playwright", reason="the dev extra's playwright is not installed")


@pytest.fixture
def secret_dsn(dsn: str) -> str:
    """The test database's DSN with a password in it."""
    return with_password(dsn)


@pytest.fixture
async def dash_boss(secret_dsn: str, schema_name: str) -> AsyncIterator[Boss]:
    """A started Boss on the test's schema, connected with a DSN that holds a password."""
    async with Boss(secret_dsn, schema=schema_name) as boss:
        yield boss


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection for writing and looking at tables directly."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        yield conn
