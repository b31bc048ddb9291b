"""Flow control on the client side: queue policies stored with the queue, pausing and resuming,
and ``Boss.fetch`` of a queue that is limited or paused."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from ..db import AsyncConn, Store
from ..db.identifiers import validate_queue_name
from ..db.rows import QueueFlowRow
from ..errors import UnknownQueueError, ValidationError
from ..jobs import Job
from ..policy import QueueSpec
from ..worker.flow import FlowPolicies, FlowPolicy
from .connections import ClientConnections
from .job_control import fetched_job
from .queue_cache import QueueCache

__all__ = ["FlowControl", "policy_of"]


def policy_of(spec: QueueSpec, *, paused: bool) -> FlowPolicy:
    rate, group = spec.limits.rate, spec.group
    return FlowPolicy(
        active_limit=spec.limits.active,
        rate_count=None if rate is None else rate.count,
        rate_period=None if rate is None else rate.per,
        group_active=None if group is None else group.active,
        group_fifo=False if group is None else group.fifo,
        paused=paused,
    )


class FlowControl:
    def __init__(
        self,
        store: Store,
        connections: ClientConnections,
        queues: QueueCache,
        lease: timedelta,
        poll_interval: float,
    ) -> None:
        self._store = store
        self._connections = connections
        self._queues = queues
        self._lease = lease
        self._poll_interval = poll_interval
        #: Every queue's flow policy, read again once older than the asker's poll interval.
        self.policies = FlowPolicies(self._read)

    async def _read(self) -> list[QueueFlowRow]:
        return await self._connections.with_retry(self._store.queue_flow_list)

    async def store(self, conn: AsyncConn, specs: Iterable[QueueSpec]) -> None:
        """Write the specs' flow policies (in the caller's transaction, after the upserts)."""
        for spec in specs:
            await self._store.queue_flow_set(conn, spec.flow_params())

    def stored(self, specs: Iterable[QueueSpec]) -> None:
        """The specs' policies are committed: this process uses them from now on."""
        for spec in specs:
            paused = self.policies.cached(spec.name).paused
            self.policies.put(spec.name, policy_of(spec, paused=paused))

    async def pause(self, queue: str, paused: bool) -> None:
        validate_queue_name(queue)
        done = await self._connections.with_retry(
            lambda conn: self._store.queue_pause(conn, queue, paused)
        )
        if not done:
            raise UnknownQueueError(queue, self._store.schema)
        await self.policies.refresh()

    async def gated(self, queue: str) -> bool:
        """Whether claims of ``queue`` must go through its flow policy (limited or paused)."""
        policy = await self.policies.get(queue, self._poll_interval)
        return policy.limited or policy.paused

    async def fetch(self, queue: str, batch_size: int) -> list[Job]:
        """``Boss.fetch`` of a limited or paused queue: within the policy, nothing while
        paused."""
        info = await self._queues.info(queue)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be an int >= 1, got {batch_size!r}")
        lease = max(self._lease, info.expire_in)
        async with self._connections.pool().connection() as conn:
            result = await self._store.job_claim_limited(conn, queue, batch_size, lease)
        return [fetched_job(limited.fetched(), queue, info.retry_limit) for limited in result.jobs]
