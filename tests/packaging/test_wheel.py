"""The package as a user gets it (issue 10, item 4).

The sdist and the wheel are built the way ``python -m build`` builds them (the PEP 517 hooks of
``[build-system]`` in a virtualenv of their own; the wheel from the unpacked sdist), and a wheel
straight from the checkout the way ``pip install .`` does. The wheel must hold ``typed_queues``
(runtime, codegen, templates, SQL, py.typed) and nothing of the checkout's ``generated/``,
``demo/``, ``tests/`` or ``bench/``. It is installed with its ``codegen`` extra into a clean
virtualenv (pip's download cache is reused), and a fresh project outside the repository
generates its package from a catalogue of its own with that virtualenv's ``queues generate``,
type-checks it against the installed wheel, and runs one job through it on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "typed_queues"
#: Top-level names of the checkout that must never be installed.
FORBIDDEN_TOP_LEVEL = ("generated", "demo", "runtime", "codegen", "tests", "bench")
#: The files of these checkout folders that the wheel must carry under ``typed_queues/``.
LIBRARY_FOLDERS = ("runtime", "codegen")
LIBRARY_SUFFIXES = (".py", ".sql", ".jinja", ".typed")

#: The fresh project's package, named by ``--out``.
OUT = "greetjobs"
CATALOGUE = """\
version: 1
domains:
  greetings:
    description: Greetings sent to people.
    queues:
      hello:
        description: Says hello.
        retry: {limit: 1, delay: 1s}
        events:
          greet-requested:
            description: Someone should be greeted.
            entity_id: name
            payload:
              type: object
              additionalProperties: false
              required: [name, times]
              properties:
                name: {type: string, minLength: 1}
                times: {type: integer, minimum: 1, maximum: 5}
"""

#: Uses only the documented generated names: create_queues, enqueue_<event>, <queue>_worker,
#: <Queue>Handlers and the payload model. The DSN comes from QUEUES_DSN.
RUN_JOB = f'''\
"""Enqueue one event through the generated package and run its worker until the job is done."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from {OUT} import create_queues
from {OUT}.greetings import (
    GreetRequested,
    HelloHandlers,
    enqueue_greet_requested,
    hello_worker,
)

from typed_queues.runtime import Boss, JobContext


class Greeter:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.done = asyncio.Event()

    async def on_greet_requested(self, payload: GreetRequested, job: JobContext) -> None:
        model = type(payload)
        self.seen.append(
            {{
                "model": f"{{model.__module__}}.{{model.__qualname__}}",
                "payload": payload.model_dump(mode="json"),
                "event": job.event,
                "attempt": job.attempt,
            }}
        )
        self.done.set()


