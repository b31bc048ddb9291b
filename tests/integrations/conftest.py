"""The integration tests use the test helpers' fixtures (``typed_queues.runtime.testing``) on
the suite's database. (A user enables the plugin with ``pytest_plugins``, as the examples do;
that is allowed only in a root conftest, hence the imports.)"""

from __future__ import annotations

import pytest

# as pytest_plugins would (examples/conftest.py loads the same module as a plugin)
pytest.register_assert_rewrite("typed_queues.runtime.testing")

from typed_queues.runtime.testing import (  # noqa: E402, F401 - fixtures
    queues_boss,
    queues_schema,
    queues_specs,
    queues_sync_boss,
)


@pytest.fixture(scope="session")
def queues_dsn(dsn: str) -> str:
    return dsn
