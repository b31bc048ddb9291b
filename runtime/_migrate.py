"""Schema migrations: applied in order, in one transaction, under an advisory lock.

Many processes may start at once: each takes ``pg_advisory_xact_lock`` on a key derived from
the schema name, so one applies the missing migrations and the others wait and then find
nothing to do. A database newer than this code is refused with ``SchemaVersionError``.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from ._ident import quote_ident
from ._sql import MIGRATIONS, Queries
from .errors import SchemaVersionError

__all__ = ["CODE_VERSION", "check_version", "migrate_async", "migrate_sync", "verify_async"]

#: The schema version this code writes and expects.
CODE_VERSION: Final = MIGRATIONS[-1].version


def check_version(schema: str, database_version: int) -> None:
    """Raise ``SchemaVersionError`` when the database is newer than this code."""
    if database_version > CODE_VERSION:
        raise SchemaVersionError(
            f'schema "{schema}" is at version {database_version}, newer than this code '
            f"(version {CODE_VERSION}): upgrade the queues package everywhere it runs, "
            "or point this process at another schema"
        )


def _lock_key(q: Queries) -> dict[str, Any]:
    return {"key": f"queues.migrate:{q.schema}"}


async def migrate_async(conn: psycopg.AsyncConnection[Any], q: Queries) -> int:
    """Bring the schema up to date; return how many migrations were applied."""
    async with conn.transaction():
        await conn.execute(q["lock_migration"], _lock_key(q))
        await conn.execute(q["bootstrap"])
        cur = await conn.execute(q["schema_version"])
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        check_version(q.schema, current)
        for migration in MIGRATIONS[current:]:
            await conn.execute(q.migration(migration))
            await conn.execute(
                q["record_version"], {"version": migration.version, "name": migration.name}
            )
        return len(MIGRATIONS) - current


def migrate_sync(conn: psycopg.Connection[Any], q: Queries) -> int:
    """``migrate_async`` for a sync connection."""
    with conn.transaction():
        conn.execute(q["lock_migration"], _lock_key(q))
        conn.execute(q["bootstrap"])
        row = conn.execute(q["schema_version"]).fetchone()
        current = int(row[0]) if row else 0
        check_version(q.schema, current)
        for migration in MIGRATIONS[current:]:
            conn.execute(q.migration(migration))
            conn.execute(
                q["record_version"], {"version": migration.version, "name": migration.name}
            )
        return len(MIGRATIONS) - current


async def verify_async(conn: psycopg.AsyncConnection[Any], q: Queries) -> int:
    """Without migrating: the schema's version (0 when not migrated at all).

    Raises ``SchemaVersionError`` only when the database is newer than this code.
    """
    cur = await conn.execute(q["has_version_table"], {"table": f"{quote_ident(q.schema)}.version"})
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute(q["schema_version"])
    row = await cur.fetchone()
    current = int(row[0]) if row else 0
    check_version(q.schema, current)
    return current
