"""Rewrite datamodel-code-generator's module into the models the SDK ships.

- Every enum becomes a ``Literal`` alias under the class name it was generated with
  (``InvoiceVoidedReason = Literal["duplicate", ...]``), so that a model accepts the values
  as written (``reason="fraud"``) and mypy still rejects any other. A long alias is laid out
  one value per line, as ruff formats it; fields keep the alias name, so their lines do not
  change.
- Models derive from ``typed_queues.runtime.typed.Payload``, which forbids unknown fields:
  ``extra="forbid"`` is dropped from each model's ``model_config``, and a model of an object
  that allows other fields gets the ``extra="ignore"`` that pydantic's default gave it.
- The import block is rebuilt as ruff's isort sorts it (the runtime is first-party), without
  the names no longer used.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from .layout import Call, from_import, layout

__all__ = ["PAYLOAD_BASE", "rewrite_models"]

PAYLOAD_BASE = "typed_queues.runtime.typed.Payload"
_BASE_NAME = PAYLOAD_BASE.rpartition(".")[2]
_IMPORTABLE = {"Literal": "typing", "ConfigDict": "pydantic"}
_FIRST_PARTY = PAYLOAD_BASE.partition(".")[0]


@dataclass(frozen=True)
class _Edit:
    """Replace lines ``start``..``end`` (1-based, inclusive) with ``lines``; ``end`` =
    ``start - 1`` inserts before ``start``."""

    start: int
    end: int
    lines: list[str]


def rewrite_models(text: str) -> str:
    """The SDK's models module from datamodel-code-generator's ``text``."""
    text = _apply(text, _body_edits(text))
    return _apply(text, [_imports_edit(text)])


def _apply(text: str, edits: Iterable[_Edit]) -> str:
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        lines[edit.start - 1 : edit.end] = edit.lines
    return "\n".join(lines)


def _body_edits(text: str) -> list[_Edit]:
    tree = ast.parse(text)
    lines = text.split("\n")
    edits: list[_Edit] = []
    enums: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [base.id for base in node.bases if isinstance(base, ast.Name)]
        if bases == ["StrEnum"] and len(node.bases) == 1:
            enums.add(node.name)
            edits.append(_Edit(node.lineno, _end(node), _literal_alias(node, lines)))
        elif bases == [_BASE_NAME] and len(node.bases) == 1:
            edits += _config_edits(node, lines)
    for found in ast.walk(tree):  # a member reference would not survive the rewrite
        if isinstance(found, ast.Attribute) and getattr(found.value, "id", None) in enums:
            raise RuntimeError(f"the generated models use an enum member: {ast.unparse(found)}")
    return edits


def _end(node: ast.stmt) -> int:
    assert node.end_lineno is not None  # (set by ast.parse)
    return node.end_lineno


def _segment(lines: list[str], node: ast.expr | ast.stmt) -> str:
    """The source of ``node`` (``ast.get_source_segment`` splits the whole text per call)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:  # offsets count UTF-8 bytes
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return "\n".join([head, *lines[first + 1 : last], tail])


def _docstring(node: ast.ClassDef) -> ast.Expr | None:
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def _literal_alias(node: ast.ClassDef, lines: list[str]) -> list[str]:
    """``Name = Literal[...]`` for a StrEnum class, with the class docstring after it."""
    values = [
        _segment(lines, statement.value)
        for statement in node.body
        if isinstance(statement, ast.Assign)
    ]
    alias = layout(Call(f"{node.name} = Literal[", values, "]")).split("\n")
    doc = _docstring(node)
    if doc is None:
        return alias
    return alias + [line.removeprefix("    ") for line in lines[doc.lineno - 1 : _end(doc)]]


def _config_edits(node: ast.ClassDef, lines: list[str]) -> list[_Edit]:
    """Drop ``extra="forbid"`` (the base class has it); add ``extra="ignore"`` where the model
    had no ``extra`` (pydantic's default, which the base class no longer gives)."""
    config = next((s for s in node.body if _is_config(s)), None)
    doc = _docstring(node)
    if config is None:
        return [_insert_config(node, doc, [("extra", '"ignore"')])]
    assert isinstance(config, ast.Assign) and isinstance(config.value, ast.Call)
    keywords = [(k.arg or "", _segment(lines, k.value)) for k in config.value.keywords]
    extra = dict(keywords).get("extra")
    if extra == '"forbid"':
        keywords = [(name, value) for name, value in keywords if name != "extra"]
    elif extra is None:
        keywords.insert(0, ("extra", '"ignore"'))
    else:
        return []
    if keywords:
        return [_Edit(config.lineno, _end(config), _config_lines(keywords))]
    rest = [s for s in node.body if s is not config and s is not doc]
    if rest:
        return [_Edit(config.lineno, _end(config), [])]
    if doc is None:
        return [_Edit(config.lineno, _end(config), ["    pass"])]
    # only the docstring is left: the blank line after it goes too
    return [_Edit(_end(doc) + 1, _end(config), [])]


