"""A model built with a wrong field type, and with a field it does not have."""

from __future__ import annotations

from generated.billing import Money

PRICE = Money(amount_cents="4900", currency="EUR")
EXTRA = Money(amount_cents=1, currency="EUR", cents=1)
