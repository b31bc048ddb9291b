"""Read the catalogue YAML into plain Python data, remembering the line of every key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from .errors import CatalogueError, CatalogueInvalid, Path, format_path

__all__ = ["Source", "load_source", "parse_source"]


@dataclass
class Source:
    """The catalogue's data as plain dicts/lists/scalars, with a line for every path."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that exists in the file."""
        probe = tuple(path)
        while probe:
            found = self.lines.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
        return 1

    def error(self, path: Path, message: str) -> CatalogueError:
        return CatalogueError(self.line(path), format_path(path), message, self.file)


def load_source(path: FilePath, display_name: str | None = None) -> Source:
    """Read and parse ``path``; raises ``CatalogueInvalid`` for unreadable or malformed YAML."""
    shown = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CatalogueInvalid(
            [CatalogueError(1, "(file)", f"cannot read catalogue: {reason}", shown)]
        ) from None
    return parse_source(text, shown)


def parse_source(text: str, file: str = "queues.yaml") -> Source:
    """Parse YAML 1.2 text (duplicate keys rejected) into a ``Source``.

    ruamel's C parser (``ruamel.yaml.clib``) composes the node tree when it is installed: the
    round-trip loader is about seven times slower. Node marks give the lines.
    """
    yaml = YAML(typ="safe", pure=False)
    yaml.Resolver = _Resolver
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.compose(text)
        data = yaml.constructor.construct_document(root) if root is not None else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if "duplicate key" in problem:
            problem = problem.replace("found duplicate key", "duplicate key")
        raise CatalogueInvalid(
            [CatalogueError(line, "(yaml)", f"invalid YAML: {problem}", file)]
        ) from None
    except YAMLError as exc:
        raise CatalogueInvalid(
            [CatalogueError(1, "(yaml)", f"invalid YAML: {' '.join(str(exc).split())}", file)]
        ) from None
    source = Source(file=file, data=_plain(data))
    if root is not None:
        _record_lines(root, (), source.lines, set())
    return source


class _Resolver(VersionedResolver):
    """Looks up the document's YAML version once, not once per scalar (half the parse time).

    The version is fixed by then: a ``%YAML`` directive precedes the document's first node.
    """

    @property
    def versioned_resolver(self) -> Any:
        resolvers = self.__dict__.get("_queues_resolvers")
        if resolvers is None:
            resolvers = super().versioned_resolver
            self.__dict__["_queues_resolvers"] = resolvers
        return resolvers


_MERGE = "tag:yaml.org,2002:merge"


def _record_lines(node: Node, path: Path, lines: dict[Path, int], active: set[int]) -> None:
    """Record the line of every mapping key and sequence item under ``node``."""
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, MappingNode):
        merges: list[Node] = []
        for key, value in node.value:
            if key.tag == _MERGE:
                merges.append(value)
                continue
            child: Path = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _record_lines(value, child, lines, active)
        for merged in merges:  # explicit keys win over merged ones
            found: dict[Path, int] = {}
            targets = merged.value if isinstance(merged, SequenceNode) else [merged]
            for target in targets:
                _record_lines(target, path, found, active)
            for key_path, line in found.items():
                lines.setdefault(key_path, line)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, active)
    active.discard(id(node))


def _plain(value: Any) -> Any:
    """Plain data; YAML timestamps become ISO strings (payloads and examples are JSON)."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