async def main(schema: str) -> None:
    greeter = Greeter()
    handlers: HelloHandlers = greeter
    async with Boss(schema=schema) as boss:
        await create_queues(boss)
        job_id = await enqueue_greet_requested(boss, GreetRequested(name="Ada", times=2))
        worker = hello_worker(boss, handlers, concurrency=1)
        await worker.start()
        state = "not found"
        try:
            await asyncio.wait_for(greeter.done.wait(), timeout=30)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while loop.time() < deadline:
                job = await boss.get_job(job_id)
                state = "not found" if job is None else job.state.value
                if state in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()
    print(json.dumps({{"job_id": str(job_id), "state": state, "seen": greeter.seen}}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
'''

#: Imported by the installed virtualenv's python from an empty directory.
PROBE_IMPORTS = """\
import importlib, json, sys

found = {}
for name in ("runtime", "codegen", "generated", "demo"):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:
        found[name] = None
    else:
        found[name] = getattr(module, "__file__", None) or repr(module)
import typed_queues
import typed_queues.codegen.cli
import typed_queues.runtime

print(json.dumps({"leaked": found, "package": typed_queues.__file__, "prefix": sys.prefix}))
"""

#: Environment variables of the test run that must not reach the virtualenvs.
_DROPPED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
    "QUEUES_DSN",
    "DATABASE_URL",
)


# -- helpers ----------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _DROPPED_ENV}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    env.update(extra)
    return env


def _run(
    args: Sequence[str | Path],
    *,
    cwd: Path,
    timeout: float = 120,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} (in {cwd}) exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if sys.platform == "win32" else "bin") / name


def _make_venv(path: Path) -> Path:
    """A virtualenv without system site packages (the ``python -m venv`` default)."""
    _run([sys.executable, "-m", "venv", path], cwd=path.parent)
    return path


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path  # built from the unpacked sdist, as `python -m build` does
    direct_wheel: Path  # built from the checkout, as `pip install .` does


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("build")
    build_system = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    requires: list[str] = build_system["requires"]
    backend: str = build_system["build-backend"]
    env = _make_venv(root / "build-env")
    _run([_bin(env, "python"), "-m", "pip", "install", "-q", *requires], cwd=root, timeout=240)
    hook = (
        "import importlib, sys; backend = importlib.import_module(sys.argv[1]); "
        "print(getattr(backend, sys.argv[2])(sys.argv[3]))"
    )

    def call(name: str, source: Path, out: Path) -> Path:
        out.mkdir(exist_ok=True)
        result = _run([_bin(env, "python"), "-c", hook, backend, name, out], cwd=source)
        return out / result.stdout.strip().splitlines()[-1]

    sdist = call("build_sdist", REPO, root / "sdist")
    direct_wheel = call("build_wheel", REPO, root / "direct")
    unpacked = root / "unpacked"
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(unpacked, filter="data")
        else:  # Python 3.11 before 3.11.4
            archive.extractall(unpacked)
    (source,) = unpacked.iterdir()
    wheel = call("build_wheel", source, root / "dist")
    return Built(sdist=sdist, wheel=wheel, direct_wheel=direct_wheel)


@pytest.fixture(scope="module")
def venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtualenv with the wheel and its ``codegen`` extra installed."""
    path = _make_venv(tmp_path_factory.mktemp("installed") / "venv")
    _run(
        [_bin(path, "python"), "-m", "pip", "install", "-q", f"{built.wheel}[codegen]"],
        cwd=path.parent,
        timeout=240,
    )
    return path


@pytest.fixture(scope="module")
def project(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project outside the repository, its package generated by the installed CLI."""
    path = tmp_path_factory.mktemp("project")
    assert not path.resolve().is_relative_to(REPO)
    (path / "queues.yaml").write_text(CATALOGUE)
    result = _run(
        [_bin(venv, "queues"), "generate", "--catalogue", "queues.yaml", "--out", OUT], cwd=path
    )
    assert result.stdout.startswith(f"{OUT}: "), result.stdout
    assert (path / OUT / "__init__.py").is_file()
    (path / "run_job.py").write_text(RUN_JOB)
    return path


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(DSN, a fresh schema name); the schema is dropped afterwards."""
    if os.environ.get("QUEUES_TEST_DSN"):
        dsn: str = request.getfixturevalue("dsn")  # configured: unreachable is a failure
    else:
        try:
            dsn = request.getfixturevalue("dsn")  # the embedded PostgreSQL
        except Exception as exc:
            pytest.skip(f"QUEUES_TEST_DSN is unset and no embedded PostgreSQL started: {exc!r}")
    schema = f"pkg_{uuid.uuid4().hex[:12]}"
    try:
        yield dsn, schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- the artifacts ----------------------------------------------------------------------------


def test_wheel_holds_only_the_library(built: Built) -> None:
    names = sorted(_wheel_files(built.wheel))
    dist_info = re.compile(rf"{PACKAGE}-[^/]+\.dist-info$")
    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if name in FORBIDDEN_TOP_LEVEL} == set()
    assert PACKAGE in top_level
    others = top_level - {PACKAGE}
    assert len(others) == 1 and dist_info.match(others.pop()), top_level
    inside = {name.split("/")[1] for name in names if name.startswith(f"{PACKAGE}/")}
    assert inside <= {"__init__.py", "py.typed", *LIBRARY_FOLDERS}, inside
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]

    expected = {
        f"{PACKAGE}/{path.relative_to(REPO).as_posix()}"
        for folder in LIBRARY_FOLDERS
        for path in (REPO / folder).rglob("*")
        if path.is_file() and path.suffix in LIBRARY_SUFFIXES and "__pycache__" not in path.parts
    }
    assert f"{PACKAGE}/runtime/py.typed" in expected
    assert f"{PACKAGE}/runtime/db/sql/queries/jobs.sql" in expected
    assert any(name.startswith(f"{PACKAGE}/codegen/templates/") for name in expected)
    assert any(name.startswith(f"{PACKAGE}/runtime/db/sql/migrations/") for name in expected)
    assert sorted(expected - set(names)) == [], "library files missing from the wheel"

    with zipfile.ZipFile(built.wheel) as archive:
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
        (entry_points_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(entry_points_name).decode()
    assert re.search(r"^Name: typed-queues$", metadata, re.MULTILINE), metadata
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.MULTILINE))
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert extras == set(declared["optional-dependencies"]) and {"codegen", "dev"} <= extras
    assert re.search(r"^queues = typed_queues\.runtime\.cli:main$", entry_points, re.MULTILINE)


def test_wheel_from_the_sdist_equals_the_wheel_from_the_checkout(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        members = archive.getnames()
    assert any(name.endswith(f"/{PACKAGE}/runtime/__init__.py") for name in members), members
    assert len(members) == len(set(members)), "the sdist holds a path twice"
    from_sdist = _wheel_files(built.wheel)
    direct = _wheel_files(built.direct_wheel)
    assert sorted(from_sdist) == sorted(direct)
    assert [name for name in from_sdist if from_sdist[name] != direct[name]] == []


# -- the installed package --------------------------------------------------------------------


def test_installed_wheel_leaks_nothing(venv: Path, tmp_path: Path) -> None:
    result = _run([_bin(venv, "python"), "-c", PROBE_IMPORTS], cwd=tmp_path)
    probe: dict[str, Any] = json.loads(result.stdout)
    assert probe["leaked"] == {"runtime": None, "codegen": None, "generated": None, "demo": None}
    assert Path(probe["prefix"]).resolve() == venv.resolve()
    package = Path(probe["package"]).resolve()
    assert package.is_relative_to(venv.resolve()), package
    assert not package.is_relative_to(REPO), package


def test_queues_command_works_without_the_checkout(venv: Path, tmp_path: Path) -> None:
    queues = _bin(venv, "queues")
    result = _run([queues, "--help"], cwd=tmp_path)
    for command in ("generate", "migrate", "worker", "status", "demo"):
        assert command in result.stdout
    demo = _run([queues, "demo"], cwd=tmp_path, check=False)
    assert demo.returncode == 2, demo.stderr
    assert "Traceback" not in demo.stderr, demo.stderr
    assert demo.stderr.startswith("queues: error: "), demo.stderr
    assert "not part of the installed package" in demo.stderr


def test_fresh_project_typechecks_against_the_installed_wheel(venv: Path, project: Path) -> None:
    (project / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    result = _run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--python-executable",
            _bin(venv, "python"),
            "run_job.py",
            OUT,
        ],
        cwd=project,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_fresh_project_runs_a_job(venv: Path, project: Path, database: tuple[str, str]) -> None:
    dsn, schema = database
    result = _run(
        [_bin(venv, "python"), "run_job.py", schema],
        cwd=project,
        env=_env(QUEUES_DSN=dsn),
    )
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["state"] == "completed", outcome
    (seen,) = outcome["seen"]
    module, _, model = seen.pop("model").rpartition(".")
    assert (module.split(".")[0], model) == (OUT, "GreetRequested")
    assert seen == {
        "payload": {"name": "Ada", "times": 2},
        "event": "greet-requested",
        "attempt": 1,
    }
