"""A value that is not one of the enum's, for an inline enum and for a $defs enum."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from generated.billing import InvoiceVoided, InvoiceVoidedReason, Money

VOIDED = InvoiceVoided(invoice_id=uuid.uuid4(), reason="frauds", voided_at=datetime.now(UTC))
PRICE = Money(amount_cents=100, currency="JPY")
REASON: InvoiceVoidedReason = "Fraud"
