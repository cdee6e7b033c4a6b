"""Differential tests of keyspace notifications: the same commands must produce the same events.

For each command sequence, both servers get ``notify-keyspace-events`` set through CONFIG SET, a
subscriber on ``__key*__:*`` and a connection that runs the sequence. The replies must match and
so must the ordered list of ``(channel, message)`` events the subscriber receives, which ends at
a sentinel message published after the sequence (a subscriber receives messages in publishing
order, so every event of the sequence has arrived when the sentinel does).

Other engineers implement the data types in parallel: a sequence using a command postroom does
not have yet is skipped, naming the missing command.
"""

from __future__ import annotations

import time

import pytest

from postroom import notifications
from postroom.broker import Broker
from postroom.commands.registry import COMMANDS
from postroom.config import Config

from .support.resp import RawClient, Reply, unordered

SENTINEL = "keyspace-events-sentinel"
#: Commands whose reply order Redis leaves to its hash tables.
UNORDERED_REPLIES = {"SPOP", "SMEMBERS", "SRANDMEMBER", "SINTER", "SUNION", "SDIFF", "HGETALL", "HKEYS", "HVALS"}
Step = tuple


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request) -> int:
    """Raw connections over TCP in both protocols (the embedded transport has its own suites)."""
    return request.param


class EventRecorder:
    """A command connection and a subscriber connection on one server."""

    def __init__(self, port: int, flags: str, protocol: int) -> None:
        self.commands = RawClient(port)
        self.subscriber = RawClient(port)
        if protocol == 3:
            self.commands.call("HELLO", 3)
            self.subscriber.call("HELLO", 3)
        self.commands.call("FLUSHALL")
        assert self.commands.call("CONFIG", "SET", "notify-keyspace-events", flags) == ("+", b"OK")
        self.subscriber.call("PSUBSCRIBE", "__key*__:*")
        self.subscriber.call("SUBSCRIBE", SENTINEL)

    def run(self, step: Step) -> Reply:
        if step[0] == "SLEEP":
            time.sleep(step[1] / 1000)
            return ("+", b"slept")
        return self.commands.call(*step)

    def events(self, wait_for: int = 0) -> list[tuple[bytes, bytes]]:
        """Events received up to the sentinel; first wait for ``wait_for`` events (active expiry)."""
        events: list[tuple[bytes, bytes]] = []
        while len(events) < wait_for:
            events.append(_event(self.subscriber.read()))
        self.commands.call("PUBLISH", SENTINEL, "end")
        while True:
            message = self.subscriber.read()
            if message[1][0][1] == b"message":
                return events
            events.append(_event(message))

    def close(self) -> None:
        self.commands.call("CONFIG", "SET", "notify-keyspace-events", "")
        self.commands.close()
        self.subscriber.close()


def _event(message: Reply) -> tuple[bytes, bytes]:
    kind, fields = message
    assert kind in "*>" and fields[0][1] == b"pmessage", message
    return fields[2][1], fields[3][1]


def _missing(steps: list[Step]) -> list[str]:
    """Commands of ``steps`` postroom does not implement (container subcommands included)."""
    missing = []
    for step in steps:
        if step[0] == "SLEEP":
            continue
        record = COMMANDS.get(step[0].lower().encode())
        if record is not None and record.subcommands:
            record = record.subcommands.get(str(step[1]).lower().encode())
        name = " ".join(str(part) for part in step[: 2 if step[0].upper() in _CONTAINERS else 1]).upper()
        if record is None and name not in missing:
            missing.append(name)
    return missing


_CONTAINERS = {"XGROUP", "OBJECT", "CONFIG"}


