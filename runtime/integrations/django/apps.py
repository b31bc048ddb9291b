"""The Django app that brings ``manage.py queues_worker``."""

from __future__ import annotations

from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "typed_queues.runtime.integrations.django"
    label = "typed_queues"
    verbose_name = "typed-queues"
