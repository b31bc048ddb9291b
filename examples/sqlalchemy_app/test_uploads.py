"""The example's tests: the upload row and its import job commit together or not at all, on
a ``Session`` and on an ``AsyncSession``, against the real PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from generated.ingestion import IMPORTS, FileUploaded, imports_worker
from typed_queues.runtime import Boss, SyncBoss
from typed_queues.runtime.testing import drain, enqueued, enqueued_sync

from .uploads import ImportJobs, NewUpload, Upload, record_upload, record_upload_async

TENANT = uuid.UUID("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")


def upload(name: str = "customers.csv") -> NewUpload:
    return NewUpload(
        tenant_id=TENANT,
        uploaded_by="ops@example.com",
        name=name,
        size_bytes=1024,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        url=f"https://uploads.example.com/{name}",
    )


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Upload)) or 0


# -- Session ----------------------------------------------------------------------------------


def test_the_upload_and_its_job_commit_together(engine: Engine, queues_sync_boss: SyncBoss) -> None:
    with Session(engine) as session, session.begin():
        upload_id = record_upload(session, queues_sync_boss, upload())

    [job] = enqueued_sync(queues_sync_boss, queue=IMPORTS, model=FileUploaded)
    assert job.upload_id == upload_id
    assert job.file.name == "customers.csv"
    with Session(engine) as session:
        assert count(session) == 1


def test_a_failed_commit_rolls_the_job_back(engine: Engine, queues_sync_boss: SyncBoss) -> None:
    with Session(engine) as session, session.begin():
        record_upload(session, queues_sync_boss, upload())

    # the same file again: the enqueue runs, then the commit's flush breaks the unique key
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        record_upload(session, queues_sync_boss, upload())

    assert len(enqueued_sync(queues_sync_boss, queue=IMPORTS)) == 1
    with Session(engine) as session:
        assert count(session) == 1


def test_an_error_in_the_block_rolls_both_back(engine: Engine, queues_sync_boss: SyncBoss) -> None:
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        record_upload(session, queues_sync_boss, upload())
        raise RuntimeError("something after the enqueue failed")

    assert enqueued_sync(queues_sync_boss, queue=IMPORTS) == []
    with Session(engine) as session:
        assert count(session) == 0


# -- AsyncSession -----------------------------------------------------------------------------


async def test_async_the_upload_and_its_job_commit_together(
    async_engine: AsyncEngine, queues_boss: Boss
) -> None:
    async with AsyncSession(async_engine) as session, session.begin():
        upload_id = await record_upload_async(session, queues_boss, upload())

    [job] = await enqueued(queues_boss, queue=IMPORTS, event="file-uploaded", model=FileUploaded)
    assert job.upload_id == upload_id


async def test_async_a_rollback_leaves_no_job(async_engine: AsyncEngine, queues_boss: Boss) -> None:
    async with AsyncSession(async_engine) as session, session.begin():
        await record_upload_async(session, queues_boss, upload())
    with pytest.raises(IntegrityError):
        async with AsyncSession(async_engine) as session, session.begin():
            await record_upload_async(session, queues_boss, upload())
    with pytest.raises(RuntimeError):
        async with AsyncSession(async_engine) as session, session.begin():
            await record_upload_async(session, queues_boss, upload("other.csv"))
            raise RuntimeError("something after the enqueue failed")

    assert len(await enqueued(queues_boss, queue=IMPORTS)) == 1
    async with AsyncSession(async_engine) as session:
        assert await session.scalar(select(func.count()).select_from(Upload)) == 1


async def test_the_import_handler_updates_the_row(
    async_engine: AsyncEngine, queues_boss: Boss
) -> None:
    async with AsyncSession(async_engine) as session, session.begin():
        upload_id = await record_upload_async(session, queues_boss, upload())
    sessions = async_sessionmaker(async_engine)

    drained = await drain(imports_worker(queues_boss, ImportJobs(sessions)))

    drained.raise_failures()
    async with sessions() as session:
        row = await session.get(Upload, upload_id)
        assert row is not None and row.status == "importing"
