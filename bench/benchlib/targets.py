"""The speed targets of issues 6 and 17, checked on same-round ratios (medians over rounds).

"queues" is the generated SDK (the headline), so (c) 150,000 jobs/s is checked on it (issue 17
item 4).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from .runner import Sample
from .stats import OURS, per_round, same_round_ratio

__all__ = ["Check", "check_targets"]


@dataclass(frozen=True, slots=True)
class Check:
    target: str
    wanted: str
    measured: str
    holds: bool | None  # None: not measurable in this run (a peer missing)

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "wanted": self.wanted, "measured": self.measured,
                "holds": self.holds}  # fmt: skip


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def check_targets(samples: list[Sample]) -> list[Check]:
    t = per_round(samples)
    checks: list[Check] = []

    def ratio(target: str, metric: str, peer: str, want: float, peer_metric: str = "") -> None:
        r = _median(same_round_ratio(t, (metric, OURS), (peer_metric or metric, peer)))
        measured = "n/a" if r is None else f"{r:.2f}x"
        what = f"{metric} >= {want:g}x {peer}" + (f" {peer_metric}" if peer_metric else "")
        checks.append(Check(target, what, measured, None if r is None else r >= want))

    def absolute(target: str, metric: str, wanted: str, ok: Any) -> None:
        v = _median(list(t.get((metric, OURS), {}).values()))
        measured = "n/a" if v is None else f"{v:,.2f}"
        checks.append(Check(target, f"{metric} {wanted}", measured, None if v is None else ok(v)))

    ratio("(a)", "enqueue_serial", "floor", 0.9)
    ratio("(b)", "enqueue_50", "pgboss", 2.0)
    absolute("(c)", "enqueue_batch", ">= 150,000 jobs/s", lambda v: v >= 150_000)
    ratio("(c)", "enqueue_batch", "pgboss", 2.0)
    for c in (10, 50):
        ratio("(d)", f"work_c{c}", "pgboss", 1.0, peer_metric="work_batch")
        ratio("(d)", f"work_c{c}", "pgqueuer", 3.0)
    # issue 17: processing against the floor, and the generated SDK against the engine under it
    ratio("(17.2) floor", "work_c50", "floor", 0.8, peer_metric="work_floor")
    ratio("(17.3) SDK", "enqueue_batch", "engine", 0.9)
    ratio("(17.3) SDK", "work_c50", "engine", 0.9)
    absolute("(e)", "latency_p50", "<= 2 ms", lambda v: v <= 2.0)
    absolute("(e)", "latency_p95", "<= 5 ms", lambda v: v <= 5.0)
    absolute("(f)", "codegen_s", "< 3 s", lambda v: v < 3.0)
    peers = [
        v for p in ("pgqueuer", "procrastinate")
        if (v := _median(list(t.get(("worker_rss_mb", p), {}).values()))) is not None
    ]  # fmt: skip
    ours = _median(list(t.get(("worker_rss_mb", OURS), {}).values()))
    checks.append(
        Check(
            "(g)",
            "worker_rss_mb <= best Python peer",
            "n/a" if ours is None or not peers else f"{ours:.1f} vs {min(peers):.1f} MiB",
            None if ours is None or not peers else ours <= min(peers),
        )
    )
    first = _median(list(t.get(("db_mb_after_work", OURS), {}).values()))
    second = _median(list(t.get(("db_mb_second_cycle", OURS), {}).values()))
    checks.append(
        Check(
            "(g)",
            "database flat: 2nd cycle <= 1.1 x 1st after (d)",
            "n/a" if first is None or second is None else f"{second:.1f} vs {first:.1f} MiB",
            None if first is None or second is None else second <= 1.1 * first,
        )
    )
    return checks
