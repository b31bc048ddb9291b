"""Fixtures of the operations tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection for looking at tables directly."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        yield conn
