"""Fan-out runs (issue 11): events sent to a queue with 3 subscribing queues, each send writing
4 jobs in one statement; jobs written per second (bench/drivers/fanout_driver.py drives the
runtime's `Boss` directly: for any other system a run records nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import db
from .systems import System

if TYPE_CHECKING:
    from .envs import Env
    from .runner import Context, RunKind, Sample

__all__ = ["FANOUT_KINDS"]

_MEASURED = ("queues",)
_DRIVER = System("fanout", "fan-out", ours=True, notes="bench/drivers/fanout_driver.py")
SUBSCRIBERS = 3


def _fanout(phase: str, metric: str) -> RunKind:
    def run(system: System, env: Env, ctx: Context) -> list[Sample]:
        from .runner import Sample, run_driver

        if system.name not in _MEASURED:
            return []
        with db.fresh_database(ctx.dsn, system.name) as dsn:
            spec = {"phase": phase, "dsn": dsn, "n": ctx.n, "subscribers": SUBSCRIBERS}
            data = run_driver(_DRIVER, env, spec, ctx.timeout_s + 300).data
        extra = {k: v for k, v in data.items() if k not in ("ok", "rate")}
        return [Sample(system.name, ctx.round, metric, data["rate"], extra)]

    return run


FANOUT_KINDS: dict[str, RunKind] = {
    "fanout3_50": _fanout("fanout_send50", "fanout3_50"),
    "fanout3_batch": _fanout("fanout_batch", "fanout3_batch"),
}
