"""``POST /invoices/<id>/void``: void an invoice and enqueue ``invoice-voided`` in one
``transaction.atomic()`` block, on Django's own connection: when the save fails (a paid
invoice: the database's CHECK constraint), the job rolls back with it."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST
from pydantic import ValidationError

from generated.billing import InvoiceVoided, enqueue_invoice_voided_sync
from typed_queues.runtime.integrations.django import psycopg_connection, sync_boss

from .models import Invoice


@require_POST
def void_invoice(request: HttpRequest, invoice_id: str) -> JsonResponse:
    try:
        with transaction.atomic():
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
            event = InvoiceVoided.model_validate(
                {
                    "invoice_id": invoice.id,
                    "reason": request.POST.get("reason", "customer-request"),
                    "voided_at": timezone.now(),
                }
            )
            job_id = enqueue_invoice_voided_sync(sync_boss(), event, conn=psycopg_connection())
            invoice.status = "voided"
            invoice.save()  # refused for a paid invoice: the job above rolls back with it
    except Invoice.DoesNotExist:
        return JsonResponse({"error": "no such invoice"}, status=404)
    except ValidationError as exc:
        return JsonResponse({"error": exc.errors(include_url=False)[0]["msg"]}, status=400)
    except IntegrityError:
        return JsonResponse({"error": "a paid invoice cannot be voided"}, status=409)
    return JsonResponse({"voided": str(invoice.id), "job": str(job_id)})
