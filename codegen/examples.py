"""Check each event's optional ``example`` against the model generated for it.

The models module of a domain is executed in a throwaway module, so a bad example is
reported against the catalogue before anything is written.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .errors import CatalogueError, Path
from .source import Source

__all__ = ["check_examples"]

_MAX_ERRORS = 5


def check_examples(
    domain: str,
    models_text: str,
    examples: Mapping[str, tuple[dict[str, Any], Path]],
    source: Source,
) -> list[CatalogueError]:
    """``examples`` maps class name -> (example, path of the example in the catalogue)."""
    if not examples:
        return []
    errors: list[CatalogueError] = []
    with _loaded(domain, models_text) as module:
        for class_name, (example, path) in examples.items():
            model = getattr(module, class_name)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            try:
                model.model_validate(example)
            except PydanticValidationError as exc:
                for item in exc.errors(include_url=False, include_input=False)[:_MAX_ERRORS]:
                    loc: Path = tuple(p for p in item["loc"] if isinstance(p, str | int))
                    where = ".".join(str(p) for p in loc) or "(payload)"
                    errors.append(
                        source.error(
                            (*path, *loc),
                            f"example does not match the payload schema: {where}: {item['msg']}",
                        )
                    )
    return errors


@contextmanager
def _loaded(domain: str, text: str) -> Iterator[types.ModuleType]:
    name = f"_queues_codegen_examples_{domain.replace('-', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module  # pydantic resolves forward references through sys.modules
    try:
        exec(compile(text, f"<models of {domain}>", "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[name]
