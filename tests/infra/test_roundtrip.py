"""One real enqueue -> process round trip through the ``boss`` fixture (whatever DSN it has).

``test_no_dsn.py`` runs this file again in a subprocess with every DSN variable removed, so the
suite's embedded-PostgreSQL path is exercised on every run.
"""

from __future__ import annotations

import asyncio
import os

from typed_queues.runtime import Boss, JobContext, JobState, QueueSpec

#: Set by test_no_dsn.py: this run must be on the embedded server.
EXPECT_EMBEDDED = "QUEUES_INFRA_EXPECT_EMBEDDED"


async def test_enqueue_then_process_round_trip(boss: Boss, dsn: str) -> None:
    if os.environ.get(EXPECT_EMBEDDED):
        assert "queues-pg-" in dsn, f"expected the embedded server, got {dsn!r}"
    await boss.create_queue(QueueSpec(name="infra.roundtrip"))
    done = asyncio.Event()

    async def double(job: JobContext) -> dict[str, int]:
        done.set()
        return {"doubled": int(job.data["n"]) * 2}

    job_id = await boss.send("infra.roundtrip", {"n": 21})
    job = None
    worker = boss.worker("infra.roundtrip", double, concurrency=1)
    await worker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
        for _ in range(600):
            job = await boss.get_job(job_id)
            assert job is not None
            if job.state is JobState.COMPLETED:
                break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    assert job is not None
    assert job.state is JobState.COMPLETED
    assert job.output == {"doubled": 42}
