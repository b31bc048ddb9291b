"""Recording file uploads with SQLAlchemy 2, and enqueueing their import in the same
transaction: the upload row and the ``file-uploaded`` job commit together, or neither does
(a duplicate upload fails the commit, and its job is rolled back with it).

Both forms: ``record_upload`` on a ``Session`` with a ``SyncBoss`` (a Flask or script code
base), ``record_upload_async`` on an ``AsyncSession`` with a ``Boss``. The engine uses the
psycopg driver: ``create_engine("postgresql+psycopg://...")`` or ``create_async_engine(...)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import AnyUrl
from sqlalchemy import UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from generated.ingestion import (
    BatchReady,
    FileUploaded,
    UploadedFile,
    enqueue_file_uploaded,
    enqueue_file_uploaded_sync,
)
from typed_queues.runtime import Boss, JobContext, SyncBoss
from typed_queues.runtime.integrations.sqlalchemy import (
    async_psycopg_connection,
    psycopg_connection,
)


class Base(DeclarativeBase):
    pass


class Upload(Base):
    __tablename__ = "upload"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]
    name: Mapped[str]
    sha256: Mapped[str]
    status: Mapped[str] = mapped_column(default="received")


@dataclass(frozen=True)
class NewUpload:
    tenant_id: uuid.UUID
    uploaded_by: str
    name: str
    size_bytes: int
    sha256: str
    url: str


def _event(upload_id: uuid.UUID, new: NewUpload) -> FileUploaded:
    return FileUploaded(
        upload_id=upload_id,
        tenant_id=new.tenant_id,
        uploaded_by=new.uploaded_by,
        file=UploadedFile(
            name=new.name,
            size_bytes=new.size_bytes,
            sha256=new.sha256,
            content_type="text/csv",
            url=AnyUrl(new.url),
        ),
        received_at=datetime.now(UTC),
    )


def record_upload(session: Session, boss: SyncBoss, new: NewUpload) -> uuid.UUID:
    """Add the upload and enqueue its import in the session's transaction; the caller
    commits both (``with session.begin(): ...``)."""
    upload_id = uuid.uuid4()
    session.add(Upload(id=upload_id, tenant_id=new.tenant_id, name=new.name, sha256=new.sha256))
    enqueue_file_uploaded_sync(boss, _event(upload_id, new), conn=psycopg_connection(session))
    return upload_id


async def record_upload_async(session: AsyncSession, boss: Boss, new: NewUpload) -> uuid.UUID:
    """``record_upload`` on an ``AsyncSession``."""
    upload_id = uuid.uuid4()
    session.add(Upload(id=upload_id, tenant_id=new.tenant_id, name=new.name, sha256=new.sha256))
    await enqueue_file_uploaded(
        boss, _event(upload_id, new), conn=await async_psycopg_connection(session)
    )
    return upload_id


class ImportJobs:
    """The ``ingestion.imports`` handlers (``ImportsHandlers``): they update the ORM rows."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def on_file_uploaded(self, payload: FileUploaded, job: JobContext) -> None:
        async with self._sessions() as session, session.begin():
            upload = await session.get(Upload, payload.upload_id)
            if upload is None:  # cannot happen: the job commits with the row
                raise LookupError(f"no upload {payload.upload_id}")
            upload.status = "importing"

    async def on_batch_ready(self, payload: BatchReady, job: JobContext) -> None:
        job.logger.info("batch %s of upload %s", payload.sequence, payload.upload_id)
