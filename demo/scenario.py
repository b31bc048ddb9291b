"""The demo's jobs: realistic payloads of three domains, and what should become of them.

Everything is enqueued through the generated, typed ``enqueue_*`` functions, except one
deliberately malformed webhook sent through the untyped ``Boss.send`` (as a buggy producer in
another language might) to show that an invalid payload fails its job for good and lands in the
dead-letter queue instead of crashing the worker or being silently completed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import AnyUrl

from generated.billing import (
    Address,
    Customer,
    InvoiceCreated,
    InvoiceVoided,
    LineItem,
    Money,
    PaymentCaptured,
    PaymentCapturedCard,
    PaymentCapturedMethod,
    RefundRequested,
    enqueue_invoice_created_many,
    enqueue_invoice_voided,
    enqueue_payment_captured,
    enqueue_refund_requested,
)
from generated.ingestion import (
    FileUploaded,
    FileUploadedOptions,
    SourceSystem,
    UploadedFile,
    WebhookReceived,
    enqueue_file_uploaded,
    enqueue_webhook_received,
)
from generated.notifications import (
    EmailRequested,
    EmailRequestedTemplate,
    PushRequested,
    Recipient,
    enqueue_email_requested_many,
    enqueue_push_requested,
)
from typed_queues.runtime import Boss, JobId, make_envelope

from .handlers import BATCH_SIZE, FLAKY_DOMAIN, REVOKED_PREFIX

__all__ = ["Expected", "enqueue_all", "expected_outcome"]

_NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
_UPLOAD_ROWS = 5


@dataclass(frozen=True)
class Expected:
    """What should become of one queue's jobs."""

    completed: int
    failed: int = 0
    retried: int = 0  # jobs that needed more than one attempt
    dead_lettered: int = 0


