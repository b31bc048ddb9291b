"""A subscriber's handlers: its own event and billing's events, with billing's models."""

from __future__ import annotations

from generated.billing import InvoiceCreated, PaymentCaptured
from generated.notifications import RemindersDue, billing_mail_worker
from typed_queues.runtime import Boss, JobContext, Worker


class Receipts:
    async def on_reminders_due(self, payload: RemindersDue, job: JobContext) -> None:
        return None

    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        async with job.transaction() as conn:
            await conn.execute("SELECT 1")

    async def on_payment_captured(self, payload: PaymentCaptured, job: JobContext) -> None:
        return None


def build(boss: Boss) -> Worker:
    return billing_mail_worker(boss, Receipts())
