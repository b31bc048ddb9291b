"""Every JSON Schema format the catalogue accepts imports and validates at run time."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.codegen.schemas import FORMATS
from typed_queues.codegen.writer import write_tree
from typed_queues.runtime.typed import envelope, envelopes

VALID: dict[str, list[Any]] = {
    "date": ["2026-02-28"],
    "date-time": ["2026-02-28T10:00:00Z", "2026-02-28T10:00:00.5+01:00"],
    "duration": ["PT1H", "P1DT2H"],
    "email": ["ops@example.com"],
    "hostname": ["hooks.example.com", "localhost"],
    "ipv4": ["203.0.113.7"],
    "ipv6": ["2001:db8::1"],
    "time": ["10:15:30"],
    "uri": ["https://example.com/a?b=c", "acme://invoices/1"],
    "uuid": ["7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"],
}
INVALID: dict[str, list[Any]] = {
    "date": ["2026-02-30", "yesterday"],
    "date-time": ["2026-02-28T10:00:00", "2026-02-28"],  # an offset is required
    "duration": ["soon"],
    "email": ["not-an-email", "a@"],
    "hostname": ["-bad-.example.com", "under_score.example.com"],
    "ipv4": ["300.1.1.1"],
    "ipv6": ["2001:db8::g"],
    "time": ["25:00:00"],
    "uri": ["not a uri", "/relative/path"],
    "uuid": ["7f1c2d3e", "not-a-uuid"],
}


def _field(fmt: str) -> str:
    return "f_" + fmt.replace("-", "_")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    properties = "\n".join(
        f"                {_field(fmt)}: {{type: string, format: {fmt}}}" for fmt in sorted(FORMATS)
    )
    text = f"""\
version: 1
domains:
  formats:
    queues:
      all:
        events:
          every-format:
            payload:
              type: object
              additionalProperties: false
              properties:
{properties}
"""
    root = tmp_path_factory.mktemp("formats")
    write_tree(root / "pkgformats", generate_files_from_text(text))
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("pkgformats.formats").EveryFormat
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith("pkgformats")]:
            del sys.modules[name]


def test_every_allowed_format_has_cases() -> None:
    assert set(VALID) == set(FORMATS) == set(INVALID)


@pytest.mark.parametrize(("fmt", "value"), [(f, v) for f in sorted(VALID) for v in VALID[f]])
def test_valid_values_pass_and_round_trip_through_json(model: Any, fmt: str, value: Any) -> None:
    payload = model.model_validate({_field(fmt): value})
    dumped = payload.model_dump(mode="json")[_field(fmt)]
    assert isinstance(dumped, str)
    assert model.model_validate({_field(fmt): dumped}) == payload


@pytest.mark.parametrize(("fmt", "value"), [(f, v) for f in sorted(INVALID) for v in INVALID[f]])
def test_invalid_values_are_rejected(model: Any, fmt: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({_field(fmt): value})
    assert caught.value.errors()[0]["loc"] == (_field(fmt),)


def test_additional_properties_false_forbids_extra_fields(model: Any) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({"unexpected": 1})


def test_fields_named_like_builtins_keep_their_wire_names(tmp_path: Path) -> None:
    """datamodel-code-generator renames ``list`` to ``list_`` (alias "list"): the runtime's
    send helpers dump by alias, so the worker's validation sees the declared names."""
    text = """\
version: 1
domains:
  wire:
    queues:
      q:
        events:
          named-like-builtins:
            payload:
              type: object
              required: [list, str]
              properties:
                list: {type: array, items: {type: string}}
                str: {type: string}
                type: {type: string}
"""
    files = generate_files_from_text(text)
    assert (
        'typed.send_event(\n        boss,\n        "wire.q",\n        "named-like-builtins",'
        in (files["wire/enqueue.py"])
    )
    write_tree(tmp_path / "pkgwire", files)
    sys.path.insert(0, str(tmp_path))
    try:
        model = importlib.import_module("pkgwire.wire").NamedLikeBuiltins
        payload = model.model_validate({"list": ["a"], "str": "b", "type": "c"})
        for dumped in (
            envelope("named-like-builtins", payload, None)["payload"],
            envelopes("named-like-builtins", [payload], None)[0]["payload"],
        ):
            assert dumped == {"list": ["a"], "str": "b", "type": "c"}
            assert model.model_validate(dumped) == payload
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("pkgwire")]:
            del sys.modules[name]
