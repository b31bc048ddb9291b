"""The soak's fixed settings: the schema, the queues and their policies, the Boss timings.

Worker and producer processes import this module too, so that every process agrees on them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy

SCHEMA: Final = "chaos"
#: The harness's own schema in the private database: the audit of job-state transitions.
AUDIT_SCHEMA: Final = "chaos_audit"

#: Short lease (heartbeat every lease / 3): SIGSTOPs and stalls longer than it lose leases.
LEASE_S: Final = 3.0
POLL_S: Final = 0.5
MAINTENANCE_S: Final = 1.0
CONNECT_TIMEOUT_S: Final = 5.0

WORKERS: Final = ("w1", "w2", "w3")
PRODUCERS: Final = ("p1", "p2")
#: Handler slots per queue in each worker process.
CONCURRENCY: Final = 6

MAIN: Final = "chaos.main"
STRICT: Final = "chaos.strict"
DEAD: Final = "chaos.dead"

QUEUE_SPECS: Final = (
    QueueSpec(
        name=MAIN,
        retry=RetryPolicy(
            limit=3,
            delay=timedelta(milliseconds=500),
            backoff="exponential",
            max_delay=timedelta(seconds=2),
            jitter=True,
        ),
        expire_in=timedelta(seconds=30),
        dead_letter=DEAD,
    ),
    QueueSpec(
        name=STRICT,
        retry=RetryPolicy(limit=1, delay=timedelta(seconds=1), backoff="fixed", jitter=False),
        expire_in=timedelta(seconds=30),
    ),
    QueueSpec(name=DEAD),
)
#: The queues producers send to and workers work (the dead-letter queue is only checked).
WORKED: Final = (MAIN, STRICT)
RETRY_LIMITS: Final = {spec.name: spec.retry.limit for spec in QUEUE_SPECS}
DEAD_LETTERS: Final = {spec.name: spec.dead_letter for spec in QUEUE_SPECS}


def make_boss(dsn: str) -> Boss:
    """The ``Boss`` of every soak process (nothing happens before ``start()``)."""
    return Boss(
        dsn,
        schema=SCHEMA,
        lease=timedelta(seconds=LEASE_S),
        poll_interval=timedelta(seconds=POLL_S),
        maintenance_interval=timedelta(seconds=MAINTENANCE_S),
        connect_timeout=CONNECT_TIMEOUT_S,
    )
