"""Large and extreme catalogues: 200 events, and every name at its length limit."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml_text
from codegen_helpers import run_module, run_ruff

from typed_queues.codegen import names, parallel
from typed_queues.codegen.generator import generate_files, generate_files_from_text
from typed_queues.codegen.payloads import ModelsJob, build_module
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


def test_parallel_and_serial_generation_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big catalogues are generated in worker processes; the bytes must not depend on it."""
    catalogue = tmp_path / "big.yaml"
    catalogue.write_text(yaml_text.catalogue(domains=3, queues=2, events=8))
    assert catalogue.stat().st_size >= parallel.PARALLEL_MIN_BYTES
    done = run_module("generate", "--catalogue", str(catalogue), "--out", str(tmp_path / "par"))
    assert done.returncode == 0, done.stderr
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 10**12)
    monkeypatch.setattr(parallel, "_CACHE", OrderedDict())
    serial = generate_files(catalogue)
    on_disk = {
        p.relative_to(tmp_path / "par").as_posix(): p.read_text()
        for p in (tmp_path / "par").rglob("*")
        if p.is_file()
    }
    assert on_disk == serial


def _job(name: str, ref: str = "#/$defs/Shared", about: str = "") -> ModelsJob:
    schema = {
        "type": "object",
        "description": about or name,
        "properties": {"a": {"$ref": ref}, "b": {"type": "integer"}},
    }
    root = {"$defs": {"Shared": {"type": "string"}, name: schema}, "$ref": f"#/$defs/{name}"}
    return ModelsJob(root=root, class_name=name, header="#", domain=name.lower())


@pytest.fixture
def helper_runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[parallel.ModelsRunner]:
    """A runner with its helper process (skipped where the runner would not fork one)."""
    monkeypatch.setattr(parallel, "_CACHE", OrderedDict())
    monkeypatch.setattr(parallel, "_MAX_WORKERS", 3)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    with parallel.ModelsRunner(parallel.PARALLEL_MIN_BYTES) as runner:
        if runner._helper is None:
            pytest.skip("no fork here: the runner works in-process")
        yield runner


def test_helper_and_its_siblings_build_what_the_process_would(
    helper_runner: parallel.ModelsRunner,
) -> None:
    jobs = [_job(f"Event{i}") for i in range(5)]
    assert helper_runner.run(jobs) == [build_module(job) for job in jobs]


@pytest.mark.parametrize("where", ["helper", "sibling"])
def test_a_failing_job_raises_through_the_helper(
    helper_runner: parallel.ModelsRunner, where: str
) -> None:
    # the costliest job stays in the helper; the others go to its forked siblings
    about = "x" * 500
    bad = _job(
        "Bad", ref="https://example.invalid/x.json", about=about if where == "helper" else ""
    )
    good = [_job(name, about="" if where == "helper" else about) for name in ("Good", "Fine")]
    with pytest.raises(Exception, match="remote"):
        helper_runner.run([good[0], bad, good[1]])


def test_work_is_done_in_process_when_the_helper_is_gone(
    helper_runner: parallel.ModelsRunner,
) -> None:
    helper = helper_runner._helper
    assert helper is not None
    helper.kill()
    helper.join()
    jobs = [_job("One"), _job("Two")]
    assert helper_runner.run(jobs) == [build_module(job) for job in jobs]


def test_shares_cover_every_job_once_and_balance_the_cost() -> None:
    jobs = [_job(f"E{i}") for i in range(7)]
    shares = parallel._shares(jobs, 3)
    assert sorted(i for share in shares for i in share) == list(range(7))
    assert [len(share) for share in shares] == [3, 2, 2]
    assert parallel._shares(jobs[:1], 4) == [[0]]
