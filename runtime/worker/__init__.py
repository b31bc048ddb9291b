"""The worker side: the claim loop and its claim-ahead policy, the processor wrapper, the shared
services (result and heartbeat writer, notification listener, maintenance)."""

from .worker import Worker, start_workers

__all__ = ["Worker", "start_workers"]
