"""Flow options of the wrong type, and one a batch does not take."""

from __future__ import annotations

from generated.ingestion import (
    WebhookReceived,
    enqueue_webhook_received,
    enqueue_webhook_received_many,
)
from typed_queues.runtime import Boss, JobId


async def send(boss: Boss, hook: WebhookReceived) -> list[JobId]:
    one = await enqueue_webhook_received(boss, hook, group_key=7, throttle=10)
    return await enqueue_webhook_received_many(boss, [hook], debounce=None) + [one]
