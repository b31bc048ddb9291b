"""A subscriber's handler for billing's invoice-created that takes the wrong model: the
Protocol method of a subscribed event carries the publishing domain's model."""

from __future__ import annotations

from generated.billing import InvoiceVoided, PaymentCaptured
from generated.notifications import RemindersDue, billing_mail_worker
from typed_queues.runtime import Boss, JobContext, Worker


class Receipts:
    async def on_reminders_due(self, payload: RemindersDue, job: JobContext) -> None:
        return None

    async def on_invoice_created(self, payload: InvoiceVoided, job: JobContext) -> None:
        return None

    async def on_payment_captured(self, payload: PaymentCaptured, job: JobContext) -> None:
        return None


def build(boss: Boss) -> Worker:
    return billing_mail_worker(boss, Receipts())
