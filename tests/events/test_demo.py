"""``queues demo`` end to end, with its fan-out, its follow-up chain and its schedule."""

from __future__ import annotations

import pytest

from demo.app import main


def test_the_demo_runs_as_expected(
    dsn: str, schema_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dsn", dsn, "--schema", schema_name, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "notifications.billing-mail got a copy" in out
    assert "3 payments were recorded in paid_invoices" in out
    assert "demo.reminders-now (every 1 s) fired" in out
    assert "NOT as expected" not in out
