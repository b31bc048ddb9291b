"""Medians with min and max over rounds, and same-round ratios to this project."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .runner import Sample

__all__ = ["METRICS", "Metric", "Summary", "per_round", "same_round_ratio", "summarize"]

OURS = "queues"


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    #: The metric of this project a ratio divides by (default: the same metric).
    base: str | None = None

    @property
    def base_key(self) -> str:
        return self.base or self.key


METRICS: tuple[Metric, ...] = (
    Metric("enqueue_serial", "(a) enqueue 1 at a time", "jobs/s", True),
    Metric("enqueue_50", "(b) enqueue, 50 in flight", "jobs/s", True),
    Metric("enqueue_batch", "(c) enqueue, batch API", "jobs/s", True),
    Metric("work_c10", "(d) process, concurrency 10", "jobs/s", True),
    Metric("work_c50", "(d) process, concurrency 50", "jobs/s", True),
    Metric("work_batch", "(d) process, batch handlers (best)", "jobs/s", True, base="work_c50"),
    Metric(
        "work_floor",
        "(d) processing floor: claim + complete, 500 per statement",
        "jobs/s",
        True,
        base="work_c50",
    ),
    Metric("latency_p50", "(e) wake-up latency p50", "ms", False),
    Metric("latency_p95", "(e) wake-up latency p95", "ms", False),
    Metric("codegen_s", "(f) codegen, 200 events", "s", False),
    Metric("worker_rss_mb", "(g) worker peak RSS, c=50", "MiB", False),
    Metric("db_mb_after_work", "(g) database after (d)", "MiB", False),
    Metric("db_mb_after_cleanup", "(g) database after cleanup", "MiB", False),
    Metric("db_mb_second_cycle", "(g) database after a 2nd cycle", "MiB", False),
    # -- flow control (issue 12): limited and grouped queues, this project only --
    Metric("flow_active5", "(h) process, limits.active 5 (c=50)", "jobs/s", True),
    Metric("flow_active5_observed", "(h) max active sampled (limit 5)", "jobs", False),
    Metric("flow_groups1k", "(h) process, fifo groups, 1,000 keys (c=50)", "jobs/s", True),
    Metric("flow_groups1k_observed", "(h) max active per key (limit 1)", "jobs", False),
    Metric("flow_rate1k", "(h) process, limits.rate 1000/1s (c=50)", "jobs/s", True),
    Metric("flow_rate1k_observed", "(h) most starts in 1 s (limit 1000)", "jobs", False),
    # -- fan-out (issue 11): each event also written to 3 subscribing queues, this project only --
    Metric("fanout3_50", "(i) fan-out to 3 queues, 50 in flight, jobs written", "jobs/s", True),
    Metric("fanout3_batch", "(i) fan-out to 3 queues, batch API, jobs written", "jobs/s", True),
)


@dataclass(frozen=True, slots=True)
class Summary:
    median: float
    low: float
    high: float
    rounds: int
    ratio: tuple[float, float, float] | None  # median, min, max of value / ours, same round

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "median": self.median, "min": self.low, "max": self.high, "rounds": self.rounds,
        }  # fmt: skip
        if self.ratio is not None:
            out["ratio_to_queues"] = dict(zip(("median", "min", "max"), self.ratio, strict=True))
        return out


def per_round(samples: Iterable[Sample]) -> dict[tuple[str, str], dict[int, float]]:
    """{(metric, system): {round: value}}."""
    table: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for s in samples:
        table[(s.metric, s.system)][s.round] = s.value
    return table


def same_round_ratio(
    table: dict[tuple[str, str], dict[int, float]], num: tuple[str, str], den: tuple[str, str]
) -> list[float]:
    """num / den for every round where both exist (num, den are (metric, system))."""
    a, b = table.get(num, {}), table.get(den, {})
    return [a[r] / b[r] for r in sorted(a) if b.get(r)]


def _three(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def summarize(samples: list[Sample]) -> dict[str, dict[str, Summary]]:
    """{metric: {system: Summary}}."""
    table = per_round(samples)
    out: dict[str, dict[str, Summary]] = {}
    for metric in METRICS:
        row: dict[str, Summary] = {}
        for (key, system), by_round in sorted(table.items()):
            if key != metric.key or not by_round:
                continue
            values = list(by_round.values())
            ratios = same_round_ratio(table, (key, system), (metric.base_key, OURS))
            row[system] = Summary(*_three(values), len(values), _three(ratios) if ratios else None)
        if row:
            out[metric.key] = row
    return out
