"""Embedded mode: the broker in-process, its redis-py transports, threads, asyncio and shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
import redis.asyncio

from postroom.embedded import Embedded

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker():
    with Embedded() as embedded:
        yield embedded


def test_sync_client_is_a_real_redis_client(broker):
    r = broker.client()
    assert isinstance(r, redis.Redis)
    assert r.ping() is True
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.execute_command("DPING")
    assert r.get("k") == b"v"  # the connection survives an error reply


@pytest.mark.parametrize("protocol", [2, 3])
def test_both_protocols(broker, protocol):
    r = broker.client(protocol=protocol)
    r.rpush("l", "a", "b")
    assert r.lrange("l", 0, -1) == [b"a", b"b"]
    assert r.echo("x") == b"x"


def test_pipelines_and_transactions(broker):
    r = broker.client()
    pipe = r.pipeline(transaction=True)
    pipe.incr("n").incr("n").get("n")
    assert pipe.execute() == [1, 2, b"2"]
    assert r.pipeline(transaction=False).set("a", 1).get("a").execute() == [True, b"1"]


def test_blpop_in_one_thread_is_woken_by_lpush_in_another_without_polling(broker):
    r = broker.client()
    woke: list[float] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        assert broker.client().blpop("q", timeout=10) == (b"q", b"job")
        woke.append(time.perf_counter())

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    deadline = time.monotonic() + 5
    while broker.client().client_list(_type="normal") and time.monotonic() < deadline:
        if any(c.get("cmd") == "blpop" for c in broker.client().client_list()):
            break
    pushed = time.perf_counter()
    r.lpush("q", "job")
    thread.join(10)
    assert woke, "BLPOP was not woken"
    assert woke[0] - pushed < 0.05  # woken by the push itself, not by a polling interval


def test_blocking_timeout_and_zero_timeout_wake(broker):
    r = broker.client()
    start = time.perf_counter()
    assert r.blpop("nothing", timeout=0.2) is None
    assert 0.15 < time.perf_counter() - start < 2


async def test_xread_block_in_asyncio_task_is_woken_by_xadd(broker):
    ar = broker.async_client()
    other = broker.async_client()
    task = asyncio.create_task(ar.xread({"s": "$"}, block=10_000))
    for _ in range(100):  # wait until the read is parked
        if any(c.get("cmd") == "xread" for c in await other.client_list()):
            break
        await asyncio.sleep(0.01)
    entry_id = await other.xadd("s", {"f": "v"})
    result = await asyncio.wait_for(task, 5)
    assert result in ([[b"s", [(entry_id, {b"f": b"v"})]]], {b"s": [[(entry_id, {b"f": b"v"})]]})
    await ar.aclose()
    await other.aclose()


def test_pubsub_across_threads(broker):
    subscriber = broker.client().pubsub()
    subscriber.subscribe("news")
    assert subscriber.get_message(timeout=1)["type"] == "subscribe"
    received: list[dict] = []

    def listen() -> None:
        message = subscriber.get_message(timeout=5)
        if message is not None:
            received.append(message)

    thread = threading.Thread(target=listen)
    thread.start()
    time.sleep(0.05)
    assert broker.client().publish("news", "hello") == 1
    thread.join(10)
    assert received and received[0]["data"] == b"hello"


def test_many_threads_stay_correct(broker):
    r = broker.client()
    threads = [threading.Thread(target=lambda: [r.incr("counter") for _ in range(300)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert r.get("counter") == b"2400"


async def test_many_tasks_stay_correct(broker):
    ar = broker.async_client()
    for _ in range(10):  # 50 at a time: redis.asyncio's pool caps concurrent connections
        await asyncio.gather(*(ar.incr("c") for _ in range(50)))
    assert await ar.get("c") == b"500"
    await ar.aclose()


def test_listen_exposes_tcp(broker):
    broker.client().set("shared", "yes")
    port = broker.listen(0)
    tcp = redis.Redis(port=port)
    assert tcp.get("shared") == b"yes"
    tcp.set("from-tcp", "1")
    assert broker.client().get("from-tcp") == b"1"
    tcp.close()


def test_tcp_client_is_served_by_an_embedded_push(broker):
    port = broker.listen(0)
    results: list = []
    thread = threading.Thread(target=lambda: results.append(redis.Redis(port=port).blpop("tq", 10)))
    thread.start()
    time.sleep(0.1)
    broker.client().rpush("tq", "x")
    thread.join(10)
    assert results == [(b"tq", b"x")]


def test_close_wakes_blocked_clients_with_a_connection_error():
    embedded = Embedded()
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            embedded.client().blpop("q", timeout=0)
        except redis.ConnectionError as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.1)
    embedded.close()
    thread.join(5)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], redis.ConnectionError)
    with pytest.raises(redis.ConnectionError):
        embedded.client().ping()


def test_no_threads_leak_after_close():
    before = {t.ident for t in threading.enumerate()}
    for _ in range(3):
        with Embedded() as embedded:
            embedded.client().ping()
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("postroom")]
    assert leaked == []


def test_data_directory_is_used(tmp_path):
    with Embedded(dir=tmp_path / "state", appendonly="no") as embedded:
        assert embedded.client().config_get("dir")["dir"] == str(tmp_path / "state")


def test_pytest_fixtures(postroom_client, postroom_broker):
    postroom_client.rpush("l", "a", "b")
    assert postroom_broker.client().lrange("l", 0, -1) == [b"a", b"b"]


async def test_async_fixture(postroom_async_client):
    assert await postroom_async_client.set("a", "1") is True
    assert await postroom_async_client.get("a") == b"1"


@pytest.mark.postroom_shared
def test_shared_broker_is_flushed_per_test(postroom_client):
    assert postroom_client.dbsize() == 0
    postroom_client.set("left-behind", "1")


@pytest.mark.postroom_shared
def test_shared_broker_is_flushed_per_test_again(postroom_client):
    assert postroom_client.dbsize() == 0
    postroom_client.set("left-behind", "1")
