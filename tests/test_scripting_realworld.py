"""Real-world Lua: the scripts RQ, Dramatiq's Redis broker and redis-py's Lock run, driven through their
public APIs against postroom and against redis-server, with the same observable results.

Test dependencies: ``rq`` and ``dramatiq`` (``pip install rq dramatiq``); redis-py is already one.
"""

from __future__ import annotations

import datetime as dt

import pytest
import redis

rq = pytest.importorskip("rq", reason="rq is not installed: pip install rq")
dramatiq = pytest.importorskip("dramatiq", reason="dramatiq is not installed: pip install dramatiq")

from dramatiq.brokers.redis import RedisBroker  # noqa: E402
from rq.exceptions import DuplicateJobError  # noqa: E402


def both(request, scenario):
    """Run ``scenario(client)`` on a flushed postroom and a flushed redis-server; return both results."""
    results = []
    for name in ("postroom_server", "oracle_server"):
        client = redis.Redis(port=request.getfixturevalue(name).port)
        client.flushall()
        try:
            results.append(scenario(client))
        finally:
            client.close()
    return results


# -- redis-py Lock ---------------------------------------------------------------------------------


def lock_scenario(client: redis.Redis) -> list:
    lock = client.lock("resource", timeout=10)
    other = client.lock("resource", timeout=10, blocking=False)
    steps = [lock.acquire(blocking=False), other.acquire(), lock.owned(), other.owned(), lock.locked()]
    steps.append(lock.extend(5))
    steps.append(0 < client.pttl("resource") <= 15000)
    steps.append(lock.extend(5, replace_ttl=True))
    steps.append(0 < client.pttl("resource") <= 5000)
    steps.append(lock.reacquire())
    try:
        other.release()
    except redis.exceptions.LockError as exc:
        steps.append(type(exc).__name__)
    try:
        other.extend(1)
    except redis.exceptions.LockError as exc:
        steps.append(type(exc).__name__)
    lock.release()
    steps.append(lock.locked())
    try:
        lock.release()
    except redis.exceptions.LockError as exc:
        steps.append(type(exc).__name__)
    steps.append(other.acquire())
    client.set("resource", "stolen")
    try:
        other.reacquire()
    except redis.exceptions.LockError as exc:
        steps.append(type(exc).__name__)
    with client.lock("ctx", timeout=5) as held:
        steps.append(held.owned())
    steps.append(client.exists("ctx"))
    return steps


def test_redis_py_lock(request):
    ours, theirs = both(request, lock_scenario)
    assert ours == theirs
    assert ours[:5] == [True, False, True, False, True]


# -- RQ --------------------------------------------------------------------------------------------


def rq_scenario(client: redis.Redis) -> dict:
    queue = rq.Queue("default", connection=client)
    first = queue.enqueue("builtins.len", "abc", job_id="unique-1", unique=True)
    duplicate = None
    try:
        queue.enqueue("builtins.len", "abcd", job_id="unique-1", unique=True)
    except DuplicateJobError as exc:
        duplicate = type(exc).__name__
    queue.enqueue("builtins.len", "xy", job_id="plain-1")
    when = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    queue.enqueue_at(when, "builtins.len", "later", job_id="sched-1", unique=True)
    scheduled_duplicate = None
    try:
        queue.enqueue_at(when, "builtins.len", "later", job_id="sched-1", unique=True)
    except DuplicateJobError as exc:
        scheduled_duplicate = type(exc).__name__
    before = sorted(queue.job_ids)
    scheduled = sorted(queue.scheduled_job_registry.get_job_ids())
    worker = rq.SimpleWorker([queue], connection=client)
    worker.work(burst=True)
    results = {job_id: rq.job.Job.fetch(job_id, connection=client).return_value()
               for job_id in ("unique-1", "plain-1")}
    queue.enqueue("builtins.len", "z", job_id="to-empty")
    emptied = queue.empty()
    scheduler = rq.scheduler.RQScheduler([queue], connection=client)
    locks = sorted(scheduler.acquire_locks())
    scheduler.release_locks()
    return {
        "first": first.id, "duplicate": duplicate, "scheduled_duplicate": scheduled_duplicate,
        "before": before, "scheduled": scheduled, "results": results, "emptied": emptied,
        "after_empty": queue.count, "locks": locks,
    }


def test_rq(request):
    ours, theirs = both(request, rq_scenario)
    assert ours == theirs
    assert ours["duplicate"] == "DuplicateJobError"
    assert ours["results"] == {"unique-1": 3, "plain-1": 2}


# -- Dramatiq --------------------------------------------------------------------------------------


def dramatiq_scenario(client: redis.Redis) -> dict:
    broker = RedisBroker(client=client, namespace="dq-test", heartbeat_timeout=60_000)
    seen: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="work", max_retries=0)
    def record(n: int) -> None:
        seen.append(n)

    for n in range(5):
        record.send(n)
    queued = broker.client.llen("dq-test:work")
    consumer = broker.consume("work", prefetch=2, timeout=100)
    fetched = []
    for message in consumer:
        if message is None:
            break
        fetched.append(message.args[0])
        if message.args[0] % 2:
            consumer.nack(message)
        else:
            consumer.ack(message)
    consumer.close()
    dead_letters = broker.client.zcard("dq-test:work.XQ")
    broker.flush("work")
    after_flush = broker.client.llen("dq-test:work")
    broker.close()
    return {"queued": queued, "fetched": sorted(fetched), "dead": dead_letters, "after_flush": after_flush}


def test_dramatiq(request):
    ours, theirs = both(request, dramatiq_scenario)
    assert ours == theirs
    assert ours["fetched"] == [0, 1, 2, 3, 4]
