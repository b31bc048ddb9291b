"""``SyncBoss``: the synchronous send path for sync callers (Django, scripts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import psycopg

from .jobs import Job, JobId

__all__ = ["SyncBoss"]


class SyncBoss:
    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str = "queues",
        max_payload_bytes: int = 1_000_000,
        source: str | None = None,
        max_pool_size: int = 4,
    ) -> None:
        raise NotImplementedError

    def send(
        self,
        queue: str,
        data: Mapping[str, Any],
        *,
        conn: psycopg.Connection[Any] | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
        singleton_key: str | None = None,
    ) -> JobId:
        raise NotImplementedError

    def send_many(
        self,
        queue: str,
        data: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.Connection[Any] | None = None,
        start_after: datetime | timedelta | None = None,
        priority: int | None = None,
    ) -> list[JobId]:
        raise NotImplementedError

    def get_job(self, job_id: JobId) -> Job | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
