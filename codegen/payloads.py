"""JSON Schema -> pydantic models, one module per domain, via datamodel-code-generator.

One ``generate()`` call per domain. Its input is a schema whose ``$defs`` hold the domain's
shared definitions and one entry per event payload (under the event's class name), so
``#/$defs/Money`` resolves the same way in both. The naming strategy keeps declared
names (``primary-first``) and names inline objects and enums after their parent
(``InvoiceCreatedLine``); every declared name is asserted to exist in the output. Its module
is then rewritten (``rewrite``): enums become ``Literal`` aliases and the models derive from
the runtime's ``Payload``. Last, each event's ``example`` is checked against its model.
"""

from __future__ import annotations

import ast
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Any

from .errors import CatalogueError, CatalogueInvalid, Path
from .examples import example_problems
from .source import Source

__all__ = [
    "ModelsJob",
    "ModelsModule",
    "build_models",
    "generate_module",
    "models_job",
    "wrap_text",
]

DOC_WIDTH = 88


@dataclass(frozen=True)
class ModelsModule:
    """The text of one domain's ``models.py`` and the top-level names it defines."""

    text: str
    names: tuple[str, ...]


@lru_cache(maxsize=4096)  # the same descriptions come back for every enqueue variant
def wrap_text(text: str, width: int = DOC_WIDTH) -> str:
    """Re-wrap prose paragraph by paragraph so that no docstring line passes ``width``."""
    paragraphs = [" ".join(p.split()) for p in text.replace("\r", "").split("\n\n")]
    return "\n\n".join(_fill(p, width) for p in paragraphs if p)


def _fill(paragraph: str, width: int) -> str:
    """Greedy wrap at spaces (never inside a word: ``invoice-created`` stays whole); a word
    longer than ``width`` gets a line of its own. ``paragraph`` has single spaces only."""
    if len(paragraph) <= width:
        return paragraph
    lines: list[str] = []
    current = ""
    for word in paragraph.split(" "):
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return "\n".join(lines)


@dataclass(frozen=True)
class ModelsJob:
    """The input of one ``generate()`` call: one domain's combined schema, and the examples
    (class name -> example) to check against the generated models."""

    root: dict[str, Any]
    class_name: str
    header: str
    domain: str = ""
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)


def models_job(
    *,
    domain: str,
    header: str,
    docstring: str,
    defs: Mapping[str, Any],
    events: Mapping[str, tuple[dict[str, Any], str, Path]],
    examples: Mapping[str, dict[str, Any]],
) -> ModelsJob | None:
    """The generator input for one domain, or None when it declares no schema at all.

    ``events`` maps class name -> (payload schema, event description, path in the catalogue);
    ``examples`` maps class name -> the event's example.
    """
    combined: dict[str, Any] = {name: _prepared(schema) for name, schema in defs.items()}
    for class_name, (payload, description, _path) in events.items():
        schema = _prepared(payload)
        if description and "description" not in schema:
            schema["description"] = wrap_text(description)
        combined[class_name] = schema
    if not combined:
        return None
    first = next(iter(combined))
    root = {"$defs": combined, "$ref": f"#/$defs/{first}"}
    return ModelsJob(
        root=root,
        class_name=first,
        header=f'{header}\n\n"""{docstring}"""',
        domain=domain,
        examples=dict(examples),
    )


def build_models(
    job: ModelsJob,
    *,
    defs: Mapping[str, Any],
    events: Mapping[str, tuple[dict[str, Any], str, Path]],
    defs_path: Path,
    source: Source,
) -> ModelsModule:
    """Generate one domain's module, check that every declared class kept its name and that
    every example matches its model; raises ``CatalogueInvalid`` with every problem if not."""
    text = generate_module(job)
    defined = _top_level_names(text)
    missing: list[CatalogueError] = []
    for name in defs:
        if name not in defined:
            missing.append(
                source.error(
                    (*defs_path, name), f'class "{name}" is missing from the generated models'
                )
            )
    for class_name, (_payload, _description, path) in events.items():
        if class_name not in defined:
            missing.append(
                source.error(path, f'class "{class_name}" is missing from the generated models')
            )
    examples = {name: example for name, example in job.examples.items() if name in defined}
    for class_name, loc, message in example_problems(job.domain, text, examples):
        event_path = events[class_name][2]
        missing.append(source.error((*event_path, "example", *loc), message))
    if missing:
        raise CatalogueInvalid(missing)
    return ModelsModule(text=text, names=tuple(sorted(defined)))


def _prepared(schema: Any) -> Any:
    """A copy with descriptions wrapped for docstrings (keys of ``properties`` untouched)."""
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description" and isinstance(value, str):
            result[key] = wrap_text(value)
        elif key == "properties" and isinstance(value, dict):
            result[key] = {name: _prepared(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties"}:
            result[key] = _prepared(value)
        elif key == "anyOf" and isinstance(value, list):
            result[key] = [_prepared(option) for option in value]
        else:
            result[key] = value
    return result


def generate_module(job: ModelsJob) -> str:
    """One domain's ``models.py`` text from datamodel-code-generator."""
    from datamodel_code_generator import generate
    from datamodel_code_generator.enums import DataModelType, InputFileType, NamingStrategy
    from datamodel_code_generator.format import Formatter, PythonVersion

    from .rewrite import PAYLOAD_BASE, rewrite_models  # local: ``rewrite`` -> ``layout`` -> us

    with tempfile.TemporaryDirectory() as isolated, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        output = generate(
            job.root,
            input_file_type=InputFileType.JsonSchema,
            output_model_type=DataModelType.PydanticV2BaseModel,
            target_python_version=PythonVersion.PY_311,
            class_name=job.class_name,
            use_annotated=True,
            field_constraints=True,
            formatters=[Formatter.BUILTIN],
            builtin_format_line_length=100,
            settings_path=FilePath(isolated),  # no pyproject.toml may steer the formatter
            disable_timestamp=True,
            custom_file_header=job.header,
            naming_strategy=NamingStrategy.PrimaryFirst,
            parent_scoped_naming=True,
            base_class=PAYLOAD_BASE,
            use_schema_description=True,
            use_field_description=True,
            use_type_alias=True,
            strict_nullable=True,
            use_standard_collections=True,
            use_union_operator=True,
            use_double_quotes=True,
            keep_model_order=False,
            allow_remote_refs=False,
        )
    if not isinstance(output, str):  # pragma: no cover - one input gives one module
        raise TypeError(f"datamodel-code-generator returned {type(output).__name__}, expected str")
    return rewrite_models(output.rstrip("\n") + "\n")


def _top_level_names(text: str) -> set[str]:
    defined: set[str] = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    return defined
