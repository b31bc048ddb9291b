"""Schema versions: the version this code writes, and the check against the database's.

The migrations themselves are ``sql/migrations/NNNN_name.sql``; ``Store.migrate`` applies the
missing ones in order, in one transaction, under an advisory lock.

Rolling deploys: during an upgrade the new release migrates the schema while processes of the
old release still run, and an old process may restart before it is replaced. Each migration
declares the oldest code that still runs correctly against it (``-- compatible-from: N``, N a
schema version; an additive migration declares 1), and the version table keeps the
declarations. Code older than the database therefore starts, with a warning, when no migration
it does not know declared a floor above its own version, and refuses with ``SchemaVersionError``
(saying what to do) otherwise.
"""

from __future__ import annotations

import logging
from typing import Final

from ..errors import SchemaVersionError
from .queries import MIGRATIONS

__all__ = ["CODE_VERSION", "check_version"]

log = logging.getLogger("queues")

#: The schema version this code writes and expects.
CODE_VERSION: Final = MIGRATIONS[-1].version


def check_version(schema: str, database_version: int, compatible_from: int | None = None) -> None:
    """Accept a database at or below this code's version; one above it only when its
    ``compatible_from`` (the largest floor its migrations declared) is at most this code's
    version, with a warning. Raise ``SchemaVersionError`` otherwise."""
    if database_version <= CODE_VERSION:
        return
    if compatible_from is not None and compatible_from <= CODE_VERSION:
        log.warning(
            'schema "%s" is at version %d, newer than this code (version %d); its newer '
            "migrations keep code from version %d working, so this process runs, but upgrade "
            "typed-queues here to finish the deploy",
            schema,
            database_version,
            CODE_VERSION,
            compatible_from,
        )
        return
    needs = "" if compatible_from is None else f", and it needs code of version {compatible_from}"
    raise SchemaVersionError(
        f'schema "{schema}" is at version {database_version}, newer than this code '
        f"(version {CODE_VERSION}){needs}: upgrade typed-queues in this process to the release "
        "that migrated the schema (its CHANGELOG.md upgrade notes say which), "
        "or point this process at another schema"
    )
