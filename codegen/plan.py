"""The render plan: the catalogue resolved into the names and values the templates print."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from . import names
from .catalogue import NEVER, Catalogue, EffectiveRetry, Queue, parse_rate
from .errors import CatalogueError, CatalogueInvalid, Path
from .payloads import ModelsModule
from .source import Source
from .validate import resolve_dead_letter

__all__ = ["DomainPlan", "EventPlan", "QueuePlan", "attach_models", "build_plan", "queue_order"]


@dataclass(frozen=True)
class EventPlan:
    name: str
    description: str
    model: str
    method: str
    enqueue: str
    enqueue_many: str
    enqueue_sync: str
    enqueue_many_sync: str
    entity_id: str | None


@dataclass(frozen=True)
class QueuePlan:
    name: str
    db_name: str
    description: str
    constant: str
    protocol: str
    sync_protocol: str
    worker: str
    routes: str
    retry: EffectiveRetry
    expire_in: timedelta
    retention: timedelta
    dead_letter: str | None
    events: tuple[EventPlan, ...]
    #: How long a job may wait to start; None: no limit.
    max_wait: timedelta | None = None
    #: Flow control: active jobs at once across processes (None: no limit).
    active_limit: int | None = None
    #: Flow control: at most (count, per) job starts; None: no limit.
    rate: tuple[int, timedelta] | None = None
    #: Flow control: (active per group key, fifo); None: no group policy.
    group: tuple[int, bool] | None = None
    #: Every event its worker handles: its own, then those it subscribes to.
    handled: tuple[HandledEvent, ...] = ()
    #: Subscriptions written with each send (atomic), as "domain.event".
    subscribe: tuple[str, ...] = ()
    #: ``delivery: at-least-once`` subscriptions: ("domain.event", the publisher's database).
    remote_subscriptions: tuple[tuple[str, str | None], ...] = ()
    #: The database of the queue's domain (None: the default one).
    database: str | None = None
    #: How long finished jobs stay archived after retention; None: deleted.
    archive: timedelta | None = None
    #: The domain's schedules whose event is one of this queue's.
    schedules: tuple[SchedulePlan, ...] = ()


@dataclass(frozen=True)
class HandledEvent:
    """An event a queue's worker routes to a handler method: its own or a subscribed one."""

    name: str
    description: str
    #: The payload model as handlers.py names it (``InvoiceCreated`` for the queue's own
    #: events, ``billing_models.InvoiceCreated`` for an event of domain billing).
    model: str
    method: str
    entity_id: str | None
    #: For a subscribed event, "domain.event"; None for the queue's own.
    subscription: str | None = None


@dataclass(frozen=True)
class SchedulePlan:
    db_name: str
    description: str
    event: str
    cron: str | None
    every: timedelta | None
    timezone: str | None
    catch_up: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class DomainPlan:
    name: str
    package: str
    description: str
    queues: tuple[QueuePlan, ...]
    models: ModelsModule
    #: The domain's ``database:`` (None: the default one).
    database: str | None = None

    @property
    def events(self) -> tuple[EventPlan, ...]:
        return tuple(event for queue in self.queues for event in queue.events)

    @property
    def handles(self) -> bool:
        """Whether some queue of the domain has a worker (own or subscribed events)."""
        return any(queue.handled for queue in self.queues)

    @property
    def subscribed_packages(self) -> list[str]:
        """The packages of the other domains whose events its queues subscribe to."""
        found = {
            event.model.split(".", 1)[0].removesuffix("_models")
            for queue in self.queues
            for event in queue.handled
            if "." in event.model
        }
        return sorted(found)

    @property
    def exported(self) -> list[str]:
        """Every name the domain package re-exports."""
        exported = list(self.models.names)
        for queue in self.queues:
            exported.append(queue.constant)
            if queue.handled:
                exported += [queue.protocol, queue.sync_protocol, queue.worker]
        for event in self.events:
            exported += [event.enqueue, event.enqueue_many, event.enqueue_sync]
            exported.append(event.enqueue_many_sync)
        return exported


_NO_MODELS = ModelsModule(text="", names=())


