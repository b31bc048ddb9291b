"""SQLAlchemy 2: enqueue inside a ``Session`` or ``AsyncSession`` transaction, so that the job
commits (or rolls back) with the ORM changes.

The queue writes through the psycopg 3 connection under the session, so the engine must use
the psycopg driver (``postgresql+psycopg://...``, sync or async)::

    with Session(engine) as session, session.begin():
        session.add(order)
        enqueue_order_placed_sync(sync_boss, payload, conn=psycopg_connection(session))

    async with AsyncSession(async_engine) as session, session.begin():
        session.add(order)
        await enqueue_order_placed(boss, payload, conn=await async_psycopg_connection(session))

Needs the ``sqlalchemy`` extra (``pip install 'typed-queues[sqlalchemy]'``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

__all__ = ["async_psycopg_connection", "psycopg_connection"]


def psycopg_connection(session: Session | Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under ``session`` (a ``Session`` or a ``Connection``), in the
    session's transaction (begun if it was not): pass it as ``conn=`` to a sync enqueue."""
    if isinstance(session, AsyncSession | AsyncConnection):
        raise TypeError(
            f"psycopg_connection() takes a sync Session or Connection, got "
            f"{type(session).__name__}: use `await async_psycopg_connection(session)`"
        )
    connection = session.connection() if isinstance(session, Session) else session
    raw = connection.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(_not_psycopg(raw, "postgresql+psycopg://"))
    return raw


async def async_psycopg_connection(
    session: AsyncSession | AsyncConnection,
) -> psycopg.AsyncConnection[Any]:
    """The psycopg async connection under ``session`` (an ``AsyncSession`` or an
    ``AsyncConnection``), in the session's transaction (begun if it was not): pass it as
    ``conn=`` to an async enqueue, in the same event loop."""
    if not isinstance(session, AsyncSession | AsyncConnection):
        raise TypeError(
            f"async_psycopg_connection() takes an AsyncSession or AsyncConnection, got "
            f"{type(session).__name__}: use psycopg_connection(session)"
        )
    connection = await session.connection() if isinstance(session, AsyncSession) else session
    raw = (await connection.get_raw_connection()).driver_connection
    if not isinstance(raw, psycopg.AsyncConnection):
        raise TypeError(_not_psycopg(raw, "postgresql+psycopg:// with create_async_engine"))
    return raw


def _not_psycopg(raw: object, url: str) -> str:
    return (
        f"the session's database driver gives a {type(raw).__module__}.{type(raw).__name__}; "
        f"enqueueing in its transaction needs psycopg 3: create the engine with {url}"
    )
