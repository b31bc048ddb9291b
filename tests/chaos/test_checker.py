"""The history checker on small hand-made histories: each violation kind is found, and the
legitimate re-runs the runtime's guarantees allow (a lost lease) are not flagged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .audit import JobRow, Snapshot, Transition
from .checker import Report, check

MAIN, DEAD = "chaos.main", "chaos.dead"
LEASE = 3.0
T0 = 1_000_000.0


@dataclass
class History:
    """Builds records and a snapshot for a few jobs of one queue (retry limit 2)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[JobRow] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    def send(self, n: int, result: str = "committed", *, sk: str | None = None) -> str:
        job, tok = f"job-{n}", f"tok-{n}"
        item = {"tok": tok, "q": MAIN, "sk": sk, "fail": 0, "perm": False, "ms": 10}
        self.records.append({"ev": "intent", "op": f"op-{n}", "mode": "single", "items": [item]})
        self.records.append({"ev": "outcome", "op": f"op-{n}", "result": result, "ids": [job]})
        return job

    def row(self, job: str, state: str, *, fence: int = 1, retries: int = 0, **extra: Any) -> None:
        n = job.split("-")[1]
        output = extra.pop("output", {"f": fence, "pid": 7, "w": "w1", "a": retries + 1})
        self.rows.append(
            JobRow(
                id=job,
                queue=extra.pop("queue", MAIN),
                state=state,
                retry_count=retries,
                fence=fence,
                tok=extra.pop("tok", f"tok-{n}"),
                singleton_key=extra.pop("sk", None),
                dead_letter_id=extra.pop("dead_letter_id", None),
                output=output,
            )
        )

    def tr(
        self, job: str, old: str | None, new: str, fence: int, at: float, retries: int = 0
    ) -> None:
        lease = at + LEASE if new == "active" else None
        seq = len(self.transitions) + 1
        self.transitions.append(Transition(seq, job, MAIN, old, new, fence, retries, lease, at))

    def run(
        self, job: str, fence: int, start: float, end: float | None, out: str = "ok", **kw: Any
    ) -> None:
        pid, attempt = kw.get("pid", 7), kw.get("attempt", 1)
        base = {"w": kw.get("w", "w1"), "pid": pid, "id": job, "a": attempt, "f": fence}
        self.records.append({"ev": "start", "t": start, "q": MAIN, **base})
        if end is not None:
            self.records.append({"ev": "end", "t": end, "out": out, **base})

    def simple(self, n: int) -> str:
        """A job sent, claimed once, run once and completed."""
        job = self.send(n)
        self.tr(job, None, "created", 0, T0)
        self.tr(job, "created", "active", 1, T0 + 1)
        self.run(job, 1, T0 + 1.01, T0 + 1.2)
        self.tr(job, "active", "completed", 1, T0 + 1.3)
        self.row(job, "completed")
        return job

    def check(self, drained: bool = True) -> Report:
        snap = Snapshot(self.rows, self.transitions, {MAIN: 2, DEAD: 3}, {MAIN: None, DEAD: None})

        def history() -> Iterator[dict[str, Any]]:
            return iter(self.records)

        return check(history, snap, drained=drained)


def kinds(report: Report) -> dict[str, int]:
    return dict(report.by_kind())


def test_a_clean_history_passes() -> None:
    h = History()
    h.simple(1)
    report = h.check()
    assert kinds(report) == {}
    assert report.figures["completed"] == 1


def test_lost_job() -> None:
    h = History()
    h.send(1)
    assert kinds(h.check()) == {"lost_job": 1}


def test_rolled_back_send_that_exists() -> None:
    h = History()
    job = h.simple(1)
    h.records[1]["result"] = "rolled_back"
    report = h.check()
    assert kinds(report) == {"rolled_back_exists": 1}
    assert any('"rolled_back"' in line for line in report.lines[job])


def test_unknown_outcome_may_or_may_not_exist() -> None:
    h = History()
    h.simple(1)
    h.records[1]["result"] = "unknown"
    h.send(2, "unknown")
    assert kinds(h.check()) == {}


def test_phantom_and_not_final() -> None:
    h = History()
    h.row("job-9", "created", tok="nobody-sent-this")
    job = h.send(2)
    h.tr(job, None, "created", 0, T0)
    h.row(job, "retry", fence=0)
    assert kinds(h.check(drained=False)) == {"phantom_job": 1, "not_final": 2, "not_drained": 1}


def test_double_completion() -> None:
    h = History()
    job = h.simple(1)
    h.tr(job, "completed", "active", 2, T0 + 5)
    h.run(job, 2, T0 + 5.01, T0 + 5.2)
    h.tr(job, "active", "completed", 2, T0 + 5.3)
    h.rows[0] = JobRow(job, MAIN, "completed", 0, 2, "tok-1", None, None, {"f": 2, "pid": 7})
    assert "double_completion" in kinds(h.check())


