"""The v0.1.0 release, built into a virtualenv of its own and driven through small scripts.

That release's distribution is ``queues`` and its import names are top-level (``runtime``,
``generated``): it cannot share an interpreter with this checkout, so its code runs in child
processes of its own virtualenv, isolated (``-I``) from this checkout's paths. The virtualenv
is cached under the temporary directory, keyed by the commit and the Python version, so reruns
skip the build; pip's download cache is reused for the first one.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The release commit (in main's history), then its tag (CI clones may lack tags).
REFS = ("a4fe02d", "v0.1.0")


def release_commit() -> str:
    """The full hash of v0.1.0, found by its commit hash first and by its tag second."""
    for ref in REFS:
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0:
            return found.stdout.strip()
    raise RuntimeError(
        f"neither commit {REFS[0]} nor tag {REFS[1]} (release v0.1.0) is in this clone: "
        "fetch the full history (git fetch --unshallow --tags) to run the upgrade test"
    )


@dataclass(frozen=True)
class OldRelease:
    """The v0.1.0 virtualenv and how to run a script in it."""

    commit: str
    python: Path

    def run(self, script: str, *args: str, cwd: Path, timeout: float = 120) -> str:
        """Run ``script`` (Python source) to the end; its stdout. Fails with its output."""
        done = subprocess.run(
            [str(self.python), "-I", "-c", script, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"v0.1.0 script exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def spawn(self, script: str, *args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        """Start ``script`` in the background, stdout and stderr into ``log``."""
        with log.open("wb") as out:
            return subprocess.Popen(
                [str(self.python), "-I", "-c", script, *args],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _build(commit: str, root: Path) -> None:
    source = root / "src"
    source.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(source, filter="data")
        else:  # our own repository's archive
            tar.extractall(source)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_env())
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
        cwd=root,
        check=True,
        env=_env(),
        timeout=600,
    )


def old_release() -> OldRelease:
    """The v0.1.0 virtualenv, built once per commit and Python version (under a file lock, so
    concurrent test runs build it once)."""
    commit = release_commit()
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    root = Path(tempfile.gettempdir()) / f"typed-queues-release-{commit[:12]}-{version}"
    ready = root / "ready"
    python = root / "venv" / "bin" / "python"
    lock_path = root.with_name(root.name + ".lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            shutil.rmtree(root, ignore_errors=True)
            _build(commit, root)
            ready.write_text(commit)
    return OldRelease(commit, python)


#: Creates the v0.1.0 schema and queues and leaves jobs in every state; prints their ids.
SEED = """\
import asyncio, json, sys
from datetime import timedelta
from runtime import Boss, QueueSpec, RetryPolicy
from runtime._migrate import CODE_VERSION

def retry(limit):
    return RetryPolicy(limit=limit, delay=timedelta(0), backoff="fixed", jitter=False)

async def main(dsn, schema):
    async with Boss(dsn, schema=schema) as boss:
        await boss.create_queues([
            QueueSpec(name="work-dead"),
            QueueSpec(name="work", retry=retry(2), dead_letter="work-dead"),
            QueueSpec(name="later-dead"),
            QueueSpec(name="later", retry=retry(1), dead_letter="later-dead"),
        ])
        ids = {}

        async def take(data):
            job_id = await boss.send("later", data, priority=10)
            [job] = await boss.fetch("later")
            assert job.id == job_id, (job.id, job_id)
            return job_id

        ids["queued"] = [str(await boss.send("later", {"n": n})) for n in range(3)]
        ids["delayed"] = await boss.send("later", {"kind": "delayed"},
                                         start_after=timedelta(hours=1))
        ids["singleton"] = await boss.send("later", {"kind": "singleton"},
                                           singleton_key="only-one")
        ids["completed"] = await take({"kind": "completed"})
        assert await boss.complete(ids["completed"], {"done": "by v0.1.0"})
        ids["cancelled"] = await boss.send("later", {"kind": "cancelled"})
        assert await boss.cancel(ids["cancelled"])
        ids["failed"] = await take({"kind": "failed"})
        assert await boss.fail(ids["failed"], "first failure")
        [again] = await boss.fetch("later")
        assert again.id == ids["failed"]
        assert await boss.fail(ids["failed"], "last failure")
        ids["failed_copy"] = (await boss.get_job(ids["failed"])).dead_letter_id
        ids["active"] = await take({"kind": "active"})
        ids["retry"] = await take({"kind": "retry"})
        assert await boss.fail(ids["retry"], "will be retried by the new release")
        ids["gate"] = await boss.send("work", {"gate": sys.argv[3]})
        ids["work"] = [str(await boss.send("work", {"n": n})) for n in range(3)]
        states = {}
        for job_id in [ids[k] for k in ("delayed", "singleton", "completed", "cancelled",
                                        "failed", "failed_copy", "active", "retry")]:
            states[str(job_id)] = (await boss.get_job(job_id)).state.value
        print(json.dumps({"version": CODE_VERSION, "states": states,
                          "ids": {k: v if isinstance(v, list) else str(v)
                                  for k, v in ids.items()}}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

#: A v0.1.0 worker on queue "work" until SIGTERM. Each job writes a line when it starts and when
#: it ends: {"gate": path} waits for that file, {"fail": n} raises on its first n attempts.
WORKER = """\
import asyncio, json, os, signal, sys
from datetime import timedelta
from pathlib import Path
from runtime import Boss

async def main(dsn, schema, record_path):
    records = open(record_path, "a", buffering=1)

    def note(event, job, **more):
        records.write(json.dumps({"event": event, "id": str(job.id), "attempt": job.attempt,
                                  "pid": os.getpid(), **more}) + "\\n")

    async def handle(job):
        note("start", job)
        gate = job.data.get("gate")
        while gate and not Path(gate).exists():
            await asyncio.sleep(0.05)
        if job.attempt <= int(job.data.get("fail", 0)):
            note("raise", job)
            raise RuntimeError(f"planned failure of attempt {job.attempt}")
        note("end", job)
        return {"ran_by": "v0.1.0", "pid": os.getpid()}

    boss = Boss(dsn, schema=schema, lease=timedelta(seconds=3),
                poll_interval=timedelta(milliseconds=200),
                maintenance_interval=timedelta(seconds=1))
    await boss.start()
    worker = boss.worker("work", handle, concurrency=4)
    await worker.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await worker.stop(timeout=1)
    await boss.stop()
    print("STOPPED", flush=True)

asyncio.run(main(*sys.argv[1:4]))
"""

#: A v0.1.0 process starting against the schema: prints STARTED, or REFUSED and the reason.
START = """\
import asyncio, sys
from runtime import Boss, SchemaVersionError

async def main(dsn, schema):
    try:
        async with Boss(dsn, schema=schema):
            print("STARTED")
    except SchemaVersionError as exc:
        print("REFUSED", exc)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
