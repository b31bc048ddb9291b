"""The generated models at run time: enums as Literal aliases, the ``Payload`` base class and
what each object does with unknown fields, and routing on a field renamed in Python."""

from __future__ import annotations

import importlib
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codegen_helpers import run_ruff
from pydantic import BaseModel, ValidationError

from generated.billing import InvoiceVoided, Money
from generated.notifications import PushRequested
from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.codegen.writer import write_tree
from typed_queues.runtime import JobContext, JobId, UnknownEventError, make_envelope, typed

VALUES = "[alpha-one, bravo-two, charlie-three, delta-four, echo-five, foxtrot-six, golf-seven]"
CATALOGUE = f"""\
version: 1
domains:
  edge:
    $defs:
      Code: {{type: string, enum: {VALUES}, description: A long enum.}}
      Closed: {{type: object, additionalProperties: false}}
      Open: {{type: object, description: Any fields; the unknown ones are dropped.}}
    queues:
      q:
        events:
          named-like-builtins:
            entity_id: str
            payload:
              type: object
              additionalProperties: false
              required: [list, str, code]
              properties:
                list: {{type: array, items: {{type: string}}}}
                str: {{type: string}}
                code: {{$ref: "#/$defs/Code"}}
                status: {{type: string, enum: {VALUES}, default: golf-seven}}
                closed: {{$ref: "#/$defs/Closed"}}
                open: {{$ref: "#/$defs/Open"}}
                allowing:
                  type: object
                  additionalProperties: true
                  properties: {{a: {{type: string}}}}
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    root = tmp_path_factory.mktemp("edge")
    write_tree(root / "pkgedge", generate_files_from_text(CATALOGUE))
    sys.path.insert(0, str(root))
    try:
        yield root / "pkgedge", importlib.import_module("pkgedge.edge")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("pkgedge")]:
            del sys.modules[name]


def test_enum_values_are_plain_strings_and_others_are_refused() -> None:
    voided = InvoiceVoided.model_validate(
        {"invoice_id": str(uuid.uuid4()), "reason": "fraud", "voided_at": "2026-01-06T14:00:00Z"}
    )
    assert type(voided.reason) is str and voided.reason == "fraud"
    assert Money(amount_cents=1, currency="CHF").model_dump(mode="json")["currency"] == "CHF"
    with pytest.raises(ValidationError, match="Input should be 'EUR', 'USD', 'GBP' or 'CHF'"):
        Money.model_validate({"amount_cents": 1, "currency": "JPY"})
    assert PushRequested.model_fields["priority"].default == "normal"


def test_long_enums_are_laid_out_one_value_per_line_and_ruff_clean(
    edge: tuple[Path, Any],
) -> None:
    out, _module = edge
    models = (out / "edge" / "models.py").read_text()
    assert 'Code = Literal[\n    "alpha-one",\n' in models
    assert 'NamedLikeBuiltinsStatus = Literal[\n    "alpha-one",\n' in models
    assert '    "golf-seven",\n]\n"""\nA long enum.\n"""\n' in models
    assert 'status: NamedLikeBuiltinsStatus = "golf-seven"' in models
    assert max(len(line) for line in models.splitlines()) <= 100
    code, output = run_ruff(out)
    assert code == 0, output


def test_unknown_fields_are_refused_dropped_or_kept_as_the_schema_says(
    edge: tuple[Path, Any],
) -> None:
    _out, module = edge
    base = {"list": [], "str": "s", "code": "echo-five"}
    assert issubclass(module.NamedLikeBuiltins, typed.Payload)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        module.NamedLikeBuiltins.model_validate({**base, "unknown": 1})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        module.Closed.model_validate({"unknown": 1})
    assert module.Open.model_validate({"unknown": 1}).model_dump() == {}
    allowing = module.NamedLikeBuiltins.model_validate({**base, "allowing": {"b": 2}}).allowing
    assert allowing.model_dump() == {"a": None, "b": 2}


class Recorder:
    def __init__(self) -> None:
        self.payloads: list[BaseModel] = []

    async def on_named_like_builtins(self, payload: BaseModel, job: JobContext) -> None:
        self.payloads.append(payload)


async def test_routes_log_the_entity_field_renamed_in_python(
    edge: tuple[Path, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """``str`` is the model's ``str_``: the route finds the attribute behind the wire name."""
    _out, module = edge
    handlers_module = importlib.import_module("pkgedge.edge.handlers")
    recorder = Recorder()
    process = typed.router("edge.q", recorder, handlers_module._Q_ROUTES)
    data = make_envelope("named-like-builtins", {"list": ["a"], "str": "S-1", "code": "golf-seven"})
    caplog.set_level(logging.INFO, logger="queues.jobs")
    await process(JobContext(JobId(uuid.uuid4()), "edge.q", data))
    assert [type(p) for p in recorder.payloads] == [module.NamedLikeBuiltins]
    assert "Finished: named-like-builtins | ID: S-1" in caplog.messages[-1]
    with pytest.raises(UnknownEventError, match='this worker handles "named-like-builtins"'):
        await process(JobContext(JobId(uuid.uuid4()), "edge.q", make_envelope("other", {})))


def test_a_route_naming_a_field_the_model_lacks_is_refused() -> None:
    route = typed.Route("invoice-voided", InvoiceVoided, "on_invoice_voided", "invoice")
    with pytest.raises(ValueError, match='model InvoiceVoided has no field "invoice"'):
        typed.router("billing.invoices", object(), [route])
