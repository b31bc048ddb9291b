"""scale.json and scale.md: the scale curves' results, one entry per part.

A run of some parts replaces those parts in an existing scale.json and keeps the others, so the
parts can be measured at different times (each says when, with what command and at what
commit); scale.md and scale.png are always drawn from the whole file.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["checks", "merge_json", "points", "write_markdown"]

#: The issue's goals: throughput at the biggest backlog within 0.8x of the smallest; sizes
#: and claim latency flat over the sustained run (last quarter against the second quarter).
BACKLOG_GOAL = 0.8
SIZE_FLAT = 1.1
LATENCY_FLAT = 1.25


def merge_json(path: Path, parts: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"parts": {}}
    for name, result in parts.items():
        doc["parts"][name] = {**meta, **result}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    return doc


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _us(value: float) -> str:
    return f"{value:,.1f}"


def _meta_line(part: dict[str, Any]) -> str:
    rounds = f", {part['rounds']} rounds interleaved" if part.get("rounds", 1) > 1 else ""
    pg = part["postgres"]
    server = (
        f"PostgreSQL at {pg['host']} with autovacuum {pg['autovacuum']} (naptime "
        f"{pg['autovacuum_naptime']})"
        if "autovacuum" in pg
        else f"PostgreSQL at {pg['host']}"
    )
    return (
        f"Measured {part['finished_utc']} with `{part['command']}` at commit {part['commit']} "
        f"(runtime/ tree {part['runtime_tree']}), in {part['duration_s']:,.0f} s{rounds}, on "
        f"{server}."
    )


def _total_mb(table: dict[str, Any]) -> float:
    return float(table["heap_mb"] + table["indexes_mb"] + table["toast_mb"])


def _med(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def points(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows of a part grouped by (point, worker), rounds folded into medians: rate as
    (median, min, max), CPU and the database's figures as medians."""
    groups: dict[tuple[Any, str], list[dict[str, Any]]] = {}
    for r in rows:
        if "process" in r:
            groups.setdefault((r[key], r.get("system", "queues")), []).append(r)
    out = []
    for (point, system), group in groups.items():
        entry: dict[str, Any] = {key: point, "system": system, "rounds": len(group),
                                 "sender": group[0].get("sender", "queues")}  # fmt: skip
        for phase in ("enqueue", "process"):
            runs = [r[phase] for r in group if phase in r]
            if not runs:
                continue
            rates = [x["rate"] for x in runs]
            entry[phase] = {
                "rate": _med(rates), "low": min(rates), "high": max(rates),
                "client_us": _med([x["client_us"] for x in runs]),
                "server_us": _med([x["server_us"] for x in runs]),
            }  # fmt: skip
        diag = [r["process"] for r in group if "per_job" in r["process"]]
        if diag:
            entry["blks_read"] = _med([d["per_job"]["blks_read"] for d in diag])
            entry["commits"] = _med([d["per_job"]["commits"] for d in diag])
            entry["autovacuums"] = sum(
                round(d["per_job"]["autovacuums"] * d["handled"]) for d in diag
            )
            entry["waits"] = diag[len(diag) // 2].get("waits", {})
        after = [r["claim_probe_after"] for r in group if r.get("claim_probe_after")]
        if after:
            entry["claim_after_ms"] = _med([a["exec_ms"] for a in after])
            entry["claim_after_buffers"] = _med([a["buffers"] for a in after])
        out.append(entry)
    return out


def _same_round(
    rows: list[dict[str, Any]], system: str, phase: str, lo: int, hi: int
) -> list[float]:
    """rate at backlog `hi` / rate at `lo`, per round where both were measured."""
    by: dict[tuple[int, int], float] = {}
    for r in rows:
        if r.get("system") == system and phase in r:
            by[(r.get("round", 1), r["backlog"])] = r[phase]["rate"]
    return [by[(k, hi)] / by[(k, lo)] for (k, b) in by if b == lo and (k, hi) in by]


def _rate(x: dict[str, Any]) -> str:
    text = _n(x["rate"])
    return text if x["low"] == x["high"] else f"{text} ({_n(x['low'])}-{_n(x['high'])})"


def _quarters(samples: list[dict[str, Any]], value: Any) -> tuple[float, float] | None:
    """Median of `value` over the second and over the last quarter of the samples."""
    n = len(samples)
    if n < 8:
        return None
    second = [value(s) for s in samples[n // 4 : n // 2]]
    last = [value(s) for s in samples[n - n // 4 :]]
    return statistics.median(second), statistics.median(last)


def checks(doc: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(what, measured, holds) for every goal the parts present can answer."""
    out: list[tuple[str, str, bool | None]] = []
    backlog = doc["parts"].get("backlog")
    if backlog:
        rows = backlog["rows"]
        sizes = sorted({r["backlog"] for r in rows})
        for system in dict.fromkeys(r["system"] for r in rows):
            if len(sizes) < 2:
                continue
            lo, hi = sizes[0], sizes[-1]
            sender = next(r.get("sender", "queues") for r in rows if r["system"] == system)
            for phase in ("enqueue", "process"):
                ratios = _same_round(rows, system, phase, lo, hi)
                if not ratios:
                    continue
                ratio = _med(ratios)
                spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
                what = f"{system} {phase} at {hi:,} queued >= {BACKLOG_GOAL}x at {lo:,}" + (
                    f" ({sender} sends)" if phase == "enqueue" else ""
                )
                out.append((what, f"{ratio:.2f}x{spread}", ratio >= BACKLOG_GOAL))
    for name, sustained in doc["parts"].items():
        if not name.startswith("sustained"):
            continue
        label = "sustained" if name == "sustained" else f"sustained ({name[10:]}, experiment)"
        samples = sustained["samples"]
        flat = [
            ("job table + indexes + TOAST, MiB", lambda s: _total_mb(s["table"]), SIZE_FLAT),
            ("claim execution (EXPLAIN ANALYZE), ms", lambda s: s["claim_probe"]["exec_ms"],
             LATENCY_FLAT),
            ("send -> handler p50, ms", lambda s: s["latency"].get("p50_ms", 0.0), LATENCY_FLAT),
        ]  # fmt: skip
        for what, value, limit in flat:
            q = _quarters(samples, value)
            if q is None:
                out.append((f"{label}: {what} flat", "too few samples", None))
                continue
            ratio = q[1] / q[0] if q[0] else float("inf")
            out.append((
                f"{label}: {what}, last quarter <= {limit}x second quarter",
                f"{q[0]:,.2f} -> {q[1]:,.2f} ({ratio:.2f}x)", ratio <= limit,
            ))  # fmt: skip
    return out


def _backlog_md(part: dict[str, Any]) -> list[str]:
    lines = [
        "## Backlog",
        "",
        _meta_line(part),
        "On top of each backlog (jobs queued on `bench.ticks` that the run does not touch): "
        f"one batch of {part['jobs']:,} jobs enqueued, then {part['jobs']:,} jobs handled by one "
        f"worker process (concurrency {part['concurrency']}; the floor claims and completes "
        f"{part['floor_batch']} per statement with no handler). Each system's worker runs after "
        "its own top-up enqueue (the SDK's `enqueue_tick_many`, or `send_many` of dicts before "
        "the engine's worker).",
        "",
        "| backlog | worker | enqueue jobs/s, median (min-max) | client / server us per job "
        "| process jobs/s, median (min-max) | client / server us per job |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(points(part["rows"], "backlog"), key=lambda r: r["backlog"]):
        e, p = r["enqueue"], r["process"]
        lines.append(
            f"| {r['backlog']:,} | {r['system']} | {_rate(e)} ({r['sender']}) "
            f"| {_us(e['client_us'])} / {_us(e['server_us'])} | {_rate(p)} "
            f"| {_us(p['client_us'])} / {_us(p['server_us'])} |"
        )
    lines += [
        "",
        "The claim of 50 jobs at each backlog, before the runs (EXPLAIN ANALYZE, rolled back), "
        "and the table's size:",
        "",
        "| backlog | claim execution ms | planning ms | buffers | heap MiB | indexes MiB |",
        "|---|---|---|---|---|---|",
    ]
    for pr in part.get("probes", []):
        c, t = pr["claim_probe"], pr["table"]
        lines.append(
            f"| {pr['backlog']:,} | {c['exec_ms']:.2f} | {c['plan_ms']:.2f} | {c['buffers']} "
            f"| {t['heap_mb']:,.1f} | {t['indexes_mb']:,.1f} |"
        )
    return lines + _diagnosis_md(points(part["rows"], "backlog"), "backlog")


def _waits(point: dict[str, Any], top: int = 3) -> str:
    waits = point.get("waits")
    if not waits:
        return "-"
    return ", ".join(f"{what} {share:.2f}" for what, share in list(waits.items())[:top])


def _diagnosis_md(rows: list[dict[str, Any]], key: str) -> list[str]:
    """What the database did during each processing run (absent from older results)."""
    rows = sorted((r for r in rows if "waits" in r), key=lambda r: r[key])
    if not rows:
        return []
    lines = [
        "",
        "What the database did during the processing runs (medians over the rounds): buffers "
        "read from outside shared buffers and commits per job, autovacuums of the job table "
        "during the runs, the backends' activity in the median round (average number of "
        "backends on CPU or in each wait), and the claim of 50 after the run:",
        "",
        f"| {key} | worker | blocks read / job | commits / job | autovacuums | backends busy "
        "| claim after: ms (buffers) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        probe = (
            f"{r['claim_after_ms']:.2f} ({r['claim_after_buffers']:.0f})"
            if "claim_after_ms" in r
            else "-"
        )
        lines.append(
            f"| {r[key]:,} | {r['system']} | {r['blks_read']:.2f} | {r['commits']:.3f} "
            f"| {r['autovacuums']} | {_waits(r)} | {probe} |"
        )
    return lines


def _queues_md(part: dict[str, Any]) -> list[str]:
    lines = [
        "## Queues",
        "",
        _meta_line(part),
        f"{part['backlog']:,} jobs queued, spread evenly over 1 to 1,000 queues (the measured "
        f"queue holds its share); then {part['jobs']:,} enqueued on the measured queue "
        "(`enqueue_tick_many`) and handled by one worker process "
        f"(concurrency {part['concurrency']}).",
        "",
        "| queues | jobs per queue | enqueue jobs/s, median (min-max) | client / server us per "
        "job | process jobs/s, median (min-max) | client / server us per job |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(points(part["rows"], "queues"), key=lambda r: r["queues"]):
        e, p = r["enqueue"], r["process"]
        lines.append(
            f"| {r['queues']:,} | {part['backlog'] // r['queues']:,} | {_rate(e)} "
            f"| {_us(e['client_us'])} / {_us(e['server_us'])} | {_rate(p)} "
            f"| {_us(p['client_us'])} / {_us(p['server_us'])} |"
        )
    return lines + _diagnosis_md(points(part["rows"], "queues"), "queues")


def _processes_md(part: dict[str, Any]) -> list[str]:
    lines = [
        "## Worker processes",
        "",
        _meta_line(part),
        f"{part['jobs']:,} jobs queued, handled by 1 to 16 worker processes of the generated "
        f"`ticks_worker` at once (concurrency {part['concurrency']} each; pools of 2 and no "
        "LISTEN, so that 16 processes fit the server's connections next to other users).",
        "",
        "| processes | jobs/s, median (min-max) | client / server us per job |",
        "|---|---|---|",
    ]
    for r in part["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['processes']} | skipped: {r['skipped']} | |")
    for r in sorted(points(part["rows"], "processes"), key=lambda r: r["processes"]):
        p = r["process"]
        lines.append(
            f"| {r['processes']} | {_rate(p)} | {_us(p['client_us'])} / {_us(p['server_us'])} |"
        )
    return lines + _diagnosis_md(points(part["rows"], "processes"), "processes")


def _variant_note(variant: str | None) -> list[str]:
    if not variant:
        return []
    return [
        f"The job table was changed after the migrations by the variant `{variant}` of "
        "bench/benchlib/variants.py (an experiment, not the product).",
        "",
    ]


def _sustained_md(part: dict[str, Any]) -> list[str]:
    variant = part.get("variant")
    lines = [
        f"## Sustained, experiment: `{variant}`" if variant else "## Sustained",
        "",
        _meta_line(part),
        *_variant_note(variant),
        f"One producer process (`enqueue_tick_many` every 0.1 s) at {part['rate_target']:,.0f} "
        f"jobs/s ({part['rate_basis']}) and one worker process (concurrency "
        f"{part['concurrency']}) for {part['minutes']:g} minutes; queue retention "
        f"{part['retention_s']:g} s (the worker's maintenance deletes finished jobs every 15 s); "
        f"a sample every {part['sample_s']:g} s. Sent {part['sent']:,}, handled "
        f"{part['handled']:,}; client CPU {_us(part['producer_client_us'])} us per job sent "
        f"(producer) and {_us(part['worker_client_us'])} us per job handled (worker), server "
        f"{_us(part['server_us'])} us per job.",
        "",
        "| t, s | sent/s | handled/s | queued | finished | heap MiB | indexes MiB | TOAST MiB "
        "| dead tuples | autovacuums | claim ms (buffers) | send -> handler p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in part["samples"]:
        t, c, lat = s["table"], s["claim_probe"], s["latency"]
        jobs = t.get("jobs", {})
        finished = sum(v for k, v in jobs.items() if k in {"completed", "failed", "cancelled"})
        lines.append(
            f"| {s['t_s']:,.0f} | {_n(s['sent_rate'])} | {_n(s['handled_rate'])} "
            f"| {jobs.get('created', 0):,} | {finished:,} | {t['heap_mb']:,.1f} "
            f"| {t['indexes_mb']:,.1f} | {t['toast_mb']:,.1f} | {t['dead_tuples']:,} "
            f"| {t['autovacuums']} | {c['exec_ms']:.2f} ({c['buffers']}) "
            f"| {lat.get('p50_ms', 0):.1f} / {lat.get('p95_ms', 0):.1f} |"
        )
    return lines


def write_markdown(path: Path, doc: dict[str, Any]) -> str:
    parts = doc["parts"]
    any_part = next(iter(parts.values()))
    m, pg = any_part["machine"], any_part["postgres"]
    lines = [
        "# Scale curves (issue 17)",
        "",
        "`nox -s bench -- --scale` (`python bench/run.py --scale`), this project as users call it "
        "(the SDK generated from the benchmark catalogue). Throughput is handler calls per "
        "second between 10% and 90% of the jobs of a run; client CPU is the driver processes' "
        "own, server CPU that of the run's PostgreSQL backends, both per job. "
        "bench/PROFILE.md explains the curves.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, shared with other "
        f"work; PostgreSQL {pg['version']} (synchronous_commit {pg['synchronous_commit']}, "
        f"shared_buffers {pg['shared_buffers']}).",
        "",
        "![scale curves](scale.png)",
        "",
        "## Goals",
        "",
        "| goal | measured | holds |",
        "|---|---|---|",
    ]
    mark = {True: "yes", False: "**no**", None: "n/a"}
    lines += [f"| {what} | {measured} | {mark[ok]} |" for what, measured, ok in checks(doc)]
    for name, render in (("backlog", _backlog_md), ("queues", _queues_md),
                         ("processes", _processes_md), ("sustained", _sustained_md)):  # fmt: skip
        if name in parts:
            lines += ["", *render(parts[name])]
    for name in sorted(parts):
        if name.startswith("sustained-"):
            lines += ["", *_sustained_md(parts[name])]
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text
