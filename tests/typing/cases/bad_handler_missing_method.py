"""A handler class missing one event's method, passed to the typed worker factory."""

from __future__ import annotations

from generated.billing import InvoiceCreated, invoices_worker
from typed_queues.runtime import Boss, JobContext, Worker


class OnlyCreated:
    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        return None


def build(boss: Boss) -> Worker:
    return invoices_worker(boss, OnlyCreated())
