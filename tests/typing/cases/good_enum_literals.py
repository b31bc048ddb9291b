"""Enum fields take the catalogue's values as written: each enum is a Literal type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import assert_type

from generated.billing import Currency, InvoiceVoided, InvoiceVoidedReason, Money
from generated.notifications import PushRequestedPriority


def build() -> list[InvoiceVoided]:
    reason: InvoiceVoidedReason = "billing-error"
    return [
        InvoiceVoided(invoice_id=uuid.uuid4(), reason="fraud", voided_at=datetime.now(UTC)),
        InvoiceVoided(invoice_id=uuid.uuid4(), reason=reason, voided_at=datetime.now(UTC)),
    ]


def price(cents: int) -> Money:
    return Money(amount_cents=cents, currency="CHF")


def read(payload: InvoiceVoided, money: Money) -> bool:
    assert_type(payload.reason, InvoiceVoidedReason)
    assert_type(money.currency, Currency)
    urgent: PushRequestedPriority = "high"
    return payload.reason == "customer-request" or urgent == "high"
