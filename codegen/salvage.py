"""The well-formed parts of a catalogue whose shape is wrong, for the cross-checks.

When ``Catalogue.model_validate`` fails, the shape errors are reported, and the cross-checks
still run on what is well-formed, so that one run reports everything it can. Each broken
part is dropped or replaced by a neutral stand-in, and ``Gaps`` records what became unknown,
so that no check passes a verdict that depends on it (no false positives):

- ``defaults`` broken: no retry check (every queue's policy inherits from it);
- a domain's queues unknown: no "needs a queue" check, no dead-letter target check into it;
- a domain's ``$defs`` unknown, or one definition not a mapping: no ``$ref`` resolution and
  no ``entity_id`` type check through a ``$ref`` in that domain;
- an event's payload unknown: no payload schema or ``entity_id`` check for that event.

Names (of domains, queues, events, ``$defs``) are checked wherever the name is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .catalogue import Catalogue, Defaults, Domain, Event, Queue, RetryConfig
from .errors import Path

__all__ = ["Gaps", "salvage"]

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass
class Gaps:
    """What a salvaged catalogue does not know; empty for a well-formed one."""

    defaults: bool = False
    domains: bool = False  # some domain key is not a string
    queues: set[str] = field(default_factory=set)  # domains whose queue set is unknown
    defs: set[str] = field(default_factory=set)  # domains whose $defs are unknown
    opaque_defs: set[tuple[str, str]] = field(default_factory=set)  # (domain, name)
    payloads: set[Path] = field(default_factory=set)  # event paths with an unknown payload

    def refs_known(self, domain: str, target: str | None = None) -> bool:
        """Whether ``$ref``s of ``domain`` (to ``target``) can be judged."""
        if domain in self.defs:
            return False
        return target is None or (domain, target) not in self.opaque_defs


def salvage(data: object) -> tuple[Catalogue, Gaps] | None:
    """The catalogue's well-formed parts and its gaps; None when nothing can be checked."""
    if not isinstance(data, dict) or not isinstance(data.get("domains"), dict):
        return None
    gaps = Gaps()
    defaults = _valid(Defaults, data.get("defaults", {}))
    if defaults is None:
        gaps.defaults = True
        defaults = Defaults()
    domains: dict[str, Domain] = {}
    for name, raw in data["domains"].items():
        if isinstance(name, str):
            domains[name] = _domain(name, raw, gaps)
        else:
            gaps.domains = True
    try:
        catalogue = Catalogue.model_validate(
            {"version": 1, "defaults": defaults, "domains": domains}
        )
    except PydanticValidationError:  # pragma: no cover - every part was validated above
        return None
    return catalogue, gaps


def _valid(model: type[_Model], raw: object) -> _Model | None:
    try:
        return model.model_validate(raw)
    except PydanticValidationError:
        return None


def _domain(name: str, raw: object, gaps: Gaps) -> Domain:
    if not isinstance(raw, dict):
        gaps.queues.add(name)
        gaps.defs.add(name)
        return Domain.model_validate({"queues": {}})
    defs: dict[str, dict[str, Any]] = {}
    raw_defs = raw.get("$defs", {})
    if isinstance(raw_defs, dict):
        for def_name, schema in raw_defs.items():
            if not isinstance(def_name, str):
                gaps.defs.add(name)
            elif isinstance(schema, dict):
                defs[def_name] = schema
            else:  # keep the name, so that $refs to it still resolve
                gaps.opaque_defs.add((name, def_name))
                defs[def_name] = {}
    else:
        gaps.defs.add(name)
    queues: dict[str, Queue] = {}
    raw_queues = raw.get("queues")
    if isinstance(raw_queues, dict):
        for queue_name, queue in raw_queues.items():
            if isinstance(queue_name, str):
                queues[queue_name] = _queue(("domains", name, "queues", queue_name), queue, gaps)
            else:
                gaps.queues.add(name)
    else:
        gaps.queues.add(name)
    return Domain.model_validate({"$defs": defs, "queues": queues})


def _queue(path: Path, raw: object, gaps: Gaps) -> Queue:
    if not isinstance(raw, dict):
        return Queue()
    retry = raw.get("retry")
    dead_letter = raw.get("dead_letter")
    events: dict[str, Event] = {}
    raw_events = raw.get("events")
    if isinstance(raw_events, dict):
        for event_name, event in raw_events.items():
            if isinstance(event_name, str):
                events[event_name] = _event((*path, "events", event_name), event, gaps)
    return Queue.model_validate(
        {
            "retry": None if retry is None else _valid(RetryConfig, retry),
            "dead_letter": dead_letter if isinstance(dead_letter, str) else None,
            "events": events,
        }
    )


def _event(path: Path, raw: object, gaps: Gaps) -> Event:
    payload = raw.get("payload") if isinstance(raw, dict) else None
    if not isinstance(payload, dict):
        gaps.payloads.add(path)
        return Event(payload={})
    assert isinstance(raw, dict)
    entity_id = raw.get("entity_id")
    return Event(payload=payload, entity_id=entity_id if isinstance(entity_id, str) else None)