def compare(postroom_server, oracle_server, protocol, steps: list[Step], flags: str = "KEA",
            wait_for: int = 0, any_order: bool = False) -> list[tuple[bytes, bytes]]:
    missing = _missing(steps)
    if missing:
        pytest.skip(f"postroom does not implement {', '.join(missing)} yet")
    ours = EventRecorder(postroom_server.port, flags, protocol)
    theirs = EventRecorder(oracle_server.port, flags, protocol)
    try:
        for step in steps:
            mine, oracle = ours.run(step), theirs.run(step)
            if step[0].upper() in UNORDERED_REPLIES:
                mine, oracle = unordered(mine), unordered(oracle)
            assert mine == oracle, f"{step!r}: postroom {mine!r} != redis {oracle!r}"
        our_events, their_events = ours.events(wait_for), theirs.events(wait_for)
        if any_order or any(step[0] == "SLEEP" for step in steps):
            # Active expiry may take a due key before the command that would have found it expired.
            our_events.sort()
            their_events.sort()
        assert our_events == their_events, (
            f"events differ\n postroom: {our_events!r}\n redis:    {their_events!r}"
        )
        return our_events
    finally:
        ours.close()
        theirs.close()


# -- generic and string commands, expiry -----------------------------------------------------

STRING_SEQUENCES: dict[str, list[Step]] = {
    "set": [("SET", "k", "v"), ("SET", "k", "v2", "EX", 100), ("SET", "k", "v3", "KEEPTTL"), ("SET", "k", "v4", "GET"),
            ("SET", "k", "v", "NX"), ("SET", "k", "v", "XX", "PX", 100000), ("SET", "nx", "v", "XX")],
    "setnx-setex": [("SETNX", "a", "1"), ("SETNX", "a", "2"), ("SETEX", "b", 100, "v"), ("PSETEX", "c", 100000, "v")],
    "mset": [("MSET", "a", "1", "b", "2", "a", "3"), ("MSETNX", "c", "1", "d", "2"), ("MSETNX", "c", "1", "e", "2")],
    "append-setrange": [("APPEND", "a", "x"), ("APPEND", "a", "yz"), ("SETRANGE", "a", 10, "q"), ("SETRANGE", "b", 0, ""),
                        ("SETRANGE", "c", 2, "new")],
    "counters": [("INCR", "n"), ("INCRBY", "n", 5), ("DECR", "n"), ("DECRBY", "n", 2), ("INCRBYFLOAT", "f", "1.5"),
                 ("INCR", "notnum-missing"), ("SET", "s", "abc"), ("INCR", "s")],
    "getset-getdel-getex": [("SET", "a", "1"), ("GETSET", "a", "2"), ("GETSET", "b", "1"), ("GETDEL", "a"), ("GETDEL", "a"),
                            ("GETEX", "b", "EX", 100), ("GETEX", "b", "PERSIST"), ("GETEX", "b"),
                            ("GETEX", "b", "PXAT", 1), ("GETEX", "missing", "EX", 5)],
    "del-unlink": [("MSET", "a", "1", "b", "2", "c", "3"), ("DEL", "a", "b", "missing"), ("UNLINK", "c", "missing")],
    "expire": [("SET", "a", "1"), ("EXPIRE", "a", 100), ("PEXPIRE", "a", 100000), ("EXPIREAT", "a", 4102444800),
               ("PEXPIREAT", "a", 4102444800000), ("PERSIST", "a"), ("PERSIST", "a"), ("EXPIRE", "a", 100, "NX"),
               ("EXPIRE", "a", 100, "NX"), ("EXPIRE", "missing", 10), ("EXPIRE", "a", -1), ("SET", "b", "1"),
               ("PEXPIREAT", "b", 1), ("SET", "c", "1"), ("EXPIREAT", "c", 1)],
    "rename": [("SET", "a", "1"), ("RENAME", "a", "b"), ("SET", "c", "2"), ("RENAMENX", "b", "c"), ("RENAMENX", "b", "d"),
               ("RENAME", "d", "d"), ("SET", "e", "x", "EX", 100), ("RENAME", "e", "f")],
    "copy-move": [("SET", "a", "1"), ("COPY", "a", "b"), ("COPY", "a", "b"), ("COPY", "a", "b", "REPLACE"),
                  ("COPY", "a", "x", "DB", 1), ("MOVE", "a", 2), ("SELECT", 2), ("MOVE", "a", 0), ("SELECT", 0)],
    "lazy-expiry": [("SET", "a", "1", "PX", 1), ("SET", "b", "2", "PX", 1), ("SET", "c", "3", "PX", 100000),
                    ("SLEEP", 20), ("GET", "a"), ("EXISTS", "b"), ("GET", "c"), ("TTL", "b")],
    "expiry-before-write": [("SET", "a", "1", "PX", 1), ("SLEEP", 20), ("SET", "a", "2"), ("RPUSH", "l", "x"),
                            ("PEXPIRE", "l", 1), ("SLEEP", 20), ("LPUSH", "l", "y")],
    "no-change-no-event": [("GET", "missing"), ("EXISTS", "missing"), ("TTL", "missing"), ("DEL", "missing"),
                           ("TOUCH", "missing"), ("SET", "a", "1"), ("GET", "a"), ("TYPE", "a"), ("STRLEN", "a")],
}


