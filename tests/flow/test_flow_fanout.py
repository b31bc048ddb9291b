"""Flow options on events with subscribers (fan-out, issue 11): the copies on the subscribed
queues are written with the same options, once per throttle window, and a debounced event's
waiting copies change with it."""

from __future__ import annotations

from datetime import timedelta

from typed_queues.runtime import Boss, QueueSpec, make_envelope

from ._flow_support import FlowDb

SOURCE = "shop.orders"
SUBSCRIBER = "shop.audit"


async def _setup(boss: Boss) -> None:
    await boss.create_queues(
        [QueueSpec(SOURCE), QueueSpec(SUBSCRIBER, subscribe=("shop.order-placed",))]
    )


async def _rows(fdb: FlowDb) -> list[tuple[str, str | None, int | None, object]]:
    rows = await fdb.rows(
        "SELECT queue, group_key, retry_limit, data -> 'payload' -> 'n' FROM {s}.job"
        " ORDER BY queue, group_seq NULLS FIRST, created_on"
    )
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def test_grouped_sends_and_batches_write_their_copies(boss: Boss, fdb: FlowDb) -> None:
    await _setup(boss)
    await boss.send(SOURCE, make_envelope("order-placed", {"n": 1}), group_key="c1", retry_limit=1)
    await boss.send_many(
        SOURCE,
        [make_envelope("order-placed", {"n": n}) for n in (2, 3)] + [{"plain": True}],
        group_key="c1",
    )
    rows = await _rows(fdb)
    assert [r for r in rows if r[0] == SUBSCRIBER] == [
        (SUBSCRIBER, "c1", 1, 1),
        (SUBSCRIBER, "c1", None, 2),
        (SUBSCRIBER, "c1", None, 3),
    ]
    assert len([r for r in rows if r[0] == SOURCE]) == 4


async def test_a_throttled_event_is_copied_once_per_window(boss: Boss, fdb: FlowDb) -> None:
    await _setup(boss)
    window = timedelta(hours=1)
    ids = {
        await boss.send(
            SOURCE, make_envelope("order-placed", {"n": n}), singleton_key="k", throttle=window
        )
        for n in range(5)
    }
    assert len(ids) == 1
    rows = await _rows(fdb)
    assert sorted(r[0] for r in rows) == [SUBSCRIBER, SOURCE]


async def test_a_debounced_events_waiting_copies_change_with_it(boss: Boss, fdb: FlowDb) -> None:
    await _setup(boss)
    window = timedelta(hours=1)
    for n in range(3):
        await boss.send(
            SOURCE, make_envelope("order-placed", {"n": n}), singleton_key="k", debounce=window
        )
    rows = await _rows(fdb)
    assert sorted((r[0], r[3]) for r in rows) == [(SUBSCRIBER, 2), (SOURCE, 2)]
    starts = await fdb.rows("SELECT DISTINCT start_after FROM {s}.job")
    assert len(starts) == 1, "the copy waits exactly as long as its job"
