"""Priorities, rate limits, unique jobs, time limits, cancellation, chains and groups."""

from __future__ import annotations

import threading
import time

import pytest
from tasks_helpers import wait_for

from postroom.tasks import JobCancelled, JobFailed, SoftTimeLimit
from postroom.tasks.middleware import parse_rate


def test_priorities_within_a_queue_and_queue_order(app, start_worker):
    order = []

    @app.task(queue="low")
    def low(i):
        order.append(("low", i))

    @app.task(queue="high")
    def high(i):
        order.append(("high", i))

    @app.task(queue="high", priority=2)
    def urgent(i):
        order.append(("urgent", i))

    jobs = low.map([(i,) for i in range(3)]) + high.map([(i,) for i in range(3)]) + urgent.map([(0,)])
    start_worker(app, ["high", "low"], concurrency=1)
    for j in jobs:
        j.result(timeout=10)
    assert order[0] == ("urgent", 0)
    assert [q for q, _ in order[1:4]] == ["high"] * 3
    assert [q for q, _ in order[4:]] == ["low"] * 3


@pytest.mark.parametrize(("text", "parsed"), [("10/s", (10, 1.0)), ("100/m", (100, 60.0)),
                                                ("5/10s", (5, 10.0)), ((3, 2.5), (3, 2.5))])
def test_rate_limit_parsing(text, parsed):
    assert parse_rate(text) == parsed


def test_rate_limit_is_shared_by_all_workers(make_app, start_worker):
    apps = [make_app(), make_app()]
    times: list[float] = []
    for a in apps:
        @a.task(name="limited", rate_limit="10/s")
        def limited():
            times.append(time.monotonic())

    jobs = apps[0].tasks["limited"].map([() for _ in range(20)])
    for a in apps:
        start_worker(a)
    for j in jobs:
        j.result(timeout=20)
    times.sort()
    # A burst of 10 is allowed, then one every 100 ms: 20 calls need ~1 s of tokens. Times are
    # taken when a job runs, a little after its token, and the first job can start late (worker
    # start-up), so allow 0.15 s of slack; without the limiter the 20 no-op jobs take ~10 ms.
    assert times[-1] - times[0] >= 0.85
    for i in range(10, 20):
        assert times[i] - times[0] >= (i - 10) * 0.1 - 0.15


def test_a_rate_limited_backlog_waits_once_per_job_in_order(make_app, start_worker):
    from postroom.tasks import Middleware

    delays: list[int] = []

    class CountDelays(Middleware):
        def after_process(self, worker, msg, task, outcome):
            if outcome.kind == "delay":
                delays.append(msg.args[0])

    app = make_app()
    app.middleware.insert(0, CountDelays())
    ran: list[int] = []

    @app.task(rate_limit="20/s")
    def limited(i):
        ran.append(i)

    jobs = limited.map([(i,) for i in range(40)])
    start_worker(app, concurrency=1)
    for j in jobs:
        j.result(timeout=20)
    # 20 run at once (the burst), each of the other 20 waits exactly once, for
    # a slot of its own, and they run in the order they were sent.
    assert sorted(delays) == list(range(20, 40))
    assert ran[20:] == list(range(20, 40))


def test_unique_jobs_are_deduplicated_within_the_window(app, start_worker):
    @app.task(unique=0.5)
    def once(x):
        return x

    a, b, c = once.delay(1), once.delay(1), once.delay(2)
    assert a.id == b.id != c.id
    time.sleep(0.6)
    assert once.delay(1).id != a.id


def test_soft_time_limit_raises_inside_the_task(app, start_worker):
    seen = []

    @app.task(soft_timeout=0.2, retries=0)
    def sleepy():
        try:
            for _ in range(500):
                time.sleep(0.01)
        except SoftTimeLimit:
            seen.append("soft")
            raise

    start_worker(app)
    with pytest.raises(JobFailed, match="SoftTimeLimit"):
        sleepy.delay().result(timeout=10)
    assert seen == ["soft"]


def test_hard_time_limit_stops_a_task_that_ignores_interruption(app, start_worker):
    stop = threading.Event()

    @app.task(timeout=0.3, retries=0)
    def stubborn():
        while not stop.is_set():
            try:
                time.sleep(0.01)
            except BaseException:  # noqa: S110 - ignoring interruptions on purpose
                pass

    @app.task
    def fine():
        return "still serving"

    start_worker(app, concurrency=1)
    started = time.monotonic()
    with pytest.raises(JobFailed, match="HardTimeLimit"):
        stubborn.delay().result(timeout=10)
    assert time.monotonic() - started < 3
    assert fine.delay().result(timeout=10) == "still serving"
    stop.set()


