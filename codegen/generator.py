"""Catalogue file -> the generated package's files, in memory. Writes nothing."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from . import names
from .catalogue import Catalogue, load_catalogue, parse_catalogue
from .errors import CatalogueError, CatalogueInvalid, Path
from .examples import example_problems
from .layout import docstring
from .payloads import ModelsModule, build_models, models_job
from .plan import attach_models, build_plan
from .render import header_for, render_tree
from .source import Source

__all__ = ["generate_files", "generate_files_from_text"]


def generate_files(catalogue_path: FilePath, display_name: str | None = None) -> dict[str, str]:
    """Relative path -> text of every file of the output package.

    Raises ``CatalogueInvalid`` (with every error found) when the catalogue is invalid.
    """
    catalogue, source = load_catalogue(catalogue_path, display_name)
    return _files(catalogue, source, catalogue_path.name)


def generate_files_from_text(text: str, file_name: str = "queues.yaml") -> dict[str, str]:
    catalogue, source = parse_catalogue(text, file_name)
    return _files(catalogue, source, file_name)


def _files(catalogue: Catalogue, source: Source, file_name: str) -> dict[str, str]:
    header = header_for(file_name)
    models: dict[str, ModelsModule] = {}
    errors: list[CatalogueError] = []
    for domain_name, domain in catalogue.domains.items():
        path: Path = ("domains", domain_name)
        events: dict[str, tuple[dict[str, Any], str, Path]] = {}
        examples: dict[str, dict[str, Any]] = {}
        for queue_name, queue in domain.queues.items():
            for event_name, event in queue.events.items():
                event_path: Path = (*path, "queues", queue_name, "events", event_name)
                class_name = names.model_class(event_name)
                events[class_name] = (event.payload, event.description, event_path)
                if event.example is not None:
                    examples[class_name] = event.example
        job = models_job(
            domain=domain_name,
            header=header,
            docstring=docstring(f"Payload models of domain ``{domain_name}``.")[3:-3],
            defs=domain.defs,
            events=events,
            examples=examples,
        )
        if job is None:
            models[domain_name] = ModelsModule(text="", names=())
            continue
        try:
            models[domain_name] = build_models(
                job, defs=domain.defs, events=events, defs_path=(*path, "$defs"), source=source
            )
        except CatalogueInvalid as exc:
            errors += exc.errors
    errors += _schedule_payload_problems(catalogue, models, source)
    if errors:
        raise CatalogueInvalid(errors)
    plans = attach_models(build_plan(catalogue), models, source)
    return render_tree(plans, file_name)


def _schedule_payload_problems(
    catalogue: Catalogue, models: dict[str, ModelsModule], source: Source
) -> list[CatalogueError]:
    """Each schedule's payload checked against its event's model (as examples are)."""
    errors: list[CatalogueError] = []
    for domain_name, domain in catalogue.domains.items():
        module = models.get(domain_name)
        if module is None:
            continue
        for schedule_name, schedule in domain.schedules.items():
            class_name = names.model_class(schedule.event)
            if class_name not in module.names:
                continue  # no such event: validate reported it
            path: Path = ("domains", domain_name, "schedules", schedule_name, "payload")
            payload = {class_name: schedule.payload}
            for _cls, loc, message in example_problems(
                domain_name, module.text, payload, what="payload"
            ):
                errors.append(source.error((*path, *loc), message))
    return errors
