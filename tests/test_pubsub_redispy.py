"""redis-py's Pub/Sub API on postroom, over RESP2 (arrays) and RESP3 (push messages).

Covers ``PubSub.get_message``, handlers, ``listen``, ``run_in_thread``, the asyncio client's
iteration, shard channels, the PUBSUB introspection helpers and keyspace notifications.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading

import pytest
import redis

_namespaces = itertools.count()


@pytest.fixture
def ns() -> str:
    """A channel prefix no other test uses: a closed connection's subscriptions linger briefly."""
    return f"rp{next(_namespaces)}:"


def next_message(pubsub: redis.client.PubSub, timeout: float = 5.0) -> dict | None:
    """The next data or confirmation message (get_message returns None while nothing is readable)."""
    return pubsub.get_message(timeout=timeout)


def test_get_message_channel_and_pattern(r, ns):
    pubsub = r.pubsub()
    pubsub.subscribe(ns + "news")
    assert next_message(pubsub) == {"type": "subscribe", "pattern": None, "channel": (ns + "news").encode(), "data": 1}
    pubsub.psubscribe(ns + "*")
    assert next_message(pubsub) == {"type": "psubscribe", "pattern": None, "channel": (ns + "*").encode(), "data": 2}
    assert r.publish(ns + "news", "hello") == 2
    assert next_message(pubsub) == {"type": "message", "pattern": None, "channel": (ns + "news").encode(), "data": b"hello"}
    assert next_message(pubsub) == {"type": "pmessage", "pattern": (ns + "*").encode(), "channel": (ns + "news").encode(),
                                    "data": b"hello"}
    pubsub.unsubscribe()
    pubsub.punsubscribe()
    assert next_message(pubsub)["type"] == "unsubscribe"
    assert next_message(pubsub) == {"type": "punsubscribe", "pattern": None, "channel": (ns + "*").encode(), "data": 0}
    assert not pubsub.subscribed
    pubsub.close()


def test_handlers_and_ignore_subscribe_messages(r, ns):
    received: list[dict] = []
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{ns + "handled": received.append})
    pubsub.psubscribe(**{ns + "h*": received.append})
    assert next_message(pubsub) is None  # confirmations are consumed silently
    r.publish(ns + "handled", "x")
    while len(received) < 2:
        assert next_message(pubsub) is None  # handled messages are not returned
    assert [m["type"] for m in received] == ["message", "pmessage"]
    pubsub.close()


def test_listen(r, ns):
    pubsub = r.pubsub()
    pubsub.subscribe(ns + "listen")
    for i in range(3):
        r.publish(ns + "listen", f"m{i}")
    data = []
    for message in pubsub.listen():
        if message["type"] == "message":
            data.append(message["data"])
            if len(data) == 3:
                break
    assert data == [b"m0", b"m1", b"m2"]
    pubsub.close()


