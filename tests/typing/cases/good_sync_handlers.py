"""Handler classes written with plain (sync) methods: the worker factory takes them (the
generated ``*SyncHandlers`` Protocols), and runs each call in a thread."""

from __future__ import annotations

from generated.billing import (
    InvoiceCreated,
    InvoicesSyncHandlers,
    InvoiceVoided,
    invoices_worker,
)
from typed_queues.runtime import Boss, JobContext, Worker


class InvoiceJobs:
    def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        job.logger.info("booking %s", payload.invoice_id)

    def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        job.raise_if_cancelled()


def build(boss: Boss) -> Worker:
    handlers: InvoicesSyncHandlers = InvoiceJobs()
    return invoices_worker(boss, handlers, concurrency=4)


def build_directly(boss: Boss) -> Worker:
    return invoices_worker(boss, InvoiceJobs())
