"""mypy --strict checks the flow options of the generated enqueue functions (issue 12): group
keys are strings, windows and expiries timedeltas, and batches take no throttle or debounce."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "cases"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    cache = tmp_path_factory.mktemp("mypy-cache-flow")
    files = [CASES / "good_flow_options.py", CASES / "bad_flow_options.py"]
    stdout, stderr, _status = api.run(
        ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache)]
        + [str(path) for path in files]
    )
    assert not stderr, stderr
    found: dict[str, list[str]] = {path.name: [] for path in files}
    for line in stdout.splitlines():
        name = Path(line.split(":", 1)[0]).name
        if name in found and ": error: " in line:
            found[name].append(line.split(":", 1)[1])
    return found


def test_the_flow_options_type_check(report: dict[str, list[str]]) -> None:
    assert report["good_flow_options.py"] == []


def test_wrong_flow_options_are_rejected(report: dict[str, list[str]]) -> None:
    assert report["bad_flow_options.py"] == [
        '14: error: Argument "group_key" to "enqueue_webhook_received" has incompatible type '
        '"int"; expected "str | None"  [arg-type]',
        '14: error: Argument "throttle" to "enqueue_webhook_received" has incompatible type '
        '"int"; expected "timedelta | None"  [arg-type]',
        '15: error: Unexpected keyword argument "debounce" for "enqueue_webhook_received_many"'
        "  [call-arg]",
    ]
