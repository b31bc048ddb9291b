"""A worker deployment carries none of the integrations: the runtime, its CLI and the typed
layer import no web framework, ORM or test tool; each integration module imports only its own."""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("fastapi", "starlette", "django", "sqlalchemy", "pytest", "pytest_asyncio")


def _imported_after(*modules: str) -> set[str]:
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out)) & set(FRAMEWORKS)


def test_the_runtime_imports_no_integration() -> None:
    assert (
        _imported_after(
            "typed_queues.runtime",
            "typed_queues.runtime.typed",
            "typed_queues.runtime.cli",
            "typed_queues.runtime.integrations",
        )
        == set()
    )


def test_each_integration_imports_only_its_framework() -> None:
    assert _imported_after("typed_queues.runtime.integrations.fastapi") == {
        "fastapi",
        "starlette",
    }
    assert _imported_after("typed_queues.runtime.integrations.sqlalchemy") == {"sqlalchemy"}
    assert _imported_after("typed_queues.runtime.integrations.django") == {"django"}
