"""Build large catalogues as YAML text for the scale tests."""

from __future__ import annotations

from typing import Any

__all__ = ["catalogue", "example"]

_DEFS = """\
    $defs:
      Money:
        type: object
        additionalProperties: false
        required: [amount_cents, currency]
        properties:
          amount_cents: {type: integer, minimum: 0}
          currency: {type: string, enum: [EUR, USD, GBP]}
      Party:
        type: object
        required: [party_id, email]
        properties:
          party_id: {type: string, format: uuid}
          email: {type: string, format: email}
          website: {type: string, format: uri}
"""

_EVENT = """\
          {event}:
            description: Event {event} of queue {queue}; its payload is typical of the catalogue.
            entity_id: entity_ref
            payload:
              type: object
              additionalProperties: false
              required: [entity_ref, occurred_at, amount, lines]
              properties:
                entity_ref: {{type: string, pattern: "^E-[0-9]+$"}}
                occurred_at: {{type: string, format: date-time}}
                due_on: {{type: string, format: date}}
                amount: {{$ref: "#/$defs/Money"}}
                party: {{$ref: "#/$defs/Party"}}
                status: {{type: string, enum: [open, closed, in-review]}}
                lines:
                  type: array
                  minItems: 1
                  items:
                    type: object
                    additionalProperties: false
                    required: [sku, quantity]
                    properties:
                      sku: {{type: string, maxLength: 32}}
                      quantity: {{type: integer, minimum: 1}}
                notes: {{type: string, maxLength: 500}}
"""


def catalogue(*, domains: int, queues: int, events: int) -> str:
    """``domains`` x ``queues`` x ``events`` events, plus one dead-letter queue per domain."""
    parts = ["version: 1\ndomains:\n"]
    for d in range(domains):
        parts.append(f"  domain-{d}:\n    description: Domain number {d}.\n")
        parts.append(_DEFS)
        parts.append("    queues:\n")
        for q in range(queues):
            queue = f"queue-{q}"
            parts.append(f"      {queue}:\n        retry: {{limit: {q + 1}, delay: 2s}}\n")
            parts.append("        dead_letter: dead\n        events:\n")
            for e in range(events):
                event = f"domain-{d}-queue-{q}-event-{e}"
                parts.append(_EVENT.format(event=event, queue=queue))
        parts.append("      dead: {retention: 30d}\n")
    return "".join(parts)


def example() -> dict[str, Any]:
    return {
        "entity_ref": "E-1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "amount": {"amount_cents": 100, "currency": "EUR"},
        "lines": [{"sku": "A", "quantity": 1}],
    }
