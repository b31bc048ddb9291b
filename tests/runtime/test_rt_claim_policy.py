"""``ClaimAhead``, the pure policy of how many jobs a worker claims: unit tests, no database."""

from __future__ import annotations

from typed_queues.runtime.worker.claim_ahead import ClaimAhead


def test_a_new_worker_claims_its_free_slots_only() -> None:
    policy = ClaimAhead(concurrency=10)
    assert policy.want(running=0, held=0) == 10
    assert policy.want(running=7, held=0) == 3
    assert policy.want(running=10, held=0) == 0


def test_batch_size_caps_a_claim() -> None:
    assert ClaimAhead(concurrency=10, batch_size=4).want(running=0, held=0) == 4


def test_fast_handlers_grow_the_claim_ahead_to_the_time_budget() -> None:
    policy = ClaimAhead(concurrency=10, budget_s=0.05, max_ahead=500)
    for _ in range(50):
        policy.finished(0.001)  # 10 slots x 1000 jobs/s = 10,000 jobs/s; 50 ms = 500 jobs
    policy.claimed(asked=10, got=10)
    assert policy.ahead == 10  # doubles from concurrency...
    for _ in range(10):
        policy.claimed(asked=policy.want(0, 0), got=policy.want(0, 0))
    assert policy.ahead == 500  # ...up to what the handlers finish in the budget
    assert policy.want(running=10, held=0) == 500


def test_slow_handlers_hold_nothing_ahead() -> None:
    policy = ClaimAhead(concurrency=2, budget_s=0.05)
    for _ in range(20):
        policy.finished(0.2)  # 2 slots / 0.2 s = 10 jobs/s: half a job in 50 ms
    policy.claimed(asked=2, got=2)
    assert policy.limit() == 0 and policy.ahead == 0


def test_a_drained_queue_stops_claiming_ahead_until_the_held_jobs_started() -> None:
    policy = ClaimAhead(concurrency=10)
    for _ in range(10):
        policy.finished(0.001)
    policy.claimed(asked=10, got=10)
    policy.claimed(asked=20, got=5)  # the queue ran dry
    assert policy.drained and policy.ahead == 0
    assert policy.want(running=4, held=1) == 0  # held jobs start before the next claim
    assert policy.want(running=4, held=0) == 6


def test_the_next_claim_goes_out_when_half_the_held_jobs_started() -> None:
    policy = ClaimAhead(concurrency=10)
    for _ in range(10):
        policy.finished(0.0001)
    policy.claimed(asked=10, got=10)
    policy.claimed(asked=20, got=20)
    assert policy.ahead == 20
    assert policy.want(running=10, held=11) == 0  # more than half still held
    assert policy.want(running=10, held=10) == 10


def test_handlers_turning_slow_drop_the_claim_ahead() -> None:
    policy = ClaimAhead(concurrency=10)
    for _ in range(10):
        policy.finished(0.001)
    policy.claimed(asked=10, got=10)
    policy.handlers_slow()
    assert policy.ahead == 0 and policy.want(running=10, held=0) == 0


def test_the_duration_is_smoothed() -> None:
    policy = ClaimAhead(concurrency=1)
    policy.finished(1.0)
    policy.finished(0.0)
    assert policy.job_s is not None and abs(policy.job_s - 0.9) < 1e-9
