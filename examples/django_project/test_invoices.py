"""The example project's tests, with its real settings on a throwaway PostgreSQL database:
the job commits with the model change in ``transaction.atomic()`` or rolls back with it, the
handler books the reversal (run with ``drain``), and ``manage.py queues_worker`` runs the
project's workers until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.test import Client

from generated.billing import INVOICES, InvoiceVoided, enqueue_invoice_voided_sync, invoices_worker
from typed_queues.runtime import Boss, SyncBoss
from typed_queues.runtime.integrations.django import psycopg_connection, sync_boss
from typed_queues.runtime.testing import drain, enqueued_sync

from .invoices.jobs import InvoiceJobs
from .invoices.models import Invoice, LedgerEntry

pytestmark = pytest.mark.usefixtures("queue_settings")

MANAGE = Path(__file__).with_name("manage.py")


def make_invoice(*, paid: bool = False) -> Invoice:
    return Invoice.objects.create(
        number=f"INV-{uuid.uuid4().hex[:12]}", total_cents=17493, paid=paid
    )


def void(invoice: Invoice, reason: str = "fraud") -> tuple[int, dict[str, object]]:
    response = Client().post(f"/invoices/{invoice.id}/void", {"reason": reason})
    return response.status_code, response.json()


def voided(invoice: Invoice) -> InvoiceVoided:
    return InvoiceVoided(invoice_id=invoice.id, reason="duplicate", voided_at=datetime.now(UTC))


def test_voiding_enqueues_the_event_with_the_model_change(queues_sync_boss: SyncBoss) -> None:
    invoice = make_invoice()

    assert void(invoice)[0] == 200

    [event] = enqueued_sync(
        queues_sync_boss, queue=INVOICES, event="invoice-voided", model=InvoiceVoided
    )
    assert (event.invoice_id, event.reason) == (invoice.id, "fraud")
    invoice.refresh_from_db()
    assert invoice.status == "voided"


def test_a_save_the_database_refuses_rolls_the_job_back(queues_sync_boss: SyncBoss) -> None:
    invoice = make_invoice(paid=True)

    status, body = void(invoice)

    assert (status, body) == (409, {"error": "a paid invoice cannot be voided"})
    assert enqueued_sync(queues_sync_boss, queue=INVOICES) == []  # rolled back with the save
    invoice.refresh_from_db()
    assert invoice.status == "issued"


def test_a_bad_reason_writes_nothing(queues_sync_boss: SyncBoss) -> None:
    invoice = make_invoice()

    assert void(invoice, reason="boredom")[0] == 400

    assert enqueued_sync(queues_sync_boss, queue=INVOICES) == []


def test_an_atomic_block_commits_or_rolls_back_the_job(queues_sync_boss: SyncBoss) -> None:
    invoice = make_invoice()
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_invoice_voided_sync(sync_boss(), voided(invoice), conn=psycopg_connection())
        raise RuntimeError("anything failing in the block")
    assert enqueued_sync(queues_sync_boss, queue=INVOICES) == []

    with transaction.atomic():
        enqueue_invoice_voided_sync(sync_boss(), voided(invoice), conn=psycopg_connection())
    [event] = enqueued_sync(queues_sync_boss, queue=INVOICES, model=InvoiceVoided)
    assert (event.invoice_id, event.reason) == (invoice.id, "duplicate")


async def test_the_handler_books_the_reversal(queues_boss: Boss) -> None:
    invoice = await sync_to_async(make_invoice)()
    assert (await sync_to_async(void)(invoice))[0] == 200

    drained = await drain(invoices_worker(queues_boss, InvoiceJobs()))

    drained.raise_failures()
    assert [run.event for run in drained.runs] == ["invoice-voided"]
    amounts = [entry.amount_cents async for entry in LedgerEntry.objects.filter(invoice=invoice)]
    assert amounts == [-17493]


def test_manage_py_queues_worker_runs_the_projects_workers(
    queues_sync_boss: SyncBoss, queues_dsn: str, queues_schema: str
) -> None:
    invoice = make_invoice()
    assert void(invoice)[0] == 200
    env = {
        key: value for key, value in os.environ.items() if key not in ("QUEUES_DSN", "DATABASE_URL")
    }
    env.update(DJANGO_DATABASE_DSN=queues_dsn, QUEUES_SCHEMA=queues_schema)
    process = subprocess.Popen(
        [sys.executable, str(MANAGE), "queues_worker", "--shutdown-grace", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not LedgerEntry.objects.filter(invoice=invoice).exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the worker booked nothing"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "1 workers running: billing.invoices" in err
    assert "stopped" in err
