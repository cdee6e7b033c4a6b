"""Event consumers: batches, atomic state + ack, recovery, dead letters, replay."""

from __future__ import annotations

import threading
import time

import redis
from redis.cluster import RedisCluster
from tasks_helpers import wait_for

from postroom.tasks.consumer import PartialTransactionError


def run_consumer(consumer):
    consumer.ensure_group()  # before the thread does: the tests look at the group at once
    stop = threading.Event()
    thread = consumer.start(stop)
    return stop, thread


def test_atomic_applies_state_and_ack_together(app):
    stream = f"{{{app.prefix}:orders}}:events"
    seen = []

    @app.consumer(stream, group="billing", start="0", block=0.2)
    def bill(event):
        seen.append(event.id)
        with event.atomic() as tx:
            tx.hincrby(event.key("totals"), event.fields["customer"], int(event.fields["amount"]))

    for i in range(10):
        app.client.xadd(stream, {"customer": f"c{i % 2}", "amount": str(i)})
    stop, thread = run_consumer(bill)
    wait_for(lambda: app.client.xpending(stream, "billing")["pending"] == 0 and len(seen) == 10, what="all acked")
    stop.set()
    thread.join(5)
    totals = app.client.hgetall("{" + f"{app.prefix}:orders" + "}:totals")
    assert totals == {b"c0": b"20", b"c1": b"25"}


def test_pending_entries_are_recovered_on_start_and_failures_dead_lettered(app):
    stream = f"{{{app.prefix}:ev}}:log"
    app.client.xgroup_create(stream, "svc", id="0", mkstream=True)
    ids = [app.client.xadd(stream, {"n": str(i)}) for i in range(5)]
    # A previous run of the same consumer read everything and crashed.
    app.client.xreadgroup("svc", "svc-1", {stream: ">"}, count=10)
    handled = []

    @app.consumer(stream, group="svc", consumer="svc-1", max_deliveries=2, retry_delay=0.05, block=0.2)
    def handle(event):
        if event.fields["n"] == b"3":
            raise ValueError("cannot handle 3")
        handled.append(event.fields["n"])

    stop, thread = run_consumer(handle)
    wait_for(lambda: app.client.xlen(f"{stream}:dead") == 1, what="dead letter")
    wait_for(lambda: app.client.xpending(stream, "svc")["pending"] == 0, what="all acked")
    stop.set()
    thread.join(5)
    assert sorted(handled) == [b"0", b"1", b"2", b"4"]
    ((_, dead),) = app.client.xrange(f"{stream}:dead")
    assert dead[b"_id"] == ids[3]
    assert int(dead[b"_deliveries"]) == 3


def test_replay_from_an_id(app):
    stream = f"{{{app.prefix}:ev}}:replay"
    ids = [app.client.xadd(stream, {"n": str(i)}) for i in range(4)]
    got = []

    @app.consumer(stream, group="g", start="0", block=0.2)
    def collect(event):
        got.append(event.id)

    stop, thread = run_consumer(collect)
    wait_for(lambda: len(got) == 4, what="first pass")
    collect.replay(ids[1].decode())
    wait_for(lambda: len(got) == 6, what="replay")
    stop.set()
    thread.join(5)
    assert got[4:] == [ids[2].decode(), ids[3].decode()]


def test_worker_runs_registered_consumers(app, start_worker):
    stream = f"{{{app.prefix}:ev}}:w"
    got = []

    @app.consumer(stream, group="g", start="0", block=0.2)
    async def collect(event):
        got.append(event.fields["v"])

    app.client.xadd(stream, {"v": "x"})
    start_worker(app)
    wait_for(lambda: got == [b"x"], what="consumer in worker")


def kill_connections(control):
    """Close every client connection but *control*'s own (on every node of a
    cluster), as a server restart or a network failure would."""
    options = {"target_nodes": RedisCluster.ALL_NODES} if isinstance(control.client, RedisCluster) else {}
    control.client.client_kill_filter(_type="normal", skipme=True, **options)


