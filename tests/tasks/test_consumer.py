"""Event consumers: batches, atomic state + ack, recovery, dead letters, replay."""

from __future__ import annotations

import threading

from tasks_helpers import wait_for


def run_consumer(consumer):
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
