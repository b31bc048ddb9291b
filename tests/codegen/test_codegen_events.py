"""Events in the catalogue: ``subscribe`` (fan-out), ``archive`` and domain ``schedules``,
rendered into the generated specs and handlers, and validated with file:line errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from typed_queues.codegen.errors import CatalogueInvalid
from typed_queues.codegen.generator import generate_files_from_text

CATALOGUE = """\
version: 1
domains:
  billing:
    queues:
      invoices:
        archive: 30d
        events:
          invoice-created:
            entity_id: invoice_id
            payload:
              type: object
              required: [invoice_id]
              properties: {invoice_id: {type: string}}
          invoice-voided:
            payload: {type: object, properties: {invoice_id: {type: string}}}
  mail:
    queues:
      outbox:
        subscribe: [billing.invoice-created]
        events:
          digest-due:
            payload:
              type: object
              additionalProperties: false
              required: [days]
              properties: {days: {type: integer, minimum: 1}}
      audit:
        subscribe: [billing.invoice-created, billing.invoice-voided]
    schedules:
      weekly-digest:
        event: digest-due
        cron: "0 8 * * MON"
        timezone: Europe/Paris
        catch_up: all
        payload: {days: 7}
      pulse:
        event: digest-due
        every: 30s
        payload: {days: 1}
"""


def _module(files: dict[str, str], path: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(files[path], path, "exec"), namespace)
    return namespace


def test_specs_carry_subscriptions_archive_and_schedules() -> None:
    files = generate_files_from_text(CATALOGUE)
    mail = _module(files, "mail/queues.py")
    assert mail["OUTBOX"].subscribe == ("billing.invoice-created",)
    assert mail["AUDIT"].subscribe == ("billing.invoice-created", "billing.invoice-voided")
    weekly, pulse = mail["OUTBOX"].schedules
    assert (weekly.name, weekly.event, weekly.cron, weekly.timezone, weekly.catch_up) == (
        "mail.weekly-digest",
        "digest-due",
        "0 8 * * MON",
        "Europe/Paris",
        "all",
    )
    assert dict(weekly.data) == {"days": 7} and weekly.queue == "mail.outbox"
    assert pulse.every == timedelta(seconds=30) and pulse.catch_up == "latest"
    assert _module(files, "billing/queues.py")["INVOICES"].archive == timedelta(days=30)
    assert "schedules=" not in files["billing/queues.py"]  # only what is set is rendered


def test_a_subscriber_gets_methods_and_routes_with_the_publishers_models() -> None:
    files = generate_files_from_text(CATALOGUE)
    handlers = files["mail/handlers.py"]
    assert "from ..billing import models as billing_models" in handlers
    assert "payload: billing_models.InvoiceCreated" in handlers
    assert "payload: billing_models.InvoiceVoided" in handlers
    # a queue without events of its own gets a Protocol and a worker for its subscriptions
    assert "class AuditHandlers(Protocol):" in handlers
    assert "def audit_worker(" in handlers
    assert 'typed.Route(\n        "invoice-created",\n        billing_models.InvoiceCreated,' in (
        handlers
    )


def errors_of(text: str) -> list[str]:
    with pytest.raises(CatalogueInvalid) as caught:
        generate_files_from_text(text)
    return [str(error) for error in caught.value.errors]


def test_unknown_subscriptions_are_reported_with_their_line() -> None:
    text = CATALOGUE.replace(
        "subscribe: [billing.invoice-created]",
        "subscribe: [billing.invoice-creatd, biling.invoice-created, invoice-created]",
    )
    assert errors_of(text) == [
        "queues.yaml:19: domains.mail.queues.outbox.subscribe[0]: subscribe entry "
        '"billing.invoice-creatd": no event "invoice-creatd" in domain "billing" '
        '(did you mean "invoice-created"?)',
        "queues.yaml:19: domains.mail.queues.outbox.subscribe[1]: subscribe entry "
        '"biling.invoice-created": no domain "biling" (did you mean "billing"?)',
        "queues.yaml:19: domains.mail.queues.outbox.subscribe[2]: subscribe entry "
        '"invoice-created": write "domain.event", e.g. "billing.invoice-created"',
    ]


def test_handler_name_clashes_and_own_events_are_refused() -> None:
    clash = CATALOGUE.replace("digest-due:", "invoice-created:").replace(
        "event: digest-due", "event: invoice-created"
    )
    assert errors_of(clash) == [
        "queues.yaml:19: domains.mail.queues.outbox.subscribe[0]: handler name clash: "
        'subscribing to "billing.invoice-created" needs the method "on_invoice_created", '
        'which its own event "invoice-created" already has on queue "outbox"'
    ]
    own = CATALOGUE.replace(
        "        archive: 30d\n", "        subscribe: [billing.invoice-voided]\n"
    )
    assert errors_of(own) == [
        "queues.yaml:6: domains.billing.queues.invoices.subscribe[0]: subscribe entry "
        '"billing.invoice-voided": the event is the queue\'s own; a queue receives its own '
        "events already"
    ]


def test_bad_schedules_are_reported_with_their_line() -> None:
    text = (
        CATALOGUE.replace('cron: "0 8 * * MON"', 'cron: "0 8 * *"')
        .replace("timezone: Europe/Paris", "timezone: Europe/Pariss")
        .replace("every: 30s\n", "every: 30s\n        cron: '* * * * *'\n")
        .replace("event: digest-due\n        every", "event: digest-gone\n        every")
    )
    assert errors_of(text) == [
        'queues.yaml:32: domains.mail.schedules.weekly-digest.cron: invalid cron expression "0 8 '
        '* *" (Wrong number of fields): write 5 fields, minute hour day-of-month month '
        'day-of-week, e.g. "0 3 * * *"',
        "queues.yaml:33: domains.mail.schedules.weekly-digest.timezone: unknown time zone "
        '"Europe/Pariss": use an IANA name such as UTC or Europe/Paris',
        'queues.yaml:36: domains.mail.schedules.pulse: give "cron" (e.g. "0 3 * * *") or '
        '"every" (e.g. 10m), one of the two',
        'queues.yaml:37: domains.mail.schedules.pulse.event: no event "digest-gone" in domain '
        '"mail" (did you mean "digest-due"?)',
    ]


def test_a_schedule_payload_is_checked_against_its_events_model() -> None:
    text = CATALOGUE.replace("payload: {days: 7}", "payload: {days: 0, weeks: 1}")
    assert errors_of(text) == [
        "queues.yaml:35: domains.mail.schedules.weekly-digest.payload.days: payload does not "
        "match the payload schema: days: Input should be greater than or equal to 1",
        "queues.yaml:35: domains.mail.schedules.weekly-digest.payload.weeks: payload does not "
        "match the payload schema: weeks: Extra inputs are not permitted",
    ]