def test_consumer_survives_lost_connections(app, make_app):
    stream = f"{{{app.prefix}:ev}}:conn"
    control = make_app()
    seen = set()

    @app.consumer(stream, group="g", start="0", block=0.2)
    def collect(event):
        seen.add(event.fields["n"])

    stop, thread = run_consumer(collect)
    control.client.xadd(stream, {"n": "0"})
    wait_for(lambda: seen == {b"0"}, what="first event")
    for i in range(1, 4):
        kill_connections(control)
        time.sleep(0.3)  # the consumer meets its closed connections (it blocks 0.2 s at a time)
        control.client.xadd(stream, {"n": str(i)})
        wait_for(lambda n=i + 1: len(seen) == n, what=f"event {i} after the connections were killed")
    assert thread.is_alive()
    stop.set()
    thread.join(5)
    assert seen == {b"0", b"1", b"2", b"3"}


def test_consumer_recreates_a_deleted_group_or_stream(app):
    stream = f"{{{app.prefix}:ev}}:gone"
    seen = []

    @app.consumer(stream, group="g", block=0.2)  # start="$": only new events
    def collect(event):
        seen.append(event.fields["n"])

    def group_exists():
        try:
            return any(g["name"] == b"g" for g in app.client.xinfo_groups(stream))
        except redis.ResponseError:  # no such key
            return False

    stop, thread = run_consumer(collect)
    wait_for(group_exists, what="group")
    app.client.xadd(stream, {"n": "0"})
    wait_for(lambda: seen == [b"0"], what="first event")
    # Events added before the consumer notices are read too: the group is
    # created again after the last entry it read, not at "$".
    app.client.xgroup_destroy(stream, "g")
    app.client.xadd(stream, {"n": "1"})
    wait_for(lambda: seen == [b"0", b"1"], what="event after XGROUP DESTROY")
    app.client.delete(stream)
    app.client.xadd(stream, {"n": "2"})
    wait_for(lambda: seen == [b"0", b"1", b"2"], what="event after DEL")
    assert group_exists() and thread.is_alive()
    stop.set()
    thread.join(5)


def test_atomic_runtime_error_dead_letters_the_acknowledged_event(app):
    stream = f"{{{app.prefix}:ev}}:tx"
    tag = "{" + f"{app.prefix}:ev" + "}"
    app.client.set(f"{tag}:bad", "a string")
    calls, errors = [], []

    @app.consumer(stream, group="g", start="0", block=0.2, max_deliveries=2, retry_delay=0.05)
    def apply(event):
        calls.append(event.deliveries)
        try:
            with event.atomic() as tx:
                tx.incr(event.key("ok"))
                tx.hincrby(event.key("bad"), "x", 1)  # WRONGTYPE when EXEC runs it
        except Exception as exc:
            errors.append(exc)
            raise

    entry_id = app.client.xadd(stream, {"n": "1"})
    stop, thread = run_consumer(apply)
    wait_for(lambda: app.client.xlen(f"{stream}:dead") == 1, what="dead letter of the partially applied event")
    time.sleep(0.3)  # time for (wrong) retries
    stop.set()
    thread.join(5)
    assert calls == [1]  # acknowledged by the EXEC: not retried
    assert app.client.xpending(stream, "g")["pending"] == 0
    assert app.client.get(f"{tag}:ok") == b"1"  # no rollback: the other write happened
    ((_, dead),) = app.client.xrange(f"{stream}:dead")
    assert dead[b"_id"] == entry_id
    assert dead[b"n"] == b"1"
    assert dead[b"_stream"] == stream.encode() and dead[b"_group"] == b"g"
    assert int(dead[b"_deliveries"]) == 1
    assert b"HINCRBY" in dead[b"_error"].upper() and b"WRONGTYPE" in dead[b"_error"]
    (error,) = errors
    assert isinstance(error, PartialTransactionError)
    assert "HINCRBY" in str(error).upper() and "partially applied" in str(error)


