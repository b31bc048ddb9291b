"""A tiny app for the `queues worker` tests: ``--app tests.infra.cli_app:workers``.

The queue ``infra.echo`` completes jobs at once, except ``{"sleep": seconds}`` jobs, which run
that long (to test graceful shutdown).
"""

from __future__ import annotations

import asyncio

from typed_queues.runtime import Boss, JobContext, QueueSpec, Worker

__all__ = ["QUEUE", "not_an_app", "workers", "workers_sync"]

QUEUE = "infra.echo"
not_an_app = 42


async def _echo(job: JobContext) -> object:
    if isinstance(job.data, dict) and "sleep" in job.data:
        await asyncio.sleep(float(job.data["sleep"]))
    return {"echo": job.data}


async def workers(boss: Boss, *, concurrency: int = 2) -> list[Worker]:
    """An async factory (it creates its queue first)."""
    await boss.create_queue(QueueSpec(name=QUEUE))
    return [boss.worker(QUEUE, _echo, concurrency=concurrency)]


def workers_sync(boss: Boss) -> Worker:
    """A sync factory returning a single worker (the queue must exist)."""
    return boss.worker(QUEUE, _echo)
