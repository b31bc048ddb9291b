"""The history checker: what the soak proves, from the history files and the database.

Inputs: the JSONL records of every process (``history``) and, once the system has drained, a
``Snapshot`` of the job table and of the audited transitions (``audit``). Each check below adds
``Violation``s of one kind:

* ``lost_job``: a send that committed whose job is not in the table;
* ``not_final``: a job that is not ``completed`` or ``failed`` after the drain;
* ``rolled_back_exists``: a job whose send was rolled back;
* ``phantom_job`` / ``duplicate_job`` / ``id_mismatch``: a job no producer sent, a send that
  made two jobs, a job whose id is not the one its send returned;
* ``double_completion``: a job that was completed more than once (audit), or that left a final
  state;
* ``stale_result_written`` / ``completion_without_run``: the written result is not that of the
  run holding the claim it was written under, or no run of that claim ended successfully;
* ``unexplained_overlap``: two runs of one job overlapped in time and no lost lease explains
  it (the later claim must have a higher fence, come after the earlier claim was released and
  after its lease could have run out, and the earlier run's result must not be the one
  written); ``fence_reused``: two runs of one claim;
* ``retry_policy``: more attempts than the queue allows, an attempt number that does not
  follow the retry count, or a job failed before its retries were used up;
* ``singleton_duplicate``: two live jobs of one singleton key (periodic samples, and the
  audited history);
* ``dead_letter``: a failed job without exactly one copy in its dead-letter queue (or one
  where there is none);
* ``process_crashed``: a worker or producer process that died without being killed;
* ``run_never_ended``: a handler run with no end line whose process was not seen to end;
* ``not_drained``: the drain did not finish in time.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .audit import JobRow, Snapshot, Transition

__all__ = ["Report", "Run", "Violation", "check"]

_FINAL = ("completed", "failed")
#: Seconds of slack when comparing Python times of different processes (same clock).
_CLOCK_SLACK_S = 0.002


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    job: str | None
    detail: str


@dataclass(slots=True)
class Run:
    """One handler run: a ``start`` line and, unless its process died, an ``end`` line."""

    job: str
    fence: int
    attempt: int
    worker: str
    pid: int
    start: float
    end: float | None = None
    out: str | None = None


@dataclass
class Report:
    figures: dict[str, Any] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    #: Per job id, the records and transitions that mention it (for explaining violations).
    lines: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, job: str | None, detail: str) -> None:
        self.violations.append(Violation(kind, job, detail))

    def by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(slots=True)
class _Send:
    op: str
    index: int
    item: dict[str, Any]
    result: str = "unknown"
    id: str | None = None


def check(
    history: Callable[[], Iterable[dict[str, Any]]], snap: Snapshot, *, drained: bool = True
) -> Report:
    """Check the history (``history()`` yields every record; it is read twice: once to check,
    once to collect the lines that explain each violation) against the drained database."""
    checker = _Checker(snap)
    report = checker.run(history(), drained)
    checker.explain(history())
    return report


class _Checker:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.report = Report()
        self.rows = {row.id: row for row in snap.rows}
        self.limits = snap.retry_limits
        self.dead_letters = snap.dead_letters
        dlqs = {dlq for dlq in snap.dead_letters.values() if dlq}
        self.worked = {row.queue for row in snap.rows if row.queue not in dlqs}
        self.worked |= {q for q in snap.retry_limits if q not in dlqs}
        self.transitions: dict[str, list[Transition]] = defaultdict(list)
        for tr in snap.transitions:
            self.transitions[tr.job_id].append(tr)
        self.sends: dict[str, _Send] = {}  # by token
        self.job_runs: dict[str, list[Run]] = defaultdict(list)
        #: Runs that have no end line yet, by (job, fence, pid).
        self._open: dict[tuple[str, int, int], Run] = {}
        self.overlaps = 0
        self.max_overlap = 0.0
        self.proc_end: dict[int, float] = {}
        self.samples = 0
        self.sample_dups: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []
        self.ops: Counter[str] = Counter()

    # -- reading the history -----------------------------------------------------------------

    def read(self, records: Iterable[dict[str, Any]]) -> None:
        outcomes: dict[str, dict[str, Any]] = {}
        intents: dict[str, dict[str, Any]] = {}
        for rec in records:
            ev = rec.get("ev")
            if ev == "intent":
                intents[rec["op"]] = rec
            elif ev == "outcome":
                outcomes[rec["op"]] = rec
            elif ev == "start":
                run = Run(rec["id"], rec["f"], rec["a"], rec["w"], rec["pid"], rec["t"])
                self.job_runs[run.job].append(run)
                self._open[(run.job, run.fence, run.pid)] = run
            elif ev == "end":
                ended = self._open.pop((rec["id"], rec["f"], rec["pid"]), None)
                if ended is not None:
                    ended.end, ended.out = rec["t"], rec["out"]
            elif ev == "fault":
                if rec.get("phase", "begin") == "begin":
                    self.report.faults[rec["kind"]] += 1
            elif ev == "proc":
                if rec["what"] in ("killed", "exited", "crashed"):
                    self.proc_end[rec["pid"]] = rec["t"]
                if rec["what"] == "crashed":
                    self.crashes.append(rec)
            elif ev == "sample":
                self.samples += 1
                if rec.get("dups"):
                    self.sample_dups.append(rec)
        for op, intent in intents.items():
            outcome = outcomes.get(op)
            result = outcome["result"] if outcome else "unknown"
            ids = (outcome or {}).get("ids") or []
            self.ops[f"{intent['mode']}:{result}"] += 1
            for index, item in enumerate(intent["items"]):
                send = _Send(op, index, item, result, ids[index] if index < len(ids) else None)
                self.sends[item["tok"]] = send

    # -- the checks --------------------------------------------------------------------------

    def run(self, records: Iterable[dict[str, Any]], drained: bool) -> Report:
        self.read(records)
        by_tok = self.check_sends()
        for row in self.snap.rows:
            if row.queue in self.worked:
                self.check_job(row)
        self.check_dead_letters()
        self.check_singletons()
        for crash in self.crashes:
            self.report.add(
                "process_crashed",
                None,
                f"{crash.get('name')} (pid {crash['pid']}) exited with {crash.get('rc')} "
                f"without being killed: {crash.get('stderr', '')[-1500:]}",
            )
        if not drained:
            self.report.add("not_drained", None, "jobs were still unfinished at the deadline")
        self.figures(by_tok)
        return self.report

    def check_sends(self) -> dict[str, JobRow]:
        add = self.report.add
        by_tok: dict[str, JobRow] = {}
        for row in self.snap.rows:
            if row.queue not in self.worked:
                continue
            if row.tok is None or row.tok not in self.sends:
                add("phantom_job", row.id, f"job in {row.queue} with token {row.tok!r}: no send")
                continue
            if row.tok in by_tok:
                add("duplicate_job", row.id, f"token {row.tok} has jobs {by_tok[row.tok].id}")
            by_tok[row.tok] = row
        for tok, send in self.sends.items():
            mine = by_tok.get(tok)
            if send.result == "rolled_back":
                if mine is not None:
                    add("rolled_back_exists", mine.id, f"op {send.op} rolled back, job exists")
                continue
            if send.result != "committed":
                continue
            if send.item.get("sk") is None:
                if mine is None:
                    add("lost_job", send.id, f"op {send.op} item {send.index} committed, no job")
                elif send.id is not None and mine.id != send.id:
                    add("id_mismatch", mine.id, f"op {send.op} returned {send.id}")
            else:  # a singleton send returns the live job of its key, maybe another send's
                if send.id is None or send.id not in self.rows:
                    add("lost_job", send.id, f"singleton op {send.op} committed, no job")
                elif mine is not None and mine.id != send.id:
                    add("id_mismatch", mine.id, f"singleton op {send.op} returned {send.id}")
        return by_tok

    def check_job(self, row: JobRow) -> None:
        add = self.report.add
        limit = self.limits.get(row.queue, 0)
        if row.state not in _FINAL:
            add("not_final", row.id, f"state {row.state} after the drain")
        trs = self.transitions.get(row.id, [])
        claims: dict[int, Transition] = {}
        releases: dict[int, Transition] = {}
        completions = [tr for tr in trs if tr.new_state == "completed"]
        left_final = [tr for tr in trs if tr.old_state in ("completed", "failed", "cancelled")]
        last_fence = 0
        for tr in trs:
            if tr.new_state == "active" and tr.old_state != "active":
                if tr.fence != last_fence + 1:
                    add("fence_reused", row.id, f"claim with fence {tr.fence} after {last_fence}")
                last_fence = tr.fence
                claims[tr.fence] = tr
            elif tr.old_state == "active" and tr.new_state != "active":
                releases.setdefault(tr.fence, tr)
        if len(completions) > 1 or left_final:
            add(
                "double_completion",
                row.id,
                f"{len(completions)} completions, {len(left_final)} changes out of a final state",
            )
        retries = sum(1 for tr in trs if tr.old_state == "active" and tr.new_state == "retry")
        if row.retry_count > limit or retries > limit:
            add(
                "retry_policy",
                row.id,
                f"retry_count {row.retry_count}, {retries} retries, limit {limit}",
            )
        runs = self.job_runs.get(row.id, [])
        per_fence = Counter(run.fence for run in runs)
        for fence, count in per_fence.items():
            if fence not in claims:
                add("fence_reused", row.id, f"{count} runs of fence {fence}, which no claim gave")
            elif count > 1:
                add("fence_reused", row.id, f"{count} runs of fence {fence}")
        for run in runs:
            claim = claims.get(run.fence)
            if claim is not None and run.attempt != claim.retry_count + 1:
                add(
                    "retry_policy",
                    row.id,
                    f"run of fence {run.fence} is attempt {run.attempt}, "
                    f"claimed with retry_count {claim.retry_count}",
                )
            if run.attempt > limit + 1:
                add("retry_policy", row.id, f"attempt {run.attempt} > limit {limit} + 1")
        written: int | None = None
        if row.state == "completed" and completions:
            written = completions[-1].fence
            self.check_result(row, written)
        if row.state == "failed":
            failure = releases.get(max(claims)) if claims else None
            permanent = any(run.out == "perm" and run.fence == row.fence for run in runs)
            if row.retry_count < limit and not permanent:
                add(
                    "retry_policy",
                    row.id,
                    f"failed after {row.retry_count} of {limit} retries (failure {failure})",
                )
        self.check_overlaps(row, claims, releases, written)

    def check_result(self, row: JobRow, fence: int) -> None:
        add = self.report.add
        output = row.output if isinstance(row.output, dict) else {}
        if output.get("f") != fence or row.fence != fence:
            add(
                "stale_result_written",
                row.id,
                f"completed under fence {fence} (row fence {row.fence}) with the result of "
                f"fence {output.get('f')} ({output})",
            )
            return
        ok = [
            run
            for run in self.job_runs.get(row.id, [])
            if run.fence == fence and run.out == "ok" and run.pid == output.get("pid")
        ]
        if not ok:
            add(
                "completion_without_run",
                row.id,
                f"no successful run of fence {fence} by pid {output.get('pid')}",
            )

    def end_of(self, run: Run) -> float:
        if run.end is not None:
            return run.end
        return self.proc_end.get(run.pid, math.inf)

    def check_overlaps(
        self,
        row: JobRow,
        claims: dict[int, Transition],
        releases: dict[int, Transition],
        written: int | None,
    ) -> None:
        runs = sorted(self.job_runs.get(row.id, []), key=lambda run: run.start)
        for i, first in enumerate(runs):
            first_end = self.end_of(first)
            if first_end == math.inf:
                self.report.add("run_never_ended", row.id, f"run of fence {first.fence}")
            for second in runs[i + 1 :]:
                if second.start >= first_end - _CLOCK_SLACK_S:
                    break
                overlap = min(first_end, self.end_of(second)) - second.start
                old, new = (first, second) if first.fence < second.fence else (second, first)
                reason = self.unexplained(old, new, claims, releases, written)
                if reason:
                    self.report.add(
                        "unexplained_overlap",
                        row.id,
                        f"fence {old.fence} ({old.worker}, {old.start:.3f}-"
                        f"{self.end_of(old):.3f}) and fence {new.fence} ({new.worker}, "
                        f"{new.start:.3f}-{self.end_of(new):.3f}): {reason}",
                    )
                else:
                    self.overlaps += 1
                    self.max_overlap = max(self.max_overlap, overlap)

    @staticmethod
    def unexplained(
        old: Run,
        new: Run,
        claims: dict[int, Transition],
        releases: dict[int, Transition],
        written: int | None,
    ) -> str | None:
        """Why the overlap of ``old`` and ``new`` is not explained by a lost lease (or None)."""
        if old.fence == new.fence:
            return "the same claim ran twice"
        old_claim, new_claim = claims.get(old.fence), claims.get(new.fence)
        if old_claim is None or new_claim is None:
            return "a run without a committed claim"
        release = releases.get(old.fence)
        if release is None or release.seq > new_claim.seq:
            return "the later claim came before the earlier claim was released"
        if old_claim.lease_until is not None and new_claim.at < old_claim.lease_until:
            return (
                f"the later claim ({new_claim.at:.3f}) came before the earlier lease could "
                f"have run out ({old_claim.lease_until:.3f})"
            )
        if written == old.fence:
            return "the stale run's result was the one written"
        return None

    def check_dead_letters(self) -> None:
        add = self.report.add
        copies: dict[str, list[JobRow]] = defaultdict(list)
        for row in self.snap.rows:
            if row.queue not in self.worked and isinstance(row.output, dict):
                source = row.output.get("source_id")
                if isinstance(source, str):
                    copies[source].append(row)
        for row in self.snap.rows:
            if row.queue not in self.worked:
                continue
            dlq = self.dead_letters.get(row.queue)
            found = copies.pop(row.id, [])
            if row.state == "failed" and dlq:
                if len(found) != 1 or found[0].id != row.dead_letter_id or found[0].queue != dlq:
                    add(
                        "dead_letter",
                        row.id,
                        f"failed with {len(found)} copies in {dlq} "
                        f"(dead_letter_id {row.dead_letter_id})",
                    )
            elif found or row.dead_letter_id is not None:
                add(
                    "dead_letter",
                    row.id,
                    f"{row.state} job with {len(found)} dead-letter "
                    f"copies (dead_letter_id {row.dead_letter_id})",
                )
        for source, found in copies.items():
            add("dead_letter", source, f"{len(found)} dead-letter copies of a job not failed")

    def check_singletons(self) -> None:
        for sample in self.sample_dups:
            for queue, key, count in sample["dups"]:
                self.report.add(
                    "singleton_duplicate",
                    None,
                    f"sample at {sample['t']:.3f}: {count} live jobs of {queue}/{key}",
                )
        live: dict[tuple[str, str], str] = {}
        keyed = {row.id: row.singleton_key for row in self.snap.rows if row.singleton_key}
        for tr in self.snap.transitions:
            key = keyed.get(tr.job_id)
            if key is None:
                continue
            slot = (tr.queue, key)
            if tr.old_state is None and tr.new_state in ("created", "retry", "active"):
                if slot in live:
                    self.report.add(
                        "singleton_duplicate",
                        tr.job_id,
                        f"inserted while {live[slot]} of key {key} was live",
                    )
                live[slot] = tr.job_id
            elif tr.new_state in ("completed", "failed", "cancelled") and live.get(slot) == (
                tr.job_id
            ):
                del live[slot]

    def explain(self, records: Iterable[dict[str, Any]]) -> None:
        """Collect, for every job a violation names, the history lines and transitions that
        mention it (by id, or by the token of its send)."""
        jobs = {v.job for v in self.report.violations if v.job}
        if not jobs:
            return
        toks = {self.rows[job].tok: job for job in jobs if job in self.rows and self.rows[job].tok}
        lines = self.report.lines
        for rec in records:
            ev = rec.get("ev")
            mentioned: set[str] = set()
            if ev in ("start", "end") and rec["id"] in jobs:
                mentioned.add(rec["id"])
            elif ev == "intent":
                mentioned.update(toks[i["tok"]] for i in rec["items"] if i["tok"] in toks)
            elif ev == "outcome":
                mentioned.update(job for job in rec.get("ids") or [] if job in jobs)
            for job in mentioned:
                lines[job].append(_line(rec))
        for tr in self.snap.transitions:
            if tr.job_id in jobs:
                lines[tr.job_id].append(_transition_line(tr))

    # -- figures -----------------------------------------------------------------------------

    def figures(self, by_tok: dict[str, JobRow]) -> None:
        states = Counter(row.state for row in self.snap.rows if row.queue in self.worked)
        results = Counter(send.result for send in self.sends.values())
        unknown_landed = sum(
            1 for tok, send in self.sends.items() if send.result == "unknown" and tok in by_tok
        )
        all_runs = [run for found in self.job_runs.values() for run in found]
        self.report.figures.update(
            {
                "items sent": len(self.sends),
                "items committed": results["committed"],
                "items rolled back": results["rolled_back"],
                "items with unknown outcome": results["unknown"],
                "unknown outcome, job exists": unknown_landed,
                "jobs (worked queues)": sum(states.values()),
                "completed": states["completed"],
                "failed": states["failed"],
                "dead-letter copies": sum(
                    1 for row in self.snap.rows if row.queue not in self.worked
                ),
                "handler runs": len(all_runs),
                "jobs run more than once": sum(1 for f in self.job_runs.values() if len(f) > 1),
                "runs cut by kill -9": sum(1 for run in all_runs if run.end is None),
                "runs cancelled (lease lost or expiry)": sum(
                    1 for run in all_runs if run.out == "cancelled"
                ),
                "overlaps explained by a lost lease": self.overlaps,
                "longest explained overlap (s)": round(self.max_overlap, 3),
                "transitions audited": len(self.snap.transitions),
                "singleton samples": self.samples,
                "operations": dict(sorted(self.ops.items())),
            }
        )


def _line(rec: dict[str, Any]) -> str:
    return json.dumps(rec, separators=(",", ":"))


def _transition_line(tr: Transition) -> str:
    lease = "" if tr.lease_until is None else f" lease_until={tr.lease_until:.3f}"
    return (
        f"[audit #{tr.seq} at={tr.at:.3f}] {tr.old_state or 'insert'} -> {tr.new_state} "
        f"fence={tr.fence} retry_count={tr.retry_count}{lease}"
    )
