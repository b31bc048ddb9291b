"""Fault 19: migrations from many processes at once, and a failure in the middle of one."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from typed_queues.runtime import Boss
from typed_queues.runtime.db.queries import MIGRATIONS

from ._harness import Procs


async def _version_rows(conn: psycopg.AsyncConnection[Any], schema: str) -> list[int]:
    cur = await conn.execute(
        sql.SQL("SELECT version FROM {}.version ORDER BY version").format(sql.Identifier(schema))
    )
    return [int(row[0]) for row in await cur.fetchall()]


async def test_fault19_migrate_from_five_processes(
    procs: Procs, dsn: str, schema_name: str, tmp_path: Path
) -> None:
    """``migrate`` from 5 processes released at the same instant: applied once (each version
    recorded once), the others wait and then find the schema current; none fails."""
    go_file = tmp_path / "go"
    migrators = [procs.spawn(f"m{i}", mode="migrate", go_file=str(go_file)) for i in range(5)]
    for proc in migrators:
        await proc.wait_output("WAITING")
    go_file.touch()
    for proc in migrators:
        assert await proc.wait_exit(timeout=60) == 0, proc.stdout() + proc.stderr()[-3000:]
        assert "MIGRATED" in proc.stdout()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        assert await _version_rows(conn, schema_name) == [m.version for m in MIGRATIONS]


async def test_fault19_failure_mid_migration_rolls_back(dsn: str, schema_name: str) -> None:
    """A failure in the middle of a migration (an event trigger rejects its first CREATE INDEX,
    after its tables were created) rolls it back fully: no schema, no table, no version row.
    Once the fault is gone the same migration applies cleanly."""
    helper = f"rel_evt_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(helper)))
        await conn.execute(
            sql.SQL(
                "CREATE FUNCTION {h}.fail_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$"
                " DECLARE r record; BEGIN"
                " FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP"
                "  IF r.schema_name = {target} THEN"
                "   RAISE EXCEPTION 'injected failure in the middle of a migration';"
                "  END IF;"
                " END LOOP; END $f$"
            ).format(h=sql.Identifier(helper), target=sql.Literal(schema_name))
        )
        await conn.execute(
            sql.SQL(
                "CREATE EVENT TRIGGER {t} ON ddl_command_end WHEN TAG IN ('CREATE INDEX')"
                " EXECUTE FUNCTION {h}.fail_ddl()"
            ).format(t=sql.Identifier(helper), h=sql.Identifier(helper))
        )
        try:
            with pytest.raises(Exception, match="injected failure"):
                async with Boss(dsn, schema=schema_name):
                    pass
            cur = await conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema_name,)
            )
            assert await cur.fetchone() == (0,), "the failed migration left its schema behind"
        finally:
            await conn.execute(
                sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(sql.Identifier(helper))
            )
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(helper))
            )
        async with Boss(dsn, schema=schema_name):
            pass
        assert await _version_rows(conn, schema_name) == [m.version for m in MIGRATIONS]
