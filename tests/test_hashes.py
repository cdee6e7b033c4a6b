"""Hash commands: Redis 7.0 commands against the oracle in RESP2 and RESP3; field expiry (7.4) and
HGETDEL/HGETEX/HSETEX (8.0), which the oracle lacks, against their documented semantics."""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.events import keyspace_events, propagated
from .support.recorders import Propagation
from .support.requires import require
from .support.resp import RawClient
from .support.waiting import wait_until


def test_set_get_delete(diff):
    diff.check_all([
        ("HSET", "h", "a", "1", "b", "2"),
        ("HSET", "h", "a", "10", "c", "3"),
        ("HSET", "h", "a"),
        ("HMSET", "h", "d", "4"),
        ("HMSET", "h", "d"),
        ("HSETNX", "h", "a", "x"),
        ("HSETNX", "h", "e", "5"),
        ("HSETNX", "new", "f", "v"),
        ("HGET", "h", "a"),
        ("HGET", "h", "zz"),
        ("HGET", "missing", "a"),
        ("HMGET", "h", "a", "zz", "b"),
        ("HMGET", "missing", "a", "b"),
        ("HGETALL", "h"),
        ("HGETALL", "missing"),
        ("HKEYS", "h"),
        ("HVALS", "h"),
        ("HKEYS", "missing"),
        ("HVALS", "missing"),
        ("HLEN", "h"),
        ("HLEN", "missing"),
        ("HEXISTS", "h", "a"),
        ("HEXISTS", "h", "zz"),
        ("HEXISTS", "missing", "a"),
        ("HSTRLEN", "h", "a"),
        ("HSTRLEN", "h", "zz"),
        ("HSTRLEN", "missing", "a"),
        ("HDEL", "h", "a", "zz", "a"),
        ("HDEL", "h", "zz"),
        ("HDEL", "missing", "a"),
        ("HDEL", "h", "b", "c", "d", "e"),
        ("HLEN", "h"),
        ("HGETALL", "h"),
    ])


def test_wrong_type(diff):
    diff.check("SET", "s", "v")
    for command in [
        ("HSET", "s", "a", "1"), ("HMSET", "s", "a", "1"), ("HSETNX", "s", "a", "1"), ("HGET", "s", "a"),
        ("HMGET", "s", "a"), ("HGETALL", "s"), ("HKEYS", "s"), ("HVALS", "s"), ("HLEN", "s"),
        ("HEXISTS", "s", "a"), ("HSTRLEN", "s", "a"), ("HDEL", "s", "a"), ("HINCRBY", "s", "a", "1"),
        ("HINCRBYFLOAT", "s", "a", "1"), ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "2"), ("HSCAN", "s", "0"),
    ]:
        diff.check(*command)


def test_counters(diff):
    diff.check_all([
        ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-7"), ("HINCRBY", "h", "n", "x"),
        ("HINCRBY", "h", "n", "1.5"), ("HSET", "h", "s", "abc", "big", "9223372036854775807", "sp", " 1"),
        ("HINCRBY", "h", "s", "1"), ("HINCRBY", "h", "big", "1"), ("HINCRBY", "h", "sp", "1"),
        ("HINCRBY", "h", "n", "-9223372036854775808"), ("HINCRBY", "h", "n", "9223372036854775808"),
        ("HINCRBYFLOAT", "h", "f", "0.1"), ("HINCRBYFLOAT", "h", "f", "0.2"), ("HINCRBYFLOAT", "h", "f", "1000.1"),
        ("HINCRBYFLOAT", "h", "f", "1e3"), ("HINCRBYFLOAT", "h", "f", "-1.5e-7"), ("HINCRBYFLOAT", "h", "n", "1"),
        ("HINCRBYFLOAT", "h", "s", "1"), ("HINCRBYFLOAT", "h", "f", "abc"), ("HINCRBYFLOAT", "h", "f", "inf"),
        ("HINCRBYFLOAT", "h", "f", "nan"), ("HSET", "h", "huge", "1e4932"), ("HINCRBYFLOAT", "h", "huge", "1e4932"),
        ("HINCRBYFLOAT", "new", "f", "-0.0"), ("HGETALL", "h"), ("HGETALL", "new"),
    ])


