"""Schema versions: the version this code writes, and the check against the database's.

The migrations themselves are ``sql/migrations/NNNN_name.sql``; ``Store.migrate`` applies the
missing ones in order, in one transaction, under an advisory lock.
"""

from __future__ import annotations

from typing import Final

from ..errors import SchemaVersionError
from .queries import MIGRATIONS

__all__ = ["CODE_VERSION", "check_version"]

#: The schema version this code writes and expects.
CODE_VERSION: Final = MIGRATIONS[-1].version


def check_version(schema: str, database_version: int) -> None:
    """Raise ``SchemaVersionError`` when the database is newer than this code."""
    if database_version > CODE_VERSION:
        raise SchemaVersionError(
            f'schema "{schema}" is at version {database_version}, newer than this code '
            f"(version {CODE_VERSION}): upgrade typed-queues everywhere it runs, "
            "or point this process at another schema"
        )