@pytest.mark.parametrize("name", list(STRING_SEQUENCES))
def test_generic_and_string_events(postroom_server, oracle_server, protocol, name):
    compare(postroom_server, oracle_server, protocol, STRING_SEQUENCES[name])


@pytest.mark.parametrize("flags", ["K$", "Eg", "Kgx", "E", "A", "KEA", "Kgn", "KEn$", "g$lshzxetd", "KEx"])
def test_event_classes_select_what_is_published(postroom_server, oracle_server, protocol, flags):
    steps = [("SET", "a", "1"), ("SET", "b", "2", "PX", 1), ("EXPIRE", "a", 100), ("DEL", "a"), ("SLEEP", 20),
             ("GET", "b"), ("RPUSH", "l", "x"), ("LPOP", "l")]
    compare(postroom_server, oracle_server, protocol, steps, flags=flags)


NEW_KEY_STEPS: list[Step] = [
    ("SET", "a", "1"), ("SET", "a", "2"), ("INCR", "n"), ("APPEND", "s", "x"), ("SETRANGE", "r", 1, "x"),
    ("MSET", "m1", "1", "m2", "2"), ("RENAME", "a", "b"), ("COPY", "b", "c"), ("MOVE", "c", 1), ("RPUSH", "l", "x"),
    ("LMOVE", "l", "l2", "LEFT", "LEFT"), ("HSET", "h", "f", "v"), ("SADD", "st", "x"), ("SINTERSTORE", "si", "st"),
    ("ZADD", "z", 1, "x"), ("ZUNIONSTORE", "zu", 1, "z"), ("XADD", "x", "1-1", "f", "v"), ("GETSET", "g", "v"),
    ("SET", "e", "1", "PX", 1), ("SLEEP", 20), ("SET", "e", "2"),
]


@pytest.mark.parametrize("flags", ["Kn", "En", "KEAn"])
def test_new_key_events(postroom_server, oracle_server, protocol, flags):
    compare(postroom_server, oracle_server, protocol, NEW_KEY_STEPS, flags=flags)


def test_active_expiry_events(postroom_server, oracle_server, protocol):
    steps = [("SET", "a", "1", "PX", 5), ("SET", "b", "1", "PX", 10)]
    # Redis's active expiry samples keys at random: which of two due keys goes first is unspecified.
    events = compare(postroom_server, oracle_server, protocol, steps, flags="KEx", wait_for=4, any_order=True)
    assert events == [(b"__keyevent@0__:expired", b"a"), (b"__keyevent@0__:expired", b"b"),
                              (b"__keyspace@0__:a", b"expired"), (b"__keyspace@0__:b", b"expired")]


def test_config_get_prints_the_canonical_flags(diff):
    for flags in ("KEA", "Kgn$lshzxetmd", "An", "g$lshzxet", "g$lshzxetd", "tdmn", "EK", "", "Q", "KEz"):
        diff.check("CONFIG", "SET", "notify-keyspace-events", flags)
        diff.check("CONFIG", "GET", "notify-keyspace-events")
    diff.check("CONFIG", "SET", "notify-keyspace-events", "")


