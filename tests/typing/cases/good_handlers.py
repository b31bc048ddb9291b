"""Typed use of the generated SDK that mypy --strict must accept."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from generated import QUEUES, create_queues
from generated.billing import (
    Currency,
    Customer,
    InvoiceCreated,
    InvoicesHandlers,
    InvoiceVoided,
    InvoiceVoidedReason,
    LineItem,
    Money,
    enqueue_invoice_created,
    enqueue_invoice_created_many,
    enqueue_invoice_voided_sync,
    invoices_worker,
)
from typed_queues.runtime import Boss, JobContext, JobId, SyncBoss, Worker


class InvoiceJobs:
    """Implements every method of InvoicesHandlers without naming the Protocol."""

    def __init__(self) -> None:
        self.booked: list[uuid.UUID] = []

    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        total: int = payload.total.amount_cents
        job.logger.info("booking %s for %d", payload.number, total)
        self.booked.append(payload.invoice_id)

    async def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        if payload.reason == "fraud":
            job.logger.warning("fraud: %s", payload.invoice_id)


class ExplicitJobs(InvoicesHandlers):
    """Subclassing the Protocol is fine too."""

    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        return None

    async def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        return None


def make_invoice() -> InvoiceCreated:
    currency: Currency = "EUR"
    price = Money(amount_cents=4900, currency=currency)
    return InvoiceCreated(
        invoice_id=uuid.uuid4(),
        number="INV-000001",
        customer=Customer(customer_id=uuid.uuid4(), email="ap@example.com", name="ACME"),
        lines=[LineItem(sku="PLAN-PRO", description="Pro plan", quantity=1, unit_price=price)],
        total=price,
        issued_at=datetime.now(UTC),
        due_on=date(2026, 2, 1),
    )


async def send_and_work(boss: Boss) -> list[Worker]:
    await create_queues(boss)
    assert QUEUES[0].name
    first: JobId = await enqueue_invoice_created(boss, make_invoice(), priority=5)
    more: list[JobId] = await enqueue_invoice_created_many(boss, [make_invoice(), make_invoice()])
    assert first not in more
    return [
        invoices_worker(boss, InvoiceJobs(), concurrency=20),
        invoices_worker(boss, ExplicitJobs()),
        invoices_worker(
            boss,
            InvoiceJobs(),
            label="invoices-bulk",
            batch_size=50,
            poll_interval=timedelta(milliseconds=500),
            shutdown_grace=2.5,
        ),
        invoices_worker(boss, InvoiceJobs(), poll_interval=1, shutdown_grace=timedelta(0)),
    ]


def send_sync(boss: SyncBoss) -> JobId:
    reason: InvoiceVoidedReason = "duplicate"
    voided = InvoiceVoided(invoice_id=uuid.uuid4(), reason=reason, voided_at=datetime.now(UTC))
    return enqueue_invoice_voided_sync(boss, voided)
