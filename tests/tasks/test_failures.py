"""Retries, backoff, burial and the dead-letter API."""

from __future__ import annotations

import pytest

from postroom.tasks import JobFailed
from postroom.tasks.middleware import backoff_delay


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempt in range(1, 8):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(0.5, 30.0, attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_failing_job_is_retried_then_succeeds(app, start_worker):
    calls = []

    @app.task(retries=3, backoff=0.01)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return len(calls)

    start_worker(app)
    job = flaky.delay()
    assert job.result(timeout=10) == 3
    assert job.info()["error"] is None  # the earlier tries' error went with their outcome


def test_last_failure_buries_the_job_with_error_and_traceback(app, start_worker):
    @app.task(retries=2, backoff=0.01)
    def broken(x):
        raise ValueError(f"bad {x}")

    start_worker(app)
    job = broken.delay(42)
    with pytest.raises(JobFailed) as info:
        job.result(timeout=10)
    assert "ValueError: bad 42" in info.value.error
    assert "raise ValueError" in info.value.traceback
    assert job.status() == "buried"
    (dead,) = app.dead()
    assert dead["id"] == job.id
    assert dead["args"] == [42]
    assert dead["attempts"] == 3
    assert "raise ValueError" in dead["traceback"]


def test_buried_jobs_can_be_requeued_and_purged(app, start_worker):
    state = {"fail": True}

    @app.task(retries=0)
    def sometimes(i):
        if state["fail"]:
            raise RuntimeError("down")
        return i

    worker = start_worker(app)
    jobs = sometimes.map([(i,) for i in range(3)])
    for j in jobs:
        with pytest.raises(JobFailed):
            j.result(timeout=10)
    assert len(app.dead()) == 3
    state["fail"] = False
    worker.stop()
    first = next(d["entry"] for d in app.dead() if d["id"] == jobs[0].id)
    assert app.requeue_dead(entries=[first]) == 1
    # The burial's wake-up went with it: a waiter now waits for the new try.
    assert not app.client.exists(app.keys("default").done(jobs[0].id))
    start_worker(app)
    assert jobs[0].result(timeout=10) == 0
    assert len(app.dead()) == 2
    assert app.purge_dead() == 2
    assert app.dead() == []


def test_a_retry_due_after_the_record_ttl_still_runs(make_app, start_worker):
    """A scheduled job's record holds its arguments: it must live until the job is due."""
    app = make_app(record_ttl=0.5)
    calls = []

    @app.task(retries=1, backoff=1.2, max_backoff=1.2)
    def once_more():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first try fails")
        return "second try"

    later = once_more.send_in(0.8)
    start_worker(app)
    assert later.result(timeout=10) == "second try"
