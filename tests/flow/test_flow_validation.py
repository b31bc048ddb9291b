"""Bad flow options and policies are refused before any SQL runs, naming the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from typed_queues.runtime import (
    Boss,
    GroupPolicy,
    Limits,
    QueueSpec,
    Rate,
    ValidationError,
)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"throttle": timedelta(seconds=1)}, "throttle= needs singleton_key="),
        ({"debounce": timedelta(seconds=1)}, "debounce= needs singleton_key="),
        (
            {"singleton_key": "k", "throttle": timedelta(1), "debounce": timedelta(1)},
            "not both",
        ),
        ({"singleton_key": "k", "throttle": timedelta(0)}, "throttle must be positive"),
        ({"singleton_key": "k", "throttle": 5}, "throttle must be a timedelta"),
        (
            {
                "singleton_key": "k",
                "debounce": timedelta(seconds=1),
                "start_after": datetime.now(UTC),
            },
            "drop start_after=",
        ),
        ({"group_key": ""}, "group_key must be a non-empty str"),
        ({"group_key": "a\x00b"}, "NUL"),
        ({"group_key": "x" * 1001}, "longer than 1000"),
        ({"retry_limit": -1}, "retry_limit must be an int >= 0"),
        ({"retry_limit": True}, "retry_limit must be an int >= 0"),
        ({"expire_in": timedelta(0)}, "expire_in must be positive"),
    ],
)
async def test_bad_send_options_are_refused(
    boss: Boss, options: dict[str, object], message: str
) -> None:
    await boss.create_queue(QueueSpec("flow.v"))
    with pytest.raises(ValidationError, match=message):
        await boss.send("flow.v", {"n": 1}, **options)  # type: ignore[arg-type]
    [stats] = await boss.all_queue_stats()
    assert stats.total == 0


async def test_bad_batch_options_are_refused(boss: Boss) -> None:
    await boss.create_queue(QueueSpec("flow.v"))
    with pytest.raises(ValidationError, match="group_key"):
        await boss.send_many("flow.v", [{"n": 1}], group_key="")


@pytest.mark.parametrize("text", ["100", "100/", "/1s", "10/1w", "ten/1s", "0/1s", "5/0s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match=r"(?i)rate"):
        Rate.parse(text)


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [("100/1s", 100, 1), ("10/1m", 10, 60), ("5/500ms", 5, 0.5), ("100/s", 100, 1)],
)
def test_rates_parse(text: str, count: int, seconds: float) -> None:
    rate = Rate.parse(text)
    assert (rate.count, rate.per) == (count, timedelta(seconds=seconds))
    assert Rate.parse(str(rate)) == rate


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Limits(active=0), "Limits.active must be an int >= 1"),
        (lambda: Limits(rate="100/1s"), "Limits.rate must be a Rate"),  # type: ignore[arg-type]
        (lambda: GroupPolicy(active=0), "GroupPolicy.active"),
        (lambda: GroupPolicy(fifo="yes"), "GroupPolicy.fifo must be a bool"),  # type: ignore[arg-type]
        (lambda: QueueSpec("q", limits=3), "QueueSpec.limits must be a Limits"),  # type: ignore[arg-type]
        (
            lambda: QueueSpec("q", group={"active": 1}),  # type: ignore[arg-type]
            "QueueSpec.group must be a GroupPolicy",
        ),
        (lambda: QueueSpec("q", snooze_limit=-1), "QueueSpec.snooze_limit"),
    ],
)
def test_bad_policies_are_refused(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(ValidationError, match=message):
        make()


async def test_pausing_an_unknown_queue_is_refused(boss: Boss) -> None:
    with pytest.raises(ValidationError, match='unknown queue "nope"'):
        await boss.pause_queue("nope")
    with pytest.raises(ValidationError, match="invalid queue name"):
        await boss.resume_queue("bad name")