def test_hrandfield(diff):
    diff.check("HSET", "h", *[x for i in range(10) for x in (f"f{i}", f"v{i}")])
    fields = {f"f{i}".encode() for i in range(10)}
    for count in ("1", "5", "10", "20", "-3", "-20"):
        for extra in ((), ("WITHVALUES",)):
            ours, theirs = diff.both("HRANDFIELD", "h", count, *extra)
            assert ours[0] == theirs[0] and len(ours[1]) == len(theirs[1])
            flat = [item for item in ours[1] for item in (item[1] if item[0] == "*" else [item])]
            names = {item[1] for item in flat if item[1].startswith(b"f")}
            assert names <= fields
            if extra:
                assert all(item[0] == theirs[1][0][0] for item in ours[1])
            if not count.startswith("-"):
                assert len(names) == min(int(count), 10)
    ours, theirs = diff.both("HRANDFIELD", "h")
    assert ours[0] == theirs[0] == "$" and ours[1] in fields
    diff.check_all([
        ("HRANDFIELD", "missing"), ("HRANDFIELD", "missing", "3"), ("HRANDFIELD", "missing", "-3", "WITHVALUES"),
        ("HRANDFIELD", "h", "0"), ("HRANDFIELD", "h", "0", "WITHVALUES"), ("HRANDFIELD", "h", "x"),
        ("HRANDFIELD", "h", "-9223372036854775808"), ("HRANDFIELD", "h", "1", "FOO"),
        ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
    ])


def test_hscan(diff):
    diff.check("HSET", "small", "a", "1", "b", "2", "c", "3")
    diff.check("HSCAN", "small", "0")
    diff.check("HSCAN", "small", "0", "MATCH", "[ab]", "COUNT", "1")
    diff.check("HSCAN", "missing", "0")
    diff.check("HSCAN", "small", "abc")
    diff.check("HSCAN", "small", "0", "COUNT", "0")
    diff.check("HSCAN", "small", "0", "NOVALUES")
    expected = {f"f{i}".encode(): f"v{i}".encode() for i in range(500)}
    diff.check("HSET", "big", *[x for pair in expected.items() for x in pair])
    cursor, seen = b"0", {}
    while True:
        _, (cur, items) = diff.ours.call("HSCAN", "big", cursor, "COUNT", "30")
        payload = [item[1] for item in items[1]]
        seen.update(zip(payload[::2], payload[1::2], strict=True))
        cursor = cur[1]
        if cursor == b"0":
            break
    assert seen == expected


def test_object_encoding(diff):
    require(diff, "OBJECT", "HELP")
    diff.check("HSET", "h", "a", "1")
    diff.check("OBJECT", "ENCODING", "h")
    diff.check("HSET", "h", "long", "x" * 65)
    diff.check("OBJECT", "ENCODING", "h")
    diff.check("HDEL", "h", "long")
    diff.check("OBJECT", "ENCODING", "h")
    diff.check("HSET", "many", *[f"f{i}" for i in range(1024)])
    diff.check("OBJECT", "ENCODING", "many")
    diff.check("HSET", "edge", *[f"f{i}" for i in range(1026)])
    diff.check("OBJECT", "ENCODING", "edge")
    diff.check("HINCRBYFLOAT", "f", "x" * 65, "1")
    diff.check("OBJECT", "ENCODING", "f")


def test_arity_errors(diff):
    for command in [("HSET", "h", "a"), ("HGET", "h"), ("HMGET", "h"), ("HINCRBY", "h", "f"), ("HDEL", "h")]:
        diff.check(*command)


OPS = st.sampled_from(["HSET", "HSETNX", "HGET", "HMGET", "HDEL", "HLEN", "HEXISTS", "HSTRLEN", "HINCRBY",
                       "HINCRBYFLOAT", "HKEYS", "HVALS", "HGETALL"])
