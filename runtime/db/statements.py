"""Every statement of the runtime as data: its SQL, its parameters and whether to prepare it.

Pure (no I/O): ``Store`` and ``SyncStore`` run what these methods build, so the async and the
sync clients cannot drift in their SQL or parameters. Names are noun first (``job_claim``,
``queue_upsert``), after the table they act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..jobs import JobId
from .queries import Migration, queries_for

__all__ = ["Statement", "Statements"]


@dataclass(frozen=True, slots=True)
class Statement:
    sql: bytes
    params: Mapping[str, Any] | None = None
    prepare: bool | None = None


class Statements:
    """The statements of one schema. ``prepare=False`` (for a pooler in transaction mode)
    turns server-side prepared statements off everywhere."""

    __slots__ = ("_prepare", "channel", "q", "schema")

    def __init__(self, schema: str, *, prepare: bool = True) -> None:
        self.q = queries_for(schema)  # validates the schema name
        self.schema = schema
        self.channel = self.q.channel
        self._prepare = prepare

    def _hot(self, name: str, params: Mapping[str, Any] | None = None) -> Statement:
        """A statement run often with the same shape: prepared unless turned off."""
        return Statement(self.q[name], params, self._prepare)

    def _custom(self, name: str, params: Mapping[str, Any] | None = None) -> Statement:
        """Never prepared. For the batched writes by id: a generic plan estimates 10 ids and
        may rescan the id list for every job row (quadratic in the batch); a custom plan sees
        the real size. Also for statements run rarely."""
        return Statement(self.q[name], params, False)

    # -- migrations --------------------------------------------------------------------------

    def migration_lock(self) -> Statement:
        return self._custom("lock_migration", {"key": f"queues.migrate:{self.schema}"})

    def migration_bootstrap(self) -> Statement:
        return self._custom("bootstrap")

    def migration_apply(self, migration: Migration) -> Statement:
        return Statement(self.q.migration(migration), None, False)

    def migration_record(self, migration: Migration) -> Statement:
        return self._custom(
            "record_version", {"version": migration.version, "name": migration.name}
        )

    def schema_has_version_table(self) -> Statement:
        return self._custom("has_version_table", {"table": f"{self.q.quoted_schema}.version"})

    def schema_version(self) -> Statement:
        return self._custom("schema_version")

    # -- queues ------------------------------------------------------------------------------

    def queue_upsert(self, params: Mapping[str, Any]) -> Statement:
        return self._custom("create_queue", params)

    def queue_list(self) -> Statement:
        return self._custom("list_queues")

    def queue_stats(self, queue: str | None) -> Statement:
        return self._custom("queue_stats", {"queue": queue})

    # -- sends -------------------------------------------------------------------------------

    def job_insert(
        self,
        job_id: JobId,
        queue: str,
        data: str,
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
        singleton_key: str | None,
    ) -> Statement:
        return self._hot(
            "send_one",
            {
                "id": job_id,
                "queue": queue,
                "data": data,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "singleton_key": singleton_key,
            },
        )

    def job_find_singleton(self, queue: str, singleton_key: str) -> Statement:
        return self._hot("find_singleton", {"queue": queue, "singleton_key": singleton_key})

    def job_insert_rows(self, columns: Mapping[str, Sequence[Any]]) -> Statement:
        """Jobs of any queues, one array per column (ids, queues, data, priorities,
        start_afters, delays; and events, when some rows are events: then with fan-out)."""
        if "events" in columns:
            return self._hot("event_send_rows", columns)
        return self._hot("send_rows", columns)

    def job_insert_batch(
        self,
        queue: str,
        ids: Sequence[JobId],
        texts: Sequence[str],
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
    ) -> Statement:
        return self._hot(
            "send_batch",
            {
                "queue": queue,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "ids": ids,
                "data": texts,
            },
        )

    def job_copy(self, timed: bool) -> Statement:
        """COPY of job rows (id, data, queue, priority[, start_after]) in text format."""
        return Statement(self.q["copy_jobs_at" if timed else "copy_jobs"])

    def db_time_after(self, delay: timedelta) -> Statement:
        return self._custom("db_time", {"delay": delay})

    def queue_notify(self, queue: str) -> Statement:
        return self._custom("notify", {"queue": queue})

    # -- claims and results ------------------------------------------------------------------

    def job_claim(self, queue: str, limit: int, lease: timedelta) -> Statement:
        return self._hot("claim_work", {"queue": queue, "limit": limit, "lease": lease})

    def job_claim_after(
        self,
        queue: str,
        limit: int,
        lease: timedelta,
        after: tuple[int, datetime, JobId] | None,
    ) -> Statement:
        """``job_claim`` from a cursor (priority, start_after, id); None: from the start."""
        priority, start_after, job_id = (None, None, None) if after is None else after
        return self._hot(
            "claim_work_after",
            {
                "queue": queue,
                "limit": limit,
                "lease": lease,
                "priority": priority,
                "start_after": start_after,
                "id": job_id,
            },
        )

    def job_fetch(self, queue: str, limit: int, lease: timedelta) -> Statement:
        return self._hot("claim", {"queue": queue, "limit": limit, "lease": lease})

    def job_complete_many(
        self, ids: Sequence[JobId], fences: Sequence[int], outputs: Sequence[str | None]
    ) -> Statement:
        return self._custom("complete_many", {"ids": ids, "fences": fences, "outputs": outputs})

    def job_complete_one(self, job_id: JobId, output: str | None, fence: int | None) -> Statement:
        """Complete one active job; with ``fence``, only if that claim is still current."""
        return self._hot("complete_one", {"id": job_id, "output": output, "fence": fence})

    def job_fail_many(
        self,
        ids: Sequence[JobId],
        fences: Sequence[int | None],
        errors: Sequence[str],
        permanent: Sequence[bool],
    ) -> Statement:
        return self._hot(
            "fail_many", {"ids": ids, "fences": fences, "errors": errors, "permanent": permanent}
        )

    def job_heartbeat_many(
        self, ids: Sequence[JobId], fences: Sequence[int], lease: timedelta
    ) -> Statement:
        return self._custom("heartbeat_many", {"ids": ids, "fences": fences, "lease": lease})

    def job_hand_back(self, ids: Sequence[JobId], fences: Sequence[int]) -> Statement:
        return self._custom("hand_back", {"ids": ids, "fences": fences})

    def job_by_id(self, name: str, job_id: JobId) -> Statement:
        """``cancel``, ``resume``, ``retry`` or ``get_job`` of one job."""
        return self._hot(name, {"id": job_id})

    # -- maintenance and notifications -------------------------------------------------------

    def maintenance_lock(self) -> Statement:
        return self._custom("lock_maintenance", {"key": f"queues.maintenance:{self.schema}"})

    def job_rescue(
        self, lease_error: str, expire_error: str, grace: timedelta, limit: int
    ) -> Statement:
        return self._custom(
            "rescue",
            {
                "lease_error": lease_error,
                "expire_error": expire_error,
                "grace": grace,
                "limit": limit,
            },
        )

    def job_delete_finished(self, queue: str, limit: int) -> Statement:
        return self._custom("delete_finished", {"queue": queue, "limit": limit})

    def channel_listen(self) -> Statement:
        return self._custom("listen")

    def ping(self) -> Statement:
        return self._custom("ping")

    # -- testing --

    def testing_jobs_of(self, queue: str, event: str | None) -> Statement:
        return self._custom("testing_jobs_of", {"queue": queue, "event": event})

    def testing_make_due(self, queues: Sequence[str], within: timedelta | None) -> Statement:
        return self._custom("testing_make_due", {"queues": list(queues), "within": within})

    def testing_schema_drop(self) -> Statement:
        return self._custom("testing_schema_drop")

    # -- max_wait expiry ---------------------------------------------------------------------

    def queue_max_waits(self) -> Statement:
        return self._custom("queue_max_waits")

    def autovacuum_state(self) -> Statement:
        return self._custom("autovacuum_state", {"schema": self.schema})

    def queue_retention_due(self) -> Statement:
        return self._custom("queue_retention_due")

    def queue_archive_purge_due(self) -> Statement:
        return self._custom("queue_archive_purge_due")

    def job_expire_waiting(self, queue: str, max_wait: timedelta, limit: int) -> Statement:
        """Lock and mark, for this transaction only, jobs of ``queue`` due for longer than
        ``max_wait``; ``job_fail_many`` with ``permanent`` then fails them."""
        return self._custom(
            "job_expire_waiting", {"queue": queue, "max_wait": max_wait, "limit": limit}
        )

    # -- rolling upgrades --------------------------------------------------------------------

    def schema_compatible_from(self) -> Statement:
        return self._custom("schema_compatible_from")

    def schema_record_compatible_from(self, migrations: Sequence[Migration]) -> Statement:
        return self._custom(
            "schema_record_compatible_from",
            {
                "versions": [m.version for m in migrations],
                "floors": [m.compatible_from for m in migrations],
            },
        )

    # -- operations --------------------------------------------------------------------------

    def ops_no_jit(self) -> Statement:
        return self._custom("ops_no_jit")

    def job_list(self, name: str, params: Mapping[str, Any]) -> Statement:
        """A page of one state of the job list (``job_list_created``, ``_retry``, ``_active``,
        ``_completed``, ``_failed``): queue, event, state, limit and the keyset ``k_*``."""
        return self._custom(name, params)

    def dlq_pick(self, queue: str, limit: int, skip: Sequence[JobId], *, lock: bool) -> Statement:
        return self._custom(
            "dlq_pick" if lock else "dlq_peek",
            {"queue": queue, "limit": limit, "skip": list(skip)},
        )

    def dlq_classify(self, ids: Sequence[JobId]) -> Statement:
        return self._custom("dlq_classify", {"ids": list(ids)})

    def dlq_redrive(self, ids: Sequence[JobId]) -> Statement:
        return self._custom("dlq_redrive", {"ids": list(ids)})

    def job_lock_dead_letter_copy(self, job_id: JobId) -> Statement:
        return self._custom("job_lock_dead_letter_copy", {"id": job_id})

    def job_retry_settling(self, job_id: JobId) -> Statement:
        return self._custom("job_retry_settling", {"id": job_id})

    def job_purge(
        self,
        queue: str,
        state: str,
        older_than: timedelta | None,
        limit: int | None,
    ) -> Statement:
        """Delete one batch (``limit`` jobs) of ``queue`` in ``state``, or count them all
        (``limit=None``)."""
        group = "waiting" if state in ("created", "retry") else "finished"
        name = f"job_purge_{group}" if limit is not None else f"job_purge_count_{group}"
        return self._custom(
            name, {"queue": queue, "state": state, "older_than": older_than, "limit": limit}
        )

    def queue_depths(self) -> Statement:
        return self._custom("queue_depths")

    def job_labels(self, ids: Sequence[JobId]) -> Statement:
        return self._custom("job_labels", {"ids": list(ids)})

    # -- flow control ------------------------------------------------------------------------

    def queue_flow_set(self, params: Mapping[str, Any]) -> Statement:
        """Store a queue's flow policy (``QueueSpec.flow_params()``); paused stays as it is."""
        return self._custom("queue_flow_set", params)

    def queue_flow_list(self) -> Statement:
        return self._custom("queue_flow_list")

    def queue_pause(self, name: str, paused: bool) -> Statement:
        return self._custom("queue_pause", {"name": name, "paused": paused})

    def job_claim_limited(self, queue: str, limit: int, lease: timedelta) -> Statement:
        return self._hot("flow_claim", {"queue": queue, "limit": limit, "lease": lease})

    def job_insert_flow(
        self,
        job_id: JobId,
        queue: str,
        data: str,
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
        singleton_key: str | None,
        options: Mapping[str, Any],
        event: str | None = None,
    ) -> Statement:
        """One job with flow options (``group_key``, ``retry_limit``, ``expire_in``); for an
        ``event``, also its copies on the subscribed queues."""
        return self._hot(
            "flow_send",
            {
                "id": job_id,
                "queue": queue,
                "data": data,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "singleton_key": singleton_key,
                "event": event,
                **options,
            },
        )

    def job_insert_windowed(
        self,
        job_id: JobId,
        queue: str,
        data: str,
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
        key: str,
        debounce: bool,
        window: timedelta,
        options: Mapping[str, Any],
    ) -> Statement:
        """One throttled (or debounced) job; the statement returns the id it ended up in."""
        return self._hot(
            "flow_send_windowed",
            {
                "id": job_id,
                "queue": queue,
                "data": data,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "key": key,
                "debounce": debounce,
                "window": window,
                **options,
            },
        )

    def job_insert_flow_batch(
        self,
        queue: str,
        ids: Sequence[JobId],
        texts: Sequence[str],
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
        options: Mapping[str, Any],
        events: Sequence[str | None] = (),
    ) -> Statement:
        """A batch of one queue with the same flow options, in input (send) order; ``events``
        (item i's event, None for plain data) get their copies on the subscribed queues."""
        return self._hot(
            "flow_send_batch",
            {
                "queue": queue,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "ids": ids,
                "data": texts,
                "events": list(events) or [None] * len(ids),
                **options,
            },
        )

    def job_snooze(self, job_id: JobId, fence: int, delay: timedelta) -> Statement:
        return self._custom("job_snooze", {"id": job_id, "fence": fence, "delay": delay})

    # -- dashboard ---------------------------------------------------------------------------

    def dashboard_no_jit(self) -> Statement:
        return self._custom("dashboard_no_jit")

    def queue_counts_capped(self, queue: str | None, cap: int) -> Statement:
        """Counts of each queue's jobs by state, each reading at most ``cap`` index entries."""
        return self._custom("queue_counts_capped", {"queue": queue, "cap": cap})

    def job_active_by_queue(self, cap: int) -> Statement:
        return self._custom("job_active_by_queue", {"cap": cap})

    def queue_state_estimates(self) -> Statement:
        return self._custom(
            "queue_state_estimates",
            {"table": f"{self.q.quoted_schema}.job", "schema": self.schema},
        )

    def job_activity_minutes(self, queue: str | None, since: datetime, cap: int) -> Statement:
        return self._custom("job_activity_minutes", {"queue": queue, "since": since, "cap": cap})

    def dashboard_clock(self) -> Statement:
        return self._custom("dashboard_clock")

    def schema_relation_exists(self, relation: str) -> Statement:
        """Whether ``relation`` (a name inside the schema) exists."""
        return self._custom(
            "schema_relation_exists", {"relation": f"{self.q.quoted_schema}.{relation}"}
        )

    # -- events --------------------------------------------------------------------------------

    def event_job_insert(
        self,
        job_id: JobId,
        queue: str,
        event: str,
        data: str,
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
        singleton_key: str | None,
    ) -> Statement:
        """``job_insert`` of an event: also writes its subscribers' copies."""
        return self._hot(
            "event_send_one",
            {
                "id": job_id,
                "queue": queue,
                "event": event,
                "data": data,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "singleton_key": singleton_key,
            },
        )

    def event_job_insert_batch(
        self,
        queue: str,
        ids: Sequence[JobId],
        texts: Sequence[str],
        events: Sequence[str | None],
        priority: int,
        start_after: datetime | None,
        delay: timedelta | None,
    ) -> Statement:
        """``job_insert_batch`` of events: also writes their subscribers' copies."""
        return self._hot(
            "event_send_batch",
            {
                "queue": queue,
                "priority": priority,
                "start_after": start_after,
                "delay": delay,
                "ids": ids,
                "data": texts,
                "events": events,
            },
        )

    def event_domain_subscribed(self, queue: str) -> Statement:
        return self._custom("event_domain_subscribed", {"queue": queue})

    def event_fan_out_copied(self, ids: Sequence[JobId]) -> Statement:
        return self._custom("event_fan_out_copied", {"ids": ids})

    def subscription_set(self, queue: str, pairs: Sequence[tuple[str, str]]) -> Statement:
        """``queue`` subscribes to exactly these (domain, event) pairs."""
        return self._custom(
            "subscription_set",
            {
                "queue": queue,
                "domains": [domain for domain, _ in pairs],
                "events": [event for _, event in pairs],
            },
        )

    def subscription_list(self) -> Statement:
        return self._custom("subscription_list")

    def relay_job_options(self, ids: Sequence[JobId]) -> Statement:
        return self._custom("relay_job_options", {"ids": list(ids)})

    def relay_job_write(
        self,
        queue: str,
        ids: Sequence[JobId],
        data: Sequence[str],
        priorities: Sequence[int],
        singleton_keys: Sequence[str | None],
    ) -> Statement:
        return self._custom(
            "relay_job_write",
            {
                "queue": queue,
                "ids": list(ids),
                "data": list(data),
                "priorities": list(priorities),
                "singleton_keys": list(singleton_keys),
            },
        )

    def queue_archive_set(self, name: str, archive: timedelta | None) -> Statement:
        return self._custom("queue_archive_set", {"name": name, "archive": archive})

    def queue_archives(self) -> Statement:
        return self._custom("queue_archives")

    def job_archive_finished(self, queue: str, limit: int) -> Statement:
        return self._custom("job_archive_finished", {"queue": queue, "limit": limit})

    def job_archive_purge(self, queue: str, archive: timedelta, limit: int) -> Statement:
        return self._custom(
            "job_archive_purge", {"queue": queue, "archive": archive, "limit": limit}
        )

    def job_get_archived(self, job_id: JobId) -> Statement:
        return self._custom("job_get_archived", {"id": job_id})

    def schedule_upsert(self, params: Mapping[str, Any]) -> Statement:
        return self._custom("schedule_upsert", params)

    def schedule_delete(self, name: str) -> Statement:
        return self._custom("schedule_delete", {"name": name})

    def schedule_drop_undeclared(self, queue: str, names: Sequence[str]) -> Statement:
        return self._custom("schedule_drop_undeclared", {"queue": queue, "names": list(names)})

    def schedule_list(self) -> Statement:
        return self._custom("schedule_list")

    def schedule_clock(self) -> Statement:
        return self._custom("schedule_clock")

    def schedule_fire(self, name: str, slot: datetime, job_id: JobId, data: str) -> Statement:
        return self._custom(
            "schedule_fire", {"name": name, "slot": slot, "id": job_id, "data": data}
        )

    def schedule_skip(self, name: str, slot: datetime) -> Statement:
        return self._custom("schedule_skip", {"name": name, "slot": slot})

    # -- dashboard activity roll-up --

    def job_minute_rollup(self) -> Statement:
        """Adds the minutes that ended since the mark to the dashboard's per-minute figures."""
        return self._custom("job_minute_rollup")

    def job_search_event(
        self,
        event: str,
        queue: str | None,
        state: str | None,
        after: JobId | None,
        scan: int,
        limit: int,
    ) -> Statement:
        """The jobs of ``event`` among at most ``scan`` jobs, newest first from ``after``."""
        return self._custom(
            "job_search_event",
            {
                "event": event,
                "queue": queue,
                "state": state,
                "after": after,
                "scan": scan,
                "limit": limit,
            },
        )
