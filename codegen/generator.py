"""Catalogue file -> the generated package's files, in memory. Writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from . import names
from .catalogue import Catalogue, load_catalogue, parse_catalogue
from .errors import CatalogueError, CatalogueInvalid, Path
from .layout import docstring
from .parallel import ModelsRunner
from .payloads import ModelsJob, ModelsModule, finish_models, models_job
from .plan import attach_models, build_plan
from .render import header_for, render_models, render_static
from .source import Source

__all__ = ["generate_files", "generate_files_from_text"]


def generate_files(catalogue_path: FilePath, display_name: str | None = None) -> dict[str, str]:
    """Relative path -> text of every file of the output package.

    Raises ``CatalogueInvalid`` (with every error found) when the catalogue is invalid.
    """
    try:
        size = catalogue_path.stat().st_size
    except OSError:
        size = 0
    with ModelsRunner(size) as runner:
        catalogue, source = load_catalogue(catalogue_path, display_name)
        return _files(catalogue, source, catalogue_path.name, runner)


def generate_files_from_text(text: str, file_name: str = "queues.yaml") -> dict[str, str]:
    with ModelsRunner(len(text.encode())) as runner:
        catalogue, source = parse_catalogue(text, file_name)
        return _files(catalogue, source, file_name, runner)


def _files(
    catalogue: Catalogue, source: Source, file_name: str, runner: ModelsRunner
) -> dict[str, str]:
    header = header_for(file_name)
    inputs: list[_DomainInput] = []
    for domain_name, domain in catalogue.domains.items():
        path: Path = ("domains", domain_name)
        item = _DomainInput(domain_name, (*path, "$defs"), domain.defs)
        for queue_name, queue in domain.queues.items():
            for event_name, event in queue.events.items():
                event_path: Path = (*path, "queues", queue_name, "events", event_name)
                class_name = names.model_class(event_name)
                item.events[class_name] = (event.payload, event.description, event_path)
                if event.example is not None:
                    item.examples[class_name] = event.example
        about = docstring(f"Payload models of domain ``{domain_name}``.")[3:-3]
        item.job = models_job(
            domain=domain_name,
            header=header,
            docstring=about,
            defs=domain.defs,
            events=item.events,
            examples=item.examples,
        )
        inputs.append(item)

    pending = runner.submit([item.job for item in inputs if item.job is not None])
    plans = build_plan(catalogue)
    files = render_static(plans, file_name)  # while a helper process generates the models
    built = iter(pending.result())
    models: dict[str, ModelsModule] = {}
    errors: list[CatalogueError] = []
    for item in inputs:
        if item.job is None:
            models[item.domain] = ModelsModule(text="", names=())
            continue
        try:
            models[item.domain] = finish_models(
                next(built),
                defs=item.defs,
                events=item.events,
                defs_path=item.defs_path,
                source=source,
            )
        except CatalogueInvalid as exc:
            errors += exc.errors
    if errors:
        raise CatalogueInvalid(errors)
    plans = attach_models(plans, models, source)
    files.update(render_models(plans, file_name))
    return dict(sorted(files.items()))


@dataclass
class _DomainInput:
    domain: str
    defs_path: Path
    defs: dict[str, dict[str, Any]]
    events: dict[str, tuple[dict[str, Any], str, Path]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    job: ModelsJob | None = None
