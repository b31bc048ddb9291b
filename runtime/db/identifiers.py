"""Identifier rules: schema and queue names are validated here and always quoted in SQL."""

from __future__ import annotations

import re
from typing import Final

from ..errors import ValidationError

__all__ = [
    "MAX_QUEUE_NAME",
    "MAX_SCHEMA_NAME",
    "channel_name",
    "quote_ident",
    "validate_queue_name",
    "validate_schema_name",
]

#: Longest schema name accepted, in bytes; keeps derived names (the notification channel)
#: within PostgreSQL's 63-byte identifier limit.
MAX_SCHEMA_NAME: Final = 40
#: Longest queue name accepted.
MAX_QUEUE_NAME: Final = 128

_SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]*", re.ASCII)
_QUEUE_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", re.ASCII)


def validate_schema_name(name: object) -> str:
    """Return ``name`` if it is an acceptable schema name, else raise ``ValidationError``."""
    if not isinstance(name, str) or not _SCHEMA_RE.fullmatch(name):
        raise ValidationError(
            f"invalid schema name {name!r}: use lowercase letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    if len(name) > MAX_SCHEMA_NAME:
        raise ValidationError(
            f"invalid schema name {name!r}: longer than {MAX_SCHEMA_NAME} characters"
        )
    if name.startswith("pg_"):
        raise ValidationError(f"invalid schema name {name!r}: the prefix pg_ is reserved")
    return name


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is an acceptable queue name, else raise ``ValidationError``."""
    if not isinstance(name, str) or not _QUEUE_RE.fullmatch(name):
        raise ValidationError(
            f"invalid queue name {name!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter, digit or '_'"
        )
    if len(name) > MAX_QUEUE_NAME:
        raise ValidationError(
            f"invalid queue name {name[:40]!r}...: longer than {MAX_QUEUE_NAME} characters"
        )
    return name


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL (callers validate it first; quoting is belt and braces)."""
    return '"' + name.replace('"', '""') + '"'


def channel_name(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a schema (at most 45 bytes for a valid schema name)."""
    return f"{validate_schema_name(schema)}_jobs"