FIELDS = st.sampled_from(["a", "b", "c", "n"])
VALUES = st.sampled_from(["1", "-5", "x", "2.5", ""])


@st.composite
def hash_command(draw) -> tuple[str, ...]:
    op = draw(OPS)
    key = draw(st.sampled_from(["h", "g"]))
    if op == "HSET":
        return (op, key, *[x for _ in range(draw(st.integers(1, 3))) for x in (draw(FIELDS), draw(VALUES))])
    if op == "HSETNX":
        return (op, key, draw(FIELDS), draw(VALUES))
    if op in ("HGET", "HEXISTS", "HSTRLEN"):
        return (op, key, draw(FIELDS))
    if op in ("HMGET", "HDEL"):
        return (op, key, *draw(st.lists(FIELDS, min_size=1, max_size=3)))
    if op == "HINCRBY":
        return (op, key, draw(FIELDS), str(draw(st.integers(-5, 5))))
    if op == "HINCRBYFLOAT":
        return (op, key, draw(FIELDS), draw(st.sampled_from(["0.1", "-2", "1e2", "3.75"])))
    return (op, key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(hash_command(), min_size=1, max_size=25))
def test_generated_sequences(diff, commands):
    diff.check("FLUSHALL")
    for command in commands:
        diff.check(*command)
    diff.check("HGETALL", "h")
    diff.check("HGETALL", "g")


# -- field expiry: documented semantics (no oracle before Redis 7.4) -------------------------


def test_hexpire_documented_example(r):
    """The examples of the HEXPIRE/HTTL/HPERSIST/HEXPIRETIME pages."""
    assert r.hset("mykey", mapping={"field1": "hello", "field2": "world"}) == 2
    assert r.execute_command("HEXPIRE", "mykey", 300, "FIELDS", 2, "field1", "field2") == [1, 1]
    assert r.execute_command("HTTL", "mykey", "FIELDS", 2, "field1", "field2") == [300, 300]
    pttl = r.execute_command("HPTTL", "mykey", "FIELDS", 1, "field1")[0]
    assert 299_000 < pttl <= 300_000
    now = time.time()
    expiretime = r.execute_command("HEXPIRETIME", "mykey", "FIELDS", 1, "field1")[0]
    assert abs(expiretime - (now + 300)) <= 2
    assert r.execute_command("HPERSIST", "mykey", "FIELDS", 1, "field2") == [1]
    assert r.execute_command("HTTL", "mykey", "FIELDS", 3, "field1", "field2", "nofield") == [300, -1, -2]
    assert r.execute_command("HPERSIST", "mykey", "FIELDS", 2, "field2", "nofield") == [-1, -2]
    assert r.execute_command("HTTL", "nokey", "FIELDS", 2, "a", "b") == [-2, -2]
    assert r.execute_command("HEXPIRE", "nokey", 10, "FIELDS", 1, "a") == [-2]
    assert r.execute_command("HPERSIST", "nokey", "FIELDS", 1, "a") == [-2]


def test_hexpire_conditions(r):
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.execute_command("HEXPIRE", "h", 100, "XX", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 100, "NX", "FIELDS", 2, "a", "zz") == [1, -2]
    assert r.execute_command("HEXPIRE", "h", 200, "NX", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 50, "GT", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 200, "GT", "FIELDS", 1, "a") == [1]
    assert r.execute_command("HEXPIRE", "h", 300, "LT", "FIELDS", 1, "a") == [0]
    assert r.execute_command("HEXPIRE", "h", 100, "lt", "FIELDS", 1, "a") == [1]
    # A field without TTL counts as infinite: GT never applies, LT always does.
    assert r.execute_command("HEXPIRE", "h", 100, "GT", "FIELDS", 1, "b") == [0]
    assert r.execute_command("HEXPIRE", "h", 100, "LT", "FIELDS", 1, "b") == [1]
    at = int(time.time()) + 1000
    assert r.execute_command("HEXPIREAT", "h", at, "FIELDS", 1, "a") == [1]
    assert r.execute_command("HEXPIRETIME", "h", "FIELDS", 1, "a") == [at]
    assert r.execute_command("HPEXPIREAT", "h", at * 1000 + 5, "FIELDS", 1, "a") == [1]
    assert r.execute_command("HPEXPIRETIME", "h", "FIELDS", 1, "a") == [at * 1000 + 5]
    assert r.execute_command("HPEXPIRE", "h", 100_000, "FIELDS", 1, "a") == [1]


