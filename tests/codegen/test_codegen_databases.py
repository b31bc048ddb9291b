"""``database:`` on a domain and ``delivery: at-least-once`` on a subscription: what the
generated code routes, and the catalogue errors (with file:line) for what cannot work."""

from __future__ import annotations

from typing import Any

import pytest

from typed_queues.codegen.errors import CatalogueInvalid
from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.runtime import RemoteSubscription

CATALOGUE = """\
version: 1
domains:
  ledger:
    database: ledger
    queues:
      entries:
        dead_letter: entries-dead
        events:
          entry-booked:
            payload:
              type: object
              required: [entry_id]
              properties: {entry_id: {type: string}}
      entries-dead: {}
  mail:
    queues:
      receipts:
        dead_letter: bounced
        subscribe:
          - {event: ledger.entry-booked, delivery: at-least-once}
      bounced: {}
"""


def _module(files: dict[str, str], path: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(files[path], path, "exec"), namespace)
    return namespace


def errors_of(text: str) -> list[str]:
    with pytest.raises(CatalogueInvalid) as caught:
        generate_files_from_text(text)
    return [str(error) for error in caught.value.errors]


def test_specs_name_their_database_and_remote_subscriptions() -> None:
    files = generate_files_from_text(CATALOGUE)
    ledger = _module(files, "ledger/queues.py")
    assert ledger["ENTRIES"].database == "ledger"
    assert ledger["ENTRIES_DEAD"].database == "ledger"
    receipts = _module(files, "mail/queues.py")["RECEIPTS"]
    assert receipts.database is None and receipts.subscribe == ()
    assert receipts.remote_subscriptions == (RemoteSubscription("ledger.entry-booked", "ledger"),)
    assert 'declare_databases("ledger")' in files["__init__.py"]


def test_sends_and_workers_are_routed_and_relays_attached() -> None:
    files = generate_files_from_text(CATALOGUE)
    assert 'boss.database("ledger"),\n        "ledger.entries",' in files["ledger/enqueue.py"]
    handlers = files["mail/handlers.py"]
    assert "home = boss\n" in handlers
    assert 'home.relay_from(boss.database("ledger"), "mail.receipts")' in handlers
    assert "return typed.build_worker(\n        home," in handlers


def test_one_database_generates_no_routing() -> None:
    files = generate_files_from_text(
        CATALOGUE.replace("    database: ledger\n", "").replace(
            "{event: ledger.entry-booked, delivery: at-least-once}", "ledger.entry-booked"
        )
    )
    assert "database" not in files["ledger/enqueue.py"] + files["mail/handlers.py"]
    assert "declare_databases" not in files["__init__.py"]


def test_an_atomic_subscription_across_databases_is_refused() -> None:
    text = CATALOGUE.replace(
        "{event: ledger.entry-booked, delivery: at-least-once}", "ledger.entry-booked"
    )
    assert errors_of(text) == [
        "queues.yaml:20: domains.mail.queues.receipts.subscribe[0]: subscribe entry "
        '"ledger.entry-booked": domain "ledger" is on database "ledger" and this queue on the '
        "default database; a send cannot write to two servers in one transaction, so the copy "
        "cannot be atomic with the send. Write {event: ledger.entry-booked, delivery: "
        "at-least-once} (an outbox on \"ledger\"'s database, relayed by this queue's workers: "
        "each copy arrives at least once and is written once), or put both domains on one "
        "database"
    ]


def test_a_bad_database_name_is_reported() -> None:
    assert errors_of(CATALOGUE.replace("database: ledger", "database: Ledger-1")) == [
        'queues.yaml:4: domains.ledger.database: database "Ledger-1": write a lowercase name '
        'of letters, digits and "_" starting with a letter, at most 40 characters (its DSN is '
        "read from QUEUES_DSN_<NAME>, e.g. database: ledger -> QUEUES_DSN_LEDGER)"
    ]


def test_bad_delivery_values_and_keys_are_reported() -> None:
    text = CATALOGUE.replace("delivery: at-least-once", "delivery: exactly-once").replace(
        "{event: ledger", "{evnt: ledger"
    )
    assert errors_of(text) == [
        "queues.yaml:20: domains.mail.queues.receipts.subscribe[0].delivery: input should be "
        "'atomic' or 'at-least-once'",
        "queues.yaml:20: domains.mail.queues.receipts.subscribe[0].event: missing required key "
        '"event"',
        'queues.yaml:20: domains.mail.queues.receipts.subscribe[0].evnt: unknown key "evnt" '
        '(did you mean "event"?)',
    ]


def test_a_dead_letter_queue_on_another_database_is_refused() -> None:
    text = CATALOGUE.replace("dead_letter: bounced", "dead_letter: ledger.entries-dead")
    assert errors_of(text) == [
        "queues.yaml:18: domains.mail.queues.receipts.dead_letter: dead_letter "
        '"ledger.entries-dead" is on database "ledger" and this queue on the default '
        "database: a job is moved to its dead-letter queue in the statement that fails it, "
        "which needs both on one server; pick a dead-letter queue of a domain on the same "
        "database"
    ]
