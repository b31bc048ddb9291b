"""The flow options of the generated enqueue functions, used as documented."""

from __future__ import annotations

from datetime import timedelta

from generated.ingestion import (
    WebhookReceived,
    enqueue_webhook_received,
    enqueue_webhook_received_many,
    enqueue_webhook_received_sync,
)
from typed_queues.runtime import Boss, JobContext, JobId, Snooze, SyncBoss


async def send(boss: Boss, hook: WebhookReceived) -> list[JobId]:
    first = await enqueue_webhook_received(
        boss, hook, group_key=hook.source, retry_limit=2, expire_in=timedelta(minutes=1)
    )
    throttled = await enqueue_webhook_received(
        boss, hook, singleton_key="refresh", throttle=timedelta(seconds=10)
    )
    debounced = await enqueue_webhook_received(
        boss, hook, singleton_key="reindex", debounce=timedelta(seconds=2)
    )
    batch = await enqueue_webhook_received_many(boss, [hook], group_key="partner-1")
    return [first, throttled, debounced, *batch]


def send_sync(boss: SyncBoss, hook: WebhookReceived) -> JobId:
    return enqueue_webhook_received_sync(boss, hook, group_key="partner-1")


async def handler(payload: WebhookReceived, job: JobContext) -> None:
    raise Snooze(timedelta(minutes=10))
