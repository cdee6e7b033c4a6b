"""Delayed jobs and cron schedules."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from tasks_helpers import wait_for

from postroom.tasks import Cron


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", "2026-01-01T10:07:30", "2026-01-01T10:15:00"),
        ("0 9 * * 1-5", "2026-01-02T09:00:00", "2026-01-05T09:00:00"),  # Friday 9:00 -> Monday
        ("30 2 29 2 *", "2026-03-01T00:00:00", "2028-02-29T02:30:00"),
        ("@hourly", "2026-01-01T10:59:59", "2026-01-01T11:00:00"),
        ("*/2 * * * * *", "2026-01-01T00:00:01", "2026-01-01T00:00:02"),
        ("0 0 1,15 * 0", "2026-01-02T00:00:00", "2026-01-04T00:00:00"),  # dom or dow: Sunday the 4th
        ("5-10/5 0 * * *", "2026-01-01T00:05:00", "2026-01-01T00:10:00"),
    ],
)
def test_cron_next_tick(expr, after, expected):
    assert Cron(expr).next_after(ts(after)) == ts(expected)


@pytest.mark.parametrize("expr", ["* * *", "61 * * * *", "*/0 * * * *", "0 0 31 2 *"])
def test_cron_rejects_bad_expressions(expr):
    with pytest.raises(ValueError):
        Cron(expr)  # refused when parsed: a schedule that never fires included


def test_a_cron_task_that_never_fires_is_refused_at_registration(app):
    with pytest.raises(ValueError, match="never fires"):
        app.task(cron="0 0 30 2 *")(lambda: None)


def test_send_in_starts_close_to_due_time(app, start_worker):
    started = {}

    @app.task
    def stamp(i):
        started[i] = time.time()

    start_worker(app)
    due = {}
    jobs = []
    for i in range(20):
        delay = 0.3 + i * 0.05
        due[i] = time.time() + delay
        jobs.append(stamp.send_in(delay, i))
    assert jobs[0].status() == "scheduled"
    for j in jobs:
        j.result(timeout=10)
    lateness = [started[i] - due[i] for i in due]
    assert min(lateness) >= -0.01  # never early (clock granularity aside)
    assert max(lateness) < 0.25, lateness  # the 100 ms bound under load: test_latency.py


def test_send_at_datetime_and_cancel_before_due(app, start_worker):
    @app.task
    def hello():
        return "hi"

    start_worker(app)
    keep = hello.send_at(datetime.now(UTC).timestamp() + 0.3)
    drop = hello.send_at(datetime.fromtimestamp(time.time() + 0.3))
    assert drop.cancel() == "cancelled"
    assert keep.result(timeout=10) == "hi"
    assert drop.status() == "cancelled"


def test_earlier_job_wakes_a_sleeping_scheduler(app, start_worker):
    @app.task
    def at():
        return time.time()

    start_worker(app)
    at.send_in(30)  # the scheduler now sleeps until this one...
    time.sleep(0.3)
    due = time.time() + 0.2
    soon = at.send_at(due)  # ...and must be woken for this one
    assert soon.result(timeout=5) - due < 0.5  # not 30 s, nor the 2 s sleep slice


def test_cron_ticks_exactly_once_across_workers(make_app, start_worker):
    apps = [make_app() for _ in range(3)]
    for a in apps:
        @a.task(name="tick", cron="* * * * * *")
        def tick():
            return None

    k = apps[0].keys("default")
    client = apps[0].client

    def tick_guards():
        return list(client.scan_iter(match=k.unique("cron:tick:*"), count=1000))

    workers = [start_worker(a) for a in apps]
    wait_for(lambda: len(tick_guards()) >= 3, timeout=20, what="three ticks")
    for w in workers:
        w.stop()
    records = list(client.scan_iter(match=f"{k.tag}:j:*", count=1000))
    # Three schedulers raced for every tick; each tick made exactly one job.
    assert len(records) == len(tick_guards())