def test_overlap_explained_by_a_lost_lease() -> None:
    """Run 1 stalls past its lease, is rescued, run 2 claims it and completes; run 1 wakes up
    and finishes: the overlap is allowed, and run 2's result is the one written."""
    h = History()
    job = h.send(1)
    h.tr(job, None, "created", 0, T0)
    h.tr(job, "created", "active", 1, T0 + 1)
    h.run(job, 1, T0 + 1.01, T0 + 9.0, w="w1", pid=1)
    h.tr(job, "active", "retry", 1, T0 + 4.5, retries=1)  # rescued after the lease
    h.tr(job, "retry", "active", 2, T0 + 5.0, retries=1)
    h.run(job, 2, T0 + 5.01, T0 + 5.5, w="w2", pid=2, attempt=2)
    h.tr(job, "active", "completed", 2, T0 + 5.6, retries=1)
    h.row(job, "completed", fence=2, retries=1, output={"f": 2, "pid": 2})
    report = h.check()
    assert kinds(report) == {}
    assert report.figures["overlaps explained by a lost lease"] == 1


def test_overlap_before_the_lease_could_expire() -> None:
    h = History()
    job = h.send(1)
    h.tr(job, None, "created", 0, T0)
    h.tr(job, "created", "active", 1, T0 + 1)
    h.run(job, 1, T0 + 1.01, T0 + 3.0, pid=1)
    h.tr(job, "active", "retry", 1, T0 + 1.5, retries=1)
    h.tr(job, "retry", "active", 2, T0 + 2.0, retries=1)  # only 1 s into a 3 s lease
    h.run(job, 2, T0 + 2.01, T0 + 2.5, pid=2, attempt=2)
    h.tr(job, "active", "completed", 2, T0 + 2.6, retries=1)
    h.row(job, "completed", fence=2, retries=1, output={"f": 2, "pid": 2})
    report = h.check()
    assert kinds(report) == {"unexplained_overlap": 1}
    assert "lease could have run out" in report.violations[0].detail


def test_overlap_without_release_and_same_fence() -> None:
    h = History()
    job = h.simple(1)
    h.run(job, 1, T0 + 1.1, T0 + 1.15, pid=8)  # a second run of the same claim
    assert kinds(h.check()) == {"fence_reused": 1, "unexplained_overlap": 1}


def test_stale_result_written() -> None:
    h = History()
    job = h.send(1)
    h.tr(job, None, "created", 0, T0)
    h.tr(job, "created", "active", 1, T0 + 1)
    h.run(job, 1, T0 + 1.01, T0 + 9.0, pid=1)
    h.tr(job, "active", "retry", 1, T0 + 4.5, retries=1)
    h.tr(job, "retry", "active", 2, T0 + 5.0, retries=1)
    h.run(job, 2, T0 + 5.01, T0 + 10, pid=2, attempt=2)
    h.tr(job, "active", "completed", 2, T0 + 9.1, retries=1)
    h.row(job, "completed", fence=2, retries=1, output={"f": 1, "pid": 1})  # run 1's result
    assert kinds(h.check()) == {"stale_result_written": 1}


def test_completion_without_a_successful_run() -> None:
    h = History()
    h.simple(1)
    h.records[-1]["out"] = "error"
    assert kinds(h.check()) == {"completion_without_run": 1}


def test_run_cut_by_kill_ends_with_its_process() -> None:
    h = History()
    job = h.send(1)
    h.tr(job, None, "created", 0, T0)
    h.tr(job, "created", "active", 1, T0 + 1)
    h.run(job, 1, T0 + 1.01, None, pid=1)
    h.records.append({"ev": "proc", "t": T0 + 2, "what": "killed", "name": "w1", "pid": 1})
    h.tr(job, "active", "retry", 1, T0 + 4.5, retries=1)
    h.tr(job, "retry", "active", 2, T0 + 5.0, retries=1)
    h.run(job, 2, T0 + 5.01, T0 + 5.5, pid=2, attempt=2)
    h.tr(job, "active", "completed", 2, T0 + 5.6, retries=1)
    h.row(job, "completed", fence=2, retries=1, output={"f": 2, "pid": 2})
    report = h.check()
    assert kinds(report) == {}
    assert report.figures["runs cut by kill -9"] == 1


def test_retry_policy() -> None:
    h = History()
    job = h.send(1)
    h.tr(job, None, "created", 0, T0)
    h.tr(job, "created", "active", 1, T0 + 1)
    h.run(job, 1, T0 + 1.01, T0 + 1.1, "error")
    h.tr(job, "active", "failed", 1, T0 + 1.2)
    h.row(job, "failed", output={"error": "boom"})  # failed with 0 of 2 retries used
    assert kinds(h.check()) == {"retry_policy": 1}


def test_attempt_must_follow_the_retry_count() -> None:
    h = History()
    h.simple(1)
    h.records[2]["a"] = 3
    assert kinds(h.check()) == {"retry_policy": 1}


def test_singleton_duplicates() -> None:
    h = History()
    h.simple(1)
    h.records.append({"ev": "sample", "t": T0, "dups": [[MAIN, "k1", 2]]})
    first = h.send(2, sk="k1")
    second = h.send(3, sk="k1")
    for job in (first, second):
        h.tr(job, None, "created", 0, T0 + 2)
    for job in (first, second):
        h.row(job, "created", fence=0, sk="k1")
    report = h.check()
    assert report.by_kind()["singleton_duplicate"] == 2  # the sample, and the audited history


def test_crashed_process() -> None:
    h = History()
    h.records.append(
        {"ev": "proc", "t": T0, "what": "crashed", "name": "w2", "pid": 5, "rc": 1, "stderr": "x"}
    )
    assert kinds(h.check()) == {"process_crashed": 1}