def build_plan(catalogue: Catalogue) -> list[DomainPlan]:
    """Resolve names and policies. The plans' models are empty until ``attach_models``."""
    defaults = EffectiveRetry().merged(catalogue.defaults.retry)
    plans: list[DomainPlan] = []
    for domain_name, domain in catalogue.domains.items():
        queues: list[QueuePlan] = []
        for queue_name, queue in domain.queues.items():
            dead_letter = None
            if queue.dead_letter is not None:
                dead_letter = names.db_queue_name(
                    *resolve_dead_letter(domain_name, queue.dead_letter)
                )
            events = tuple(
                EventPlan(
                    name=event_name,
                    description=event.description,
                    model=names.model_class(event_name),
                    method=names.handler_method(event_name),
                    enqueue=names.enqueue_names(event_name)[0],
                    enqueue_many=names.enqueue_names(event_name)[1],
                    enqueue_sync=names.enqueue_names(event_name)[2],
                    enqueue_many_sync=names.enqueue_names(event_name)[3],
                    entity_id=event.entity_id,
                )
                for event_name, event in queue.events.items()
            )
            queues.append(
                QueuePlan(
                    name=queue_name,
                    db_name=names.db_queue_name(domain_name, queue_name),
                    description=queue.description,
                    constant=names.queue_constant(queue_name),
                    protocol=names.protocol_class(queue_name),
                    sync_protocol=names.sync_protocol_class(queue_name),
                    worker=names.worker_factory(queue_name),
                    routes=names.routes_constant(queue_name),
                    retry=defaults.merged(queue.retry),
                    expire_in=queue.expire_in or catalogue.defaults.expire_in,
                    retention=queue.retention or catalogue.defaults.retention,
                    dead_letter=dead_letter,
                    events=events,
                    max_wait=_max_wait(queue.max_wait, catalogue.defaults.max_wait),
                    active_limit=None if queue.limits is None else queue.limits.active,
                    rate=_rate(queue),
                    group=None if queue.group is None else (queue.group.active, queue.group.fifo),
                    handled=_handled(catalogue, domain_name, events, queue.subscribed_events()),
                    subscribe=tuple(s.event for s in queue.subscribe if s.delivery == "atomic"),
                    remote_subscriptions=tuple(
                        (s.event, catalogue.domains[s.event.split(".", 1)[0]].database)
                        for s in queue.subscribe
                        if s.delivery == "at-least-once"
                    ),
                    database=domain.database,
                    archive=queue.archive,
                    schedules=_schedules(catalogue, domain_name, queue_name),
                )
            )
        plans.append(
            DomainPlan(
                name=domain_name,
                package=names.package_name(domain_name),
                description=domain.description,
                queues=tuple(queues),
                models=_NO_MODELS,
                database=domain.database,
            )
        )
    return plans


def attach_models(
    plans: list[DomainPlan], models: dict[str, ModelsModule], source: Source
) -> list[DomainPlan]:
    """The plans with their domains' models; raises ``CatalogueInvalid`` on a late collision."""
    attached: list[DomainPlan] = []
    errors: list[CatalogueError] = []
    for plan in plans:
        plan = replace(plan, models=models[plan.name])
        errors += _late_collisions(plan, source, ("domains", plan.name))
        attached.append(plan)
    if errors:
        raise CatalogueInvalid(errors)
    return attached


def _late_collisions(plan: DomainPlan, source: Source, path: Path) -> list[CatalogueError]:
    """Names of inline models are only known after generation; they must not collide."""
    seen: set[str] = set()
    errors: list[CatalogueError] = []
    for name in plan.exported:
        if name in seen:
            errors.append(
                source.error(
                    path,
                    f'generated name "{name}" is produced twice in domain "{plan.name}" '
                    "(an inline object's model collides with another generated name; "
                    "declare the object in $defs under another name)",
                )
            )
        seen.add(name)
    return errors


def queue_order(plans: list[DomainPlan]) -> list[tuple[DomainPlan, QueuePlan]]:
    """Every queue in catalogue order, except that a dead-letter queue precedes its users."""
    by_name = {queue.db_name: (plan, queue) for plan in plans for queue in plan.queues}
    ordered: list[tuple[DomainPlan, QueuePlan]] = []
    placed: set[str] = set()

    def place(db_name: str) -> None:
        if db_name in placed:
            return
        placed.add(db_name)
        plan, queue = by_name[db_name]
        if queue.dead_letter is not None:
            place(queue.dead_letter)
        ordered.append((plan, queue))

    for db_name in by_name:
        place(db_name)
    return ordered


def _max_wait(queue: timedelta | None, default: timedelta) -> timedelta | None:
    """The queue's ``max_wait`` after inheritance; None for no limit (``never``)."""
    chosen = default if queue is None else queue
    return None if chosen == NEVER else chosen


def _rate(queue: Queue) -> tuple[int, timedelta] | None:
    """The queue's ``limits.rate`` as (count, per); None when it has none."""
    if queue.limits is None or queue.limits.rate is None:
        return None
    return parse_rate(queue.limits.rate)


# -- events --


def _handled(
    catalogue: Catalogue, domain_name: str, own: tuple[EventPlan, ...], subscribe: list[str]
) -> tuple[HandledEvent, ...]:
    handled = [
        HandledEvent(event.name, event.description, event.model, event.method, event.entity_id)
        for event in own
    ]
    for entry in subscribe:
        source, name = entry.split(".", 1)
        event = next(
            q.events[name] for q in catalogue.domains[source].queues.values() if name in q.events
        )
        package = names.package_name(source)
        if source == domain_name:
            model = names.model_class(name)
        else:
            model = f"{package}_models.{names.model_class(name)}"
        handled.append(
            HandledEvent(
                name,
                event.description,
                model,
                names.handler_method(name),
                event.entity_id,
                entry,
            )
        )
    return tuple(handled)


def _schedules(catalogue: Catalogue, domain_name: str, queue_name: str) -> tuple[SchedulePlan, ...]:
    domain = catalogue.domains[domain_name]
    events = domain.queues[queue_name].events
    return tuple(
        SchedulePlan(
            db_name=names.db_queue_name(domain_name, schedule_name),
            description=schedule.description,
            event=schedule.event,
            cron=schedule.cron,
            every=schedule.every,
            timezone=schedule.timezone,
            catch_up=schedule.catch_up,
            payload=schedule.payload,
        )
        for schedule_name, schedule in domain.schedules.items()
        if schedule.event in events
    )
