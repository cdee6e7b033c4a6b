"""Leases, reclaim, graceful shutdown, registry and the execution pools."""

from __future__ import annotations

import asyncio
import threading
import time

from tasks_helpers import wait_for

from postroom.tasks import Worker
from postroom.tasks.keys import GROUP


def test_long_job_is_not_redelivered_while_its_worker_lives(make_app, start_worker):
    apps = [make_app(lease=0.4), make_app(lease=0.4)]
    runs = []
    for a in apps:
        @a.task(name="long")
        def long():
            runs.append(threading.get_ident())
            for _ in range(150):  # 1.5 s: more than three leases
                time.sleep(0.01)
            return "done"

    job = apps[0].tasks["long"].delay()
    for a in apps:
        start_worker(a)
    assert job.result(timeout=15) == "done"
    assert len(runs) == 1


def test_job_of_a_dead_worker_is_reclaimed_after_the_lease(make_app, start_worker):
    app = make_app(lease=0.5)

    @app.task
    def work(x):
        return x + 1

    job = work.delay(1)
    k = app.keys("default")
    # A worker that takes the job and dies without a word.
    app.client.xgroup_create(k.stream(), GROUP, id="0", mkstream=True)
    taken = app.client.xreadgroup(GROUP, "dead-worker", {k.stream(): ">"}, count=1)
    assert taken
    started = time.monotonic()
    start_worker(app)
    assert job.result(timeout=10) == 2
    assert time.monotonic() - started >= 0.4


def test_job_that_keeps_killing_workers_is_buried(make_app, start_worker):
    app = make_app(lease=0.3, max_deliveries=2)

    @app.task
    def poison():
        return "never reached"

    job = poison.delay()
    k = app.keys("default")
    app.client.xgroup_create(k.stream(), GROUP, id="0", mkstream=True)
    ((_, [(entry_id, _)]),) = app.client.xreadgroup(GROUP, "dead-1", {k.stream(): ">"}, count=1)
    # A second delivery, started (as a worker records it) and lost with its worker too.
    app.client.xclaim(k.stream(), GROUP, "dead-2", 0, [entry_id])
    app.scripts.started(keys=[k.job(job.id)])
    start_worker(app)
    wait_for(lambda: job.status() == "buried", what="burial")
    (dead,) = app.dead()
    assert "started 2 times by workers that died" in dead["error"]


def test_jobs_a_dead_worker_only_held_are_not_buried_as_poison(make_app, start_worker):
    """Every reclaim counts as a delivery of each job a dead worker had in its
    buffer; only starts count towards burial, so those jobs still run."""
    app = make_app(lease=0.3, max_deliveries=2)

    @app.task
    def innocent(i):
        return i

    jobs = innocent.map([(i,) for i in range(10)])
    k = app.keys("default")
    app.client.xgroup_create(k.stream(), GROUP, id="0", mkstream=True)
    ((_, entries),) = app.client.xreadgroup(GROUP, "dead-1", {k.stream(): ">"}, count=10)
    for dead_worker in ("dead-2", "dead-3", "dead-4"):  # taken over and lost again, never started
        app.client.xclaim(k.stream(), GROUP, dead_worker, 0, [e for e, _ in entries])
    start_worker(app)
    assert [j.result(timeout=10) for j in jobs] == list(range(10))
    assert app.dead() == []


def test_graceful_stop_hands_back_jobs_not_started(make_app, start_worker):
    app = make_app()
    release = threading.Event()
    started = threading.Event()

    @app.task(name="blocker")
    def blocker(i):
        started.set()
        release.wait(10)
        return i

    jobs = blocker.map([(i,) for i in range(5)])
    w = start_worker(app, concurrency=1)
    started.wait(10)
    stopper = threading.Thread(target=w.stop, kwargs={"grace": 10})
    stopper.start()
    wait_for(lambda: app.stats()["waiting"] == 4, what="hand-back of the 4 waiting jobs")
    assert app.stats()["held"] == 1  # the running one, still finishing
    release.set()
    stopper.join(10)
    other = make_app()
    other.task(name="blocker")(lambda i: i)
    start_worker(other)
    assert sorted(j.result(timeout=10) for j in jobs) == [0, 1, 2, 3, 4]


def test_registry_shows_what_each_worker_does(app, start_worker):
    running = threading.Event()
    release = threading.Event()

    @app.task(name="visible")
    def visible():
        running.set()
        release.wait(10)

    w = start_worker(app, name="w-registry")
    job = visible.delay()
    running.wait(10)
    workers = wait_for(lambda: [x for x in app.workers() if x["running"]], what="heartbeat")
    assert workers[0]["id"] == "w-registry"
    assert workers[0]["running"][0]["id"] == job.id
    assert workers[0]["running"][0]["task"] == "visible"
    release.set()
    job.result(timeout=10)
    w.stop()
    assert app.workers() == []