def test_a_late_return_after_the_hard_limit_is_discarded(app, start_worker):
    ran_after = []

    @app.task(timeout=0.2, retries=0)
    def slow():
        time.sleep(1.8)  # one C call: the interruption cannot land; abandoned at 1.2 s
        return "too late"

    @app.task
    def after(value):
        ran_after.append(value)

    worker = start_worker(app, concurrency=1)
    last = (slow.s() | after.s()).delay()
    with pytest.raises(JobFailed, match="HardTimeLimit"):
        last.result(timeout=10)
    time.sleep(1.0)  # the abandoned call has returned by now: its result must go nowhere
    assert ran_after == [] and last.status() == "buried"
    assert sum(t.is_alive() for t in worker._executors) == 1  # the old thread left, its replacement serves


@pytest.mark.parametrize("pool", ["threads", "asyncio"])
def test_a_coroutine_ignoring_its_hard_limit_does_not_take_the_worker_with_it(app, start_worker, pool):
    import asyncio

    release = threading.Event()

    @app.task(timeout=0.2, retries=0)
    async def stubborn():
        while not release.is_set():
            try:
                await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                pass  # ignores every cancellation

    @app.task
    def fine():
        return "served"

    start_worker(app, concurrency=1, pool=pool)
    try:
        with pytest.raises(JobFailed, match="HardTimeLimit"):
            stubborn.delay().result(timeout=10)
        assert fine.delay().result(timeout=10) == "served"
    finally:
        release.set()


@pytest.mark.parametrize("pool", ["threads", "asyncio"])
def test_a_task_raising_system_exit_fails_and_the_worker_serves_on(app, start_worker, pool):
    import sys

    @app.task(retries=0)
    def quits():
        sys.exit(3)

    @app.task
    def fine():
        return "served"

    start_worker(app, concurrency=1, pool=pool)
    with pytest.raises(JobFailed, match="SystemExit"):
        quits.delay().result(timeout=10)
    assert fine.delay().result(timeout=10) == "served"


def test_hard_time_limit_on_async_task(app, start_worker):
    import asyncio

    @app.task(timeout=0.2, retries=0)
    async def forever():
        await asyncio.sleep(30)

    start_worker(app)
    with pytest.raises(JobFailed, match="HardTimeLimit"):
        forever.delay().result(timeout=10)


def test_cancel_queued_job(app, start_worker):
    @app.task
    def never():
        raise AssertionError("cancelled job ran")

    job = never.delay()
    assert job.cancel() == "cancelled"
    with pytest.raises(JobCancelled):
        job.result(timeout=1)
    start_worker(app)
    assert job.status() == "cancelled"


def test_cancel_running_job(app, start_worker):
    running = threading.Event()

    @app.task
    def long():
        running.set()
        for _ in range(1000):
            time.sleep(0.01)
        return "finished anyway"

    start_worker(app)
    job = long.delay()
    running.wait(10)
    assert job.status() == "running"
    assert job.cancel() == "cancelling"
    with pytest.raises(JobCancelled):
        job.result(timeout=10)
    assert job.status() == "cancelled"


def _cancel_while_held_then_hand_back(app, start_worker, enqueue):
    """Cancel a job a busy worker holds but has not started, then stop that
    worker (it hands the job back); *enqueue* returns (job to cancel, job to wait on)."""
    release = threading.Event()

    @app.task
    def hog():
        release.wait(10)

    first = start_worker(app, concurrency=1)
    hog.delay()
    cancelled, awaited = enqueue()
    wait_for(lambda: cancelled.status() == "running", what="the job to be taken")
    assert cancelled.cancel() == "cancelling"
    release.set()
    first.stop(grace=5)  # hands the waiting job back: the cancel must win
    assert cancelled.status() == "cancelled"
    start_worker(app)
    with pytest.raises(JobCancelled):
        awaited.result(timeout=5)


def test_cancel_of_a_job_handed_back_on_shutdown_sticks(app, start_worker):
    @app.task
    def victim():
        raise AssertionError("a cancelled job ran")

    def enqueue():
        job = victim.delay()
        return job, job

    _cancel_while_held_then_hand_back(app, start_worker, enqueue)


