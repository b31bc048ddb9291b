"""The generated SDK of a catalogue with a domain on its own server, as users call it: the
code passes ruff and mypy --strict, ``create_queues`` places every queue, ``enqueue_*`` (async
and sync) writes on the domain's server, and the subscriber's generated worker receives the
typed payload through the outbox relay. Two real servers (tests/multidb/conftest.py)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from mypy import api

from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.runtime import Boss, SyncBoss

REPO = Path(__file__).resolve().parents[2]

CATALOGUE = """\
version: 1
domains:
  ledger:
    database: ledger
    queues:
      entries:
        dead_letter: entries-dead
        events:
          entry-booked:
            entity_id: entry_id
            payload:
              type: object
              additionalProperties: false
              required: [entry_id, amount_cents]
              properties:
                entry_id: {type: string}
                amount_cents: {type: integer, minimum: 0}
      entries-dead: {}
  mail:
    queues:
      receipts:
        subscribe:
          - {event: ledger.entry-booked, delivery: at-least-once}
"""

HANDLER = """\
from __future__ import annotations

from typed_queues.runtime import Boss, JobContext, Worker

from .ledger import models as ledger_models
from .mail import receipts_worker


class Receipts:
    def __init__(self) -> None:
        self.seen: list[ledger_models.EntryBooked] = []

    async def on_entry_booked(self, payload: ledger_models.EntryBooked, job: JobContext) -> None:
        self.seen.append(payload)


def make(boss: Boss, receipts: Receipts) -> Worker:
    return receipts_worker(boss, receipts)
"""


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("mdsdk")
    package = root / "mdsdk"
    for relative, text in generate_files_from_text(CATALOGUE).items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (package / "app.py").write_text(HANDLER)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("mdsdk")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "mdsdk" or n.startswith("mdsdk.")]:
            del sys.modules[name]


def test_the_generated_code_passes_mypy_strict(sdk: ModuleType, tmp_path: Path) -> None:
    package = Path(sdk.__file__ or "").parent
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(package),
        ]
    )
    assert status == 0, stdout + stderr


def _count(dsn: str, schema: str, queue: str) -> int:
    with psycopg.connect(dsn) as conn:
        [(n,)] = conn.execute(
            f'SELECT count(*) FROM "{schema}".job WHERE queue = %s',  # noqa: S608
            (queue,),
        ).fetchall()
        return int(n)


@pytest.mark.asyncio
async def test_generated_sends_and_workers_cross_the_two_servers(
    sdk: ModuleType, dsn: str, second_dsn: str, schema_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUES_DSN_LEDGER", second_dsn)
    ledger = importlib.import_module("mdsdk.ledger")
    app = importlib.import_module("mdsdk.app")
    boss = Boss(dsn, schema=schema_name, poll_interval=timedelta(milliseconds=200))
    async with boss:
        await sdk.create_queues(boss)
        payloads = [ledger.EntryBooked(entry_id=f"e{n}", amount_cents=n) for n in range(5)]
        await ledger.enqueue_entry_booked(boss, payloads[0])
        await ledger.enqueue_entry_booked_many(boss, payloads[1:4])
        with SyncBoss(dsn, schema=schema_name) as sync_boss:
            ledger.enqueue_entry_booked_sync(sync_boss, payloads[4])
        # every send landed on the ledger's server; its copies wait in the outbox there
        assert _count(second_dsn, schema_name, "ledger.entries") == 5
        assert _count(second_dsn, schema_name, "mail.receipts.outbox") == 5
        assert _count(dsn, schema_name, "ledger.entries") == 0

        receipts = app.Receipts()
        worker = app.make(boss, receipts)
        await worker.start()
        for _ in range(200):
            if len(receipts.seen) == 5:
                break
            await asyncio.sleep(0.05)
        await worker.stop()
        assert sorted(p.entry_id for p in receipts.seen) == [f"e{n}" for n in range(5)]
        assert all(isinstance(p, ledger.EntryBooked) for p in receipts.seen)
        assert _count(dsn, schema_name, "mail.receipts") == 5


def test_the_package_declares_its_databases(sdk: ModuleType) -> None:
    from typed_queues.runtime.client.databases import declared_databases

    assert "ledger" in declared_databases()
    spec: Any = sdk.QUEUES[0]
    assert spec.database == "ledger"
