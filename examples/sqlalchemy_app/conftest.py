"""The example's engines, on the test's schema (the tables are created there, so they are
dropped with it). The test helpers are enabled in examples/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .uploads import Base


def sqlalchemy_url(dsn: str) -> URL:
    """A psycopg-driver URL for a libpq DSN (a URL or key=value pairs)."""
    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    port = params.pop("port", None)
    return URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=params.pop("host", None),
        port=int(port) if port else None,
        database=params.pop("dbname", None),
        query=params,
    )


@pytest.fixture
def engine(queues_dsn: str, queues_schema: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(queues_dsn)).execution_options(
        schema_translate_map={None: queues_schema}
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{queues_schema}"')
        Base.metadata.create_all(conn)
    yield engine
    engine.dispose()


@pytest_asyncio.fixture
async def async_engine(queues_dsn: str, queues_schema: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(queues_dsn)).execution_options(
        schema_translate_map={None: queues_schema}
    )
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{queues_schema}"')
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()