def test_dead_letter_stream_is_capped(app, make_app):
    assert app.consumer("s", group="g")(lambda e: None).dead_maxlen == app.dead_maxlen
    assert make_app(dead_maxlen=7).consumer("s", group="g")(lambda e: None).dead_maxlen == 7
    stream = f"{{{app.prefix}:ev}}:cap"
    ids = [app.client.xadd(stream, {"n": str(i)}) for i in range(300)]

    @app.consumer(stream, group="g", start="0", block=0.2, max_deliveries=0, dead_maxlen=10)
    def never(event):
        raise AssertionError("max_deliveries=0 dead-letters every event")

    stop, thread = run_consumer(never)
    dead = f"{stream}:dead"
    wait_for(lambda: app.client.xlen(dead) and app.client.xrevrange(dead, count=1)[0][1][b"_id"] == ids[-1],
             what="last dead letter")
    stop.set()
    thread.join(5)
    assert 10 <= app.client.xlen(dead) <= 110  # MAXLEN ~ trims whole stream nodes (100 entries)


def test_delivery_counts_of_own_entries_among_many_pending(app):
    stream = f"{{{app.prefix}:ev}}:many"
    app.client.xgroup_create(stream, "g", id="0", mkstream=True)
    first = app.client.xadd(stream, {"n": "first"})
    app.client.xreadgroup("g", "me", {stream: ">"}, count=1)
    pipe = app.client.pipeline(transaction=False)
    for i in range(1100):
        pipe.xadd(stream, {"n": str(i)})
    pipe.execute()
    app.client.xreadgroup("g", "other", {stream: ">"}, count=1100)  # pending with another consumer
    last = app.client.xadd(stream, {"n": "last"})
    app.client.xreadgroup("g", "me", {stream: ">"}, count=1)
    handled = []

    # Both of "me"'s entries were delivered once; recovering them is the second delivery.
    @app.consumer(stream, group="g", consumer="me", max_deliveries=1, block=0.2)
    def handle(event):
        handled.append(event.fields["n"])

    stop, thread = run_consumer(handle)
    wait_for(lambda: app.client.xlen(f"{stream}:dead") == 2, what="both own entries dead-lettered")
    stop.set()
    thread.join(5)
    assert handled == []
    assert [f[b"_id"] for _, f in app.client.xrange(f"{stream}:dead")] == [first, last]
    assert app.client.xpending_range(stream, "g", min="-", max="+", count=10, consumername="me") == []


def test_entries_of_a_dead_consumer_behind_many_live_ones_are_taken_over(app):
    stream = f"{{{app.prefix}:ev}}:takeover"
    app.client.xgroup_create(stream, "g", id="0", mkstream=True)
    pipe = app.client.pipeline(transaction=False)
    for i in range(300):
        pipe.xadd(stream, {"n": f"live{i}"})
    pipe.execute()
    app.client.xreadgroup("g", "alive", {stream: ">"}, count=300)
    live = [p["message_id"] for p in app.client.xpending_range(stream, "g", "-", "+", 300, consumername="alive")]
    for i in range(3):
        app.client.xadd(stream, {"n": f"dead{i}"})
    app.client.xreadgroup("g", "dead", {stream: ">"}, count=3)
    keep_fresh = threading.Event()

    def alive():  # the live consumer keeps extending its 300 entries
        while not keep_fresh.wait(0.05):
            app.client.xclaim(stream, "g", "alive", 0, live, justid=True)

    fresh = threading.Thread(target=alive, daemon=True)
    fresh.start()
    handled = []

    @app.consumer(stream, group="g", consumer="taker", batch=10, lease=0.3, block=0.1)
    def take(event):  # a batch of 10: XAUTOCLAIM would look at only 100 pending entries per call
        handled.append(event.fields["n"].decode())

    stop, thread = run_consumer(take)
    try:
        wait_for(lambda: sorted(handled) == ["dead0", "dead1", "dead2"], timeout=10, what="the dead consumer's entries")
    finally:
        stop.set()
        keep_fresh.set()
        thread.join(5)
        fresh.join(5)
