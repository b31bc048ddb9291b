"""The ``billing.invoices`` handlers of the project, run by ``manage.py queues_worker`` (the
settings' ``QUEUES_WORKERS`` names ``workers``). They use Django's async ORM."""

from __future__ import annotations

from generated.billing import InvoiceCreated, InvoiceVoided, invoices_worker
from typed_queues.runtime import Boss, JobContext, Worker

from .models import Invoice, LedgerEntry


class InvoiceJobs:
    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        job.logger.info("invoice %s created", payload.invoice_id)

    async def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        invoice = await Invoice.objects.aget(pk=payload.invoice_id)
        await LedgerEntry.objects.acreate(
            invoice=invoice, amount_cents=-invoice.total_cents, note=f"voided: {payload.reason}"
        )


def workers(boss: Boss) -> list[Worker]:
    return [invoices_worker(boss, InvoiceJobs())]
