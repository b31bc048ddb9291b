"""The example's test setup, as a user's root conftest.py would have it: the queue's test
helpers as a pytest plugin, and the catalogue's queues created on every test's Boss."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from generated import QUEUES
from typed_queues.runtime import QueueSpec

pytest_plugins = ["typed_queues.runtime.testing"]


@pytest.fixture
def queues_specs() -> Sequence[QueueSpec]:
    return QUEUES
