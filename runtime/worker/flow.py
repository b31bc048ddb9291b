"""Flow control on the worker side: which claim a queue gets, and snoozes.

``FlowPolicies`` caches every queue's flow policy for one Boss and reads it again once it is
older than the asker's poll interval, so a policy change or a pause reaches every worker within
one poll interval, for one small query per interval. ``FlowGate`` is a worker's view: a queue
without a policy is claimed by the plain claim exactly as before (a dict lookup and a clock read
more); a limited queue by ``flow_claim`` (its limits enforced in the database, under a lock per
queue); a paused queue not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from ..db import ClaimedJob
from ..db.encoding import error_document
from ..db.rows import QueueFlowRow
from ..errors import Snooze
from ..jobs import JobContext, JobId
from .wakeup import Signal

if TYPE_CHECKING:
    from .claim_cursor import ClaimCursor
    from .services import WorkerServices

__all__ = ["PLAIN", "FlowGate", "FlowPolicies", "FlowPolicy", "own_expiry_error", "snooze_job"]

log = logging.getLogger("queues.worker")

#: How stale a paused queue's policy may be when a notification wakes its workers: a resume
#: notifies them, so they look again at once (at most this often while sends keep coming).
_PAUSED_RECHECK_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class FlowPolicy:
    """What the claim of one queue must respect."""

    active_limit: int | None = None
    rate_count: int | None = None
    rate_period: timedelta | None = None
    group_active: int | None = None
    group_fifo: bool = False
    paused: bool = False

    @property
    def limited(self) -> bool:
        """Claimed through ``flow_claim`` (a limit or a group policy)."""
        return (
            self.active_limit is not None
            or self.rate_count is not None
            or self.group_active is not None
        )

    @classmethod
    def of(cls, row: QueueFlowRow) -> FlowPolicy:
        return cls(
            row.active_limit,
            row.rate_count,
            row.rate_period,
            row.group_active,
            row.group_fifo,
            row.paused,
        )


#: The policy of a queue without flow control: the plain claim.
PLAIN: Final = FlowPolicy()


class FlowPolicies:
    """Queue name -> ``FlowPolicy`` for one Boss, read again when older than asked."""

    def __init__(self, read: Callable[[], Awaitable[list[QueueFlowRow]]]) -> None:
        self._read = read
        self._policies: dict[str, FlowPolicy] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, queue: str, max_age: float) -> FlowPolicy:
        """The policy of ``queue``, read again first if the cache is older than ``max_age``
        seconds."""
        if time.monotonic() - self._read_at > max_age:
            await self.refresh(max_age)
        return self._policies.get(queue, PLAIN)

    async def refresh(self, max_age: float = 0.0) -> None:
        """Read every queue's policy, once however many callers ask at the same time."""
        async with self._lock:
            if time.monotonic() - self._read_at <= max_age:
                return  # read by another caller while this one waited
            started = time.monotonic()
            self.load(await self._read())
            self._read_at = started

    def cached(self, queue: str) -> FlowPolicy:
        """The policy of ``queue`` as last read (no I/O)."""
        return self._policies.get(queue, PLAIN)

    def load(self, rows: Iterable[QueueFlowRow]) -> None:
        policies = {row.name: FlowPolicy.of(row) for row in rows}
        self._policies = {name: p for name, p in policies.items() if p != PLAIN}

    def put(self, queue: str, policy: FlowPolicy) -> None:
        """This process changed a queue's policy: use it now."""
        if policy == PLAIN:
            self._policies.pop(queue, None)
        else:
            self._policies[queue] = policy


