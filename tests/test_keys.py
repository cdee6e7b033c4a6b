"""Generic key commands against the oracle (RESP2 and RESP3): replies, errors, events, propagation,
and hypothesis-generated sequences of string and key commands."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.recorders import KeyEvents, Propagation


@pytest.fixture
def events(postroom_server, oracle_server, diff):
    with KeyEvents(postroom_server, oracle_server) as recorder:
        yield recorder


@pytest.fixture
def propagated(postroom_server, diff):
    with Propagation(postroom_server) as recorder:
        yield recorder


def check_all_ttl_tolerant(diff, commands) -> None:
    """Like ``diff.check_all``, but TTL replies may differ by one second: each server rounds its own
    remaining milliseconds, and an absolute deadline can sit right on a rounding boundary."""
    for command in commands:
        if command[0] != "TTL" or len(command) != 2:
            diff.check(*command)
            continue
        (our_kind, ours), (their_kind, theirs) = diff.both(*command)
        assert our_kind == their_kind == ":" and abs(int(ours) - int(theirs)) <= 1, (command, ours, theirs)


def populate(diff) -> None:
    diff.check_all([("SET", "s", "v"), ("RPUSH", "l", "a", "b"), ("ZADD", "z", "1", "m"), ("SET", "n", "10")])


def test_del_unlink_exists(diff):
    populate(diff)
    diff.check_all([
        ("EXISTS", "s"), ("EXISTS", "s", "s", "l", "nope"), ("DEL", "s", "s", "nope"), ("EXISTS", "s"),
        ("UNLINK", "l", "z", "l"), ("EXISTS", "l", "z"), ("DEL", "nope"), ("DEL",), ("UNLINK",), ("EXISTS",),
        ("SET", "e", "v", "PX", "1"),
    ])
    time.sleep(0.01)
    diff.check_all([("EXISTS", "e"), ("DEL", "e")])


def test_type_and_touch(diff):
    populate(diff)
    for key in ("s", "l", "z", "n", "missing"):
        diff.check("TYPE", key)
    diff.check_all([("TOUCH", "s", "l", "missing", "s"), ("TOUCH",), ("TYPE",), ("TYPE", "a", "b")])


def test_rename(diff):
    populate(diff)
    diff.check_all([
        ("RENAME", "s", "s2"), ("GET", "s2"), ("EXISTS", "s"), ("RENAME", "missing", "x"), ("RENAME", "s2", "s2"),
        ("RENAME", "missing", "missing"), ("RENAME", "l", "s2"), ("TYPE", "s2"), ("LRANGE", "s2", "0", "-1"),
        ("SET", "t", "v", "EX", "100"), ("RENAME", "t", "t2"), ("TTL", "t2"), ("SET", "t3", "x", "EX", "50"),
        ("RENAME", "n", "t3"), ("TTL", "t3"), ("GET", "t3"),
        ("RENAMENX", "t3", "t2"), ("RENAMENX", "t3", "fresh"), ("RENAMENX", "fresh", "fresh"),
        ("RENAMENX", "missing", "x"), ("RENAMENX", "missing", "missing"), ("RENAME", "a"), ("RENAMENX", "a", "b", "c"),
    ])


def test_copy(diff):
    populate(diff)
    diff.check_all([
        ("COPY", "s", "s2"), ("GET", "s2"), ("COPY", "s", "s2"), ("COPY", "s", "s2", "REPLACE"), ("COPY", "s", "s"),
        ("COPY", "s", "s", "DB", "0"), ("COPY", "s", "s", "DB", "1"), ("COPY", "missing", "x"),
        ("COPY", "l", "l2"), ("RPUSH", "l2", "c"), ("LRANGE", "l", "0", "-1"), ("LRANGE", "l2", "0", "-1"),
        ("COPY", "z", "z2"), ("ZADD", "z2", "2", "n"), ("ZCARD", "z"), ("COPY", "s", "x", "DB", "16"),
        ("COPY", "s", "x", "DB", "-1"), ("COPY", "s", "x", "DB", "abc"), ("COPY", "s", "x", "DB", "99999999999"),
        ("COPY", "s", "x", "DB"), ("COPY", "s", "x", "FOO"), ("COPY", "s", "x", "replace", "db", "2", "REPLACE"),
        ("SET", "t", "v", "EX", "100"), ("COPY", "t", "t2", "DB", "3"), ("SELECT", "3"), ("TTL", "t2"), ("GET", "t2"),
        ("COPY", "t2", "t", "DB", "0"), ("SELECT", "0"), ("GET", "x"), ("COPY", "s"),
    ])


def test_keys_command(diff):
    diff.check("MSET", "hello", "1", "hallo", "2", "hxllo", "3", "hllo", "4", "heeeello", "5", "a*b", "6", "h[e]", "7")
    for pattern in ("*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "a\\*b", "nomatch", "h[e]", "*[",
                    "h\\[e]", ""):
        diff.check("KEYS", pattern, sort=True)
    diff.check("SET", "gone", "v", "PX", "1")
    time.sleep(0.01)
    diff.check("KEYS", "*", sort=True)
    diff.check("KEYS")


def scan_all(raw, *options, start: str = "0") -> set[bytes]:
    """A full SCAN iteration over raw RESP replies: the set of keys returned."""
    cursor = start
    seen: set[bytes] = set()
    while True:
        kind, payload = raw.call("SCAN", cursor, *options)
        assert kind == "*", payload
        cursor = payload[0][1].decode()
        seen.update(item[1] for item in payload[1][1])
        if cursor == "0":
            return seen


@pytest.mark.parametrize("size", [5, 300])
def test_scan_full_iteration_matches_oracle(diff, size):
    keys = [f"key:{i}" for i in range(size)]
    for start in range(0, size, 100):
        chunk = keys[start:start + 100]
        diff.check("MSET", *[part for key in chunk for part in (key, key)])
    diff.check_all([("RPUSH", "key:list", "a"), ("ZADD", "key:zset", "1", "a"), ("SET", "other", "1")])
    for options in [(), ("COUNT", "7"), ("MATCH", "key:1*"), ("MATCH", "key:1*", "COUNT", "1000"), ("TYPE", "list"),
                    ("TYPE", "STRING", "MATCH", "o*"), ("TYPE", "zset"), ("TYPE", "nosuchtype"), ("MATCH", "*")]:
        assert scan_all(diff.ours, *options) == scan_all(diff.theirs, *options)


def test_scan_errors(diff):
    for args in [("x",), (" 1",), ("1 ",), ("-",), ("18446744073709551616",), ("0", "COUNT"), ("0", "COUNT", "0"),
                 ("0", "COUNT", "-1"), ("0", "COUNT", "x"), ("0", "MATCH"), ("0", "TYPE"), ("0", "FOO", "bar"),
                 ("x", "COUNT", "0"), ("0", "count", "1", "match", "a", "type", "string", "extra"), ()]:
        diff.check("SCAN", *args)
    for cursor in ("", "+0", "-0", "18446744073709551615", "-1", "007"):
        ours, theirs = diff.both("SCAN", cursor)
        assert ours[0] == theirs[0] == "*"


def test_scan_small_keyspace_is_one_step(r):
    r.mset({f"k{i}": i for i in range(50)})
    cursor, keys = r.scan(0, count=1)
    assert cursor == 0 and len(keys) == 50


def test_scan_expired_keys_are_skipped(diff):
    diff.check_all([("SET", "a", "1"), ("SET", "b", "2", "PX", "1")])
    time.sleep(0.01)
    assert scan_all(diff.ours) == scan_all(diff.theirs) == {b"a"}


def test_randomkey(diff):
    diff.check("RANDOMKEY")
    diff.check("SET", "only", "1")
    diff.check("RANDOMKEY")
    diff.check("SET", "gone", "1", "PX", "1")
    time.sleep(0.01)
    for _ in range(5):
        diff.check("RANDOMKEY")
    diff.check("RANDOMKEY", "x")


def test_randomkey_covers_all_keys(r):
    r.mset({f"k{i}": i for i in range(5)})
    seen = {r.randomkey() for _ in range(200)}
    assert seen == {f"k{i}".encode() for i in range(5)}


# -- expiry commands ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_errors_and_options(diff, name):
    future = {"EXPIRE": "1000", "PEXPIRE": "1000000", "EXPIREAT": str(int(time.time()) + 1000),
              "PEXPIREAT": str(int(time.time() * 1000) + 1_000_000)}[name]
    later = {"EXPIRE": "2000", "PEXPIRE": "2000000", "EXPIREAT": str(int(time.time()) + 2000),
             "PEXPIREAT": str(int(time.time() * 1000) + 2_000_000)}[name]
    check_all_ttl_tolerant(diff, [
        (name, "missing", future), ("SET", "k", "v"), (name, "k", future, "XX"), (name, "k", future, "GT"),
        (name, "k", future, "LT"), ("TTL", "k"), (name, "k", later, "NX"), (name, "k", later, "xx"), ("TTL", "k"),
        (name, "k", future, "GT"), (name, "k", future, "LT"), ("TTL", "k"), (name, "k", later, "LT"),
        (name, "k", later, "GT"), ("TTL", "k"), (name, "k", future, "NX"), (name, "k", "x"), (name, "k", "1.5"),
        (name, "k", future, "FOO"), (name, "k", future, "NX", "XX"), (name, "k", future, "NX", "GT"),
        (name, "k", future, "GT", "LT"), (name, "k", "x", "NX", "XX"), (name, "k", future, "XX", "GT", "xx"),
        (name, "k", "9223372036854775807"), (name, "k", "-9223372036854775808"), (name, "k", "9223372036854775"),
        (name, "k", "-9223372036854775"), (name, "k"), ("TTL", "k"), ("PERSIST", "k"), (name, "k", future, "LT"),
        ("TTL", "k"), (name, "k", "0"), ("EXISTS", "k"), ("SET", "k", "v"), (name, "k", "-1"), ("EXISTS", "k"),
    ])


def test_ttl_family(diff):
    at = int(time.time()) + 1000
    check_all_ttl_tolerant(diff, [
        ("TTL", "missing"), ("PTTL", "missing"), ("EXPIRETIME", "missing"), ("PEXPIRETIME", "missing"),
        ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("EXPIREAT", "k", at), ("TTL", "k"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "k", at * 1000 + 499), ("EXPIRETIME", "k"), ("PEXPIREAT", "k", at * 1000 + 500),
        ("EXPIRETIME", "k"), ("PERSIST", "k"), ("PERSIST", "k"), ("PERSIST", "missing"), ("TTL", "k"),
        ("TTL",), ("PTTL", "a", "b"), ("PERSIST",),
    ])
    ours, theirs = diff.both("PTTL", "k")
    assert ours == theirs
    diff.check("SET", "p", "v", "PX", "100000")
    ours, theirs = diff.both("PTTL", "p")
    assert abs(int(ours[1]) - int(theirs[1])) < 1000 and 99_000 < int(ours[1]) <= 100_000


# -- OBJECT ------------------------------------------------------------------------------------


def test_object_subcommands(diff):
    populate(diff)
    diff.check_all([
        ("OBJECT", "HELP"), ("OBJECT", "help"), ("OBJECT", "HELP", "x"), ("OBJECT",), ("OBJECT", "FOO"),
        ("OBJECT", "ENCODING"), ("OBJECT", "ENCODING", "s", "x"), ("OBJECT", "ENCODING", "missing"),
        ("OBJECT", "REFCOUNT", "missing"), ("OBJECT", "IDLETIME", "missing"), ("OBJECT", "FREQ", "missing"),
        ("OBJECT", "IDLETIME", "s"), ("OBJECT", "FREQ", "s"), ("OBJECT", "REFCOUNT", "s"), ("OBJECT", "REFCOUNT", "n"),
        ("OBJECT", "ENCODING", "l"), ("OBJECT", "ENCODING", "z"),
    ])


def test_object_policies(diff):
    try:
        diff.check("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        diff.check_all([("SET", "k", "v"), ("OBJECT", "IDLETIME", "k"), ("OBJECT", "FREQ", "k")])
    finally:
        diff.check("CONFIG", "SET", "maxmemory-policy", "noeviction")


def test_object_idletime_counts_from_last_access(postroom_server, r):
    r.set("k", "v")
    db = postroom_server.broker.dbs[0]
    postroom_server.call_in_loop(db.access.__setitem__, b"k", db.access[b"k"] - 5_000)
    assert r.object("idletime", "k") == 5
    r.ttl("k")  # no-touch lookups leave the access time alone
    r.type("k")
    r.exists("k")
    assert r.object("idletime", "k") == 5
    r.get("k")
    assert r.object("idletime", "k") == 0
    postroom_server.call_in_loop(db.access.__setitem__, b"k", db.access[b"k"] - 3_000)
    r.touch("k")
    assert r.object("idletime", "k") == 0


# -- events and propagation --------------------------------------------------------------------


def test_key_events(diff, events):
    events.take()
    at = str(int(time.time()) + 1000)
    for command in [
        ("SET", "a", "1"), ("SET", "b", "2"), ("DEL", "a", "missing"), ("UNLINK", "b"), ("SET", "c", "3"),
        ("RENAME", "c", "d"), ("RENAMENX", "d", "e"), ("COPY", "e", "f"), ("COPY", "e", "f", "DB", "2", "REPLACE"),
        ("EXPIRE", "e", "100"), ("PEXPIRE", "e", "100000"), ("EXPIREAT", "e", at), ("PEXPIREAT", "e", at + "000"),
        ("EXPIRE", "e", "100", "NX"), ("PERSIST", "e"), ("PERSIST", "e"), ("EXPIRE", "e", "-1"), ("EXPIRE", "f", "0"),
        ("SET", "g", "1"), ("MOVE", "g", "4"), ("SET", "x", "1", "PX", "1"),
    ]:
        diff.check(*command)
    time.sleep(0.01)
    diff.check("GET", "x")
    ours, theirs = events.take()
    assert ours == theirs
    assert {event for event, _, _ in ours} == {b"set", b"del", b"rename_from", b"rename_to", b"copy_to", b"expire",
                                              b"persist", b"move_from", b"move_to", b"expired"}


def test_expire_propagation(diff, propagated):
    diff.check("SET", "k", "v")
    propagated.take()
    before = int(time.time() * 1000)
    diff.check("EXPIRE", "k", "100", "GT")
    diff.check("EXPIRE", "k", "100", "NX")
    [(name, key, deadline, option)] = propagated.take()
    assert (name, key, option) == (b"PEXPIREAT", b"k", b"NX")
    assert before + 100_000 <= int(deadline) <= int(time.time() * 1000) + 100_000
    diff.check("PEXPIREAT", "k", "99999999999999")
    assert propagated.take() == [[b"PEXPIREAT", b"k", b"99999999999999"]]
    diff.check("EXPIREAT", "k", "99999999999")
    assert propagated.take() == [[b"PEXPIREAT", b"k", b"99999999999000"]]
    diff.check("PERSIST", "k")
    assert propagated.take() == [[b"PERSIST", b"k"]]
    diff.check("EXPIRE", "k", "-5")
    assert propagated.take() == [[b"DEL", b"k"]]
    diff.check("DEL", "k")
    diff.check("EXPIRE", "k", "5")
    assert propagated.take() == []


# -- property: sequences of string and key commands --------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "{a}x"])
VALUES = st.sampled_from(["", "0", "1", "-7", "12", "abc", "3.5", "9223372036854775807", "xyz" * 20])

COMMANDS = st.one_of(
    st.tuples(st.just("SET"), KEYS, VALUES, st.sampled_from([(), ("NX",), ("XX",), ("GET",), ("KEEPTTL",),
                                                             ("EX", "1000"), ("PX", "2000000", "GET"), ("XX", "GET")]))
    .map(lambda t: (t[0], t[1], t[2], *t[3])),
    st.tuples(st.sampled_from(["GET", "DEL", "EXISTS", "TYPE", "TTL", "PERSIST", "INCR", "DECR", "STRLEN", "GETDEL",
                               "UNLINK", "TOUCH"]), KEYS),
    st.tuples(st.sampled_from(["EXPIRE", "PEXPIRE"]), KEYS, st.sampled_from(["1000", "5000000", "-1", "0"]),
              st.sampled_from(["", "NX", "XX", "GT", "LT"])).map(lambda t: t if t[3] else t[:3]),
    st.tuples(st.sampled_from(["INCRBY", "DECRBY"]), KEYS, st.integers(-100, 100)),
    st.tuples(st.just("INCRBYFLOAT"), KEYS, st.sampled_from(["0.1", "-1.5", "1e3", "3"])),
    st.tuples(st.sampled_from(["APPEND", "GETSET", "SETNX"]), KEYS, VALUES),
    st.tuples(st.sampled_from(["RENAME", "RENAMENX", "COPY"]), KEYS, KEYS),
    st.tuples(st.just("COPY"), KEYS, KEYS, st.just("REPLACE")),
    st.tuples(st.just("MSET"), KEYS, VALUES, KEYS, VALUES),
    st.tuples(st.just("MSETNX"), KEYS, VALUES, KEYS, VALUES),
    st.tuples(st.just("MGET"), KEYS, KEYS, KEYS),
    st.tuples(st.just("SETRANGE"), KEYS, st.integers(0, 8), VALUES),
    st.tuples(st.just("GETRANGE"), KEYS, st.integers(-5, 5), st.integers(-5, 5)),
    st.tuples(st.just("GETEX"), KEYS, st.sampled_from([(), ("PERSIST",), ("EX", "500")])).map(lambda t: (t[0], t[1], *t[2])),
    st.tuples(st.just("RPUSH"), KEYS, VALUES),
    st.tuples(st.just("LCS"), KEYS, KEYS),
    st.tuples(st.just("OBJECT"), st.just("ENCODING"), KEYS),
    st.tuples(st.just("MOVE"), KEYS, st.sampled_from(["0", "1"])),
    st.tuples(st.just("COPY"), KEYS, KEYS, st.just("DB"), st.sampled_from(["0", "1"]), st.just("REPLACE")),
    st.tuples(st.just("SELECT"), st.sampled_from(["0", "1"])),
    st.just(("SWAPDB", "0", "1")),
    st.just(("DBSIZE",)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(COMMANDS, min_size=1, max_size=25))
def test_command_sequences_match_oracle(diff, commands):
    diff.check("FLUSHALL")
    diff.check("SELECT", "0")
    for command in commands:
        if command[:2] == ("OBJECT", "ENCODING") and diff.ours.call("TYPE", command[2]) == ("+", b"string"):
            continue  # strings grown by APPEND/SETRANGE are 'raw' in Redis: a documented difference
        diff.check(*command)
    diff.check("KEYS", "*", sort=True)


# -- command table metadata --------------------------------------------------------------------

OWN_COMMANDS = ("get", "set", "setnx", "setex", "psetex", "getex", "getdel", "getset", "mget", "mset",
    "msetnx", "incr", "decr", "incrby", "decrby", "incrbyfloat", "append", "strlen", "getrange", "substr",
    "setrange", "lcs", "del", "unlink", "exists", "touch", "type", "rename", "renamenx", "copy", "keys",
    "scan", "randomkey", "expire", "pexpire", "expireat", "pexpireat", "ttl", "pttl", "expiretime",
    "pexpiretime", "persist", "object", "flushdb", "flushall", "dbsize", "swapdb", "move")


def _as_map(reply) -> dict:
    items = reply[1]
    return {items[i][1]: items[i + 1] for i in range(0, len(items), 2)}


def test_command_metadata_matches_oracle(diff):
    """Arity, flags, key range and ACL categories (COMMAND INFO) and the docs' summary, since,
    complexity and group (COMMAND DOCS) of every command of this family."""
    for name in OWN_COMMANDS:
        ours, theirs = diff.both("COMMAND", "INFO", name)
        assert ours[1][0][1][:7] == theirs[1][0][1][:7], name
    diff.hello(3)
    ours, theirs = (_as_map(reply) for reply in diff.both("COMMAND", "DOCS", *OWN_COMMANDS))
    fields = (b"summary", b"since", b"group", b"complexity")
    for name, doc in theirs.items():
        expected, actual = _as_map(doc), _as_map(ours[name])
        assert {f: expected.get(f) for f in fields} == {f: actual.get(f) for f in fields}, name
