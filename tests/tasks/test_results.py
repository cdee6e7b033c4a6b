"""Waiting for results leaves nothing behind; the worker registry prunes itself."""

from __future__ import annotations

import asyncio
import threading
import time

from tasks_helpers import wait_for

from postroom.tasks import codec, current_job, registry
from postroom.tasks.job import _slice
from postroom.tasks.keys import registry_key


def awaited_task(app):
    """A task that finishes only once a caller waits on it, so that the caller
    really blocks on the job's wake-up list (instead of finding it finished)."""

    @app.task
    def awaited(x):
        job = current_job()
        wait_for(lambda: app.client.hexists(app.keys(job.queue).job(job.id), "w"), what="a waiter")
        return x

    return awaited


def assert_expires(app, job, within_ms):
    """The job's wake-up list, if any, expires (with the record) instead of leaking."""
    done = app.keys(job.queue).done(job.id)
    ttl = app.client.pttl(done)
    assert ttl != -1, "the wake-up list lost its expiry"
    assert 0 < ttl <= within_ms


def test_result_leaves_the_wake_up_list_expiring(make_app, start_worker):
    app = make_app(result_ttl=60)
    awaited = awaited_task(app)
    start_worker(app)
    job = awaited.delay(1)
    assert job.result(timeout=10) == 1
    assert_expires(app, job, 60_000)
    assert job.result(timeout=10) == 1  # waiting again still works


def test_aresult_leaves_the_wake_up_list_expiring(make_app, start_worker):
    app = make_app(result_ttl=60)
    awaited = awaited_task(app)
    start_worker(app)

    async def wait():
        job = await awaited.adelay(2)
        return job, await job.aresult(timeout=10)

    job, value = asyncio.run(wait())
    assert value == 2
    assert_expires(app, job, 60_000)


def test_concurrent_waiters_all_wake_and_the_list_still_expires(make_app, start_worker):
    app = make_app(result_ttl=60)
    awaited = awaited_task(app)
    job = awaited.delay(3)
    results = []

    def sync_wait():
        results.append(job.result(timeout=10))

    async def async_wait():
        return await asyncio.gather(*(app.job(job.id).aresult(timeout=10) for _ in range(2)))

    threads = [threading.Thread(target=sync_wait) for _ in range(3)]
    threads.append(threading.Thread(target=lambda: results.extend(asyncio.run(async_wait()))))
    for t in threads:
        t.start()
    wait_for(lambda: app.client.hexists(app.keys("default").job(job.id), "w"), what="a waiter")
    start_worker(app)
    for t in threads:
        t.join(15)
    assert results == [3] * 5
    assert_expires(app, job, 60_000)


def test_wait_slices_never_round_down_to_blocking_for_ever():
    # A timeout under a millisecond is 0 ("forever") on servers that truncate it.
    assert _slice(0.0004) >= 0.001
    assert _slice(None) == _slice(100.0) <= 2.0


def test_heartbeats_drop_workers_not_heard_from_for_a_lease(make_app, start_worker):
    app = make_app(lease=1.0)
    key = registry_key(app.prefix)
    worker = start_worker(app)
    wait_for(lambda: app.client.hexists(key, worker.id), what="the worker's heartbeat")
    entry = codec.loads(app.client.hget(key, worker.id))
    # Workers that were killed: they could not remove themselves.
    app.client.hset(key, "killed-long-ago", codec.dumps({**entry, "seen": time.time() - 3600}))
    app.client.hset(key, "killed-just-now", codec.dumps({**entry, "seen": time.time()}))
    # Nobody calls app.workers(): the live worker's heartbeats prune them.
    wait_for(lambda: not app.client.hexists(key, "killed-long-ago"), what="the old entry pruned")
    wait_for(lambda: not app.client.hexists(key, "killed-just-now"), what="the new entry pruned")
    assert app.client.hkeys(key) == [worker.id.encode()]


def test_publish_prunes_at_most_once_per_lease(make_app):
    app = make_app(lease=30.0)
    key = registry_key(app.prefix)
    stale = codec.dumps({"host": "h", "pid": 1, "seen": time.time() - 60})
    app.client.hset(key, "dead-1", stale)
    registry.publish(app, "w1", {"host": "h", "pid": 2})
    assert app.client.hkeys(key) == [b"w1"]
    app.client.hset(key, "dead-2", stale)
    registry.publish(app, "w1", {"host": "h", "pid": 2})  # within the lease: no second scan
    assert sorted(app.client.hkeys(key)) == [b"dead-2", b"w1"]
    assert [w["id"] for w in app.workers()] == ["w1"]  # an explicit look always prunes
    assert app.client.hkeys(key) == [b"w1"]


def test_unreadable_registry_entries_are_dropped_not_fatal(make_app):
    app = make_app()
    key = registry_key(app.prefix)
    app.client.hset(key, "junk", b"\xc1")  # not msgpack
    app.client.hset(key, "no-seen", codec.dumps({"host": "h"}))
    registry.publish(app, "w1", {"host": "h", "pid": 2})
    assert [w["id"] for w in app.workers()] == ["w1"]
    assert app.client.hkeys(key) == [b"w1"]