def expected_outcome() -> dict[str, Expected]:
    """Per worked queue: the outcome that makes the demo a success."""
    batches = -(-_UPLOAD_ROWS // BATCH_SIZE)
    return {
        "billing.invoices": Expected(completed=5),
        "billing.payments": Expected(completed=4),
        # 4 requested, and 3 payment receipts each sent in its payment job's transaction
        "notifications.email": Expected(completed=7, retried=1),
        # copies of billing's 4 invoice-created and 3 payment-captured (fan-out); the app
        # adds the reminder runs its schedule fired
        "notifications.billing-mail": Expected(completed=7),
        "notifications.push": Expected(completed=2, failed=1, retried=1, dead_lettered=1),
        "ingestion.imports": Expected(completed=1 + batches),
        "ingestion.webhooks": Expected(completed=2, failed=1, dead_lettered=1),
    }


@dataclass
class Enqueued:
    """Job ids the demo enqueued, by queue."""

    ids: dict[str, list[JobId]] = field(default_factory=dict)

    def add(self, queue: str, *job_ids: JobId) -> None:
        self.ids.setdefault(queue, []).extend(job_ids)


def _eur(cents: int) -> Money:
    return Money(amount_cents=cents, currency="EUR")


def _invoice(number: int, customer: Customer, quantity: int, unit_cents: int) -> InvoiceCreated:
    line = LineItem(
        sku="PLAN-PRO-M",
        description="Pro plan (monthly)",
        quantity=quantity,
        unit_price=_eur(unit_cents),
        tax_rate_bp=1900,
    )
    total = quantity * unit_cents + quantity * unit_cents * 1900 // 10_000
    return InvoiceCreated(
        invoice_id=uuid.uuid4(),
        number=f"INV-{number:06d}",
        customer=customer,
        lines=[line],
        total=_eur(total),
        issued_at=_NOW,
        due_on=date(2026, 2, 4),
        notes=None,
    )


def _customers() -> list[Customer]:
    return [
        Customer(
            customer_id=uuid.uuid4(),
            email="ap@acme.example",
            name="ACME Trading GmbH",
            vat_id="DE123456789",
            billing_address=Address(
                line1="Hauptstrasse 1", city="Berlin", postal_code="10115", country="DE"
            ),
        ),
        Customer(customer_id=uuid.uuid4(), email="billing@globex.example", name="Globex Ltd"),
    ]


async def _billing(boss: Boss, out: Enqueued) -> None:
    acme, globex = _customers()
    invoices = [
        _invoice(4217, acme, 3, 4900),
        _invoice(4218, globex, 1, 19900),
        _invoice(4219, acme, 10, 990),
        _invoice(4220, globex, 2, 4900),
    ]
    out.add("billing.invoices", *await enqueue_invoice_created_many(boss, invoices))
    voided = InvoiceVoided(
        invoice_id=invoices[3].invoice_id,
        reason="duplicate",
        voided_at=_NOW + timedelta(hours=1),
        voided_by="jane.doe@billing.example",
    )
    out.add("billing.invoices", await enqueue_invoice_voided(boss, voided))
    methods: tuple[PaymentCapturedMethod, ...] = ("card", "sepa-debit", "wallet")
    for invoice, method in zip(invoices[:3], methods, strict=True):
        payment = PaymentCaptured(
            payment_id=uuid.uuid4(),
            invoice_id=invoice.invoice_id,
            amount=invoice.total,
            method=method,
            captured_at=_NOW + timedelta(days=15),
            card=PaymentCapturedCard(brand="visa", last4="4242") if method == "card" else None,
        )
        out.add("billing.payments", await enqueue_payment_captured(boss, payment))
    refund = RefundRequested(
        refund_id=uuid.uuid4(),
        payment_id=uuid.uuid4(),
        amount=_eur(4900),
        requested_by="support@acme.example",
        reason="One seat was cancelled in the first week.",
    )
    out.add("billing.payments", await enqueue_refund_requested(boss, refund))


async def _notifications(boss: Boss, out: Enqueued) -> None:
    user = uuid.uuid4()
    recipients: list[tuple[str, str | None, str | None, EmailRequestedTemplate]] = [
        ("ap@acme.example", "Accounts payable", "de-AT", "invoice-issued"),
        ("new.user@globex.example", "New User", "en", "welcome"),
        ("ops@acme.example", None, None, "payment-receipt"),
        (f"someone@{FLAKY_DOMAIN}", "Flaky Mailbox", "en", "weekly-digest"),
    ]
    mails = [
        EmailRequested(
            message_id=uuid.uuid4(),
            recipient=Recipient(user_id=user, email=address, display_name=name, locale=locale),
            template=template,
            variables={"invoice_number": "INV-004217"},
        )
        for address, name, locale, template in recipients
    ]
    out.add("notifications.email", *await enqueue_email_requested_many(boss, mails))
    for tokens in (
        ["fcm-token-0123456789abcdef"],
        ["apns-token-aabbccddeeff0011", "fcm-token-fedcba9876543210"],
        [f"{REVOKED_PREFIX}apns-token-5566778899"],
    ):
        push = PushRequested(
            message_id=uuid.uuid4(),
            user_id=user,
            device_tokens=tokens,
            title="Payment received",
            body="We received 174.93 EUR for INV-004217. Thank you!",
            deep_link=AnyUrl("acme://invoices/INV-004217"),
            time_to_live=timedelta(hours=1),
        )
        out.add("notifications.push", await enqueue_push_requested(boss, push))


async def _ingestion(boss: Boss, out: Enqueued) -> None:
    upload = FileUploaded(
        upload_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        uploaded_by="ops@acme.example",
        file=UploadedFile(
            name="customers-2026-01.csv",
            size_bytes=482113,
            sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            content_type="text/csv",
            url=AnyUrl("https://uploads.example.com/t/1a2b/customers-2026-01.csv"),
        ),
        received_at=_NOW,
        options=FileUploadedOptions(delimiter=";", has_header=True),
    )
    out.add("ingestion.imports", await enqueue_file_uploaded(boss, upload))
    hooks: tuple[tuple[SourceSystem, str], ...] = (
        ("stripe", "charge.refunded"),
        ("hubspot", "contact.created"),
    )
    for source, topic in hooks:
        hook = WebhookReceived(
            delivery_id=uuid.uuid4(),
            source=source,
            topic=topic,
            received_at=_NOW,
            host="hooks.acme.example",
            signature_valid=True,
            body={"id": "evt_1QaB2c", "type": topic},
        )
        out.add("ingestion.webhooks", await enqueue_webhook_received(boss, hook))
    # A producer that skipped validation: wrong id format, unknown source, no body.
    poison = {"delivery_id": "42", "source": "ftp", "topic": "x", "received_at": "yesterday"}
    out.add(
        "ingestion.webhooks",
        await boss.send("ingestion.webhooks", make_envelope("webhook-received", poison)),
    )


async def enqueue_all(boss: Boss) -> Enqueued:
    """Enqueue every job of the demo; return their ids by queue."""
    out = Enqueued()
    await _billing(boss, out)
    await _notifications(boss, out)
    await _ingestion(boss, out)
    return out
