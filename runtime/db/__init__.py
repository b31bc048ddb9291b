"""The database layer: SQL files, migrations, identifiers, encoding, and the one store that runs
every statement. It imports nothing from the client, the worker or the CLI."""

from .rows import ClaimedJob, FailedJob, FetchedJob, QueueRow
from .store import AsyncConn, AsyncCursor, Store
from .sync_store import SyncConn, SyncStore

__all__ = [
    "AsyncConn",
    "AsyncCursor",
    "ClaimedJob",
    "FailedJob",
    "FetchedJob",
    "QueueRow",
    "Store",
    "SyncConn",
    "SyncStore",
]
