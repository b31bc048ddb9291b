"""The scale curves' harness (bench/benchlib/scale*.py, bench/drivers/scale_driver.py): its
arithmetic on made-up results, and one tiny run of each part against the real PostgreSQL, so
that `nox -s bench -- --scale` cannot rot while CI runs only `--quick`. Nothing here asserts a
speed: the runs check that every job was handled and that the results hold what the report
and the chart read."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
# bench/ is scripts, not a package the type checker knows: its modules are loaded by name
scale: Any = importlib.import_module("benchlib.scale")
report: Any = importlib.import_module("benchlib.scale_report")


def test_rates_take_the_10_to_90_percent_window_of_the_merged_bins() -> None:
    # two processes, 10 ms bins: 100 jobs in each of the first 10 bins of each process
    results = [{"bin_s": 0.01, "bins": [100] * 10}, {"bin_s": 0.01, "bins": [100] * 10}]
    rates = scale._rates(results, 2000)
    # 200 jobs per 10 ms: 10% (200 jobs) at 10 ms, 90% (1,800) at 90 ms
    assert rates["rate"] == pytest.approx(0.8 * 2000 / 0.08)
    assert rates["rate_whole"] == pytest.approx(2000 / 0.1)


def _run(system: str, backlog: int, rnd: int, rate: float) -> dict[str, Any]:
    speed = {"rate": rate, "client_us": 1.0, "server_us": 2.0}
    return {"round": rnd, "backlog": backlog, "system": system, "sender": "queues",
            "enqueue": speed, "process": speed}  # fmt: skip


def test_points_fold_rounds_into_medians_and_checks_use_same_round_ratios() -> None:
    rows = [
        _run("queues", 10_000, 1, 100.0), _run("queues", 1_000_000, 1, 70.0),
        _run("queues", 10_000, 2, 50.0), _run("queues", 1_000_000, 2, 45.0),
        _run("queues", 10_000, 3, 80.0), _run("queues", 1_000_000, 3, 76.0),
    ]  # fmt: skip
    grouped = {p["backlog"]: p for p in report.points(rows, "backlog")}
    assert grouped[10_000]["process"]["rate"] == 80.0
    assert (grouped[10_000]["process"]["low"], grouped[10_000]["process"]["high"]) == (50, 100)
    doc = {"parts": {"backlog": {"rows": rows}}}
    found = {what: (measured, ok) for what, measured, ok in report.checks(doc)}
    # same-round ratios 0.70, 0.90, 0.95: median 0.90 (the medians' ratio would be 0.89)
    measured, ok = found["queues process at 1,000,000 queued >= 0.8x at 10,000"]
    assert measured.startswith("0.90x") and ok


@pytest.mark.slow
def test_every_part_runs_end_to_end_on_tiny_sizes(dsn: str, tmp_path: Path) -> None:
    opts = scale.ScaleOptions(
        dsn, BENCH / ".cache", jobs=1_000, concurrency=10, backlogs=[500, 2_000],
        queue_counts=[1, 5], queue_backlog=1_000, processes=[1, 2], process_jobs=2_000,
        sustained_minutes=0.1, sustained_rate=200, sustained_retention_s=1, sample_s=2, rounds=1,
    )  # fmt: skip
    parts = scale.run_scale(opts)
    assert set(parts) == {"backlog", "queues", "processes", "sustained"}
    backlog = parts["backlog"]["rows"]
    assert {(r["backlog"], r["system"]) for r in backlog} == {
        (b, s) for b in (500, 2_000) for s in ("queues", "engine", "floor")
    }
    for row in backlog + parts["queues"]["rows"] + parts["processes"]["rows"]:
        process = row["process"]
        assert process["handled"] >= 1_000 and process["rate"] > 0
        assert process["waits"] is not None and "commits" in process["per_job"]
    sustained = parts["sustained"]
    assert sustained["sent"] > 0 and sustained["handled"] > 0
    assert len(sustained["samples"]) >= 2
    for sample in sustained["samples"]:
        assert "heap_mb" in sample["table"] and "exec_ms" in sample["claim_probe"]
    meta = {"finished_utc": "now", "command": "test", "commit": "x", "runtime_tree": "y",
            "machine": {"cpu": "c", "cores": 2, "memory_gib": 1},
            "postgres": {"version": "15", "synchronous_commit": "on", "shared_buffers": "1",
                         "host": "h"}}  # fmt: skip
    doc = {"parts": {name: {**meta, **part} for name, part in parts.items()}}
    text = report.write_markdown(tmp_path / "scale.md", json.loads(json.dumps(doc)))
    assert "## Backlog" in text and "## Sustained" in text
