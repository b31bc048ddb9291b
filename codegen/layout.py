"""Print Python the way ``ruff format`` leaves it, for the few shapes the templates emit.

A call or signature goes on one line when it fits in ``LINE_LENGTH``; otherwise one
argument per line with a trailing comma (the "magic trailing comma" keeps ruff from
joining it again). Docstrings are wrapped and escaped. Import names and ``__all__`` are
sorted as ruff's isort and RUF022 sort them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from .payloads import wrap_text

__all__ = [
    "LINE_LENGTH",
    "Call",
    "Item",
    "Text",
    "all_list",
    "docstring",
    "dunder_all_key",
    "from_import",
    "isort_key",
    "layout",
    "py_str",
    "py_timedelta",
]

LINE_LENGTH = 100


@dataclass(frozen=True)
class Call:
    """``head`` + arguments + ``tail``, e.g. ``Call("f(", ["a", "b"], ")")``.

    With ``tuple_display``, the items of a tuple: a lone item keeps its comma on one line too.
    """

    head: str
    args: Sequence[Item]
    tail: str = ")"
    tuple_display: bool = False


@dataclass(frozen=True)
class Text:
    """``prefix`` + a string literal, split into implicitly joined lines when too long."""

    prefix: str
    value: str


Item = str | Call | Text


def _chunks(value: str, width: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for word in value.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(py_str(candidate + " ")) > width:
            chunks.append(current + " ")
            current = word
        else:
            current = candidate
    chunks.append(current)
    return chunks


def _flat(item: Item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Text):
        return item.prefix + py_str(item.value)
    comma = "," if item.tuple_display and len(item.args) == 1 else ""
    return item.head + ", ".join(_flat(a) for a in item.args) + comma + item.tail


def layout(item: Item, indent: int = 0, suffix: int = 0) -> str:
    """Lay ``item`` out at ``indent`` spaces; the first line carries no indentation.

    ``suffix`` is the length of what follows on the last line (a comma, say).
    """
    flat = _flat(item)
    fits = indent + len(flat) + suffix <= LINE_LENGTH
    if isinstance(item, str) or (fits and "\n" not in flat):
        return flat
    pad = " " * (indent + 4)
    if isinstance(item, Text):
        chunks = _chunks(item.value, LINE_LENGTH - indent - 4)
        body = [pad + py_str(chunk) for chunk in chunks]
        return "\n".join([item.prefix + "(", *body, " " * indent + ")"])
    lines = [item.head]
    lines += [pad + layout(arg, indent + 4, 1) + "," for arg in item.args]
    lines.append(" " * indent + item.tail)
    return "\n".join(lines)


def py_str(text: str) -> str:
    """A double-quoted Python string literal."""
    return json.dumps(text, ensure_ascii=False)


def py_timedelta(value: timedelta) -> str:
    ms = round(value.total_seconds() * 1000)
    for unit, factor in (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000)):
        if ms and ms % factor == 0:
            return f"timedelta({unit}={ms // factor})"
    if ms % 1000 == 0:
        return f"timedelta(seconds={ms // 1000})"
    return f"timedelta(milliseconds={ms})"


def docstring(text: str, indent: int = 0) -> str:
    """A docstring literal for ``text`` at ``indent``, wrapped to the line length."""
    width = LINE_LENGTH - indent - 8
    body = wrap_text(text, width).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.startswith('"'):
        body = " " + body
    lines = body.split("\n")
    if len(lines) == 1 and indent + len(body) + 6 <= LINE_LENGTH and not body.endswith('"'):
        return f'"""{body}"""'
    pad = " " * indent
    rest = [pad + line if line else "" for line in lines[1:]]
    return "\n".join([f'"""{lines[0]}', *rest, f'{pad}"""'])


def _kind(name: str) -> int:
    if len(name) > 1 and name.isupper():
        return 0  # CONSTANT
    return 1 if name[:1].isupper() else 2  # Class, then everything else


@lru_cache(maxsize=8192)
def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(chunk)) if chunk.isdigit() else (1, chunk)
        for chunk in re.split(r"(\d+)", name)
        if chunk
    )


def isort_key(name: str) -> tuple[object, ...]:
    """Ruff's isort member order: CONSTANTS, Classes, others; case-insensitive, natural."""
    return _kind(name), _natural(name.lower()), _natural(name)


def dunder_all_key(name: str) -> tuple[object, ...]:
    """RUF022's order: like isort's, but case-sensitive."""
    return _kind(name), _natural(name)


def from_import(module: str, imported: Iterable[str]) -> str:
    ordered = sorted(set(imported), key=isort_key)
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= LINE_LENGTH:
        return line
    return "\n".join([f"from {module} import (", *[f"    {n}," for n in ordered], ")"])


def all_list(exported: Iterable[str]) -> str:
    """``__all__ = [...]`` sorted the way RUF022 expects."""
    ordered = sorted(set(exported), key=dunder_all_key)
    items = ", ".join(py_str(n) for n in ordered)
    line = f"__all__ = [{items}]"
    if len(line) <= LINE_LENGTH:
        return line
    return "\n".join(["__all__ = [", *[f"    {py_str(n)}," for n in ordered], "]"])