def test_hexpire_in_the_past_deletes(r):
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r.execute_command("HEXPIRE", "h", 0, "FIELDS", 1, "a") == [2]
    assert r.execute_command("HPEXPIREAT", "h", 1, "FIELDS", 2, "b", "zz") == [2, -2]
    assert r.hgetall("h") == {b"c": b"3"}
    assert r.execute_command("HEXPIREAT", "h", 1, "FIELDS", 1, "c") == [2]
    assert r.exists("h") == 0


def test_hset_clears_field_ttl_hincrby_keeps_it(r):
    r.hset("h", mapping={"a": "1", "n": "1"})
    r.execute_command("HEXPIRE", "h", 100, "FIELDS", 2, "a", "n")
    r.hset("h", "a", "2")
    r.hincrby("h", "n", 1)
    assert r.execute_command("HTTL", "h", "FIELDS", 2, "a", "n") == [-1, 100]


@pytest.mark.parametrize("command, error", [
    (("HEXPIRE", "h", "x", "FIELDS", "1", "a"), "value is not an integer or out of range"),
    (("HEXPIRE", "h", "-1", "FIELDS", "1", "a"), "invalid expire time, must be >= 0"),
    (("HEXPIRE", "h", "1", "FIELD", "1", "a"), "Mandatory argument FIELDS is missing or not at the right position"),
    (("HEXPIRE", "h", "1", "NX", "XX", "1", "a"), "Mandatory argument FIELDS is missing or not at the right position"),
    (("HEXPIRE", "h", "1", "FIELDS", "0", "a"), "Parameter `numFields` should be greater than 0"),
    (("HEXPIRE", "h", "1", "FIELDS", "x", "a"), "Parameter `numFields` should be greater than 0"),
    (("HEXPIRE", "h", "1", "FIELDS", "2", "a"), "The `numfields` parameter must match the number of arguments"),
    (("HEXPIRE", "h", "9223372036854775807", "FIELDS", "1", "a"), "invalid expire time in 'hexpire' command"),
    (("HTTL", "h", "FIELDS", "2", "a"), "The `numfields` parameter must match the number of arguments"),
    (("HPERSIST", "h", "NOPE", "1", "a"), "Mandatory argument FIELDS is missing or not at the right position"),
    (("HTTL", "s", "FIELDS", "1", "a"), "WRONGTYPE Operation against a key holding the wrong kind of value"),
])
def test_hexpire_errors(r, command, error):
    r.hset("h", "a", "1")
    r.set("s", "v")
    with pytest.raises(redis.ResponseError, match=error.replace("(", r"\(")):
        r.execute_command(*command)


def test_fields_expire_lazily(r):
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.execute_command("HPEXPIRE", "h", 20, "FIELDS", 1, "a") == [1]
    time.sleep(0.03)
    assert r.hget("h", "a") is None
    assert r.hgetall("h") == {b"b": b"2"}
    assert r.hlen("h") == 1
    r.execute_command("HPEXPIRE", "h", 20, "FIELDS", 1, "b")
    time.sleep(0.03)
    assert r.hgetall("h") == {}
    assert r.exists("h") == 0


