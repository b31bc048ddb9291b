"""A handler class mixing an async and a plain method: neither Protocol matches."""

from __future__ import annotations

from generated.billing import InvoiceCreated, InvoiceVoided, invoices_worker
from typed_queues.runtime import Boss, JobContext, Worker


class Mixed:
    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        return None

    def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        return None


def build(boss: Boss) -> Worker:
    return invoices_worker(boss, Mixed())
