"""A payload of the wrong model passed to an enqueue function."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from generated.billing import InvoiceVoided, enqueue_invoice_created
from typed_queues.runtime import Boss, JobId


async def send(boss: Boss) -> JobId:
    voided = InvoiceVoided(
        invoice_id=uuid.uuid4(), reason="fraud", voided_at=datetime.now(UTC), voided_by=None
    )
    return await enqueue_invoice_created(boss, voided)