def test_fields_expire_actively_with_events(postroom_server):
    """Nobody reads the hash: the cron deletes its fields, publishing hexpired then del."""
    client = RawClient(postroom_server.port)
    sub = RawClient(postroom_server.port)
    client.call("FLUSHALL")
    client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
    try:
        sub.call("PSUBSCRIBE", "__keyevent@0__:*")
        client.call("HSET", "h", "a", "1", "b", "2")
        client.call("HPEXPIRE", "h", "30", "FIELDS", "2", "a", "b")
        events = []
        while b"del" not in events:
            message = sub.read()
            events.append(message[1][2][1].split(b":")[-1])
        assert events == [b"hset", b"hexpire", b"hexpired", b"del"]
        data = postroom_server.call_in_loop(lambda: dict(postroom_server.broker.dbs[0].data))
        assert b"h" not in data
    finally:
        client.call("CONFIG", "SET", "notify-keyspace-events", "")
        client.close()
        sub.close()


def test_field_expiry_propagates_absolute(postroom_server):
    """Relative TTLs propagate as HPEXPIREAT, expired fields as HDEL."""
    client = RawClient(postroom_server.port)
    try:
        with Propagation(postroom_server) as recorder:
            client.call("HSET", "ph", "a", "1", "b", "2")
            before = int(time.time() * 1000)
            client.call("HPEXPIRE", "ph", "50", "FIELDS", "1", "a")
            client.call("HSETEX", "ph", "EX", "100", "FIELDS", "1", "c", "3")
            assert recorder.wait_for(lambda argv: argv[0] == b"HDEL")
            seen = recorder.take()
    finally:
        client.close()
    expire = next(c for c in seen if c[0] == b"HPEXPIREAT")
    assert expire[1] == b"ph" and before + 50 <= int(expire[2]) <= before + 1000 and expire[3:] == [b"FIELDS", b"1", b"a"]
    setex = next(c for c in seen if c[0] == b"HSETEX")
    assert setex[2] == b"PXAT" and int(setex[3]) >= before + 100_000
    assert [b"HDEL", b"ph", b"a"] in seen


def test_hgetdel(r):
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r.execute_command("HGETDEL", "h", "FIELDS", 2, "a", "zz") == [b"1", None]
    assert r.hgetall("h") == {b"b": b"2", b"c": b"3"}
    assert r.execute_command("HGETDEL", "h", "FIELDS", 2, "b", "c") == [b"2", b"3"]
    assert r.exists("h") == 0
    assert r.execute_command("HGETDEL", "h", "FIELDS", 1, "a") == [None]
    with pytest.raises(redis.ResponseError, match="numfields"):
        r.execute_command("HGETDEL", "h", "FIELDS", 2, "a")


def test_hgetex(r):
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert r.execute_command("HGETEX", "h", "FIELDS", 2, "a", "zz") == [b"1", None]
    assert r.execute_command("HGETEX", "h", "EX", 100, "FIELDS", 2, "a", "b") == [b"1", b"2"]
    assert r.execute_command("HTTL", "h", "FIELDS", 2, "a", "b") == [100, 100]
    assert r.execute_command("HGETEX", "h", "PERSIST", "FIELDS", 1, "a") == [b"1"]
    assert r.execute_command("HTTL", "h", "FIELDS", 2, "a", "b") == [-1, 100]
    at = int(time.time() * 1000) + 50_000
    r.execute_command("HGETEX", "h", "PXAT", at, "FIELDS", 1, "a")
    assert r.execute_command("HPEXPIRETIME", "h", "FIELDS", 1, "a") == [at]
    assert r.execute_command("HGETEX", "h", "EXAT", 1, "FIELDS", 1, "a") == [b"1"]
    assert r.hgetall("h") == {b"b": b"2"}
    assert r.execute_command("HGETEX", "missing", "EX", 10, "FIELDS", 1, "a") == [None]
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        r.execute_command("HGETEX", "h", "EX", 0, "FIELDS", 1, "b")


