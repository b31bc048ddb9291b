"""The demo's handler classes: real implementations of the generated handler protocols.

Each class is checked by mypy against its protocol where it meets the typed worker factory
(``invoices_worker(boss, InvoiceJobs(...))``). Two fail on purpose:

* ``EmailJobs``: the mail provider is "unavailable" on the first attempt of messages to the
  ``flaky.example`` domain, so that job is retried and then succeeds;
* ``PushJobs``: a device token that starts with ``revoked-`` is rejected on every attempt, so
  that job exhausts its retries and is copied to the dead-letter queue ``undeliverable``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field

from psycopg import sql

from generated.billing import InvoiceCreated, InvoiceVoided, PaymentCaptured, RefundRequested
from generated.ingestion import (
    BatchReady,
    BatchReadyRecord,
    FileUploaded,
    WebhookReceived,
    enqueue_batch_ready_many,
)
from generated.notifications import (
    EmailRequested,
    PushRequested,
    Recipient,
    RemindersDue,
    enqueue_email_requested,
)
from typed_queues.runtime import Boss, InvalidPayloadError, JobContext

__all__ = [
    "INTENDED_FAILURES",
    "BillingMailJobs",
    "EmailJobs",
    "ImportJobs",
    "InvoiceJobs",
    "MailProviderUnavailable",
    "PaymentJobs",
    "PushJobs",
    "PushTokenRevoked",
    "Recorder",
    "WebhookJobs",
]

FLAKY_DOMAIN = "flaky.example"
PAYER = "payments@acme.example"
REVOKED_PREFIX = "revoked-"
BATCH_SIZE = 2


class MailProviderUnavailable(Exception):
    """A transient error: the next attempt may succeed."""


class PushTokenRevoked(Exception):
    """The push provider rejects the device token; every attempt fails the same way."""


#: The failures the demo causes on purpose (the malformed webhook fails validation).
INTENDED_FAILURES = (MailProviderUnavailable, PushTokenRevoked, InvalidPayloadError)


@dataclass
class Recorder:
    """What the handlers did, for the demo's account."""

    handled: Counter[str] = field(default_factory=Counter)  # successful handler calls by queue
    retried: Counter[str] = field(default_factory=Counter)  # successes after an earlier failure
    errors: Counter[str] = field(default_factory=Counter)  # handler attempts that raised
    ledger_cents: int = 0
    paid: set[uuid.UUID] = field(default_factory=set)
    records_upserted: int = 0
    receipts: Counter[str] = field(default_factory=Counter)  # billing-mail receipts by event
    reminder_runs: int = 0

    def done(self, job: JobContext) -> None:
        self.handled[job.queue] += 1
        if job.attempt > 1:
            self.retried[job.queue] += 1

    def error(self, job: JobContext) -> None:
        self.errors[job.queue] += 1


async def _work() -> None:
    """Stand-in for real I/O (an API call, a file write)."""
    await asyncio.sleep(0.01)