KEYMISS_COMMANDS: list[Step] = [
    ("GET", "m"), ("MGET", "m1", "m2"), ("EXISTS", "m", "m2"), ("TYPE", "m"), ("TTL", "m"), ("PTTL", "m"),
    ("STRLEN", "m"), ("GETRANGE", "m", 0, 1), ("SUBSTR", "m", 0, 1), ("LRANGE", "m", 0, 1), ("LLEN", "m"),
    ("LINDEX", "m", 0), ("LPOS", "m", "a"), ("HGET", "m", "f"), ("HGETALL", "m"), ("HMGET", "m", "a"), ("HLEN", "m"),
    ("HEXISTS", "m", "f"), ("HSTRLEN", "m", "f"), ("HKEYS", "m"), ("HVALS", "m"), ("HRANDFIELD", "m"),
    ("SMEMBERS", "m"), ("SISMEMBER", "m", "a"), ("SMISMEMBER", "m", "a"), ("SCARD", "m"), ("SRANDMEMBER", "m"),
    ("SUNION", "m", "m2"), ("SINTER", "m", "m2"), ("SDIFF", "m"), ("SINTERCARD", 1, "m"), ("SSCAN", "m", 0),
    ("ZRANGE", "m", 0, 1), ("ZREVRANGE", "m", 0, 1), ("ZSCORE", "m", "a"), ("ZMSCORE", "m", "a"), ("ZCARD", "m"),
    ("ZRANK", "m", "a"), ("ZCOUNT", "m", 0, 1), ("ZLEXCOUNT", "m", "-", "+"), ("ZUNION", 2, "m", "m2"),
    ("ZINTERCARD", 1, "m"), ("ZRANDMEMBER", "m"), ("XRANGE", "m", "-", "+"), ("XLEN", "m"), ("DUMP", "m"),
    ("TOUCH", "m"), ("EXPIRETIME", "m"), ("OBJECT", "ENCODING", "m"), ("OBJECT", "FREQ", "m"),
    ("MEMORY", "USAGE", "m"), ("GETDEL", "m"), ("GETEX", "m", "PERSIST"), ("GETSET", "m", "v"),
    ("SET", "m2", "v", "GET"), ("SET", "m3", "v"), ("COPY", "m", "d"), ("SUNIONSTORE", "d", "m", "m2"),
    ("SINTERSTORE", "d", "m"), ("SDIFFSTORE", "d", "m", "m2"), ("ZUNIONSTORE", "d", 2, "m", "m2"),
    ("ZINTERSTORE", "d", 1, "m"), ("ZDIFFSTORE", "d", 1, "m"), ("ZRANGESTORE", "d", "m", 0, 1), ("LPOP", "m"),
    ("RENAME", "m", "d"), ("LMOVE", "m", "d", "LEFT", "LEFT"), ("SMOVE", "m", "d", "a"), ("RPOPLPUSH", "m", "d"),
    ("SPOP", "m"), ("ZPOPMIN", "m"), ("HDEL", "m", "f"), ("DEL", "m"), ("EXPIRE", "m", 10), ("INCR", "m4"),
    ("APPEND", "m5", "x"), ("XACK", "m", "g", "1-1"), ("XPENDING", "m", "g"), ("BLPOP", "m", "0.01"),
    ("BITOP", "AND", "d", "m", "m2"), ("PFMERGE", "d", "m"), ("PFCOUNT", "m"), ("GETBIT", "m", 0), ("BITCOUNT", "m"),
    ("BITFIELD", "m", "GET", "u8", 0), ("SORT", "m"), ("GEOPOS", "m", "a"), ("LCS", "m", "m2"),
]


@pytest.mark.parametrize("step", KEYMISS_COMMANDS, ids=lambda step: " ".join(map(str, step[:2])))
def test_keymiss_events(postroom_server, oracle_server, protocol, step):
    compare(postroom_server, oracle_server, protocol, [step], flags="KEm")


def test_keymiss_after_lazy_expiry_and_in_transactions(postroom_server, oracle_server, protocol):
    steps = [("SET", "a", "1", "PX", 1), ("SLEEP", 20), ("GET", "a"), ("MULTI",), ("GET", "b"), ("SET", "b", "1"),
             ("GET", "b"), ("EXEC",), ("EVAL", "return redis.call('GET', KEYS[1])", 1, "c")]
    compare(postroom_server, oracle_server, protocol, steps, flags="KEmgx$")


