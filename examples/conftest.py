"""The examples' root conftest.py, as a user's project has one: it enables the queue's test
helpers (``typed_queues.runtime.testing``) and creates the catalogue's queues on every test's
Boss. (pytest reads ``pytest_plugins`` only from a root conftest, hence here rather than in
each example.)"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from generated import QUEUES
from typed_queues.runtime import QueueSpec

pytest_plugins = ["typed_queues.runtime.testing"]


@pytest.fixture
def queues_specs() -> Sequence[QueueSpec]:
    return QUEUES
