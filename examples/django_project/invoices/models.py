"""The example's models: invoices, and the ledger the queue's handler writes to. (Fields are
annotated for mypy --strict without the django-stubs plugin.)"""

from __future__ import annotations

import uuid

from django.db import models


class Invoice(models.Model):
    id: models.UUIDField[uuid.UUID, uuid.UUID] = models.UUIDField(
        primary_key=True, default=uuid.uuid4
    )
    number: models.CharField[str, str] = models.CharField(max_length=30, unique=True)
    total_cents: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
    paid: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    status: models.CharField[str, str] = models.CharField(
        max_length=10, default="issued"
    )  # issued | voided

    class Meta:
        constraints = [
            # the database, not the view, refuses to void a paid invoice
            models.CheckConstraint(
                condition=~(models.Q(status="voided") & models.Q(paid=True)),
                name="paid_invoice_not_voided",
            )
        ]


class LedgerEntry(models.Model):
    invoice: models.ForeignKey[Invoice, Invoice] = models.ForeignKey(
        Invoice, on_delete=models.CASCADE
    )
    amount_cents: models.IntegerField[int, int] = models.IntegerField()
    note: models.CharField[str, str] = models.CharField(max_length=200)