# -- other data types: whatever exists in the tree -------------------------------------------

TYPE_SEQUENCES: dict[str, list[Step]] = {
    "list-push-pop": [("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "l", "d"), ("RPUSHX", "l", "e"),
                      ("LPUSHX", "none", "x"), ("LPOP", "l"), ("RPOP", "l", 2), ("LPOP", "l", 5), ("LPOP", "l")],
    "list-edit": [("RPUSH", "l", "a", "b", "c", "b"), ("LINSERT", "l", "BEFORE", "b", "x"),
                  ("LINSERT", "l", "AFTER", "zz", "y"), ("LSET", "l", 0, "z"), ("LREM", "l", 0, "b"),
                  ("LREM", "l", 0, "nope"), ("LTRIM", "l", 1, -1), ("LTRIM", "l", 5, 10)],
    "list-move": [("RPUSH", "a", "1", "2"), ("RPOPLPUSH", "a", "b"), ("LMOVE", "a", "b", "LEFT", "RIGHT"),
                  ("LMOVE", "b", "b", "LEFT", "LEFT"), ("LMPOP", 2, "x", "b", "LEFT", "COUNT", 5)],
    "list-blocking-served": [("RPUSH", "a", "1", "2", "3"), ("BLPOP", "a", 0), ("BRPOP", "a", 0),
                             ("BLMOVE", "a", "b", "LEFT", "LEFT", 0), ("BLMPOP", 0, 1, "b", "RIGHT")],
    "hash": [("HSET", "h", "a", "1", "b", "2"), ("HSETNX", "h", "a", "3"), ("HSETNX", "h", "c", "3"),
             ("HMSET", "h", "d", "4"), ("HINCRBY", "h", "a", 5), ("HINCRBYFLOAT", "h", "f", "0.5"),
             ("HDEL", "h", "nope"), ("HDEL", "h", "a", "b"), ("HDEL", "h", "c", "d", "f")],
    "set": [("SADD", "s", "a", "b", "c"), ("SADD", "s", "a"), ("SREM", "s", "a", "zz"), ("SMOVE", "s", "t", "b"),
            ("SMOVE", "s", "t", "nope"), ("SPOP", "t"), ("SADD", "u", "x", "y"), ("SPOP", "u", 5), ("SREM", "s", "c")],
    "set-store": [("SADD", "a", "1", "2", "3"), ("SADD", "b", "2", "3", "4"), ("SINTERSTORE", "i", "a", "b"),
                  ("SUNIONSTORE", "u", "a", "b"), ("SDIFFSTORE", "d", "a", "b"), ("SDIFFSTORE", "d", "a", "a"),
                  ("SINTERSTORE", "none", "x", "y")],
    "zset": [("ZADD", "z", 1, "a", 2, "b", 3, "c"), ("ZADD", "z", "NX", 5, "a"), ("ZADD", "z", "INCR", 1, "a"),
             ("ZINCRBY", "z", 2, "b"), ("ZREM", "z", "nope"), ("ZREM", "z", "a"), ("ZPOPMIN", "z"),
             ("ZPOPMAX", "z", 3), ("ZPOPMIN", "z")],
    "zset-remrange": [("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d", 5, "e"), ("ZREMRANGEBYSCORE", "z", 1, 1),
                      ("ZREMRANGEBYRANK", "z", 0, 0), ("ZADD", "l", 0, "a", 0, "b"), ("ZREMRANGEBYLEX", "l", "[a", "[a"),
                      ("ZREMRANGEBYSCORE", "z", "-inf", "+inf"), ("ZREMRANGEBYLEX", "l", "-", "+")],
    "zset-store": [("ZADD", "a", 1, "x", 2, "y"), ("ZADD", "b", 3, "y", 4, "w"), ("ZUNIONSTORE", "u", 2, "a", "b"),
                   ("ZINTERSTORE", "i", 2, "a", "b"), ("ZDIFFSTORE", "d", 2, "a", "b"),
                   ("ZRANGESTORE", "r", "a", 0, -1), ("ZINTERSTORE", "i", 2, "a", "none"),
                   ("ZRANGESTORE", "r", "a", 5, 6), ("ZMPOP", 1, "a", "MIN", "COUNT", 5), ("BZPOPMIN", "b", 0),
                   ("BZMPOP", 0, 1, "b", "MAX")],
    "stream": [("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "MAXLEN", 1, "2-1", "f", "v"), ("XTRIM", "s", "MAXLEN", 0),
               ("XADD", "s", "3-1", "f", "v"), ("XDEL", "s", "3-1"), ("XDEL", "s", "9-9"), ("XSETID", "s", "5-0"),
               ("XADD", "s", "NOMKSTREAM", "6-1", "f", "v"), ("XADD", "none", "NOMKSTREAM", "*", "f", "v")],
    "stream-groups": [("XADD", "s", "1-1", "f", "v"), ("XGROUP", "CREATE", "s", "g", "0"),
                      ("XGROUP", "CREATE", "t", "g", "$", "MKSTREAM"), ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
                      ("XREADGROUP", "GROUP", "g", "d", "COUNT", 1, "STREAMS", "s", ">"),
                      ("XCLAIM", "s", "g", "c", 0, "1-1"), ("XAUTOCLAIM", "s", "g", "e", 0, "0"),
                      ("XGROUP", "SETID", "s", "g", "0"), ("XGROUP", "DELCONSUMER", "s", "g", "c"),
                      ("XGROUP", "DESTROY", "s", "g")],
    "bitmap": [("SETBIT", "b", 7, 1), ("SETBIT", "b", 7, 1), ("BITOP", "OR", "d", "b", "b"),
               ("BITOP", "AND", "e", "none"), ("BITFIELD", "f", "SET", "u8", 0, 255), ("BITFIELD", "f", "GET", "u8", 0)],
    "hyperloglog": [("PFADD", "h", "a", "b"), ("PFADD", "h", "a"), ("PFADD", "g"), ("PFMERGE", "m", "h", "g"),
                    ("PFCOUNT", "h")],
    "geo": [("GEOADD", "g", 13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"),
            ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km"),
            ("GEORADIUS", "g", 15, 37, 200, "km", "STORE", "r")],
    "sort-store": [("RPUSH", "l", 3, 1, 2), ("SORT", "l", "STORE", "d"), ("SORT", "none", "STORE", "d")],
}


@pytest.mark.parametrize("name", list(TYPE_SEQUENCES))
def test_data_type_events(postroom_server, oracle_server, protocol, name):
    compare(postroom_server, oracle_server, protocol, TYPE_SEQUENCES[name])


def test_transaction_events_come_in_command_order(postroom_server, oracle_server, protocol):
    steps = [("MULTI",), ("SET", "a", "1"), ("RPUSH", "l", "x"), ("DEL", "a"), ("EXEC",)]
    compare(postroom_server, oracle_server, protocol, steps)


def test_events_in_other_databases(postroom_server, oracle_server, protocol):
    steps = [("SELECT", 3), ("SET", "a", "1"), ("SET", "b", "1", "PX", 1), ("SLEEP", 20), ("GET", "b"), ("DEL", "a"),
             ("SELECT", 0)]
    compare(postroom_server, oracle_server, protocol, steps)


def test_config_file_sets_the_flags(tmp_path):
    path = tmp_path / "postroom.conf"
    path.write_text('notify-keyspace-events "Exg"\nclient-output-buffer-limit pubsub 1mb 512kb 5\n')
    config = Config()
    config.load_file(str(path))
    assert config.get_matching("notify-keyspace-events") == {"notify-keyspace-events": "gxE"}
    assert config["client-output-buffer-limit"]["pubsub"] == (1 << 20, 512 << 10, 5)
    assert config["client-output-buffer-limit"]["normal"] == (0, 0, 0)
    broker = Broker(config)
    assert broker.notify_flags == notifications.KEYEVENT | notifications.EXPIRED | notifications.GENERIC
