"""The dashboard's rules without a browser: where it may bind, the token's checks, sessions and
CSRF tokens, the `queues dashboard` command (refusals, the missing extra, a real run)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from typed_queues.runtime.cli import main
from typed_queues.runtime.dashboard import check_bind, is_loopback
from typed_queues.runtime.dashboard.security import Guard
from typed_queues.runtime.errors import ConfigurationError

from .dash_support import SECRET, TOKEN

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.9", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "dash.example"])
def test_any_other_address_refuses_to_start_without_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match="without a token"):
        check_bind(host, None)
    check_bind(host, TOKEN)


@pytest.mark.parametrize(
    ("token", "problem"), [("short", "too short"), ("a token with spaces in", "spaces")]
)
def test_a_weak_token_is_refused(token: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        check_bind("127.0.0.1", token)


def test_sessions_csrf_tokens_and_the_auth_cookie() -> None:
    guard = Guard(TOKEN)
    other = Guard(TOKEN)  # another server (another secret)
    session = guard.new_session()
    assert guard.valid_session(session) and not guard.valid_session("not a session")
    csrf = guard.csrf_token(session)
    assert guard.csrf_ok(session, csrf)
    assert not guard.csrf_ok(session, csrf[:-1] + ("A" if csrf[-1] != "A" else "B"))
    assert not guard.csrf_ok(guard.new_session(), csrf)  # another session's token
    assert not other.csrf_ok(session, csrf)
    assert not guard.csrf_ok(session, None)
    assert guard.cookie_ok(session, guard.auth_cookie(session))
    assert not guard.cookie_ok(guard.new_session(), guard.auth_cookie(session))
    assert guard.bearer_ok(f"Bearer {TOKEN}") and not guard.bearer_ok("Bearer nope")
    assert not guard.bearer_ok(TOKEN) and not Guard(None).bearer_ok(f"Bearer {TOKEN}")


def test_the_command_refuses_a_public_address_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUEUES_DASHBOARD_TOKEN", raising=False)
    code = main(["dashboard", "--host", "0.0.0.0", "--dsn", "postgresql://u:pw@db/x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to serve the dashboard on '0.0.0.0' without a token" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_the_command_names_the_missing_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    monkeypatch.delitem(sys.modules, "typed_queues.runtime.dashboard.server", raising=False)
    assert main(["dashboard", "--dsn", "postgresql://u@db/x"]) == 2
    assert "pip install 'typed-queues[dashboard]'" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_queues_dashboard_serves_until_sigterm(secret_dsn: str, schema_name: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "typed_queues.runtime.cli", "migrate", "--schema", schema_name],
        env={**os.environ, "QUEUES_DSN": secret_dsn},
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    port = _free_port()
    command = ["dashboard", "--port", str(port), "--schema", schema_name]
    process = subprocess.Popen(
        [sys.executable, "-m", "typed_queues.runtime.cli", *command],
        env={**os.environ, "QUEUES_DSN": secret_dsn, "QUEUES_DASHBOARD_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _get(url)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    raise AssertionError(f"the dashboard did not answer:\n{output}") from None
                time.sleep(0.1)
        assert status == 401
        status, body = _get(url, TOKEN)
        assert status == 200 and "Queues" in body and SECRET not in body
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn shuts down cleanly, then ends by the signal it was sent (as a shell expects).
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Finished server process" in output
    assert SECRET not in output
