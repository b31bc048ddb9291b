"""Migrations: idempotent, safe from many processes at once, refuse a newer database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
import pytest
from rt_support import make_queue, rows, scalar

from typed_queues.runtime import Boss, ConfigurationError, SchemaVersionError
from typed_queues.runtime.db.queries import MIGRATIONS

pytest_plugins = ["rt_fixtures"]


async def test_migrate_is_idempotent_and_concurrent(
    dsn: str, schema_name: str, db: psycopg.AsyncConnection[Any]
) -> None:
    bosses = [Boss(dsn, schema=schema_name) for _ in range(5)]
    await asyncio.gather(*(b.migrate() for b in bosses))
    await asyncio.gather(*(b.migrate() for b in bosses))
    versions = await rows(db, schema_name, "SELECT version FROM {schema}.version ORDER BY 1")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
    async with Boss(dsn, schema=schema_name) as boss:
        await make_queue(boss)
        assert await boss.send("q", {})


async def test_concurrent_starts(dsn: str, schema_name: str) -> None:
    bosses = [Boss(dsn, schema=schema_name, max_pool_size=2) for _ in range(5)]
    await asyncio.gather(*(b.start() for b in bosses))
    await asyncio.gather(*(b.stop() for b in bosses))


async def test_a_newer_database_is_refused(
    boss: Boss, dsn: str, db: psycopg.AsyncConnection[Any]
) -> None:
    await rows(db, boss.schema, "INSERT INTO {schema}.version (version, name) VALUES (999, 'x')")
    for migrate in (True, False):
        with pytest.raises(SchemaVersionError, match="newer than this code") as info:
            await Boss(dsn, schema=boss.schema).start(migrate=migrate)
        assert "upgrade" in str(info.value)


async def test_start_without_migrating(
    dsn: str, schema_name: str, caplog: pytest.LogCaptureFixture, db: psycopg.AsyncConnection[Any]
) -> None:
    caplog.set_level(logging.WARNING, logger="queues")
    boss = Boss(dsn, schema=schema_name)
    await boss.start(migrate=False)
    try:
        assert any("queues migrate" in r.getMessage() for r in caplog.records)
        exists = await scalar(db, schema_name, "SELECT to_regclass(%s) IS NOT NULL", schema_name)
        assert exists is False
        await boss.migrate()
        await make_queue(boss)
        assert await boss.send("q", {})
    finally:
        await boss.stop()


async def test_no_dsn_and_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUEUES_DSN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="QUEUES_DSN"):
        await Boss().start()
    with pytest.raises(ConfigurationError, match="not started"):
        await Boss().send("q", {})
    with pytest.raises(ConfigurationError):
        Boss(max_pool_size=0)
    with pytest.raises(ConfigurationError):
        Boss(lease=-1)  # type: ignore[arg-type]


async def test_the_job_table_is_vacuumed_by_row_count(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    """Migration 0009: the job table's autovacuum runs every 20,000 dead or inserted rows,
    unthrottled (the measured eager-autovacuum settings); the archive keeps the defaults."""
    options = await scalar(
        db,
        boss.schema,
        "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
        f'"{boss.schema}".job',
    )
    assert set(options) >= {
        "autovacuum_vacuum_cost_delay=0",
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=20000",
        "autovacuum_vacuum_insert_scale_factor=0",
        "autovacuum_vacuum_insert_threshold=20000",
        "autovacuum_analyze_scale_factor=0",
        "autovacuum_analyze_threshold=50000",
    }
    archive = await scalar(
        db,
        boss.schema,
        "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
        f'"{boss.schema}".job_archive',
    )
    assert archive is None
    compatible = await scalar(
        db, boss.schema, "SELECT compatible_from FROM {schema}.version WHERE version = 9"
    )
    assert compatible == 1
