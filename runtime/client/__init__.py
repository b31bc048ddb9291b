"""The client side: ``Boss`` (async) and ``SyncBoss``, built from the send path, job control by
id, the queue cache and the connections they share."""

from .boss import Boss
from .handle import EnqueuedJob, QueueHandle
from .sync_boss import SyncBoss

__all__ = ["Boss", "EnqueuedJob", "QueueHandle", "SyncBoss"]