def test_asyncio_pool_runs_coroutines_concurrently(app, start_worker):
    @app.task
    async def nap(i):
        await asyncio.sleep(0.3)
        return i

    @app.task
    def plain(i):
        return -i

    jobs = nap.map([(i,) for i in range(30)])
    started = time.monotonic()
    start_worker(app, pool="asyncio", concurrency=30)
    assert [j.result(timeout=10) for j in jobs] == list(range(30))
    assert time.monotonic() - started < 2.0
    assert plain.delay(3).result(timeout=10) == -3


def test_thread_pool_runs_jobs_concurrently(app, start_worker):
    barrier = threading.Barrier(4, timeout=5)

    @app.task
    def meet():
        barrier.wait()
        return True

    jobs = meet.map([() for _ in range(4)])
    start_worker(app, concurrency=4)
    assert all(j.result(timeout=10) for j in jobs)


def test_a_late_heartbeat_does_not_make_a_worker_run_its_own_job_twice(make_app, start_worker):
    app = make_app(lease=0.3)
    runs = []

    @app.task
    def long(i):
        runs.append(i)
        time.sleep(1.2)  # four leases, with no lease extension (below)

    worker = Worker(app, block=0.5, concurrency=2)
    worker._extend_leases = lambda: None  # as if every heartbeat came late
    worker.start()
    try:
        long.delay(1).result(timeout=10)
    finally:
        worker.stop(grace=5)
    assert runs == [1]


def test_asyncio_pool_hands_back_a_job_waiting_for_a_slot_when_stopping(app, start_worker):
    started = []

    @app.task
    async def nap(i):
        started.append(i)
        await asyncio.sleep(0.6)

    first = nap.delay(1)
    second = nap.delay(2)
    worker = start_worker(app, concurrency=1, pool="asyncio")
    wait_for(lambda: started, what="the first job to start")
    worker.stop(grace=5)  # the second job waits for the only slot: it must not start now
    assert started == [1]
    assert first.status() == "finished" and second.status() == "queued"


def test_reclaim_reaches_a_dead_workers_jobs_behind_many_live_ones(make_app, start_worker):
    app = make_app(lease=0.5)

    @app.task
    def job(i):
        return i

    k = app.keys("default")
    app.client.xgroup_create(k.stream(), GROUP, id="0", mkstream=True)
    job.map([(i,) for i in range(30)])  # older: held by a live consumer that keeps its leases fresh
    dead = job.map([(i,) for i in range(100, 105)])  # newer: held by a worker that died
    app.client.xreadgroup(GROUP, "alive", {k.stream(): ">"}, count=30)
    app.client.xreadgroup(GROUP, "dead", {k.stream(): ">"}, count=5)
    live_ids = [p["message_id"] for p in app.client.xpending_range(k.stream(), GROUP, "-", "+", 30, "alive")]

    stop = threading.Event()

    def keep_alive():
        while not stop.wait(0.1):
            app.client.xclaim(k.stream(), GROUP, "alive", 0, live_ids, justid=True)

    heartbeat = threading.Thread(target=keep_alive, daemon=True)
    heartbeat.start()
    try:
        start_worker(app, concurrency=1, prefetch=1)  # room for one job at a time
        assert [j.result(timeout=15) for j in dead] == list(range(100, 105))
    finally:
        stop.set()
        heartbeat.join()


def test_a_stopped_worker_leaves_the_consumer_groups(app, start_worker):
    @app.task
    def job():
        return 1

    k = app.keys("default")
    for _ in range(3):  # workers come and go (deploys, pool restarts): the group does not keep them
        worker = start_worker(app)
        assert job.delay().result(timeout=10) == 1
        worker.stop(grace=5)
    assert all(app.client.xinfo_consumers(stream, GROUP) == [] for stream in k.streams)


def test_prefetch_bounds_what_a_worker_holds_across_priorities(app, start_worker):
    release = threading.Event()

    @app.task(priority=2)
    def hog():
        release.wait(10)

    @app.task(priority=1)
    def mid():
        return "mid"

    @app.task
    def low():
        return "low"

    hog.delay()
    jobs = [mid.delay(), low.delay()]
    busy = start_worker(app, concurrency=1, prefetch=1)
    try:
        wait_for(lambda: busy.describe()["running"], what="the hog to run")
        assert busy.describe()["held"] == 1
        start_worker(app, concurrency=1)  # the other jobs are free for another worker at once
        assert [j.result(timeout=5) for j in jobs] == ["mid", "low"]
    finally:
        release.set()
