"""``max_wait`` in the catalogue: inherited from ``defaults``, ``never`` per queue, rendered into
the generated ``QueueSpec``, and validated with file:line errors like the other durations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from typed_queues.codegen.errors import CatalogueInvalid
from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.runtime import QueueSpec

CATALOGUE = """\
version: 1
defaults:
  max_wait: 2h #defaults
domains:
  shop:
    queues:
      orders:
        events:
          order-placed:
            payload: {type: object, properties: {id: {type: string}}}
      pushes:
        max_wait: 30m #pushes
        events:
          push-due:
            payload: {type: object, properties: {id: {type: string}}}
      audit:
        max_wait: never #audit
        events:
          audit-logged:
            payload: {type: object, properties: {id: {type: string}}}
"""


def _specs(text: str) -> dict[str, QueueSpec]:
    """The generated ``QueueSpec`` constants of domain ``shop``, by queue name."""
    source = generate_files_from_text(text)["shop/queues.py"]
    namespace: dict[str, Any] = {}
    exec(compile(source, "shop/queues.py", "exec"), namespace)
    return {v.name: v for v in namespace.values() if isinstance(v, QueueSpec)}


def _errors(text: str) -> list[str]:
    with pytest.raises(CatalogueInvalid) as caught:
        generate_files_from_text(text)
    return [str(error) for error in caught.value.errors]


def _line(text: str, mark: str) -> int:
    [line] = [n for n, row in enumerate(text.splitlines(), 1) if row.endswith(mark)]
    return line


def test_max_wait_is_inherited_overridden_and_turned_off() -> None:
    specs = _specs(CATALOGUE)
    assert specs["shop.orders"].max_wait == timedelta(hours=2)
    assert specs["shop.pushes"].max_wait == timedelta(minutes=30)
    assert specs["shop.audit"].max_wait is None


def test_off_by_default_and_absent_from_the_generated_spec() -> None:
    text = CATALOGUE.replace("defaults:\n  max_wait: 2h #defaults\n", "").replace(
        "        max_wait: 30m #pushes\n", ""
    )
    assert {spec.max_wait for spec in _specs(text).values()} == {None}
    assert "max_wait" not in generate_files_from_text(text)["shop/queues.py"]


@pytest.mark.parametrize(
    ("mark", "value", "path", "message"),
    [
        ("#pushes", "0s", "domains.shop.queues.pushes.max_wait", "0ms is out of range"),
        ("#pushes", "3651d", "domains.shop.queues.pushes.max_wait", "3651d is out of range"),
        ("#pushes", "-5m", "domains.shop.queues.pushes.max_wait", 'negative duration "-5m"'),
        ("#pushes", "soon", "domains.shop.queues.pushes.max_wait", 'invalid duration "soon"'),
        ("#defaults", "0ms", "defaults.max_wait", "0ms is out of range"),
        ("#defaults", "forever", "defaults.max_wait", 'invalid duration "forever"'),
    ],
)
def test_a_bad_max_wait_is_one_error_naming_file_line_and_path(
    mark: str, value: str, path: str, message: str
) -> None:
    old = "30m" if mark == "#pushes" else "2h"
    text = CATALOGUE.replace(f"max_wait: {old} {mark}", f"max_wait: {value} {mark}")
    [error] = _errors(text)
    assert error.startswith(f"queues.yaml:{_line(text, mark)}: {path}: {message}")
    if "out of range" in message:
        assert error.endswith("allowed 1s to 3650d")
    else:
        assert error.endswith("or never (no limit)")


def test_a_misspelt_key_suggests_max_wait() -> None:
    text = CATALOGUE.replace("max_wait: 30m #pushes", "max_wiat: 30m #pushes")
    assert _errors(text) == [
        f"queues.yaml:{_line(text, '#pushes')}: domains.shop.queues.pushes.max_wiat: "
        'unknown key "max_wiat" (did you mean "max_wait"?)'
    ]
