"""``--database NAME`` on the operator commands: the DSN of ``$QUEUES_DSN_<NAME>`` (else the
default one), so ``queues status --database ledger`` reads the ledger domain's server."""

from __future__ import annotations

import pytest

from typed_queues.runtime import QueueSpec, SyncBoss
from typed_queues.runtime.cli import main


def test_status_and_jobs_read_the_named_database(
    dsn: str,
    second_dsn: str,
    schema_name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUEUES_DSN_LEDGER", second_dsn)
    monkeypatch.setenv("QUEUES_DSN", dsn)
    with SyncBoss(dsn, schema=schema_name) as boss:
        boss.migrate()
        ledger = boss.database("ledger")
        ledger.migrate()
        ledger.create_queue(QueueSpec(name="ledger.entries", database="ledger"))
        ledger.send("ledger.entries", {"n": 1})
    capsys.readouterr()
    assert main(["status", "--database", "ledger", "--schema", schema_name]) == 0
    assert "ledger.entries" in capsys.readouterr().out
    assert main(["jobs", "list", "--database", "ledger", "--schema", schema_name]) == 0
    assert "ledger.entries" in capsys.readouterr().out
    # the default database has no such queue
    assert main(["status", "--schema", schema_name]) == 0
    assert "ledger.entries" not in capsys.readouterr().out


def test_database_and_dsn_exclude_each_other_and_names_are_checked(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--database", "ledger", "--dsn", dsn]) == 2
    assert "--database and --dsn exclude each other" in capsys.readouterr().err
    assert main(["status", "--database", "Bad-Name"]) == 2
    assert "--database: invalid database name 'Bad-Name'" in capsys.readouterr().err
