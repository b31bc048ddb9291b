"""Schema and queue names are validated before any SQL and always quoted."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from typed_queues.runtime import Boss, QueueSpec, RetryPolicy, SyncBoss, ValidationError
from typed_queues.runtime.db.identifiers import (
    channel_name,
    validate_queue_name,
    validate_schema_name,
)
from typed_queues.runtime.db.ids import new_job_id, new_job_ids

HOSTILE = [
    'x"; DROP TABLE job;--',
    "x'y",
    "semi;colon",
    "dash--dash ",
    " lead",
    "tab\tname",
    "new\nline",
    "nul\x00",
    "bell\x07",
    "",
    "ünïcode",
    "x" * 129,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_queue_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_queue_name(name)
    with pytest.raises(ValidationError):
        QueueSpec(name=name)


@pytest.mark.parametrize("name", ["billing.invoices", "a", "A-b_c.9", "9lives", "_x", "x" * 128])
def test_good_queue_names(name: str) -> None:
    assert validate_queue_name(name) == name


@pytest.mark.parametrize(
    "name", [*HOSTILE, "Upper", "1digit", "pg_catalog", "x" * 41, "with.dot", "with-dash"]
)
def test_hostile_schema_names_are_refused_without_io(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_schema_name(name)
    with pytest.raises(ValidationError):
        Boss("postgresql://nowhere.invalid/none", schema=name)
    with pytest.raises(ValidationError):
        SyncBoss("postgresql://nowhere.invalid/none", schema=name)


def test_channel_names_fit_postgres_identifiers() -> None:
    longest = "s" * 40
    assert validate_schema_name(longest) == longest
    assert len(channel_name(longest).encode()) <= 63


def test_queue_spec_validation() -> None:
    with pytest.raises(ValidationError):
        QueueSpec(name="q", dead_letter="q")
    with pytest.raises(ValidationError):
        QueueSpec(name="q", dead_letter="bad name")
    with pytest.raises(ValidationError):
        QueueSpec(name="q", expire_in=timedelta(0))
    with pytest.raises(ValidationError):
        QueueSpec(name="q", retention=timedelta(seconds=-1))
    with pytest.raises(ValidationError):
        RetryPolicy(limit=-1)
    with pytest.raises(ValidationError):
        RetryPolicy(backoff="linear")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RetryPolicy(delay=timedelta(seconds=-1))


async def test_bad_names_at_runtime_write_nothing(boss: Boss) -> None:
    for name in HOSTILE:
        with pytest.raises(ValidationError):
            await boss.send(name, {"a": 1})
        with pytest.raises(ValidationError):
            await boss.send_many(name, [{"a": 1}])
        with pytest.raises(ValidationError):
            await boss.fetch(name)
        with pytest.raises(ValidationError):
            await boss.queue_stats(name)
        with pytest.raises(ValidationError):
            boss.queue(name)
    assert await boss.all_queue_stats() == []


def test_job_ids_made_in_bulk_are_unique_increasing_version_7() -> None:
    before = new_job_id()
    bulk = new_job_ids(10_000)  # more than one millisecond's 4096 sequence numbers
    after = new_job_id()
    assert len(set(bulk)) == len(bulk) == 10_000
    assert [before, *bulk, after] == sorted([before, *bulk, after])
    assert {job_id.version for job_id in bulk} == {7}
    assert {job_id.variant for job_id in bulk} == {uuid.RFC_4122}
    assert new_job_ids(0) == []
