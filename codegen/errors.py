"""Catalogue errors: one line each, naming the file, the line and the path."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CatalogueError", "CatalogueInvalid", "Path", "format_path", "suggest"]

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("domains", "billing", "required", 2)`` -> ``domains.billing.required[2]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def suggest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean "x"?)`` when a candidate is close to ``word``, else an empty string."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=cutoff)
    return f' (did you mean "{matches[0]}"?)' if matches else ""


@dataclass(frozen=True, order=True)
class CatalogueError:
    """One problem in the catalogue; ``str()`` gives the one-line report."""

    line: int
    path: str
    message: str
    file: str = "queues.yaml"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class CatalogueInvalid(Exception):
    """The catalogue has one or more errors; nothing was generated."""

    def __init__(self, errors: Iterable[CatalogueError]) -> None:
        self.errors = sorted(set(errors), key=lambda e: (e.line, e.path, e.message))
        super().__init__("\n".join(str(error) for error in self.errors))
