"""Django: enqueue inside ``transaction.atomic()`` on Django's own psycopg 3 connection, so the
job commits with the model change, and ``manage.py queues_worker`` to run workers.

    from django.db import transaction
    from typed_queues.runtime.integrations.django import psycopg_connection, sync_boss

    with transaction.atomic():
        invoice.save()
        enqueue_invoice_voided_sync(sync_boss(), payload, conn=psycopg_connection())

Settings (all optional): ``QUEUES_SCHEMA`` (default ``"queues"``), ``QUEUES_WORKERS`` (the
``MODULE:ATTR`` that ``manage.py queues_worker`` runs when ``--app`` is not given). Add
``"typed_queues.runtime.integrations.django"`` to ``INSTALLED_APPS`` for the command. Needs
the ``django`` extra (``pip install 'typed-queues[django]'``): Django 4.2 or later with
psycopg 3.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections
from psycopg.conninfo import make_conninfo

from ...client import SyncBoss

__all__ = ["database_dsn", "psycopg_connection", "queues_schema", "sync_boss"]

_bosses: dict[tuple[str, str, bool], SyncBoss] = {}
_lock = threading.Lock()


def psycopg_connection(using: str = "default") -> psycopg.Connection[Any]:
    """Django's psycopg connection for the database ``using``: inside ``transaction.atomic()``
    a job sent with ``conn=`` this connection commits (or rolls back) with the block. (Outside
    an atomic block Django runs in autocommit, and the job is written at once.)"""
    wrapper = connections[using]
    if wrapper.vendor != "postgresql":
        raise TypeError(
            f'database "{using}" is {wrapper.vendor}: the queue needs PostgreSQL '
            "(ENGINE django.db.backends.postgresql)"
        )
    wrapper.ensure_connection()
    raw = wrapper.connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(
            f'database "{using}" runs on {type(raw).__module__}, not psycopg 3: '
            "pip install 'psycopg[binary]' (Django uses psycopg 3 when it is installed)"
        )
    return raw


def queues_schema() -> str:
    """The queue schema: ``settings.QUEUES_SCHEMA``, default ``"queues"``."""
    schema = getattr(settings, "QUEUES_SCHEMA", "queues")
    if not isinstance(schema, str):
        raise TypeError(f"settings.QUEUES_SCHEMA must be a str, got {schema!r}")
    return schema


def sync_boss(using: str = "default") -> SyncBoss:
    """A ``SyncBoss`` on ``queues_schema()`` (one per schema and database, shared by the
    threads). Pass ``conn=psycopg_connection()`` to its sends; without ``conn`` it connects to
    Django's database ``using`` on a small pool of its own.

    Like Django, it prepares no statements unless the database's ``OPTIONS`` set a
    ``prepare_threshold`` (so it works behind a transaction pooler such as PgBouncer).
    """
    wrapper = connections[using]
    prepare = wrapper.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None
    key = (queues_schema(), using, prepare)
    with _lock:
        boss = _bosses.get(key)
        if boss is None:
            boss = _bosses[key] = SyncBoss(database_dsn(using), schema=key[0], prepare=prepare)
        return boss


def database_dsn(using: str = "default") -> str:
    """A libpq connection string for Django's database ``using`` (from ``DATABASES``)."""
    params = connections[using].get_connection_params()
    return make_conninfo(
        "",
        **{
            key: value
            for key, value in params.items()
            if isinstance(value, str | int) and not isinstance(value, bool)
            if key not in {"prepare_threshold"}
        },
    )
