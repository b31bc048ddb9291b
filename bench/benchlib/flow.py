"""Flow control runs (issue 12): a queue with `limits.active: 5`, a fifo group queue with 1,000
keys, and a queue with `limits.rate: 1000/1s`, processed by one worker of concurrency 50.

They measure this project's runtime only (bench/drivers/flow_driver.py drives `runtime.Worker`
directly): for any other system a run records nothing. Each reports jobs/s and how close the
observed maximum active count (or per-key count, or starts in one second) comes to the
configured limit, as the ratio observed / configured in the sample's extra fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import db
from .systems import System

if TYPE_CHECKING:
    from .envs import Env
    from .runner import Context, RunKind, Sample

__all__ = ["FLOW_KINDS"]

#: The system the flow runs measure (its runtime; the other columns have no flow control).
_MEASURED = ("queues",)
_DRIVER = System("flow", "flow control", ours=True, notes="bench/drivers/flow_driver.py")
ACTIVE_LIMIT = 5
GROUP_KEYS = 1000
RATE = 1000
CONCURRENCY = 50


def _flow(phase: str, metric: str, jobs: Any, **spec: Any) -> RunKind:
    def run(system: System, env: Env, ctx: Context) -> list[Sample]:
        from .runner import Sample, log, run_driver

        if system.name not in _MEASURED:
            return []
        n = jobs(ctx)
        with db.fresh_database(ctx.dsn, system.name) as dsn:
            full = {"phase": phase, "dsn": dsn, "n": n, "concurrency": CONCURRENCY, **spec}
            data = run_driver(_DRIVER, env, full, ctx.timeout_s + 600).data
        limit, observed = _observed(phase, data)
        extra = {k: v for k, v in data.items() if k not in ("ok", "rate")}
        extra.update(configured=limit, observed=observed, ratio=round(observed / limit, 3))
        log(f"  {metric}: observed {observed} against {limit} configured")
        return [
            Sample(system.name, ctx.round, metric, data["rate"], extra),
            Sample(system.name, ctx.round, f"{metric}_observed", observed, {"configured": limit}),
        ]

    return run


def _observed(phase: str, data: dict[str, Any]) -> tuple[float, float]:
    if phase == "flow_active":
        return ACTIVE_LIMIT, float(data["max_active_sampled"])
    if phase == "flow_groups":
        if data.get("out_of_order"):
            raise AssertionError(f"{data['out_of_order']} grouped jobs ran out of send order")
        return 1, float(data["max_per_key"])
    return RATE, float(data["max_in_1s"])


FLOW_KINDS: dict[str, RunKind] = {
    "flow_active5": _flow("flow_active", "flow_active5", lambda ctx: ctx.n, limit=ACTIVE_LIMIT),
    "flow_groups1k": _flow("flow_groups", "flow_groups1k", lambda ctx: ctx.n, keys=GROUP_KEYS),
    "flow_rate1k": _flow("flow_rate", "flow_rate1k", lambda ctx: min(ctx.n, RATE * 10), rate=RATE),
}
