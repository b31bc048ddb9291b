"""mypy --strict (with the pydantic plugin) checks user code against the generated SDK.

Like psycopg's tests/test_typing.py: small good and bad files under ``cases/`` (excluded from
the repository's own mypy run) are type-checked in ONE mypy run, sharing one cache directory,
and the errors of each file are asserted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "cases"
REPO = Path(__file__).resolve().parents[2]
_LINE = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")

Report = dict[str, list[tuple[int, str, str]]]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    cache = tmp_path_factory.mktemp("mypy-cache")
    files = sorted(str(path) for path in CASES.glob("*.py"))
    stdout, stderr, _status = api.run(
        ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache), *files]
    )
    assert not stderr, stderr
    found: Report = {Path(f).name: [] for f in files}
    for line in stdout.splitlines():
        match = _LINE.match(line)
        if match:
            found[Path(match["file"]).name].append(
                (int(match["line"]), match["kind"], match["text"])
            )
    return found


def errors(report: Report, name: str) -> list[tuple[int, str]]:
    return [(line, text) for line, kind, text in report[name] if kind == "error"]


def notes(report: Report, name: str) -> list[str]:
    return [text.strip() for _line, kind, text in report[name] if kind == "note"]


def test_good_handler_code_passes(report: Report) -> None:
    assert report["good_handlers.py"] == []


def test_sync_handler_classes_pass(report: Report) -> None:
    # plain methods: the generated InvoicesSyncHandlers, taken by the same worker factory
    assert report["good_sync_handlers.py"] == []


def test_a_class_mixing_async_and_sync_methods_is_rejected(report: Report) -> None:
    assert errors(report, "bad_handler_mixed.py") == [
        (
            18,
            'Argument 2 to "invoices_worker" has incompatible type "Mixed"; '
            'expected "InvoicesHandlers | InvoicesSyncHandlers"  [arg-type]',
        )
    ]
    found = notes(report, "bad_handler_mixed.py")
    # against the async Protocol, the plain method conflicts; against the sync one, the async
    assert (
        "def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) "
        "-> Coroutine[Any, Any, None]"
    ) in found
    assert "def on_invoice_voided(self, payload: InvoiceVoided, job: JobContext) -> None" in found
    assert "def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) -> None" in found


def test_wrong_payload_model_passed_to_enqueue(report: Report) -> None:
    assert errors(report, "bad_enqueue_wrong_model.py") == [
        (
            16,
            'Argument 2 to "enqueue_invoice_created" has incompatible type "InvoiceVoided"; '
            'expected "InvoiceCreated"  [arg-type]',
        )
    ]


def test_wrong_field_type_and_unknown_field_in_a_model(report: Report) -> None:
    assert errors(report, "bad_model_field_type.py") == [
        (
            7,
            'Argument "amount_cents" to "Money" has incompatible type "str"; expected "int"  '
            "[arg-type]",
        ),
        (8, 'Unexpected keyword argument "cents" for "Money"  [call-arg]'),
    ]


def test_handler_class_missing_a_method(report: Report) -> None:
    assert errors(report, "bad_handler_missing_method.py") == [
        (
            15,
            'Argument 2 to "invoices_worker" has incompatible type "OnlyCreated"; '
            'expected "InvoicesHandlers | InvoicesSyncHandlers"  [arg-type]',
        )
    ]
    found = notes(report, "bad_handler_missing_method.py")
    assert found[:2] == [
        '"OnlyCreated" is missing following "InvoicesHandlers" protocol member:',
        "on_invoice_voided",
    ]


def test_handler_method_with_the_wrong_payload_type(report: Report) -> None:
    assert errors(report, "bad_handler_wrong_payload.py") == [
        (
            18,
            'Argument 2 to "invoices_worker" has incompatible type "Mixed"; '
            'expected "InvoicesHandlers | InvoicesSyncHandlers"  [arg-type]',
        )
    ]
    found = notes(report, "bad_handler_wrong_payload.py")
    assert 'Following member(s) of "Mixed" have conflicts:' in found
    assert (
        "def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) "
        "-> Coroutine[Any, Any, None]"
    ) in found
    assert (
        "def on_invoice_created(self, payload: InvoiceVoided, job: JobContext) "
        "-> Coroutine[Any, Any, None]"
    ) in found


def test_worker_options_are_keyword_only_and_typed(report: Report) -> None:
    assert errors(report, "bad_worker_options.py") == [
        (
            19,
            'Argument "poll_interval" to "invoices_worker" has incompatible type "str"; '
            'expected "timedelta | float | None"  [arg-type]',
        ),
        (
            20,
            'Argument "batch_size" to "invoices_worker" has incompatible type "float"; '
            'expected "int | None"  [arg-type]',
        ),
        (21, 'Too many positional arguments for "invoices_worker"  [call-arg]'),
    ]


def test_enum_fields_accept_their_values_as_written(report: Report) -> None:
    assert report["good_enum_literals.py"] == []


def test_enum_fields_reject_any_other_value(report: Report) -> None:
    reasons = "Literal['duplicate', 'customer-request', 'fraud', 'billing-error']"
    assert errors(report, "bad_enum_literal.py") == [
        (
            10,
            'Argument "reason" to "InvoiceVoided" has incompatible type "Literal[\'frauds\']"; '
            f'expected "{reasons}"  [arg-type]',
        ),
        (
            11,
            'Argument "currency" to "Money" has incompatible type "Literal[\'JPY\']"; '
            "expected \"Literal['EUR', 'USD', 'GBP', 'CHF']\"  [arg-type]",
        ),
        (
            12,
            "Incompatible types in assignment (expression has type \"Literal['Fraud']\", "
            f'variable has type "{reasons}")  [assignment]',
        ),
    ]


# -- events --


def test_a_subscriber_gets_the_publishing_domains_model(report: Report) -> None:
    assert report["good_subscriber.py"] == []


def test_a_subscriber_method_with_the_wrong_model_is_rejected(report: Report) -> None:
    assert errors(report, "bad_subscriber_wrong_model.py") == [
        (
            23,
            'Argument 2 to "billing_mail_worker" has incompatible type "Receipts"; '
            'expected "BillingMailHandlers | BillingMailSyncHandlers"  [arg-type]',
        )
    ]
    found = notes(report, "bad_subscriber_wrong_model.py")
    assert (
        "def on_invoice_created(self, payload: InvoiceCreated, job: JobContext) "
        "-> Coroutine[Any, Any, None]"
    ) in found
    assert (
        "def on_invoice_created(self, payload: InvoiceVoided, job: JobContext) "
        "-> Coroutine[Any, Any, None]"
    ) in found