def _is_config(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Assign)
        and [t.id for t in statement.targets if isinstance(t, ast.Name)] == ["model_config"]
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id == "ConfigDict"
    )


def _config_lines(keywords: list[tuple[str, str]]) -> list[str]:
    """``model_config`` as datamodel-code-generator writes it: one keyword per line."""
    return [
        "    model_config = ConfigDict(",
        *[f"        {name}={value}," for name, value in keywords],
        "    )",
    ]


def _insert_config(
    node: ast.ClassDef, doc: ast.Expr | None, keywords: list[tuple[str, str]]
) -> _Edit:
    config = _config_lines(keywords)
    rest = [s for s in node.body if s is not doc]
    if len(rest) == 1 and isinstance(rest[0], ast.Pass):
        return _Edit(rest[0].lineno, _end(rest[0]), config)
    if rest:
        return _Edit(rest[0].lineno, rest[0].lineno - 1, config)
    assert doc is not None  # (a class body is never empty)
    return _Edit(_end(doc) + 1, _end(doc), ["", *config])


# -- imports -----------------------------------------------------------------------------------


def _imports_edit(text: str) -> _Edit:
    tree = ast.parse(text)
    lines = text.split("\n")
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    if not imports or imports[-1] is tree.body[-1]:
        raise RuntimeError("the generated models are not imports followed by definitions")
    first, last = imports[0], imports[-1]
    between = tree.body[tree.body.index(first) : tree.body.index(last) + 1]
    if between != imports:
        raise RuntimeError("the generated models' imports are not one block")
    rest = [n for n in tree.body if n not in imports]
    used = {n.id for stmt in rest for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    bound = {alias.asname or alias.name for n in imports for alias in n.names}
    defined = {stmt.name for stmt in rest if isinstance(stmt, ast.ClassDef)}
    defined |= {
        target.id
        for stmt in rest
        if isinstance(stmt, ast.Assign)
        for target in stmt.targets
        if isinstance(target, ast.Name)
    }
    added: dict[str, list[str]] = {}
    for name in sorted(used - bound - defined):
        if name in _IMPORTABLE:  # brought in by the rewrite
            added.setdefault(_IMPORTABLE[name], []).append(name)
    statements: list[tuple[tuple[int, int, str], str]] = []
    for node in imports:
        if isinstance(node, ast.Import):
            statements.append((_order(node.names[0].name, 0), _segment(lines, node)))
            continue
        module = "." * node.level + (node.module or "")
        kept = [a for a in node.names if module == "__future__" or (a.asname or a.name) in used]
        extra = added.pop(module, [])
        if not kept and not extra:
            continue
        if len(kept) == len(node.names) and not extra:
            statements.append((_order(module, 1), _segment(lines, node)))
        else:
            names = [_alias(a) for a in kept] + extra
            statements.append((_order(module, 1), from_import(module, names)))
    for module, names in added.items():
        statements.append((_order(module, 1), from_import(module, names)))
    statements.sort(key=lambda item: item[0])
    block: list[str] = []
    section = None
    for (kind, _straight, _module), statement in statements:
        if section is not None and kind != section:
            block.append("")
        section = kind
        block += statement.split("\n")
    following = tree.body[tree.body.index(last) + 1]
    starts = [following.lineno, *(d.lineno for d in getattr(following, "decorator_list", ()))]
    # ruff's isort: two blank lines before a class or function, one before anything else
    gap = 2 if isinstance(following, ast.ClassDef | ast.FunctionDef) else 1
    return _Edit(first.lineno, min(starts) - 1, block + [""] * gap)


def _alias(alias: ast.alias) -> str:
    return alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"


def _order(module: str, straight_or_from: int) -> tuple[int, int, str]:
    """Ruff's isort order: future, standard library, third party, first party, relative; in
    a section ``import x`` before ``from x import``, then by module."""
    top = module.partition(".")[0]
    if module == "__future__":
        section = 0
    elif top in sys.stdlib_module_names:
        section = 1
    elif module.startswith("."):
        section = 4
    elif top == _FIRST_PARTY:
        section = 3
    else:
        section = 2
    return section, straight_or_from, module.lower()
