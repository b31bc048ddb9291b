"""The dashboard's event search (``Boss.search_event``): the jobs of an event among a bounded
number of the newest jobs, newest first, page after page."""

from __future__ import annotations

import pytest

from typed_queues.runtime import Boss, JobState, QueueSpec
from typed_queues.runtime.client.overview import Overview
from typed_queues.runtime.errors import ValidationError


async def test_the_search_finds_the_event_newest_first(boss: Boss) -> None:
    await boss.create_queues([QueueSpec(name="find.a"), QueueSpec(name="find.b")])
    sent_a = await boss.send_many(
        "find.a", [{"event": "paid" if n % 3 else "other"} for n in range(9)]
    )
    sent_b = await boss.send_many("find.b", [{"event": "paid"} for _ in range(2)])
    [job] = await boss.fetch("find.b", 1)
    await boss.complete(job)
    everywhere = await boss.search_event("paid")
    paid_a = [i for n, i in enumerate(sent_a) if n % 3]
    assert {j.id for j in everywhere.jobs} == set(paid_a) | set(sent_b)
    ids = [j.id for j in everywhere.jobs]
    assert ids == sorted(ids, reverse=True)  # newest first (time-ordered ids)
    assert not everywhere.bounded and everywhere.next is None
    one_queue = await boss.search_event("paid", queue="find.a")
    assert {j.id for j in one_queue.jobs} == set(paid_a)
    done = await boss.search_event("paid", queue="find.b", state="completed")
    assert [j.id for j in done.jobs] == [job.id] and done.jobs[0].state is JobState.COMPLETED
    assert (await boss.search_event("nothing-sends-this")).jobs == []
    # Pages of two: each continues after the last shown.
    first = await boss.search_event("paid", queue="find.a", limit=2)
    second = await boss.search_event("paid", queue="find.a", limit=2, after=first.next)
    assert (
        first.next is not None
        and [j.id for j in first.jobs + second.jobs] == sorted(paid_a, reverse=True)[:4]
    )


async def test_the_search_reads_at_most_its_bound_and_says_so(boss: Boss) -> None:
    await boss.create_queues([QueueSpec(name="find.c")])
    sent = await boss.send_many("find.c", [{"event": "rare" if n == 1 else "x"} for n in range(10)])
    overview = Overview(boss._store, boss._connections)  # a smaller bound
    newest = await overview.search_event("rare", scan=4)
    # The four newest jobs do not hold it: the search says it stopped, and where to go on.
    assert newest.jobs == [] and newest.bounded and newest.read == 4
    assert newest.next == sorted(sent)[-4]
    older = await overview.search_event("rare", scan=4, after=newest.next)
    assert older.jobs == [] and older.bounded and older.next == sorted(sent)[-8]
    oldest = await overview.search_event("rare", scan=4, after=older.next)
    assert [j.id for j in oldest.jobs] == [sent[1]] and not oldest.bounded
    assert oldest.read == 2 and oldest.next is None


async def test_bad_search_input_is_refused(boss: Boss) -> None:
    with pytest.raises(ValidationError, match="event"):
        await boss.search_event("")
    with pytest.raises(ValidationError):
        await boss.search_event("x", after="not-an-id")
    with pytest.raises(ValidationError):
        await boss.search_event("x", state="sleeping")
