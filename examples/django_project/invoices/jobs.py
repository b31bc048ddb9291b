"""The ``billing.invoices`` handlers of the project, run by ``manage.py queues_worker`` (the
settings' ``QUEUES_WORKERS`` names ``workers``). Plain methods (``InvoicesSyncHandlers``): the
worker runs each call in a thread of its own, where Django's ORM is used as anywhere else."""

from __future__ import annotations

from django.db import connections, transaction

from generated.billing import InvoiceCreated, InvoiceVoided, invoices_worker
from typed_queues.runtime import Boss, JobContext, Worker

from .models import Invoice, LedgerEntry


class InvoiceJobs:
    def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        job.logger.info("invoice %s created", payload.invoice_id)

    def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        try:
            with transaction.atomic():
                invoice = Invoice.objects.get(pk=payload.invoice_id)
                LedgerEntry.objects.create(
                    invoice=invoice,
                    amount_cents=-invoice.total_cents,
                    note=f"voided: {payload.reason}",
                )
        finally:
            # Django keeps a connection per thread, and every call has a thread of its own
            connections.close_all()


def workers(boss: Boss) -> list[Worker]:
    return [invoices_worker(boss, InvoiceJobs())]
