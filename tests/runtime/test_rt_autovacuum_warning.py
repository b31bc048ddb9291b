"""`queues status` warns when autovacuum does not vacuum the job table: off for the server, or
off for the table. Every claim, completion and deletion leaves a dead row version behind."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from rt_support import rows, scalar

from typed_queues.runtime import Boss
from typed_queues.runtime.cli import main
from typed_queues.runtime.client.overview import autovacuum_warning

pytest_plugins = ["rt_fixtures"]


def test_the_warning_says_what_is_off() -> None:
    assert autovacuum_warning("queues", True, True, "1min") is None
    server = autovacuum_warning("queues", False, True, "1min")
    assert server is not None and "off on this server" in server and "now 1min" in server
    table = autovacuum_warning("queues", True, False, "10s")
    assert table is not None and '"queues".job (autovacuum_enabled = off)' in table


async def test_the_warning_follows_the_server_and_the_table(
    boss: Boss, db: psycopg.AsyncConnection[Any]
) -> None:
    server_on = await scalar(
        db,
        boss.schema,
        "SELECT current_setting('autovacuum')::bool AND current_setting('track_counts')::bool",
    )
    warning = await boss.autovacuum_warning()
    if server_on:
        assert warning is None
    else:  # (the CI server runs with autovacuum off on purpose)
        assert warning is not None and "off on this server" in warning
    await rows(db, boss.schema, "ALTER TABLE {schema}.job SET (autovacuum_enabled = off)")
    warning = await boss.autovacuum_warning()
    assert warning is not None and "autovacuum is off" in warning


def test_status_prints_the_warning_on_stderr(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--dsn", dsn, "--schema", schema_name]) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema_name}".job SET (autovacuum_enabled = off)')
    capsys.readouterr()
    assert main(["status", "--dsn", dsn, "--schema", schema_name]) == 0
    out = capsys.readouterr()
    assert "autovacuum is off" in out.err and "autovacuum" not in out.out
