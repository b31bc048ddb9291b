"""The SQLAlchemy helpers: the psycopg connection under a Session, a Connection, an
AsyncSession or an AsyncConnection is the one in its transaction; anything else is refused
with the fix. (examples/sqlalchemy_app has the end-to-end tests with ORM models.)"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from typed_queues.runtime import Boss, QueueSpec, SyncBoss
from typed_queues.runtime.integrations.sqlalchemy import (
    async_psycopg_connection,
    psycopg_connection,
)
from typed_queues.runtime.testing import enqueued, enqueued_sync

QUEUE = "orm.tasks"


def url(dsn: str) -> URL:
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


def test_a_connection_in_a_transaction(dsn: str, queues_sync_boss: SyncBoss) -> None:
    queues_sync_boss.create_queue(QueueSpec(name=QUEUE))
    engine = create_engine(url(dsn))
    try:
        with engine.connect() as connection:
            with connection.begin():
                raw = psycopg_connection(connection)
                assert isinstance(raw, psycopg.Connection)
                queues_sync_boss.send(QUEUE, {"n": 1}, conn=raw)
                # the job is not visible outside the transaction before the commit
                assert enqueued_sync(queues_sync_boss, queue=QUEUE) == []
            assert enqueued_sync(queues_sync_boss, queue=QUEUE) == [{"n": 1}]
            with connection.begin() as transaction:
                queues_sync_boss.send(QUEUE, {"n": 2}, conn=psycopg_connection(connection))
                transaction.rollback()
        assert enqueued_sync(queues_sync_boss, queue=QUEUE) == [{"n": 1}]
    finally:
        engine.dispose()


async def test_an_async_connection_in_a_transaction(dsn: str, queues_boss: Boss) -> None:
    await queues_boss.create_queue(QueueSpec(name=QUEUE))
    engine = create_async_engine(url(dsn))
    try:
        async with engine.connect() as connection:
            async with connection.begin():
                raw = await async_psycopg_connection(connection)
                assert isinstance(raw, psycopg.AsyncConnection)
                await queues_boss.send(QUEUE, {"n": 1}, conn=raw)
                assert await enqueued(queues_boss, queue=QUEUE) == []
            assert await enqueued(queues_boss, queue=QUEUE) == [{"n": 1}]
    finally:
        await engine.dispose()


async def test_the_wrong_kind_of_session_is_refused(dsn: str) -> None:
    sqlite = create_engine("sqlite://")
    with Session(sqlite) as session, pytest.raises(TypeError, match=r"postgresql\+psycopg://"):
        psycopg_connection(session)
    sqlite.dispose()

    engine = create_engine(url(dsn))
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        with pytest.raises(TypeError, match="use psycopg_connection"):
            await async_psycopg_connection(session)  # type: ignore[arg-type]
    engine.dispose()

    async_engine = create_async_engine(url(dsn))
    async with AsyncSession(async_engine) as async_session:
        with pytest.raises(TypeError, match="await async_psycopg_connection"):
            psycopg_connection(async_session)  # type: ignore[arg-type]
    await async_engine.dispose()