def test_hsetex(r):
    at = int(time.time()) + 55_000
    assert r.execute_command("HSETEX", "mykey", "EXAT", at, "FIELDS", 2, "field1", "Hello", "field2", "World") == 1
    assert r.execute_command("HEXPIRETIME", "mykey", "FIELDS", 2, "field1", "field2") == [at, at]
    assert r.execute_command("HSETEX", "mykey", "FNX", "EX", 60, "FIELDS", 2, "field1", "Hello", "field2", "World") == 0
    assert r.execute_command("HSETEX", "mykey", "FXX", "KEEPTTL", "FIELDS", 1, "field1", "Bye") == 1
    assert r.execute_command("HEXPIRETIME", "mykey", "FIELDS", 1, "field1") == [at]
    assert r.execute_command("HSETEX", "mykey", "FXX", "FIELDS", 2, "field1", "x", "nope", "y") == 0
    assert r.execute_command("HSETEX", "mykey", "FIELDS", 1, "field1", "plain") == 1
    assert r.execute_command("HTTL", "mykey", "FIELDS", 2, "field1", "field2") == [-1, r.execute_command(
        "HTTL", "mykey", "FIELDS", 1, "field2")[0]]
    assert r.hget("mykey", "field1") == b"plain"
    assert r.execute_command("HSETEX", "other", "PX", 100_000, "FIELDS", 1, "f", "v") == 1
    assert 99_000 < r.execute_command("HPTTL", "other", "FIELDS", 1, "f")[0] <= 100_000
    with pytest.raises(redis.ResponseError, match="numfields"):
        r.execute_command("HSETEX", "other", "FIELDS", 2, "f", "v")
    with pytest.raises(redis.ResponseError, match="FIELDS"):
        r.execute_command("HSETEX", "other", "EX", 10, "f", "v")


def test_keyspace_events(postroom_server, oracle_server):
    """The same commands publish the same keyspace events, in the same order, as Redis."""
    commands = [
        ("HSET", "h", "a", "1", "b", "2"), ("HSETNX", "h", "a", "x"), ("HSETNX", "h", "c", "3"), ("HMSET", "h", "d", "4"),
        ("HINCRBY", "h", "n", "2"), ("HINCRBYFLOAT", "h", "f", "1.5"), ("HDEL", "h", "zz"), ("HDEL", "h", "a", "b"),
        ("HDEL", "h", "c", "d", "n", "f"),
    ]
    assert keyspace_events(postroom_server.port, commands) == keyspace_events(oracle_server.port, commands)


def test_propagated_forms(postroom_server):
    seen = propagated(postroom_server, [("HSET", "h", "f", "1"), ("HINCRBYFLOAT", "h", "f", "0.5"),
                                        ("HGETDEL", "h", "FIELDS", "2", "f", "zz"), ("HGETDEL", "h", "FIELDS", "1", "f")])
    assert seen == [[b"HSET", b"h", b"f", b"1"], [b"HSET", b"h", b"f", b"1.5"], [b"HDEL", b"h", b"f"]]


def test_replies_inside_multi_are_snapshots(diff):
    diff.check("HSET", "h", "a", "1")
    diff.check_all([("MULTI",), ("HGETALL", "h"), ("HSET", "h", "b", "2"), ("HDEL", "h", "a"), ("HGETALL", "h"),
                    ("EXEC",)])


@pytest.mark.parametrize("move, db, key", [(("RENAME", "h", "moved"), 0, b"moved"), (("SWAPDB", "0", "1"), 1, b"h")],
                         ids=["rename", "swapdb"])
def test_moved_hash_fields_still_expire_actively(postroom_server, move, db, key):
    """RENAME (or SWAPDB) puts a hash with volatile fields elsewhere; the cron follows it there."""
    client = RawClient(postroom_server.port)
    try:
        client.call("FLUSHALL")
        client.call("HSET", "h", "a", "1", "b", "2")
        client.call("HPEXPIRE", "h", "40", "FIELDS", "1", "a")
        assert client.call(*move) == ("+", b"OK")
        broker = postroom_server.broker
        wait_until(lambda: not postroom_server.call_in_loop(lambda: b"a" in broker.dbs[db].data[key]), 5,
                   f"the field never expired after {move[0]}")
        client.call("SELECT", str(db))
        assert client.call("HGETALL", key.decode())[1] == [("$", b"b"), ("$", b"2")]
    finally:
        client.close()
