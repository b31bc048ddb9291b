"""Worker options of the typed factory are typed like the runtime Worker's."""

from __future__ import annotations

from generated.billing import InvoiceCreated, InvoiceVoided, invoices_worker
from typed_queues.runtime import Boss, JobContext, Worker


class Jobs:
    async def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None:
        return None

    async def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None:
        return None


def build(boss: Boss) -> list[Worker]:
    return [
        invoices_worker(boss, Jobs(), poll_interval="2s"),
        invoices_worker(boss, Jobs(), batch_size=2.5),
        invoices_worker(boss, Jobs(), 10),
    ]
