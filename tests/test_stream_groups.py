"""Differential tests of consumer groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM,
XINFO GROUPS/CONSUMERS/STREAM FULL) against redis-server, in RESP2 and RESP3.

Idle times and delivery/seen timestamps come from each server's clock, so those fields are
masked before comparing; everything else must be identical.
"""

from __future__ import annotations

import time

import pytest
import redis

from .support.resp import Reply

TIME_FIELDS = {b"idle", b"seen-time", b"inactive", b"active-time"}


def mask(reply: Reply, pending: bool = False) -> Reply:
    """Replace clock-dependent values: timestamps, fields named in TIME_FIELDS, XPENDING idle."""
    kind, payload = reply
    if kind == ":" and int(payload) > 10**12:
        return ":", b"<time>"
    if kind not in "*%~" or payload is None:
        return reply
    items = [mask(item, pending) for item in payload]
    for i in range(len(items) - 1):
        if items[i][0] == "$" and items[i][1] in TIME_FIELDS:
            items[i + 1] = (":", b"<time>")
    if pending and kind == "*" and len(items) == 4 and items[0][0] == "$" and items[2][0] == ":":
        items[2] = (":", b"<idle>")
    return kind, items


def check_masked(diff, *args, pending: bool = False) -> Reply:
    ours, theirs = diff.both(*args)
    assert mask(ours, pending) == mask(theirs, pending), f"{args!r}: postroom {ours!r} != redis {theirs!r}"
    return ours


def fill(diff, key: str = "s", count: int = 5) -> None:
    for i in range(1, count + 1):
        diff.check("XADD", key, f"{i}-1", "f", str(i))