class InvoiceJobs:
    """``billing.invoices``: books invoices into the ledger and reverses voided ones."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.booked: dict[uuid.UUID, int] = {}

    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        net = sum(line.quantity * line.unit_price.amount_cents for line in payload.lines)
        tax = sum(
            line.quantity * line.unit_price.amount_cents * line.tax_rate_bp // 10_000
            for line in payload.lines
        )
        if net + tax != payload.total.amount_cents:
            raise ValueError(
                f"invoice {payload.number}: lines add up to {net + tax}, "
                f"total says {payload.total.amount_cents}"
            )
        await _work()
        self.booked[payload.invoice_id] = payload.total.amount_cents
        self.recorder.ledger_cents += payload.total.amount_cents
        job.logger.info("booked %s for %s", payload.number, payload.customer.name)
        self.recorder.done(job)

    async def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        await _work()
        self.recorder.ledger_cents -= self.booked.pop(payload.invoice_id, 0)
        job.logger.info("voided invoice %s (%s)", payload.invoice_id, payload.reason)
        self.recorder.done(job)


class PaymentJobs:
    """``billing.payments``: marks invoices paid (in the application's own table, with the
    receipt email as a follow-up event, both committed with the job); queues refunds for
    review."""

    def __init__(self, boss: Boss, recorder: Recorder, paid_table: sql.Composable) -> None:
        self.boss = boss
        self.recorder = recorder
        self.paid_table = paid_table

    async def on_payment_captured(self, payload: PaymentCaptured, job: JobContext) -> None:
        await _work()
        receipt = EmailRequested(
            message_id=uuid.uuid5(payload.payment_id, "receipt"),
            recipient=Recipient(user_id=uuid.uuid5(payload.invoice_id, "payer"), email=PAYER),
            template="payment-receipt",
            variables={"amount": f"{payload.amount.amount_cents / 100:.2f}"},
        )
        # The row, the follow-up email and this job's completion commit together, or not at
        # all: a retried attempt cannot send the receipt twice.
        async with job.transaction() as conn:
            insert = sql.SQL("INSERT INTO {} (invoice_id, payment_id) VALUES (%s, %s)")
            await conn.execute(
                insert.format(self.paid_table), (payload.invoice_id, payload.payment_id)
            )
            await enqueue_email_requested(self.boss, receipt, conn=conn)
        self.recorder.paid.add(payload.invoice_id)
        self.recorder.done(job)

    async def on_refund_requested(self, payload: RefundRequested, job: JobContext) -> None:
        await _work()
        job.logger.info(
            "refund of %d %s requested by %s",
            payload.amount.amount_cents,
            payload.amount.currency,
            payload.requested_by,
        )
        self.recorder.done(job)


class EmailJobs:
    """``notifications.email``: renders and hands mail to the provider (flaky on purpose)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def on_email_requested(self, payload: EmailRequested, job: JobContext) -> None:
        await _work()
        if payload.recipient.email.endswith("@" + FLAKY_DOMAIN) and job.attempt == 1:
            self.recorder.error(job)
            raise MailProviderUnavailable("mail provider answered 503 (on purpose, first try)")
        self.recorder.done(job)


class BillingMailJobs:
    """``notifications.billing-mail``: receipts for billing's invoices and payments, which it
    receives by subscribing to them (fan-out: billing sends to its own queues only), and the
    scheduled payment reminders."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        await _work()
        job.logger.info("invoice %s issued: mailing %s", payload.number, payload.customer.email)
        self.recorder.receipts[job.event or ""] += 1
        self.recorder.done(job)

    async def on_payment_captured(self, payload: PaymentCaptured, job: JobContext) -> None:
        await _work()
        self.recorder.receipts[job.event or ""] += 1
        self.recorder.done(job)

    async def on_reminders_due(self, payload: RemindersDue, job: JobContext) -> None:
        await _work()
        job.logger.info(
            "reminding customers %d days overdue (schedule %s)",
            payload.days_overdue,
            job.metadata.get("schedule"),
        )
        self.recorder.reminder_runs += 1
        self.recorder.done(job)


class PushJobs:
    """``notifications.push``: sends to every device; a revoked token always fails."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def on_push_requested(self, payload: PushRequested, job: JobContext) -> None:
        await _work()
        revoked = [t for t in payload.device_tokens if t.startswith(REVOKED_PREFIX)]
        if revoked:
            self.recorder.error(job)
            raise PushTokenRevoked(f"device token {revoked[0][:16]}... was revoked (on purpose)")
        self.recorder.done(job)


class ImportJobs:
    """``ingestion.imports``: splits an uploaded file into ``batch-ready`` jobs."""

    def __init__(self, boss: Boss, recorder: Recorder) -> None:
        self.boss = boss
        self.recorder = recorder

    async def on_file_uploaded(self, payload: FileUploaded, job: JobContext) -> None:
        await _work()  # a real importer would stream payload.file.url here
        rows = [
            BatchReadyRecord(external_id=f"CUST-{n:04d}", fields={"name": f"Customer {n}"})
            for n in range(1, 6)
        ]
        batches = [
            BatchReady(
                batch_id=uuid.uuid5(payload.upload_id, str(sequence)),
                upload_id=payload.upload_id,
                sequence=sequence,
                records=rows[start : start + BATCH_SIZE],
            )
            for sequence, start in enumerate(range(0, len(rows), BATCH_SIZE))
        ]
        await enqueue_batch_ready_many(self.boss, batches)
        job.logger.info("split %s into %d batches", payload.file.name, len(batches))
        self.recorder.done(job)

    async def on_batch_ready(self, payload: BatchReady, job: JobContext) -> None:
        await _work()
        self.recorder.records_upserted += len(payload.records)
        self.recorder.done(job)


class WebhookJobs:
    """``ingestion.webhooks``: applies partner webhooks."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def on_webhook_received(self, payload: WebhookReceived, job: JobContext) -> None:
        await _work()
        job.logger.info("%s webhook %s", payload.source, payload.topic)
        self.recorder.done(job)