def test_a_chain_step_cancelled_on_hand_back_cancels_the_chain(app, start_worker):
    import msgpack

    @app.task
    def step(x):
        raise AssertionError("a cancelled step ran")

    @app.task
    def after(x):
        raise AssertionError("a step after a cancelled one ran")

    def enqueue():
        last = (step.s(1) | after.s()).delay()
        envelopes = [msgpack.unpackb(f[b"j"]) for _, f in app.client.xrange(app.keys("default").stream(0))]
        return app.job(next(env[0] for env in envelopes if env[1] == step.name)), last

    _cancel_while_held_then_hand_back(app, start_worker, enqueue)  # FINISH turns the hand-back into a cancel


def test_chain_passes_results_along(app, start_worker):
    @app.task
    def add(a, b):
        return a + b

    @app.task
    def mul(a, b):
        return a * b

    start_worker(app)
    last = (add.s(1, 2) | mul.s(10) | add.s(5)).delay()
    assert last.result(timeout=10) == 35


def test_a_failed_chain_step_fails_the_chain(app, start_worker):
    @app.task(retries=0)
    def fetch(url):
        raise ConnectionError(f"{url} is down")

    @app.task
    def parse(page):
        raise AssertionError("a step after a failed one ran")

    start_worker(app)
    last = (fetch.s("http://example.invalid") | parse.s()).delay()
    with pytest.raises(JobFailed, match="is down"):
        last.result(timeout=10)
    assert last.status() == "buried"


def test_a_chain_step_unknown_to_the_worker_fails_the_chain(make_app, start_worker):
    producer, worker_app = make_app(), make_app()
    for app in (producer, worker_app):
        app.task(name="first")(lambda x: x + 1)
        app.task(name="plain")(lambda x: x * 2)
    producer.task(name="second")(lambda x: x)  # not in the worker's app

    start_worker(worker_app)
    last = (producer.tasks["first"].s(1) | producer.tasks["second"].s()).delay()
    with pytest.raises(JobFailed, match="not registered"):
        last.result(timeout=10)
    # The worker goes on finishing other jobs (its acker survived the error).
    assert producer.tasks["plain"].delay(21).result(timeout=10) == 42


def test_a_chain_step_whose_successor_cannot_be_enqueued_runs_again(make_app, start_worker):
    import redis

    app = make_app(lease=0.5)
    runs = []

    @app.task
    def first(x):
        runs.append(x)
        return x + 1

    @app.task
    def second(x):
        return x * 10

    enqueue, failures = second.enqueue, iter(range(6))  # as many as the worker's retries

    def flaky_enqueue(*args, **kwargs):
        if next(failures, None) is not None:
            raise redis.ConnectionError("the next step's node is down")
        return enqueue(*args, **kwargs)

    second.enqueue = flaky_enqueue
    start_worker(app)
    last = (first.s(1) | second.s()).delay()
    assert last.result(timeout=20) == 20
    assert runs == [1, 1]  # not acknowledged the first time: redone after its lease


def test_chains_starting_with_a_unique_task_are_not_deduplicated(app, start_worker):
    @app.task(unique=60)
    def fetch(x):
        return x + 1

    @app.task
    def double(x):
        return x * 2

    start_worker(app)
    first = (fetch.s(1) | double.s()).delay()
    second = (fetch.s(1) | double.s()).delay()
    assert first.result(timeout=10) == second.result(timeout=10) == 4


def test_requeued_chain_step_revives_the_chain(app, start_worker):
    state = {"fail": True}

    @app.task(retries=0)
    def flaky(x):
        if state["fail"]:
            raise RuntimeError("down")
        return x + 1

    @app.task
    def double(x):
        return x * 2

    start_worker(app)
    last = (flaky.s(1) | double.s()).delay()
    with pytest.raises(JobFailed, match="down"):
        last.result(timeout=10)
    state["fail"] = False
    assert app.requeue_dead() == 1
    assert last.result(timeout=10) == 4  # the old failure and its wake-up token are gone
    assert last.info()["error"] is None


def test_group_collects_results(app, start_worker):
    @app.task
    def square(x):
        return x * x

    start_worker(app)
    group = app.group(square.s(i) for i in range(5)).delay()
    assert group.results(timeout=10) == [0, 1, 4, 9, 16]


def test_rate_limited_job_waits_without_using_up_retries(app, start_worker):
    @app.task(rate_limit=(1, 0.3), retries=0)
    def slow_lane(i):
        return i

    jobs = slow_lane.map([(i,) for i in range(3)])
    start_worker(app)
    assert [j.result(timeout=10) for j in jobs] == [0, 1, 2]
    wait_for(lambda: app.dead() == [], what="no burial")
