"""The relay: subscriptions delivered at least once from another database.

A queue that subscribes with ``delivery: at-least-once`` to an event whose domain lives on
another server gets an outbox queue on the publisher's database (``<queue>.outbox``); each
send there writes its copy into that outbox in the send's own transaction. A relay is an
ordinary ``Worker`` on the outbox: for each copy it writes the job into the subscriber's
database with the copy's id, then the worker completes the copy. A crash between the two runs
the copy again (its lease expires), and the write finds the id taken and writes nothing: each
copy reaches the subscribing queue once, however often it is relayed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from ..db.identifiers import MAX_QUEUE_NAME
from ..errors import ValidationError
from ..policy import QueueSpec, RetryPolicy

if TYPE_CHECKING:
    from ..client import Boss
    from ..jobs import JobContext
    from .worker import Processor, Worker

__all__ = [
    "OUTBOX_SUFFIX",
    "home_spec",
    "outbox_name",
    "outbox_spec",
    "relay_processor",
    "relay_worker",
]

OUTBOX_SUFFIX = ".outbox"

#: An outbox job is retried (the subscriber's server down) for about a week before it fails
#: and waits for `queues jobs retry`: one try a minute once the backoff reaches its cap.
_RELAY_RETRY = RetryPolicy(
    limit=10_000,
    delay=timedelta(seconds=1),
    backoff="exponential",
    max_delay=timedelta(minutes=1),
    jitter=True,
)


def outbox_name(queue: str) -> str:
    """The outbox queue, on a publisher's database, of the subscribing ``queue``."""
    name = queue + OUTBOX_SUFFIX
    if len(name) > MAX_QUEUE_NAME:
        raise ValidationError(
            f'queue "{queue}" is too long to have an outbox ("{name}" is over '
            f"{MAX_QUEUE_NAME} characters): shorten its name"
        )
    return name


def outbox_spec(spec: QueueSpec, events: tuple[str, ...], database: str | None) -> QueueSpec:
    """The outbox queue of ``spec`` on the database of the publishers of ``events``."""
    where = "the default database" if spec.database is None else f'database "{spec.database}"'
    return QueueSpec(
        name=outbox_name(spec.name),
        retry=_RELAY_RETRY,
        expire_in=timedelta(minutes=1),
        retention=spec.retention,
        description=(
            f"Outbox of {spec.name} (on {where}): copies of {', '.join(events)}, relayed at "
            "least once by that queue's workers."
        ),
        subscribe=events,
        database=database,
    )


def home_spec(spec: QueueSpec, subscribe: tuple[str, ...]) -> QueueSpec:
    """``spec`` as its own database stores it: only the subscriptions that stay atomic."""
    return replace(spec, subscribe=subscribe, remote_subscriptions=())


def relay_processor(source: Boss, target: Boss, queue: str) -> Processor:
    """Relay each outbox job of ``source`` into ``queue`` on ``target``."""

    async def relay(job: JobContext) -> None:
        options = await source.relay_options(job.id)
        data = json.dumps(job.data, ensure_ascii=False, separators=(",", ":"))
        await target.relay_write(job.id, queue, data, options)

    return relay


def relay_worker(source: Boss, target: Boss, queue: str) -> Worker:
    """A worker on ``source``'s outbox of ``queue`` that relays into ``target``."""
    from .worker import Worker

    return Worker(
        source,
        outbox_name(queue),
        relay_processor(source, target, queue),
        concurrency=10,
        label=f"relay:{queue}",
    )