def test_run_in_thread(r, ns):
    inbox: queue.Queue = queue.Queue()
    pubsub = r.pubsub()
    pubsub.subscribe(**{ns + "thread": inbox.put})
    worker = pubsub.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        while r.pubsub_numsub(ns + "thread")[0][1] == 0:
            threading.Event().wait(0.01)
        for i in range(5):
            r.publish(ns + "thread", i)
        assert [inbox.get(timeout=5)["data"] for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        worker.stop()
        worker.join(5)
        pubsub.close()


def test_shard_channels(r, ns):
    pubsub = r.pubsub()
    pubsub.ssubscribe(ns + "shard")
    assert next_message(pubsub) == {"type": "ssubscribe", "pattern": None, "channel": (ns + "shard").encode(), "data": 1}
    assert r.spublish(ns + "shard", "s") == 1
    assert r.publish(ns + "shard", "not for shard subscribers") == 0
    assert next_message(pubsub) == {"type": "smessage", "pattern": None, "channel": (ns + "shard").encode(), "data": b"s"}
    assert r.pubsub_shardchannels(ns + "*") == [(ns + "shard").encode()]
    assert r.pubsub_shardnumsub(ns + "shard") == [((ns + "shard").encode(), 1)]
    pubsub.sunsubscribe()
    assert next_message(pubsub)["type"] == "sunsubscribe"
    pubsub.close()


def test_introspection_helpers(r, ns):
    pubsub = r.pubsub()
    pubsub.subscribe(ns + "i1", ns + "i2")
    pubsub.psubscribe(ns + "ipat*")
    for _ in range(3):
        next_message(pubsub)
    assert sorted(r.pubsub_channels(ns + "i*")) == [(ns + "i1").encode(), (ns + "i2").encode()]
    assert r.pubsub_numsub(ns + "i1", ns + "none") == [((ns + "i1").encode(), 1), ((ns + "none").encode(), 0)]
    assert r.pubsub_numpat() >= 1
    pubsub.close()


def test_keyspace_notifications(r):
    r.config_set("notify-keyspace-events", "KE$g")
    try:
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "g$KE"}
        pubsub = r.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe("__key*__:rp:key*", "__keyevent@0__:del")
        next_message(pubsub, 0.2)
        r.set("rp:key", "v")
        r.delete("rp:key")
        events = []
        while len(events) < 3:
            message = next_message(pubsub)
            if message is not None:
                events.append((message["channel"], message["data"]))
        assert events == [(b"__keyspace@0__:rp:key", b"set"), (b"__keyspace@0__:rp:key", b"del"),
                          (b"__keyevent@0__:del", b"rp:key")]
        pubsub.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def test_resp3_commands_between_push_messages(postroom_server, ns):
    """On RESP3 one connection takes ordinary replies while push messages arrive in between."""
    client = redis.Redis(port=postroom_server.port, protocol=3)
    pubsub = client.pubsub()
    pubsub.subscribe(ns + "mixed")
    next_message(pubsub)
    client.publish(ns + "mixed", "pushed")
    pubsub.ping()  # a reply on the subscribed connection, after a push it must not swallow
    messages = [next_message(pubsub) for _ in range(2)]
    assert {"type": "message", "pattern": None, "channel": (ns + "mixed").encode(), "data": b"pushed"} in messages
    assert any(m["type"] == "pong" for m in messages)
    pubsub.close()
    client.close()


async def test_asyncio_pubsub_iteration(ar, ns):
    async with ar.pubsub() as pubsub:
        await pubsub.subscribe(ns + "async")
        await pubsub.psubscribe(ns + "asy*")
        publisher = asyncio.create_task(_publish_later(ar, ns + "async", [b"a", b"b"]))
        seen = []
        async for message in pubsub.listen():
            if message["type"] in ("message", "pmessage"):
                seen.append((message["type"], message["data"]))
                if len(seen) == 4:
                    break
        await publisher
        assert seen == [("message", b"a"), ("pmessage", b"a"), ("message", b"b"), ("pmessage", b"b")]


async def _publish_later(client, channel: str, messages: list[bytes]) -> None:
    while (await client.pubsub_numsub(channel))[0][1] == 0:
        await asyncio.sleep(0.01)
    for message in messages:
        await client.publish(channel, message)


async def test_asyncio_get_message(ar, ns):
    pubsub = ar.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(ns + "async-get")
    assert await ar.publish(ns + "async-get", "x") == 1
    message = None
    while message is None:
        message = await pubsub.get_message(timeout=5)
    assert message == {"type": "message", "pattern": None, "channel": (ns + "async-get").encode(), "data": b"x"}
    await pubsub.aclose()


def test_subscribed_resp2_connection_refuses_other_commands(postroom_server, ns):
    client = redis.Redis(port=postroom_server.port, protocol=2)
    pubsub = client.pubsub()
    pubsub.subscribe(ns + "ctx")
    next_message(pubsub)
    pubsub.execute_command("GET", "x")
    with pytest.raises(redis.ResponseError, match="only \\(P\\|S\\)SUBSCRIBE"):
        pubsub.parse_response(timeout=5)
    pubsub.close()
    client.close()
