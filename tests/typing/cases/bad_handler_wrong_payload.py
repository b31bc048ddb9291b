"""A handler method whose payload parameter has the wrong type."""

from __future__ import annotations

from generated.billing import InvoiceVoided, invoices_worker
from typed_queues.runtime import Boss, JobContext, Worker


class Mixed:
    async def on_invoice_created(self, payload: InvoiceVoided, job: JobContext) -> None:
        return None

    async def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        return None


def build(boss: Boss) -> Worker:
    return invoices_worker(boss, Mixed())
