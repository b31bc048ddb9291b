"""The example's test setup: the project's real settings on a throwaway database that the
queue shares (so that a job can be written in Django's own transactions). The test helpers
are enabled in examples/conftest.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import django
import psycopg
import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Set up at import, as pytest-django does: the test modules import the project's models.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_project.project.settings")
django.setup()


@pytest.fixture(scope="session")
def queues_dsn(queues_dsn: str) -> Iterator[str]:
    """A throwaway database for the session, with the project's tables migrated; Django and
    the queue fixtures (``queues_boss``, ``queues_sync_boss``) both use it."""
    name = f"django_example_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(queues_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = make_conninfo(queues_dsn, dbname=name)
    params = conninfo_to_dict(dsn)
    connections.close_all()
    # the one settings dict of the alias, shared by every thread's connection
    connections["default"].settings_dict.update(
        {
            setting: str(params.get(key, ""))
            for setting, key in [
                ("NAME", "dbname"),
                ("USER", "user"),
                ("PASSWORD", "password"),
                ("HOST", "host"),
                ("PORT", "port"),
            ]
        }
    )
    call_command("migrate", verbosity=0)
    try:
        yield dsn
    finally:
        connections.close_all()
        with psycopg.connect(queues_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def queue_settings(queues_schema: str) -> Iterator[None]:
    """The project's ``QUEUES_SCHEMA`` set to the test's queue schema."""
    with override_settings(QUEUES_SCHEMA=queues_schema):
        yield