class FlowGate:
    """One worker's claims under its queue's flow policy.

    A limited queue is claimed no further ahead than the worker's free slots (a job claimed
    ahead would count as active, or use up the rate, while it waits). After a limited claim
    that returned less than asked, the worker waits for one of its own jobs to end (woken once
    that result is written), for the rate to allow a start, or for its poll interval.
    """

    __slots__ = ("_finished", "_policies", "_queue", "_registered", "_wait_s", "_wake", "policy")

    def __init__(self, policies: FlowPolicies, queue: str, wake: Signal) -> None:
        self._policies = policies
        self._queue = queue
        self._wake = wake
        #: The policy the last claim went by.
        self.policy = PLAIN
        self._wait_s: float | None = None
        self._finished = False
        self._registered: WorkerServices | None = None

    def room(self, want: int, free_slots: int) -> int:
        """How many to claim: ``want``, or only the free slots for a limited queue."""
        return min(want, free_slots) if self.policy.limited else want

    async def claim(
        self,
        services: WorkerServices,
        want: int,
        poll_interval: float,
        position: ClaimCursor | None = None,
    ) -> list[ClaimedJob]:
        """Claim up to ``want`` jobs as the queue's policy allows (none while it is paused);
        a queue without limits from ``position`` when given (``claim_cursor``)."""
        max_age = min(poll_interval, _PAUSED_RECHECK_S) if self.policy.paused else poll_interval
        self.policy = policy = await self._policies.get(self._queue, max_age)
        self._wait_s = None
        if policy.paused:
            return []
        if not policy.limited:
            return await services.claim(self._queue, want, position)
        if self._registered is not services:
            services.writer.on_written(self._written)
            self._registered = services
        self._finished = False
        result = await services.claim_limited(self._queue, want)
        if result.limited:
            self._wait_s = result.wait_s
        return [job.claimed() for job in result.jobs]

    def idle_wait(self, poll_interval: float) -> float:
        """How long to wait after a claim that returned less than asked (a wake-up ends it
        sooner)."""
        if self._wait_s is not None:
            return min(poll_interval, self._wait_s)
        return poll_interval

    def job_finished(self) -> None:
        """One of this worker's jobs ended: for a limited queue, claim again once its result
        is written (it freed room under the limit, or its key)."""
        if self.policy.limited:
            self._finished = True

    def _written(self) -> None:
        if self._finished:
            self._finished = False
            self._wake.set()

    def close(self) -> None:
        if self._registered is not None:
            self._registered.writer.remove_on_written(self._written)
            self._registered = None


async def snooze_job(
    services: WorkerServices,
    ctx: JobContext,
    fence: int,
    snooze: Snooze,
    fail: Callable[[JobId, int, str, bool], None],
) -> None:
    """Write a handler's ``Snooze``: the job goes back, due after the delay, its attempt not
    used. Past the queue's ``snooze_limit`` (or when the write fails) it fails instead, through
    ``fail`` (the result writer's): for good at the limit, as a failed attempt otherwise."""
    services.writer.untrack(ctx.id)
    try:
        outcome = await services.snooze(ctx.id, fence, snooze.delay)
    except Exception as exc:
        log.warning(
            "could not snooze job %s (%s: %s); failing the attempt instead",
            ctx.id,
            type(exc).__name__,
            exc,
            extra={"job_id": str(ctx.id)},
        )
        fail(ctx.id, fence, error_document(exc), False)
        return
    if outcome is None:
        log.warning(
            "snooze of job %s changed nothing: its lease was lost (another worker may run it)",
            ctx.id,
            extra={"job_id": str(ctx.id)},
        )
        return
    allowed, count = outcome
    if not allowed:
        error = error_document(
            f"the job snoozed {count} times, its queue's snooze_limit: failed for good "
            "(raise the queue's snooze_limit if it should wait longer)",
            kind="SnoozeLimitExceeded",
        )
        fail(ctx.id, fence, error, True)


def own_expiry_error(seconds: float) -> str:
    """The error of an attempt that ran past the job's own ``expire_in``."""
    return error_document(
        f"the attempt ran longer than its expire_in ({seconds:g}s) and was cancelled",
        kind="JobExpired",
    )