def test_xgroup_create_and_errors(diff):
    diff.check_all([
        ("XGROUP", "CREATE", "s", "g", "$"),
        ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
        ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
        ("TYPE", "s"),
        ("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "5"),
        ("XGROUP", "CREATE", "s", "g3", "0", "ENTRIESREAD", "-2"),
        ("XGROUP", "CREATE", "s", "g3", "0", "ENTRIESREAD", "x"),
        ("XGROUP", "CREATE", "s", "g3", "0", "ENTRIESREAD"),
        ("XGROUP", "CREATE", "s", "g3", "0", "FOO"),
        ("XGROUP", "CREATE", "s", "g3", "-"),
        ("XGROUP", "CREATE", "s", "g3", "bad"),
        ("XGROUP", "CREATE", "s", "g3", "0", "MKSTREAM", "ENTRIESREAD", "1", "X"),
        ("XGROUP", "CREATE", "s", "g4", "7", "MKSTREAM", "ENTRIESREAD", "-1"),
        ("XGROUP", "CREATE", "s"),
        ("XGROUP", "CREATE", "nokey", "g", "$"),
        ("XGROUP", "FOO"),
        ("XGROUP", "HELP"),
        ("XGROUP", "HELP", "x"),
        ("XGROUP", "SETID", "s", "g", "0"),
        ("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "3"),
        ("XGROUP", "SETID", "s", "g", "-"),
        ("XGROUP", "SETID", "s", "g", "+"),
        ("XGROUP", "SETID", "s", "nog", "0"),
        ("XGROUP", "SETID", "s", "g", "0", "FOO"),
        ("XGROUP", "SETID", "s", "g", "0", "MKSTREAM"),
        ("XGROUP", "SETID", "nokey", "g", "0"),
        ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
        ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
        ("XGROUP", "CREATECONSUMER", "s", "nog", "c"),
        ("XGROUP", "DELCONSUMER", "s", "g", "c"),
        ("XGROUP", "DELCONSUMER", "s", "g", "c"),
        ("XGROUP", "DELCONSUMER", "s", "nog", "c"),
        ("XGROUP", "DESTROY", "s", "g2"),
        ("XGROUP", "DESTROY", "s", "g2"),
        ("XGROUP", "DESTROY", "nokey", "g2"),
        ("XINFO", "GROUPS", "s"),
        ("XINFO", "GROUPS", "nokey"),
        ("XINFO", "CONSUMERS", "s", "nog"),
        ("XINFO", "CONSUMERS", "nokey", "g"),
    ])


def test_xreadgroup_delivery_and_history(diff):
    fill(diff)
    diff.check_all([
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", "1-1"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "$"),
        ("XREADGROUP", "GROUP", "nog", "c1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "nokey", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "bad"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"),
        ("XREADGROUP", "COUNT", "1", "STREAMS", "s", ">", "x", "y"),
        ("XREADGROUP", "GROUP", "g", "c1", "NOACK", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "FOO", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "x", "STREAMS", "s", "0"),
        ("XPENDING", "s", "g"),
        ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "2-1"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
        ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "9-1", "f", "9"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c3", "NOACK", "STREAMS", "s", ">"),
        ("XPENDING", "s", "g"),
        ("XINFO", "GROUPS", "s"),
    ])
    check_masked(diff, "XINFO", "STREAM", "s", "FULL")


def test_xreadgroup_several_streams(diff):
    fill(diff, "a", 3)
    fill(diff, "b", 2)
    diff.check_all([
        ("XGROUP", "CREATE", "a", "g", "0"),
        ("XGROUP", "CREATE", "b", "g", "$"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">"),
        ("XADD", "b", "7-7", "x", "y"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "a", "b", "0", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "nokey", ">", ">"),
        ("XPENDING", "a", "g"),
        ("XPENDING", "b", "g"),
    ])


def test_xack(diff):
    fill(diff)
    diff.check_all([
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XACK", "s", "g", "1-1", "1-1", "9-9"),
        ("XACK", "s", "g", "foo"),
        ("XACK", "s", "g", "2-1", "foo"),
        ("XACK", "s", "nog", "1-1"),
        ("XACK", "nokey", "g", "1-1"),
        ("XACK", "s", "g", "2-1", "3"),
        ("XPENDING", "s", "g"),
        ("XACK", "s", "g", "4-1", "5-1"),
        ("XPENDING", "s", "g"),
    ])


def test_xpending(diff):
    fill(diff, count=8)
    diff.check_all([
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XPENDING", "s", "g"),
        ("XPENDING", "s", "g", "-", "+", "10"),
        ("XREADGROUP", "GROUP", "g", "b", "COUNT", "3", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "a", "COUNT", "3", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "b", "STREAMS", "s", "0"),
        ("XPENDING", "s", "g"),
        ("XPENDING", "s", "g", "-", "+", "0"),
        ("XPENDING", "s", "g", "-", "+", "-5"),
        ("XPENDING", "s", "g", "-", "+", "x"),
        ("XPENDING", "s", "g", "-", "+"),
        ("XPENDING", "s", "g", "-"),
        ("XPENDING", "s", "g", "IDLE", "0", "-", "+"),
        ("XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"),
        ("XPENDING", "s", "g", "IDLE", "999999999", "-", "+", "10"),
        ("XPENDING", "s", "g", "x", "+", "10"),
        ("XPENDING", "s", "g", "(18446744073709551615-18446744073709551615", "+", "10"),
        ("XPENDING", "s", "g", "-", "(0-0", "10"),
        ("XPENDING", "s", "g", "-", "+", "10", "nobody"),
        ("XPENDING", "s", "nog"),
        ("XPENDING", "nokey", "g"),
        ("XPENDING", "nokey", "g", "-", "+", "1"),
    ])
    for args in (("-", "+", "10"), ("(1-1", "+", "2"), ("2", "(5", "10"), ("-", "+", "10", "a"),
                 ("IDLE", "0", "-", "+", "10", "b"), ("-", "+", "1", "b"),
                 ("-", "+", "10", "a", "extra")):
        check_masked(diff, "XPENDING", "s", "g", *args, pending=True)


def test_xclaim(diff):
    fill(diff, count=6)
    diff.check_all([
        ("XCLAIM", "s", "g", "c", "0", "1-1"),
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "4", "STREAMS", "s", ">"),
        ("XDEL", "s", "2-1"),
        ("XCLAIM", "s", "g", "c3", "0", "2-1", "1-1", "JUSTID"),
        ("XPENDING", "s", "g"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "3-1", "RETRYCOUNT", "7"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "TIME", "5"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "IDLE", "5"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "FOO"),
        ("XCLAIM", "s", "g", "c3", "x", "1-1"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "IDLE", "x"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "TIME", "x"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "RETRYCOUNT", "x"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "LASTID", "x"),
        ("XCLAIM", "s", "g", "c3", "0", "1-1", "IDLE"),
        ("XCLAIM", "s", "g", "c3", "999999999", "1-1", "3-1"),
        ("XCLAIM", "s", "g", "c3", "-5", "4-1", "JUSTID"),
        ("XCLAIM", "s", "g", "c4", "0", "5-1"),
        ("XCLAIM", "s", "g", "c4", "0", "5-1", "FORCE", "JUSTID"),
        ("XCLAIM", "s", "g", "c4", "0", "6-1", "FORCE"),
        ("XCLAIM", "s", "g", "c4", "0", "9-1", "FORCE"),
        ("XCLAIM", "s", "g", "c4", "0", "6-1", "LASTID", "50-0"),
        ("XCLAIM", "s", "g", "c5", "0", "77-0", "LASTID", "60-0"),
        ("XINFO", "GROUPS", "s"),
        ("XPENDING", "s", "g"),
        ("XCLAIM", "s", "nog", "c4", "0", "1-1"),
        ("XCLAIM", "nokey", "g", "c4", "0", "1-1"),
    ])
    for args in (("-", "+", "10"), ("-", "+", "10", "c4")):
        check_masked(diff, "XPENDING", "s", "g", *args, pending=True)
    check_masked(diff, "XINFO", "STREAM", "s", "FULL")


def test_xautoclaim(diff):
    fill(diff, count=12)
    diff.check_all([
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XDEL", "s", "3-1", "4-1", "9-1"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "0", "COUNT", "1"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "2-1", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "(5-1", "COUNT", "2", "JUSTID"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "999999999", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "x"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "2305843009213693952"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "FOO"),
        ("XAUTOCLAIM", "s", "g", "c3", "x", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "x"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "(18446744073709551615-18446744073709551615"),
        ("XAUTOCLAIM", "s", "nog", "c3", "0", "0"),
        ("XAUTOCLAIM", "nokey", "g", "c3", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "JUSTID", "COUNT", "3"),
        ("XPENDING", "s", "g"),
    ])
    check_masked(diff, "XINFO", "STREAM", "s", "FULL", "COUNT", "2")


def test_lag_and_entries_read(diff):
    diff.check_all([
        ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
        ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "1-1", "f", "v"),
        ("XADD", "s", "2-1", "f", "v"),
        ("XADD", "s", "3-1", "f", "v"),
        ("XGROUP", "CREATE", "s", "g2", "0"),
        ("XGROUP", "CREATE", "s", "g3", "2-1"),
        ("XGROUP", "CREATE", "s", "g4", "1-1", "ENTRIESREAD", "1"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g2", "c", "COUNT", "1", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "2-1"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g2", "c", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g3", "c", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "1-1"),
        ("XTRIM", "s", "MAXLEN", "0"),
        ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "5-1", "f", "v"),
        ("XINFO", "GROUPS", "s"),
        ("XSETID", "s", "9-9", "ENTRIESADDED", "20", "MAXDELETEDID", "8-0"),
        ("XINFO", "GROUPS", "s"),
        ("XGROUP", "SETID", "s", "g", "9-9"),
        ("XGROUP", "SETID", "s", "g2", "0", "ENTRIESREAD", "0"),
        ("XINFO", "GROUPS", "s"),
    ])
    check_masked(diff, "XINFO", "STREAM", "s", "FULL")


def test_xinfo_consumers_idle_and_inactive(r):
    """XINFO CONSUMERS (Redis 7.2 fields): idle counts from the last attempt, inactive from the last
    successful read or claim, -1 for a consumer that never got anything."""
    r.xgroup_create("s", "g", id="0", mkstream=True)
    r.xgroup_createconsumer("s", "g", "idle-one")
    r.xadd("s", {"f": "v"}, id="1-1")
    r.xreadgroup("g", "reader", {"s": ">"})
    time.sleep(0.02)
    r.xreadgroup("g", "reader", {"s": ">"})  # attempt without entries: refreshes idle, not inactive
    consumers = {c["name"]: c for c in r.xinfo_consumers("s", "g")}
    assert set(consumers) == {b"idle-one", b"reader"} or set(consumers) == {"idle-one", "reader"}
    reader = consumers.get(b"reader") or consumers["reader"]
    idle_one = consumers.get(b"idle-one") or consumers["idle-one"]
    assert reader["pending"] == 1
    assert reader["idle"] < 20 <= reader["inactive"]
    assert idle_one["inactive"] == -1 and idle_one["pending"] == 0


def _entries(reply) -> list[tuple[bytes, dict]]:
    """The entries of a one-stream XREADGROUP reply as redis-py parses it in RESP2 or RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.values())[0][0]
    return reply[0][1]


def _process(client, entries, consumer: str) -> None:
    """Apply each entry exactly once: MULTI, INCRBY the total and a per-entry counter, XACK, EXEC."""
    for entry_id, fields in entries:
        if not fields:
            continue
        pipe = client.pipeline(transaction=True)
        pipe.incrby("total", int(fields[b"amount"]))
        pipe.incr(b"applied:" + entry_id)
        pipe.sadd(b"by:" + consumer.encode(), entry_id)
        pipe.xack("jobs", "workers", entry_id)
        pipe.execute()


@pytest.fixture(params=["postroom", "redis"])
def seed_client(request, postroom_server, oracle_server, protocol):
    server = postroom_server if request.param == "postroom" else oracle_server
    client = redis.Redis(port=server.port, protocol=protocol)
    client.flushall()
    yield client
    client.close()


def test_seed_consumer_group_pattern(seed_client):
    """Crash recovery with ID 0 then ``>``, MULTI + XACK processing, and a killed consumer's entries
    claimed with XAUTOCLAIM: every entry is applied exactly once, on postroom as on Redis."""
    r = seed_client
    r.xgroup_create("jobs", "workers", id="0", mkstream=True)
    amounts = [(i * 37) % 101 + 1 for i in range(60)]
    for amount in amounts:
        r.xadd("jobs", {"amount": amount})

    # Worker A takes a batch and crashes after processing part of it.
    batch = _entries(r.xreadgroup("workers", "A", {"jobs": ">"}, count=10))
    assert len(batch) == 10
    _process(r, batch[:4], "A")

    # Worker C takes a batch and is killed before acknowledging anything.
    lost = _entries(r.xreadgroup("workers", "C", {"jobs": ">"}, count=7))
    assert len(lost) == 7

    # A restarts: first its own pending entries (ID 0), then new ones.
    pending = _entries(r.xreadgroup("workers", "A", {"jobs": "0"}))
    assert [entry_id for entry_id, _ in pending] == [entry_id for entry_id, _ in batch[4:]]
    _process(r, pending, "A")
    assert _entries(r.xreadgroup("workers", "A", {"jobs": "0"})) == []

    # B recovers what C held, then everyone drains the stream.
    cursor = "0-0"
    claimed_total = 0
    while True:
        cursor, claimed, *_deleted = r.xautoclaim("jobs", "workers", "B", min_idle_time=0, start_id=cursor, count=3)
        claimed_total += len(claimed)
        _process(r, claimed, "B")
        if cursor in (b"0-0", "0-0"):
            break
    assert claimed_total == 7
    while True:
        batch = _entries(r.xreadgroup("workers", "B", {"jobs": ">"}, count=8))
        if not batch:
            break
        _process(r, batch, "B")

    assert int(r.get("total")) == sum(amounts)
    assert r.xpending("jobs", "workers")["pending"] == 0
    counters = r.mget([b"applied:" + entry_id for entry_id, _ in r.xrange("jobs")])
    assert counters == [b"1"] * len(amounts)
    assert r.scard("by:A") == 10 and r.scard("by:B") == 50 and not r.exists("by:C")
