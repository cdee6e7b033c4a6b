"""redis-py's Pub/Sub API on postroom, over RESP2 (arrays) and RESP3 (push messages).

Covers ``PubSub.get_message``, handlers, ``listen``, ``run_in_thread``, the asyncio client's
iteration, shard channels, the PUBSUB introspection helpers and keyspace notifications.
"""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest
import redis


def next_message(pubsub: redis.client.PubSub, timeout: float = 5.0) -> dict | None:
    """The next data or confirmation message (get_message returns None while nothing is readable)."""
    return pubsub.get_message(timeout=timeout)


def test_get_message_channel_and_pattern(r):
    pubsub = r.pubsub()
    pubsub.subscribe("rp:news")
    assert next_message(pubsub) == {"type": "subscribe", "pattern": None, "channel": b"rp:news", "data": 1}
    pubsub.psubscribe("rp:*")
    assert next_message(pubsub) == {"type": "psubscribe", "pattern": None, "channel": b"rp:*", "data": 2}
    assert r.publish("rp:news", "hello") == 2
    assert next_message(pubsub) == {"type": "message", "pattern": None, "channel": b"rp:news", "data": b"hello"}
    assert next_message(pubsub) == {"type": "pmessage", "pattern": b"rp:*", "channel": b"rp:news",
                                    "data": b"hello"}
    pubsub.unsubscribe()
    pubsub.punsubscribe()
    assert next_message(pubsub)["type"] == "unsubscribe"
    assert next_message(pubsub) == {"type": "punsubscribe", "pattern": None, "channel": b"rp:*", "data": 0}
    assert not pubsub.subscribed
    pubsub.close()


def test_handlers_and_ignore_subscribe_messages(r):
    received: list[dict] = []
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(**{"rp:handled": received.append})
    pubsub.psubscribe(**{"rp:h*": received.append})
    assert next_message(pubsub) is None  # confirmations are consumed silently
    r.publish("rp:handled", "x")
    while len(received) < 2:
        assert next_message(pubsub) is None  # handled messages are not returned
    assert [m["type"] for m in received] == ["message", "pmessage"]
    pubsub.close()


def test_listen(r):
    pubsub = r.pubsub()
    pubsub.subscribe("rp:listen")
    for i in range(3):
        r.publish("rp:listen", f"m{i}")
    data = []
    for message in pubsub.listen():
        if message["type"] == "message":
            data.append(message["data"])
            if len(data) == 3:
                break
    assert data == [b"m0", b"m1", b"m2"]
    pubsub.close()


def test_run_in_thread(r):
    inbox: queue.Queue = queue.Queue()
    pubsub = r.pubsub()
    pubsub.subscribe(**{"rp:thread": inbox.put})
    worker = pubsub.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        while r.pubsub_numsub("rp:thread")[0][1] == 0:
            threading.Event().wait(0.01)
        for i in range(5):
            r.publish("rp:thread", i)
        assert [inbox.get(timeout=5)["data"] for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        worker.stop()
        worker.join(5)
        pubsub.close()


def test_shard_channels(r):
    pubsub = r.pubsub()
    pubsub.ssubscribe("rp:shard")
    assert next_message(pubsub) == {"type": "ssubscribe", "pattern": None, "channel": b"rp:shard", "data": 1}
    assert r.spublish("rp:shard", "s") == 1
    assert r.publish("rp:shard", "not for shard subscribers") == 0
    assert next_message(pubsub) == {"type": "smessage", "pattern": None, "channel": b"rp:shard", "data": b"s"}
    assert r.pubsub_shardchannels("rp:*") == [b"rp:shard"]
    assert r.pubsub_shardnumsub("rp:shard") == [(b"rp:shard", 1)]
    pubsub.sunsubscribe()
    assert next_message(pubsub)["type"] == "sunsubscribe"
    pubsub.close()


def test_introspection_helpers(r):
    pubsub = r.pubsub()
    pubsub.subscribe("rp:i1", "rp:i2")
    pubsub.psubscribe("rp:ipat*")
    for _ in range(3):
        next_message(pubsub)
    assert sorted(r.pubsub_channels("rp:i*")) == [b"rp:i1", b"rp:i2"]
    assert r.pubsub_numsub("rp:i1", "rp:none") == [(b"rp:i1", 1), (b"rp:none", 0)]
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


def test_resp3_commands_between_push_messages(postroom_server):
    """On RESP3 one connection takes ordinary replies while push messages arrive in between."""
    client = redis.Redis(port=postroom_server.port, protocol=3)
    pubsub = client.pubsub()
    pubsub.subscribe("rp:mixed")
    next_message(pubsub)
    client.publish("rp:mixed", "pushed")
    pubsub.ping()  # a reply on the subscribed connection, after a push it must not swallow
    messages = [next_message(pubsub) for _ in range(2)]
    assert {"type": "message", "pattern": None, "channel": b"rp:mixed", "data": b"pushed"} in messages
    assert any(m["type"] == "pong" for m in messages)
    pubsub.close()
    client.close()


async def test_asyncio_pubsub_iteration(ar):
    async with ar.pubsub() as pubsub:
        await pubsub.subscribe("rp:async")
        await pubsub.psubscribe("rp:asy*")
        publisher = asyncio.create_task(_publish_later(ar, "rp:async", [b"a", b"b"]))
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


async def test_asyncio_get_message(ar):
    pubsub = ar.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("rp:async-get")
    assert await ar.publish("rp:async-get", "x") == 1
    message = None
    while message is None:
        message = await pubsub.get_message(timeout=5)
    assert message == {"type": "message", "pattern": None, "channel": b"rp:async-get", "data": b"x"}
    await pubsub.aclose()


def test_subscribed_resp2_connection_refuses_other_commands(postroom_server):
    client = redis.Redis(port=postroom_server.port, protocol=2)
    pubsub = client.pubsub()
    pubsub.subscribe("rp:ctx")
    next_message(pubsub)
    pubsub.execute_command("GET", "x")
    with pytest.raises(redis.ResponseError, match="only \\(P\\|S\\)SUBSCRIBE"):
        pubsub.parse_response(timeout=5)
    pubsub.close()
    client.close()
