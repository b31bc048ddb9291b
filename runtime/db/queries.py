"""The SQL text of the runtime: named queries and migrations from ``db/sql``, loaded once.

Three tokens are substituted, all derived from a validated schema name: ``{schema}`` (the
quoted identifier), ``{channel}`` (the notification channel as a string literal) and
``{channel_ident}`` (the channel as an identifier, for LISTEN). Nothing a user passes is ever
interpolated; values are bound parameters. Only the store (``store.py``) executes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from .identifiers import channel_name, quote_ident, validate_schema_name

__all__ = ["MIGRATIONS", "Migration", "Queries", "queries_for"]

_SQL_DIR: Final = Path(__file__).parent / "sql"
_NAME_LINE: Final = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION_FILE: Final = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_COMPATIBLE_FROM: Final = re.compile(r"^-- compatible-from: (\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def compatible_from(self) -> int:
        """The oldest code version (a schema version) that still runs correctly once this
        migration is applied: its ``-- compatible-from: N`` header, else its own version (no
        older code), the safe default for a migration that does not say."""
        found = _COMPATIBLE_FROM.search(self.text)
        return self.version if found is None else int(found[1])


def _load_queries() -> dict[str, str]:
    """Every ``-- name:`` query of ``sql/queries/*.sql`` (one file per area; names are unique
    across files)."""
    queries: dict[str, str] = {}
    for path in sorted((_SQL_DIR / "queries").glob("*.sql")):
        parts = _NAME_LINE.split(path.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"{path.name}: query {name!r} is defined twice")
            queries[name] = body.strip()
    return queries


def _load_migrations() -> tuple[Migration, ...]:
    found: list[Migration] = []
    for path in sorted((_SQL_DIR / "migrations").glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise RuntimeError(f"bad migration file name {path.name!r} (want NNNN_name.sql)")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [migration.version for migration in found]
    if not versions or versions[0] != 1 or len(set(versions)) != len(versions):
        raise RuntimeError(f"migrations must be numbered from 1, each once: found {versions}")
    for migration in found:
        if not 1 <= migration.compatible_from <= migration.version:
            raise RuntimeError(
                f"migration {migration.version:04d}_{migration.name}: compatible-from "
                f"{migration.compatible_from} must be between 1 and {migration.version}"
            )
    return tuple(found)


_QUERIES: Final = _load_queries()
#: Every migration this code knows, in order; the last one's version is the code's version.
MIGRATIONS: Final = _load_migrations()


def _render(text: str, schema: str) -> str:
    channel = channel_name(schema)
    return (
        text.replace("{schema}", quote_ident(schema))
        .replace("{channel_ident}", quote_ident(channel))
        .replace("{channel}", "'" + channel + "'")
    )


class Queries:
    """The named queries and migrations of one schema, rendered as bytes for psycopg."""

    __slots__ = ("_rendered", "channel", "quoted_schema", "schema")

    def __init__(self, schema: str) -> None:
        self.schema = validate_schema_name(schema)
        self.quoted_schema = quote_ident(schema)
        self.channel = channel_name(schema)
        self._rendered = {name: _render(text, schema).encode() for name, text in _QUERIES.items()}

    def __getitem__(self, name: str) -> bytes:
        return self._rendered[name]

    def migration(self, migration: Migration) -> bytes:
        return _render(migration.text, self.schema).encode()


@lru_cache(maxsize=64)
def queries_for(schema: str) -> Queries:
    """The rendered queries of ``schema`` (validated; cached per schema)."""
    return Queries(schema)
