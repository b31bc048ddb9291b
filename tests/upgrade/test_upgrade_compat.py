"""Code older than the database during a rolling deploy: it starts with a warning when every
newer migration declared it still works with that code, and refuses otherwise (issue 16)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss, QueueSpec, SchemaVersionError, SyncBoss
from typed_queues.runtime.db.migrations import CODE_VERSION
from typed_queues.runtime.db.queries import MIGRATIONS, Migration


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        yield conn


async def _run(
    db: psycopg.AsyncConnection[Any], schema: str, query: LiteralString, *params: Any
) -> Any:
    cur = await db.execute(
        sql.SQL(query).format(schema=sql.Identifier(schema)),
        params,
    )
    return await cur.fetchall() if cur.description else None


async def _future_migration(
    db: psycopg.AsyncConnection[Any], schema: str, version: int, compatible_from: int
) -> None:
    """Record a migration this code does not know, as a newer release would."""
    await _run(
        db,
        schema,
        "INSERT INTO {schema}.version (version, name, compatible_from) VALUES (%s, %s, %s)",
        version,
        f"future_{version}",
        compatible_from,
    )


def test_a_migration_declares_its_floor_in_its_header() -> None:
    assert Migration(7, "x", "ALTER TABLE t ADD COLUMN c int;").compatible_from == 7
    declared = "-- compatible-from: 3\n-- additive\nALTER TABLE t ADD COLUMN c int;"
    assert Migration(7, "x", declared).compatible_from == 3
    [max_wait] = [m for m in MIGRATIONS if m.name == "max_wait"]
    assert max_wait.compatible_from == 1


async def test_each_migration_records_its_floor(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    recorded = await _run(
        db, boss.schema, "SELECT version, compatible_from FROM {schema}.version ORDER BY 1"
    )
    assert recorded == [(m.version, m.compatible_from) for m in MIGRATIONS]
    # Rows written before the column existed (a schema migrated step by step) are filled in.
    await _run(db, boss.schema, "UPDATE {schema}.version SET compatible_from = NULL")
    await boss.migrate()
    again = await _run(
        db, boss.schema, "SELECT version, compatible_from FROM {schema}.version ORDER BY 1"
    )
    assert again == recorded


async def test_older_code_runs_against_a_compatible_newer_schema(
    boss: Boss, dsn: str, db: psycopg.AsyncConnection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    await boss.create_queue(QueueSpec(name="q"))
    await _future_migration(db, boss.schema, CODE_VERSION + 1, 1)
    await _future_migration(db, boss.schema, CODE_VERSION + 2, CODE_VERSION)
    caplog.set_level(logging.WARNING, logger="queues")
    for migrate in (True, False):
        caplog.clear()
        async with Boss(dsn, schema=boss.schema) as older:
            await older.start(migrate=migrate)
            job_id = await older.send("q", {"n": 1})
            [job] = await older.fetch("q")
            assert job.id == job_id and await older.complete(job)
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert f"is at version {CODE_VERSION + 2}, newer than this code" in warning
        assert "upgrade typed-queues here" in warning
    with SyncBoss(dsn, schema=boss.schema) as sync_older:
        sync_older.migrate()
    newest = await _run(db, boss.schema, "SELECT max(version) FROM {schema}.version")
    assert newest == [(CODE_VERSION + 2,)]  # nothing was applied or undone


async def test_older_code_refuses_a_schema_that_needs_newer_code(
    boss: Boss, dsn: str, db: psycopg.AsyncConnection[Any]
) -> None:
    await _future_migration(db, boss.schema, CODE_VERSION + 1, 1)
    await _future_migration(db, boss.schema, CODE_VERSION + 2, CODE_VERSION + 2)
    needs = f"needs code of version {CODE_VERSION + 2}"
    for migrate in (True, False):
        with pytest.raises(SchemaVersionError, match=needs) as info:
            await Boss(dsn, schema=boss.schema).start(migrate=migrate)
        assert "upgrade typed-queues in this process" in str(info.value)
        assert "CHANGELOG.md" in str(info.value)
    with (
        SyncBoss(dsn, schema=boss.schema) as sync_older,
        pytest.raises(SchemaVersionError, match=needs),
    ):
        sync_older.migrate()
