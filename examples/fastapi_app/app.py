"""A FastAPI service that signs users up and has their welcome email sent through the queue.

``POST /signups`` writes the user and enqueues the welcome email in one database transaction
(the request's): when the request fails after the enqueue (an unknown referral code), both
roll back, so no email goes out for a user who does not exist. The email worker runs in the
same process here (``run_workers=True``); a bigger deployment runs it with ``queues worker``.

Run it from the repository root, against your PostgreSQL::

    QUEUES_DSN=postgresql://localhost/mydb uvicorn --factory examples.fastapi_app.app:create_app
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, EmailStr

from generated import create_queues
from generated.notifications import (
    EmailRequested,
    Recipient,
    email_worker,
    enqueue_email_requested,
)
from typed_queues.runtime import Boss, JobContext, JobId, Worker
from typed_queues.runtime.config import resolve_dsn
from typed_queues.runtime.integrations.fastapi import BossDep, queues_lifespan

REFERRAL_CODES = {"FRIENDS-2026"}


class Signup(BaseModel):
    email: EmailStr
    name: str
    referral_code: str | None = None


class SignedUp(BaseModel):
    user_id: uuid.UUID
    email_job: JobId


class Mailer:
    """The email queue's handlers (``EmailHandlers``): here the "mail provider" is a list."""

    def __init__(self) -> None:
        self.outbox: list[EmailRequested] = []

    async def on_email_requested(self, payload: EmailRequested, job: JobContext) -> None:
        job.logger.info("sending %s to %s", payload.template, payload.recipient.email)
        self.outbox.append(payload)


class Users:
    """The app's one table, in the schema the app was given."""

    def __init__(self, schema: str) -> None:
        self.table = sql.Identifier(schema, "signup_user")

    async def create_table(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} "
                "(id uuid PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL)"
            ).format(self.table)
        )

    async def add(
        self, conn: psycopg.AsyncConnection[Any], user_id: uuid.UUID, email: str, name: str
    ) -> None:
        await conn.execute(
            sql.SQL("INSERT INTO {} (id, email, name) VALUES (%s, %s, %s)").format(self.table),
            (user_id, email, name),
        )

    async def count(self, conn: psycopg.AsyncConnection[Any]) -> int:
        cursor = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table))
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


# -- dependencies -----------------------------------------------------------------------------


async def transaction(request: Request) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The request's database transaction: committed when the endpoint returns, rolled back
    when it raises."""
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = request.state.pool
    async with pool.connection() as conn, conn.transaction():
        yield conn


def users_table(request: Request) -> Users:
    users: Users = request.state.users
    return users


Transaction = Annotated[psycopg.AsyncConnection[Any], Depends(transaction)]
UsersDep = Annotated[Users, Depends(users_table)]


# -- the app ----------------------------------------------------------------------------------


def create_app(
    dsn: str | None = None,
    *,
    schema: str = "queues",
    app_schema: str = "public",
    mailer: Mailer | None = None,
    run_workers: bool = True,
) -> FastAPI:
    """The app: the queue in ``schema``, the users table in ``app_schema``; with
    ``run_workers`` the email worker runs in the app's process, with ``mailer``."""
    conninfo = resolve_dsn(dsn)
    if conninfo is None:
        raise RuntimeError("set QUEUES_DSN (or DATABASE_URL) to your PostgreSQL")
    users = Users(app_schema)

    def workers(boss: Boss) -> list[Worker]:
        return [email_worker(boss, mailer or Mailer())] if run_workers else []

    queues = queues_lifespan(lambda: Boss(conninfo, schema=schema), workers=workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with (
            AsyncConnectionPool(conninfo, min_size=1, max_size=5, open=False) as pool,
            queues(app) as state,
        ):
            await create_queues(state["queues_boss"])
            async with pool.connection() as conn:
                await users.create_table(conn)
            yield {**state, "pool": pool, "users": users}

    app = FastAPI(title="signups", lifespan=lifespan)
    app.post("/signups", status_code=201)(sign_up)
    app.get("/users/count")(count_users)
    return app


# -- endpoints --------------------------------------------------------------------------------


async def sign_up(signup: Signup, boss: BossDep, conn: Transaction, users: UsersDep) -> SignedUp:
    user_id = uuid.uuid4()
    await users.add(conn, user_id, signup.email, signup.name)
    job_id = await enqueue_email_requested(
        boss,
        EmailRequested(
            message_id=uuid.uuid4(),
            recipient=Recipient(user_id=user_id, email=signup.email, display_name=signup.name),
            template="welcome",
        ),
        conn=conn,  # in the request's transaction, with the user's row
    )
    if signup.referral_code is not None and signup.referral_code not in REFERRAL_CODES:
        # raised after the enqueue: the user and the email job roll back together
        raise HTTPException(400, f"unknown referral code {signup.referral_code!r}")
    return SignedUp(user_id=user_id, email_job=job_id)


async def count_users(conn: Transaction, users: UsersDep) -> int:
    return await users.count(conn)
