"""latest.md and latest.json from the samples, the summary and the target checks."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .stats import METRICS, OURS, Metric, Summary
from .targets import Check

__all__ = ["write_json", "write_markdown"]


def _fmt(value: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{value:,.0f}"
    if unit == "MiB":
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def _cell(metric: Metric, s: Summary | None, system: str) -> str:
    if s is None:
        return "-"
    text = _fmt(s.median, metric.unit)
    if s.rounds > 1:
        text += f" ({_fmt(s.low, metric.unit)}-{_fmt(s.high, metric.unit)})"
    if s.ratio is not None and (system != OURS or metric.base is not None):
        text += f" x{s.ratio[0]:.2f}"
    return text


def _results_table(summary: dict[str, dict[str, Summary]], columns: list[tuple[str, str]]) -> str:
    head = "| | " + " | ".join(label for _, label in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = [head, rule]
    for metric in METRICS:
        row = summary.get(metric.key)
        if not row:
            continue
        cells = [_cell(metric, row.get(name), name) for name, _ in columns]
        rows.append(f"| {metric.title}, {metric.unit} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _targets_table(checks: list[Check]) -> str:
    rows = ["| target | wanted | measured | holds |", "|---|---|---|---|"]
    mark = {True: "yes", False: "**no**", None: "n/a"}
    for c in checks:
        rows.append(f"| {c.target} | {c.wanted} | {c.measured} | {mark[c.holds]} |")
    return "\n".join(rows)


def write_markdown(path: Path, report: dict[str, Any], summary: dict[str, dict[str, Summary]],
                   checks: list[Check]) -> str:  # fmt: skip
    m, pg, cfg = report["machine"], report["postgres"], report["config"]
    systems = report["systems"]
    columns = [(name, info["label"]) for name, info in systems.items() if info["available"]]
    lines = [
        "# Benchmark: queues, pg-boss, pgqueuer, procrastinate and the SQL floor",
        "",
        f"Measured {report['finished_utc']} with `{report['command']}`: {cfg['rounds']} round(s), "
        f'systems interleaved, {cfg["jobs"]:,} jobs per run (payload `{{"i": n}}`), '
        f"{cfg['latency_jobs']} jobs {cfg['latency_interval_ms']:g} ms apart for latency. "
        "Every run uses a fresh database and checks its own work (every job done, none twice).",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB |",
        f"| PostgreSQL | {pg['version']} at {pg['host']} "
        f"(synchronous_commit {pg['synchronous_commit']}, fsync {pg['fsync']}, "
        f"shared_buffers {pg['shared_buffers']}) |",
        f"| runtimes | Python {m['python']}, Node {m['node'] or '-'} |",
        "",
        "| system | version | how it is driven |",
        "|---|---|---|",
    ]
    tree = report.get("runtime_tree", {})
    for name, info in systems.items():
        version = info["version"] if info["available"] else f"unavailable: {info['reason']}"
        if name == "queues" and tree:
            version += f", runtime/ tree {tree['start']}"
            if tree["end"] != tree["start"]:
                version += f" (changed to {tree['end']} during the run: rounds differ)"
        lines.append(f"| {info['label']} | {version} | {info['notes']} |")
    lines += [
        "",
        "## Results",
        "",
        "Median over rounds (min-max), then x: the same-round ratio to this project "
        "(median over rounds; the batch-handler row divides by this project's per-job "
        "figure at concurrency 50). Higher is better for jobs/s, lower for ms, s and MiB.",
        "",
        _results_table(summary, columns),
        "",
        "## Targets (issues 6 and 17)",
        "",
        _targets_table(checks),
    ]
    if report["errors"]:
        lines += ["", "## Runs that did not count", ""]
        lines += [
            f"- round {e['round']}, {e['system']} {e['kind']}: {e['error']}"
            for e in report["errors"]
        ]
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def write_json(path: Path, report: dict[str, Any], samples: list[Any],
               summary: dict[str, dict[str, Summary]], checks: list[Check]) -> None:  # fmt: skip
    doc = {
        **report,
        "metrics": [asdict(m) for m in METRICS],
        "summary": {k: {s: v.as_json() for s, v in row.items()} for k, row in summary.items()},
        "targets": [c.as_json() for c in checks],
        "samples": [asdict(s) for s in samples],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
