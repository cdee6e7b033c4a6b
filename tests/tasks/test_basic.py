"""Enqueue, run, results, status, cleanup."""

from __future__ import annotations

import asyncio

import msgpack
import pytest
from tasks_helpers import wait_for

from postroom.tasks import JobFailed, current_job
from postroom.tasks.codec import CodecError


def test_delay_runs_and_returns_result(app, start_worker):
    @app.task
    def add(a, b):
        return a + b

    start_worker(app)
    job = add.delay(2, 3)
    assert job.result(timeout=10) == 5
    assert job.status() == "finished"


def test_async_task_runs_natively(app, start_worker):
    @app.task
    async def slow_double(x):
        await asyncio.sleep(0.01)
        return {"x": x * 2}

    start_worker(app)
    assert slow_double.delay(21).result(timeout=10) == {"x": 42}


def test_kwargs_and_nested_values_survive_the_codec(app, start_worker):
    @app.task
    def echo(*args, **kwargs):
        return [args, kwargs]

    start_worker(app)
    out = echo.delay(1, "two", b"three", [4.5], k={"n": None}).result(timeout=10)
    assert out == [[1, "two", b"three", [4.5]], {"k": {"n": None}}]


def test_unencodable_arguments_are_refused_at_enqueue(app):
    @app.task
    def f(x):
        return x

    with pytest.raises(CodecError):
        f.delay(object())


def test_a_map_refused_midway_says_which_jobs_went_in(app):
    @app.task
    def f(x):
        return x

    calls = [(i,) for i in range(2500)]
    calls[1500] = (object(),)
    with pytest.raises(CodecError) as refused:
        f.map(calls)
    stream = app.keys("default").stream(0)
    sent = [msgpack.unpackb(fields[b"j"])[0] for _, fields in app.client.xrange(stream)]
    assert len(sent) == 1000 and refused.value.enqueued == sent  # the whole batches before it


def test_waiting_for_an_unknown_or_expired_job_is_refused(app):
    from postroom.tasks import TaskError

    job = app.job("no-such-job")
    with pytest.raises(TaskError, match="unknown, or its record expired"):
        job.result()  # not a wait for ever, and no record created for it
    assert not app.client.exists(app.keys("default").job("no-such-job"))
    with pytest.raises(TaskError, match="unknown"):
        asyncio.run(job.aresult())


def test_status_goes_from_queued_to_finished(app, start_worker):
    @app.task
    def noop():
        return None

    job = noop.delay()
    assert job.status() == "queued"
    start_worker(app)
    job.result(timeout=10)
    assert job.status() == "finished"


def test_map_enqueues_a_batch(app, start_worker):
    @app.task
    def square(x):
        return x * x

    jobs = square.map([(i,) for i in range(1200)])
    assert len({j.id for j in jobs}) == 1200
    start_worker(app, concurrency=8)
    assert [j.result(timeout=20) for j in jobs[:5]] == [0, 1, 4, 9, 16]
    assert jobs[-1].result(timeout=20) == 1199 * 1199


def test_map_survives_a_server_that_lost_its_scripts(app):
    @app.task
    def echo(x):
        return x

    echo.map([(0,)])
    app.client.script_flush()  # as after a restart: every batch of the next map is refused once
    jobs = echo.map([(i,) for i in range(2500)])
    stream = app.keys("default").stream(0)
    sent = [msgpack.unpackb(f[b"j"])[0] for _, f in app.client.xrange(stream)]
    assert sent[1:] == [j.id for j in jobs]  # each job once, in the order of the calls


def test_acknowledged_entries_are_deleted_and_results_expire(make_app, start_worker):
    app = make_app(result_ttl=50)

    @app.task
    def one():
        return 1

    jobs = one.map([() for _ in range(50)])
    start_worker(app)
    for j in jobs:
        j.result(timeout=10)
    k = app.keys("default")
    wait_for(lambda: sum(app.client.xlen(s) for s in k.streams) == 0, what="trimmed streams")
    ttl = app.client.pttl(k.job(jobs[0].id))
    assert 0 < ttl <= 50_000
    assert app.stats() == {"waiting": 0, "held": 0, "scheduled": 0, "dead": 0}


def test_unknown_task_is_buried_not_lost(make_app, start_worker):
    producer = make_app()

    @producer.task(name="only.on.producer")
    def ghost():
        return 1

    job = ghost.delay()
    worker_app = make_app()
    start_worker(worker_app)
    with pytest.raises(JobFailed, match="unknown task"):
        job.result(timeout=10)
    assert [d["task"] for d in worker_app.dead()] == ["only.on.producer"]


@pytest.mark.parametrize("pool", ["threads", "asyncio"])
def test_progress_is_visible_from_outside(app, start_worker, pool):
    @app.task
    def report():  # a plain function: in the asyncio pool it runs in an executor thread
        current_job().progress({"done": 3, "of": 4})
        return "ok"

    start_worker(app, pool=pool)
    job = report.delay()
    assert job.result(timeout=10) == "ok"
    assert job.info()["progress"] == {"done": 3, "of": 4}


def test_many_waiters_all_wake(app, start_worker):
    import threading

    @app.task
    def value():
        return 7

    job = value.delay()
    results = []
    waiters = [threading.Thread(target=lambda: results.append(job.result(timeout=10))) for _ in range(3)]
    for t in waiters:
        t.start()
    start_worker(app)
    for t in waiters:
        t.join(15)
    assert results == [7, 7, 7]


def test_async_producer_api(app, start_worker):
    @app.task
    def mul(a, b):
        return a * b

    start_worker(app)

    async def produce():
        job = await mul.adelay(6, 7)
        later = await mul.asend_in(0.2, 2, 3)
        assert await later.astatus() == "scheduled"
        return await job.aresult(timeout=10), await later.aresult(timeout=10), await job.astatus()

    assert asyncio.run(produce()) == (42, 6, "finished")
