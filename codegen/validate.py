"""Cross-checks of a structurally valid catalogue (the README's catalogue format).

Names (characters, lengths, keywords), generated-name collisions, dead-letter targets and
cycles, retry delays, payload schemas and ``entity_id``. All errors are collected. For a
catalogue whose shape is wrong they run on its salvaged parts, skipping every verdict that
depends on what ``Gaps`` marks as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import names
from .catalogue import Catalogue, EffectiveRetry, format_duration
from .errors import CatalogueError, Path, suggest
from .salvage import Gaps
from .schemas import SchemaChecker, ref_target, scalar_type_of
from .source import Source

__all__ = ["cross_check", "resolve_dead_letter"]

#: A domain's ``database:`` (the runtime's rule: it names the variable QUEUES_DSN_<NAME>).
_DATABASE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _database(name: str | None) -> str:
    return "the default database" if name is None else f'database "{name}"'


def cross_check(
    catalogue: Catalogue, source: Source, gaps: Gaps | None = None
) -> list[CatalogueError]:
    checks = _Checks(catalogue, source, gaps or Gaps())
    checks.run()
    return checks.errors


def resolve_dead_letter(domain: str, target: str) -> tuple[str, str]:
    """``"invoices-dead"`` in ``billing`` -> ``("billing", "invoices-dead")``."""
    if "." in target:
        other, queue = target.split(".", 1)
        return other, queue
    return domain, target


@dataclass(frozen=True)
class _Owner:
    what: str
    path: Path


class _Checks:
    def __init__(self, catalogue: Catalogue, source: Source, gaps: Gaps) -> None:
        self.catalogue = catalogue
        self.source = source
        self.gaps = gaps
        self.errors: list[CatalogueError] = []

    def report(self, path: Path, message: str) -> None:
        self.errors.append(self.source.error(path, message))

    def run(self) -> None:
        if not self.catalogue.domains and not self.gaps.domains:
            self.report(("domains",), "the catalogue declares no domains")
        if not self.gaps.defaults:
            self._check_retry(
                ("defaults", "retry"), EffectiveRetry().merged(self.catalogue.defaults.retry)
            )
        packages: dict[str, _Owner] = {}
        for domain_name in self.catalogue.domains:
            path: Path = ("domains", domain_name)
            problem = names.check_catalogue_name("domain", domain_name, names.DOMAIN_MAX)
            if problem:
                self.report(path, problem)
                continue
            package = names.package_name(domain_name)
            if package in names.RESERVED_NAMES or package == "create_queues":
                self.report(path, f'domain name "{domain_name}" is reserved in Python')
            self._claim(
                packages, package, f'package "{package}"', _Owner(f'domain "{domain_name}"', path)
            )
            self._check_domain(domain_name, path)
        self._check_databases()
        self._check_dead_letters()
        self._check_subscriptions()
        self._check_schedules()

    def _claim(self, table: dict[str, _Owner], name: str, label: str, owner: _Owner) -> None:
        previous = table.get(name)
        if previous is None:
            table[name] = owner
            return
        line = self.source.line(previous.path)
        self.report(
            owner.path,
            f"generated name {label} of {owner.what} collides with {previous.what} (line {line})",
        )

    def _check_domain(self, domain_name: str, path: Path) -> None:
        domain = self.catalogue.domains[domain_name]
        schemas = SchemaChecker(
            domain.defs, self.report, resolve_refs=self.gaps.refs_known(domain_name)
        )
        exported: dict[str, _Owner] = {}
        for def_name, schema in domain.defs.items():
            def_path: Path = (*path, "$defs", def_name)
            problem = names.check_class_name(def_name)
            if problem:
                self.report(def_path, problem)
            else:
                self._claim(
                    exported,
                    def_name,
                    f'class "{def_name}"',
                    _Owner(f'$defs "{def_name}"', def_path),
                )
            if (domain_name, def_name) not in self.gaps.opaque_defs:
                schemas.check(schema, def_path)
        if not domain.queues and domain_name not in self.gaps.queues:
            self.report((*path, "queues"), "a domain needs at least one queue")
        events: dict[str, _Owner] = {}
        for queue_name, queue in domain.queues.items():
            queue_path: Path = (*path, "queues", queue_name)
            problem = names.check_catalogue_name("queue", queue_name, names.QUEUE_MAX)
            if problem:
                self.report(queue_path, problem)
                continue
            db_name = names.db_queue_name(domain_name, queue_name)
            if len(db_name.encode()) > names.DB_NAME_MAX:
                self.report(
                    queue_path,
                    f'queue name "{db_name}" is {len(db_name)} characters long; '
                    f"the limit is {names.DB_NAME_MAX} (domain and queue together)",
                )
            owner = _Owner(f'queue "{queue_name}"', queue_path)
            for generated in self._queue_names(queue_name, bool(queue.events or queue.subscribe)):
                self._claim(exported, generated, f'"{generated}"', owner)
            if queue.retry is not None and not self.gaps.defaults:
                base = EffectiveRetry().merged(self.catalogue.defaults.retry)
                self._check_retry((*queue_path, "retry"), base.merged(queue.retry))
            for event_name in queue.events:
                event_path: Path = (*queue_path, "events", event_name)
                problem = names.check_catalogue_name("event", event_name, names.EVENT_MAX)
                if problem:
                    self.report(event_path, problem)
                    continue
                if event_name in events:
                    first = events[event_name]
                    self.report(
                        event_path,
                        f'duplicate event "{event_name}" in domain "{domain_name}": '
                        f"already declared in {first.what} (line {self.source.line(first.path)})",
                    )
                    continue
                events[event_name] = _Owner(f'queue "{queue_name}"', event_path)
                self._check_event(domain_name, event_name, event_path, exported, schemas)

    @staticmethod
    def _queue_names(queue: str, has_events: bool) -> Iterator[str]:
        yield names.queue_constant(queue)
        if has_events:
            yield names.protocol_class(queue)
            yield names.sync_protocol_class(queue)
            yield names.worker_factory(queue)

    def _check_event(
        self,
        domain_name: str,
        event_name: str,
        path: Path,
        exported: dict[str, _Owner],
        schemas: SchemaChecker,
    ) -> None:
        domain = self.catalogue.domains[domain_name]
        queue = domain.queues[str(path[3])]
        event = queue.events[event_name]
        owner = _Owner(f'event "{event_name}"', path)
        cls = names.model_class(event_name)
        if cls in names.RESERVED_NAMES:
            self.report(path, f'event "{event_name}" would generate class "{cls}", a reserved name')
        else:
            self._claim(exported, cls, f'class "{cls}"', owner)
        for function in names.enqueue_names(event_name):
            self._claim(exported, function, f'function "{function}"', owner)
        if path in self.gaps.payloads:
            return
        schemas.check_payload(event.payload, (*path, "payload"))
        if event.entity_id is not None:
            self._check_entity_id(domain_name, event.entity_id, event.payload, (*path, "entity_id"))

    def _check_entity_id(
        self, domain_name: str, field: str, payload: dict[str, object], path: Path
    ) -> None:
        properties = payload.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        if field not in properties:
            self.report(
                path,
                f'entity_id "{field}": the payload has no field "{field}"'
                f"{suggest(field, properties)}",
            )
            return
        required = payload.get("required")
        if not isinstance(required, list) or field not in required:
            self.report(
                path,
                f'entity_id "{field}": the field must be required, so that every job logs an id',
            )
        schema = properties[field]
        if isinstance(schema, dict) and "$ref" in schema:
            target = ref_target(schema["$ref"])
            if target is not None and not self.gaps.refs_known(domain_name, target):
                return  # what it refers to is unknown
        defs = self.catalogue.domains[domain_name].defs
        kind = scalar_type_of(schema, defs) if isinstance(schema, dict) else None
        if kind not in {"string", "integer"}:
            self.report(
                path,
                f'entity_id "{field}": the field must be a string or an integer, '
                f"not {kind or 'that'}",
            )

    def _check_retry(self, path: Path, retry: EffectiveRetry) -> None:
        if retry.max_delay < retry.delay:
            self.report(
                path,
                f"max_delay ({format_duration(retry.max_delay)}) is shorter than "
                f"delay ({format_duration(retry.delay)})",
            )

    def _check_dead_letters(self) -> None:
        domains = self.catalogue.domains
        edges: dict[str, str] = {}
        origin: dict[str, Path] = {}
        for domain_name, domain in domains.items():
            for queue_name, queue in domain.queues.items():
                db_name = names.db_queue_name(domain_name, queue_name)
                origin[db_name] = ("domains", domain_name, "queues", queue_name)
                if queue.dead_letter is None:
                    continue
                path: Path = (*origin[db_name], "dead_letter")
                target_domain, target_queue = resolve_dead_letter(domain_name, queue.dead_letter)
                if target_domain not in domains:
                    if self.gaps.domains:
                        continue
                    self.report(
                        path,
                        f'no domain "{target_domain}" for dead_letter "{queue.dead_letter}"'
                        f"{suggest(target_domain, domains)}",
                    )
                    continue
                candidates = domains[target_domain].queues
                if target_queue not in candidates:
                    if target_domain in self.gaps.queues:
                        continue
                    self.report(
                        path,
                        f'no queue "{target_queue}" in domain "{target_domain}"'
                        f"{suggest(target_queue, candidates)}",
                    )
                    continue
                target = names.db_queue_name(target_domain, target_queue)
                if target == db_name:
                    self.report(path, "a queue cannot be its own dead-letter queue")
                    continue
                here, there = domain.database, domains[target_domain].database
                if here != there:
                    self.report(
                        path,
                        f'dead_letter "{queue.dead_letter}" is on {_database(there)} and this '
                        f"queue on {_database(here)}: a job is moved to its dead-letter queue "
                        "in the statement that fails it, which needs both on one server; "
                        "pick a dead-letter queue of a domain on the same database",
                    )
                    continue
                edges[db_name] = target
        reported: set[str] = set()
        for start in edges:
            chain = [start]
            current = start
            while current in edges and edges[current] not in chain:
                current = edges[current]
                chain.append(current)
            if current in edges and edges[current] == start and start not in reported:
                reported.update(chain)
                cycle = " -> ".join([*chain, start])
                self.report((*origin[start], "dead_letter"), f"dead-letter cycle: {cycle}")

    # -- events --

    def _event_owner(self, domain: str, event: str) -> str | None:
        """The queue of ``domain`` that declares ``event``, or None."""
        for queue_name, queue in self.catalogue.domains[domain].queues.items():
            if event in queue.events:
                return queue_name
        return None

    def _domain_events(self, domain: str) -> list[str]:
        return [e for q in self.catalogue.domains[domain].queues.values() for e in q.events]

    def _check_databases(self) -> None:
        for domain_name, domain in self.catalogue.domains.items():
            if domain.database is None:
                continue
            if not _DATABASE_NAME.fullmatch(domain.database):
                self.report(
                    ("domains", domain_name, "database"),
                    f'database "{domain.database}": write a lowercase name of letters, digits '
                    'and "_" starting with a letter, at most 40 characters (its DSN is read '
                    "from QUEUES_DSN_<NAME>, e.g. database: ledger -> QUEUES_DSN_LEDGER)",
                )

    def _check_subscriptions(self) -> None:
        domains = self.catalogue.domains
        for domain_name, domain in domains.items():
            for queue_name, queue in domain.queues.items():
                queue_path: Path = ("domains", domain_name, "queues", queue_name)
                methods: dict[str, str] = {
                    names.handler_method(event): f'its own event "{event}"'
                    for event in queue.events
                }
                seen: set[str] = set()
                for index, subscription in enumerate(queue.subscribe):
                    entry = subscription.event
                    path: Path = (*queue_path, "subscribe", index)
                    target = self._subscription_target(domain_name, queue_name, entry, path)
                    if target is None:
                        continue
                    if entry in seen:
                        self.report(path, f'"{entry}" is subscribed to twice')
                        continue
                    seen.add(entry)
                    publisher = domains[target[0]].database
                    if publisher != domain.database and subscription.delivery == "atomic":
                        self.report(
                            path,
                            f'subscribe entry "{entry}": domain "{target[0]}" is on '
                            f"{_database(publisher)} and this queue on "
                            f"{_database(domain.database)}; a send cannot write to two servers "
                            "in one transaction, so the copy cannot be atomic with the send. "
                            f"Write {{event: {entry}, delivery: at-least-once}} (an outbox on "
                            f"\"{target[0]}\"'s database, relayed by this queue's workers: each "
                            "copy arrives at least once and is written once), or put both "
                            "domains on one database",
                        )
                    method = names.handler_method(target[1])
                    if method in methods:
                        self.report(
                            path,
                            f'handler name clash: subscribing to "{entry}" needs the method '
                            f'"{method}", which {methods[method]} already has on queue '
                            f'"{queue_name}"',
                        )
                        continue
                    methods[method] = f'the subscription to "{entry}"'

    def _subscription_target(
        self, domain_name: str, queue_name: str, entry: str, path: Path
    ) -> tuple[str, str] | None:
        """The (domain, event) a subscribe entry names, or None after reporting why not."""
        domains = self.catalogue.domains
        if "." not in entry:
            self.report(
                path,
                f'subscribe entry "{entry}": write "domain.event", e.g. "billing.invoice-created"',
            )
            return None
        source, event = entry.split(".", 1)
        if source not in domains:
            if not self.gaps.domains:
                self.report(
                    path,
                    f'subscribe entry "{entry}": no domain "{source}"{suggest(source, domains)}',
                )
            return None
        owner = self._event_owner(source, event)
        if owner is None:
            if source not in self.gaps.queues:
                self.report(
                    path,
                    f'subscribe entry "{entry}": no event "{event}" in domain "{source}"'
                    f"{suggest(event, self._domain_events(source))}",
                )
            return None
        if source == domain_name and owner == queue_name:
            self.report(
                path,
                f'subscribe entry "{entry}": the event is the queue\'s own; a queue receives '
                "its own events already",
            )
            return None
        return source, event

    def _check_schedules(self) -> None:
        for domain_name, domain in self.catalogue.domains.items():
            for schedule_name, schedule in domain.schedules.items():
                path: Path = ("domains", domain_name, "schedules", schedule_name)
                problem = names.check_catalogue_name("schedule", schedule_name, names.EVENT_MAX)
                if problem:
                    self.report(path, problem)
                owner = self._event_owner(domain_name, schedule.event)
                if owner is None and domain_name not in self.gaps.queues:
                    self.report(
                        (*path, "event"),
                        f'no event "{schedule.event}" in domain "{domain_name}"'
                        f"{suggest(schedule.event, self._domain_events(domain_name))}",
                    )
                if (schedule.cron is None) == (schedule.every is None):
                    self.report(
                        path, 'give "cron" (e.g. "0 3 * * *") or "every" (e.g. 10m), one of the two'
                    )
                if schedule.cron is not None:
                    problem = cron_problem(schedule.cron)
                    if problem:
                        self.report((*path, "cron"), problem)
                if schedule.timezone is not None:
                    if schedule.every is not None:
                        self.report(
                            (*path, "timezone"),
                            'timezone applies to "cron" schedules only ("every" counts from the '
                            "Unix epoch)",
                        )
                    elif not timezone_known(schedule.timezone):
                        self.report(
                            (*path, "timezone"),
                            f'unknown time zone "{schedule.timezone}": use an IANA name such as '
                            "UTC or Europe/Paris",
                        )


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a cron expression the runtime accepts, or None."""
    from cronsim import CronSim, CronSimError  # the runtime's cron library

    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return (
            f'invalid cron expression "{expression}" ({exc}): write 5 fields, minute hour '
            'day-of-month month day-of-week, e.g. "0 3 * * *"'
        )
    return None


def timezone_known(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
