"""A tiny app for the ``queues worker --metrics-port`` test:
``--app tests.operations.ops_app:workers``. Jobs of ``ops.app`` complete, except those whose
payload says ``{"fail": true}``, which fail (without retries)."""

from __future__ import annotations

from datetime import timedelta

from typed_queues.runtime import Boss, JobContext, QueueSpec, RetryPolicy, Worker

QUEUE = "ops.app"


async def _handle(job: JobContext) -> None:
    if isinstance(job.payload, dict) and job.payload.get("fail"):
        raise RuntimeError("asked to fail")


async def workers(boss: Boss) -> list[Worker]:
    await boss.create_queue(
        QueueSpec(name=QUEUE, retry=RetryPolicy(limit=0, delay=timedelta(0), backoff="fixed"))
    )
    return [boss.worker(QUEUE, _handle, concurrency=2)]
