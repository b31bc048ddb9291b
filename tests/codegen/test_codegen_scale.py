"""Large and extreme catalogues: 200 events, and every name at its length limit."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml_text
from codegen_helpers import run_ruff

from typed_queues.codegen import names
from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.codegen.writer import write_tree


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path; generated packages written under it can be imported."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.startswith(("pkg200", "pkglong"))]:
            del sys.modules[module]


def test_two_hundred_events(importable: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = yaml_text.catalogue(domains=4, queues=5, events=10)
    started = time.perf_counter()
    files = generate_files_from_text(text)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n200-event catalogue generated in {elapsed:.2f} s ({len(files)} files)")
    enqueue = [line for f in files.values() for line in f.splitlines()]
    assert sum(line.startswith("async def enqueue_") for line in enqueue) == 400
    out = importable / "pkg200"
    write_tree(out, files)
    code, output = run_ruff(out)
    assert code == 0, output
    package: Any = importlib.import_module("pkg200")
    assert len(package.QUEUES) == 4 * 5 + 4  # plus one dead-letter queue per domain
    domain = importlib.import_module("pkg200.domain_0")
    model = domain.Domain0Queue0Event0
    payload = model.model_validate(yaml_text.example())
    assert payload.entity_ref == "E-1"


def test_names_at_their_limits(importable: Path) -> None:
    domain = "d" * (names.DB_NAME_MAX - names.QUEUE_MAX - 1)
    queue = "q" * names.QUEUE_MAX
    event = "e" + "-e" * ((names.EVENT_MAX - 1) // 2)
    field = "f" * names.PROPERTY_MAX
    cls = "C" * 64
    text = f"""\
version: 1
domains:
  {domain}:
    description: {"word " * 60}
    $defs:
      {cls}: {{type: object, properties: {{{field}: {{type: string}}}}}}
    queues:
      {queue}:
        description: {"long " * 60}
        dead_letter: dead
        events:
          {event}:
            description: {"text " * 60}
            entity_id: {field}
            payload:
              type: object
              required: [{field}, nested]
              properties:
                {field}: {{type: string, maxLength: 10}}
                nested: {{$ref: "#/$defs/{cls}"}}
      dead: {{}}
"""
    files = generate_files_from_text(text)
    assert max(len(line) for f in files.values() for line in f.splitlines()) <= 100
    out = importable / "pkglong"
    write_tree(out, files)
    code, output = run_ruff(out)
    assert code == 0, output
    package: Any = importlib.import_module("pkglong")
    assert package.QUEUES[1].name == f"{domain}.{queue}"
