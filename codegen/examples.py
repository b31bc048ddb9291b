"""Check each event's optional ``example`` against the model generated for it.

The models module of a domain is executed in a throwaway module, so a bad example is
reported against the catalogue before anything is written. It returns plain data; the caller
turns it into catalogue errors.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .errors import Path

__all__ = ["ExampleProblem", "example_problems"]

_MAX_ERRORS = 5
_SERIAL = itertools.count()

ExampleProblem = tuple[str, Path, str]
"""(class name, location in the example, message)."""


def example_problems(
    domain: str, models_text: str, examples: Mapping[str, dict[str, Any]], what: str = "example"
) -> list[ExampleProblem]:
    """``examples`` maps class name -> example; classes missing from the text are skipped.
    ``what`` names the checked value in the messages (a schedule's ``payload``, say)."""
    if not examples:
        return []
    problems: list[ExampleProblem] = []
    with _loaded(domain, models_text) as module:
        for class_name, example in examples.items():
            model = getattr(module, class_name, None)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            try:
                model.model_validate(example)
            except PydanticValidationError as exc:
                for item in exc.errors(include_url=False, include_input=False)[:_MAX_ERRORS]:
                    loc: Path = tuple(p for p in item["loc"] if isinstance(p, str | int))
                    where = ".".join(str(p) for p in loc) or "(payload)"
                    message = f"{what} does not match the payload schema: {where}: {item['msg']}"
                    problems.append((class_name, loc, message))
    return problems


@contextmanager
def _loaded(domain: str, text: str) -> Iterator[types.ModuleType]:
    name = f"_queues_codegen_examples_{domain.replace('-', '_')}_{next(_SERIAL)}"
    module = types.ModuleType(name)
    sys.modules[name] = module  # pydantic resolves forward references through sys.modules
    try:
        exec(compile(text, f"<models of {domain}>", "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[name]
