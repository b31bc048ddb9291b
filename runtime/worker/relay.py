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

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from ..db.identifiers import MAX_QUEUE_NAME
from ..errors import ValidationError
from ..policy import QueueSpec, RetryPolicy

if TYPE_CHECKING:
    from ..client import Boss
    from ..jobs import JobContext, JobId
    from .worker import Processor, Worker

__all__ = [
    "OUTBOX_SUFFIX",
    "outbox_name",
    "outbox_spec",
    "place_subscriptions",
    "relay_processor",
    "relay_worker",
]

OUTBOX_SUFFIX = ".outbox"

_B = TypeVar("_B")

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


def place_subscriptions(
    spec: QueueSpec, boss_of: Callable[[str | None], _B]
) -> tuple[QueueSpec, list[tuple[_B, str | None, tuple[str, ...]]]]:
    """Where ``spec``'s subscriptions go, with ``boss_of`` telling the client (Boss or
    SyncBoss) of a database name: ``spec`` as its own server stores it (its remote
    subscriptions from that same server made atomic), and per other server, the database
    name and the events its outbox of ``spec`` subscribes to."""
    home = boss_of(spec.database)
    atomic = list(spec.subscribe)
    outboxes: dict[int, tuple[_B, str | None, list[str]]] = {}
    for remote in spec.remote_subscriptions:
        source = boss_of(remote.database)
        if source is home:
            atomic.append(remote.event)
        else:  # (keyed by server: two names on one server share one outbox)
            outboxes.setdefault(id(source), (source, remote.database, []))[2].append(remote.event)
    stored = replace(spec, subscribe=tuple(atomic), remote_subscriptions=())
    return stored, [(source, db, tuple(events)) for source, db, events in outboxes.values()]


def relay_processor(source: Boss, target: Boss, queue: str) -> Processor:
    """Relay each outbox job of ``source`` into ``queue`` on ``target``."""
    return _Relay(source, target, queue).relay


class _Relay:
    """Gathers the outbox jobs the relay's handlers hold at one moment and relays them with
    one read on the publisher's server and one write on the subscriber's; each handler returns
    once its job is written (or raises the batch's error, and the job is retried)."""

    _MOST = 1000

    def __init__(self, source: Boss, target: Boss, queue: str) -> None:
        self._source = source
        self._target = target
        self._queue = queue
        self._pending: list[tuple[JobId, str, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def relay(self, job: JobContext) -> None:
        data = json.dumps(job.data, ensure_ascii=False, separators=(",", ":"))
        done = asyncio.get_running_loop().create_future()
        self._pending.append((job.id, data, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name=f"queues-relay:{self._queue}")
        await done

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the other handlers of the same claim add their jobs first
        while self._pending:
            batch, self._pending = self._pending[: self._MOST], self._pending[self._MOST :]
            try:
                options = await self._source.relay_options([job_id for job_id, _, _ in batch])
                await self._target.relay_write(
                    self._queue,
                    [(job_id, data, options.get(job_id, (0, None))) for job_id, data, _ in batch],
                )
            except BaseException as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)


def relay_worker(source: Boss, target: Boss, queue: str) -> Worker:
    """A worker on ``source``'s outbox of ``queue`` that relays into ``target``."""
    from .worker import Worker

    return Worker(
        source,
        outbox_name(queue),
        relay_processor(source, target, queue),
        concurrency=200,
        label=f"relay:{queue}",
    )
