"""List commands against the oracle: replies, errors and edge cases in RESP2 and RESP3, plus
hypothesis-generated command sequences compared step by step."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.events import keyspace_events, propagated
from .support.requires import require


def test_push_pop_basics(diff):
    diff.check_all([
        ("LPUSH", "l", "a", "b", "c"),
        ("RPUSH", "l", "d", "e"),
        ("LRANGE", "l", "0", "-1"),
        ("LLEN", "l"),
        ("LLEN", "missing"),
        ("LPUSHX", "missing", "a"),
        ("RPUSHX", "missing", "a"),
        ("LPUSHX", "l", "x", "y"),
        ("RPUSHX", "l", "z"),
        ("LPOP", "l"),
        ("RPOP", "l"),
        ("LPOP", "l", "2"),
        ("RPOP", "l", "2"),
        ("LPOP", "l", "0"),
        ("LPOP", "l", "100"),
        ("LLEN", "l"),
        ("LPOP", "l"),
        ("RPOP", "l"),
        ("LPOP", "l", "2"),
        ("RPOP", "l", "0"),
        ("LPOP", "l", "-1"),
        ("LPOP", "l", "abc"),
        ("LPOP", "l", "1", "2"),
        ("RPUSH", "one", "x"),
        ("RPOP", "one", "5"),
        ("LLEN", "one"),
        ("LPUSH", "l"),
    ])


def test_wrong_type(diff):
    diff.check("SET", "s", "v")
    for command in [
        ("LPUSH", "s", "a"), ("RPUSH", "s", "a"), ("LPUSHX", "s", "a"), ("RPUSHX", "s", "a"),
        ("LPOP", "s"), ("RPOP", "s", "2"), ("LLEN", "s"), ("LRANGE", "s", "0", "-1"),
        ("LINDEX", "s", "0"), ("LSET", "s", "0", "x"), ("LINSERT", "s", "BEFORE", "a", "b"),
        ("LREM", "s", "0", "a"), ("LTRIM", "s", "0", "1"), ("LPOS", "s", "a"),
        ("LMOVE", "s", "d", "LEFT", "LEFT"), ("RPOPLPUSH", "s", "d"), ("LMPOP", "1", "s", "LEFT"),
        ("BLPOP", "s", "0"), ("BRPOP", "s", "0"), ("BLMOVE", "s", "d", "LEFT", "LEFT", "0"),
        ("BRPOPLPUSH", "s", "d", "0"), ("BLMPOP", "0", "1", "s", "LEFT"),
    ]:
        diff.check(*command)
    diff.check("RPUSH", "src", "a")
    diff.check("LMOVE", "src", "s", "LEFT", "LEFT")
    diff.check("RPOPLPUSH", "src", "s")
    diff.check("LRANGE", "src", "0", "-1")
    diff.check("BLPOP", "missing", "s", "0.01")


def test_lrange_and_lindex(diff):
    diff.check("RPUSH", "l", *"abcdefghij")
    for start in ("0", "1", "-1", "-3", "5", "9", "10", "-100", "100"):
        for stop in ("0", "-1", "2", "-2", "8", "9", "50", "-50"):
            diff.check("LRANGE", "l", start, stop)
    for index in ("0", "9", "10", "-1", "-10", "-11", "4", "x", "1.5"):
        diff.check("LINDEX", "l", index)
    diff.check_all([
        ("LRANGE", "l", "a", "1"), ("LRANGE", "l", "0", "b"), ("LRANGE", "missing", "0", "-1"),
        ("LRANGE", "missing", "x", "1"), ("LINDEX", "missing", "x"), ("LINDEX", "missing", "0"),
    ])


def test_lset_linsert(diff):
    diff.check_all([
        ("LSET", "missing", "0", "x"),
        ("RPUSH", "l", "a", "b", "c"),
        ("LSET", "l", "0", "A"),
        ("LSET", "l", "-1", "C"),
        ("LSET", "l", "3", "x"),
        ("LSET", "l", "-4", "x"),
        ("LSET", "l", "y", "x"),
        ("LRANGE", "l", "0", "-1"),
        ("LINSERT", "l", "BEFORE", "A", "0"),
        ("LINSERT", "l", "after", "C", "9"),
        ("LINSERT", "l", "AFTER", "b", "b2"),
        ("LINSERT", "l", "BEFORE", "nope", "x"),
        ("LINSERT", "l", "MIDDLE", "b", "x"),
        ("LINSERT", "missing", "BEFORE", "b", "x"),
        ("LINSERT", "missing", "MIDDLE", "b", "x"),
        ("LRANGE", "l", "0", "-1"),
    ])


def test_lrem_ltrim(diff):
    diff.check("RPUSH", "l", *"abacabadabacaba")
    diff.check_all([
        ("LREM", "l", "2", "a"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "-2", "a"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "1", "b"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "-1", "c"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "0", "a"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "1", "zz"), ("LREM", "l", "x", "a"), ("LREM", "missing", "0", "a"),
        ("LREM", "l", "0", "b"), ("LREM", "l", "0", "c"), ("LREM", "l", "0", "d"), ("LLEN", "l"),
    ])
    for i, (start, stop) in enumerate([("1", "-2"), ("0", "100"), ("-3", "-1"), ("5", "2"), ("0", "0"), ("x", "1")]):
        diff.check("RPUSH", f"t{i}", *"0123456789")
        diff.check("LTRIM", f"t{i}", start, stop)
        diff.check("LRANGE", f"t{i}", "0", "-1")
        diff.check("LLEN", f"t{i}")
    diff.check("LLEN", "t5")
    diff.check("LTRIM", "missing", "0", "1")


def test_lpos(diff):
    diff.check("RPUSH", "l", *"abcabcabc")
    for options in [
        (), ("RANK", "2"), ("RANK", "-1"), ("RANK", "-3"), ("RANK", "4"), ("COUNT", "0"), ("COUNT", "2"),
        ("COUNT", "0", "RANK", "-2"), ("MAXLEN", "4", "COUNT", "0"), ("MAXLEN", "3", "RANK", "2"),
        ("RANK", "0"), ("RANK", "-9223372036854775808"), ("RANK", "x"), ("COUNT", "-1"), ("COUNT", "x"),
        ("MAXLEN", "-1"), ("MAXLEN", "x"), ("RANK",), ("FOO", "1"), ("count", "1", "maxlen", "0"),
    ]:
        diff.check("LPOS", "l", "c", *options)
    diff.check("LPOS", "l", "zz")
    diff.check("LPOS", "l", "zz", "COUNT", "0")
    diff.check("LPOS", "missing", "a")
    diff.check("LPOS", "missing", "a", "COUNT", "1")
    diff.check("LPOS", "missing", "a", "RANK", "0")


def test_lmove_rpoplpush(diff):
    diff.check("RPUSH", "src", "1", "2", "3")
    for wherefrom in ("LEFT", "RIGHT"):
        for whereto in ("left", "right"):
            diff.check("LMOVE", "src", "dst", wherefrom, whereto)
            diff.check("LRANGE", "dst", "0", "-1")
    diff.check_all([
        ("RPOPLPUSH", "dst", "src"), ("RPOPLPUSH", "src", "src"), ("LRANGE", "src", "0", "-1"),
        ("LMOVE", "dst", "dst", "LEFT", "RIGHT"), ("LRANGE", "dst", "0", "-1"),
        ("LMOVE", "src", "dst", "UP", "LEFT"), ("LMOVE", "src", "dst", "LEFT", "DOWN"),
        ("LMOVE", "missing", "dst", "LEFT", "LEFT"), ("RPOPLPUSH", "missing", "dst"),
        ("LMOVE", "src", "x", "LEFT", "LEFT"), ("LLEN", "src"), ("LRANGE", "x", "0", "-1"),
    ])


def test_lmpop(diff):
    diff.check("RPUSH", "b", "1", "2", "3", "4")
    diff.check_all([
        ("LMPOP", "2", "a", "b", "LEFT"),
        ("LMPOP", "2", "a", "b", "RIGHT", "COUNT", "2"),
        ("LMPOP", "2", "a", "b", "left", "count", "10"),
        ("LMPOP", "2", "a", "b", "LEFT"),
        ("LMPOP", "0", "a", "LEFT"),
        ("LMPOP", "-1", "a", "LEFT"),
        ("LMPOP", "x", "a", "LEFT"),
        ("LMPOP", "3", "a", "b", "LEFT"),
        ("LMPOP", "1", "a", "MIDDLE"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "0"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "x"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"),
        ("LMPOP", "1", "a", "LEFT", "COUNT"),
        ("LMPOP", "1", "a", "LEFT", "FOO"),
        ("LMPOP", "1", "a"),
    ])


def test_blocking_forms_without_waiting(diff):
    """When data is there, blocking pops answer at once; argument errors match Redis."""
    diff.check("RPUSH", "l", "a", "b", "c", "d", "e")
    diff.check_all([
        ("BLPOP", "missing", "l", "0"),
        ("BRPOP", "l", "missing", "0.5"),
        ("BLMOVE", "l", "d", "LEFT", "RIGHT", "0"),
        ("BRPOPLPUSH", "l", "d", "0"),
        ("BLMPOP", "0", "2", "missing", "l", "LEFT", "COUNT", "5"),
        ("BLPOP", "l", "-1"), ("BLPOP", "l", "abc"), ("BLPOP", "l", "inf"), ("BLPOP", "l", "nan"),
        ("BLPOP", "l", "1e100"), ("BLMOVE", "l", "d", "LEFT", "UP", "0"), ("BLMOVE", "l", "d", "LEFT", "LEFT", "x"),
        ("BRPOPLPUSH", "l", "d", "-1"), ("BLMPOP", "x", "1", "l", "LEFT"), ("BLMPOP", "0", "0", "l", "LEFT"),
        ("BLMPOP", "0", "1", "l", "UP"), ("BLMPOP", "-1", "1", "l", "LEFT"),
        ("BLPOP", "missing", "0.01"), ("BRPOP", "missing", "0.01"),
        ("BLMOVE", "missing", "d", "LEFT", "LEFT", "0.01"), ("BRPOPLPUSH", "missing", "d", "0.01"),
        ("BLMPOP", "0.01", "1", "missing", "LEFT"),
        ("LRANGE", "d", "0", "-1"),
    ])


def test_object_encoding(diff):
    require(diff, "OBJECT", "HELP")
    diff.check("RPUSH", "l", "a")
    diff.check("OBJECT", "ENCODING", "l")
    diff.check("RPUSH", "l", *["x" * 100] * 200)
    diff.check("OBJECT", "ENCODING", "l")


def test_keyspace_events(postroom_server, oracle_server):
    """The same commands publish the same keyspace events, in the same order, as Redis."""
    commands = [
        ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z"), ("LSET", "l", "0", "y"),
        ("LINSERT", "l", "BEFORE", "a", "x"), ("LREM", "l", "1", "x"), ("LTRIM", "l", "0", "1"),
        ("LMOVE", "l", "m", "LEFT", "RIGHT"), ("RPOPLPUSH", "l", "m"), ("LMPOP", "1", "m", "LEFT", "COUNT", "5"),
        ("RPUSH", "q", "1"), ("BLPOP", "q", "0"), ("LPUSHX", "q", "1"), ("RPUSH", "q", "1", "2"), ("RPOP", "q", "2"),
        ("RPUSH", "r", "1"), ("BLMOVE", "r", "s", "LEFT", "LEFT", "0"), ("LTRIM", "s", "1", "0"),
    ]
    assert keyspace_events(postroom_server.port, commands) == keyspace_events(oracle_server.port, commands)


OPS = st.sampled_from([
    "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LSET", "LINSERT",
    "LREM", "LTRIM", "LPOS", "LMOVE", "RPOPLPUSH", "LMPOP", "BLPOP", "BRPOP", "BLMOVE", "BLMPOP",
])
KEYS = st.sampled_from(["a", "b"])
ELEMENTS = st.sampled_from(["x", "y", "z", "1", "22"])
INTS = st.integers(min_value=-6, max_value=6).map(str)
SIDES = st.sampled_from(["LEFT", "RIGHT"])


@st.composite
def list_command(draw) -> tuple[str, ...]:
    op = draw(OPS)
    key = draw(KEYS)
    if op in ("LPUSH", "RPUSH", "LPUSHX", "RPUSHX"):
        return (op, key, *draw(st.lists(ELEMENTS, min_size=1, max_size=4)))
    if op in ("LPOP", "RPOP"):
        return (op, key) if draw(st.booleans()) else (op, key, str(draw(st.integers(0, 4))))
    if op in ("LRANGE", "LTRIM"):
        return (op, key, draw(INTS), draw(INTS))
    if op == "LINDEX":
        return (op, key, draw(INTS))
    if op == "LSET":
        return (op, key, draw(INTS), draw(ELEMENTS))
    if op == "LINSERT":
        return (op, key, draw(st.sampled_from(["BEFORE", "AFTER"])), draw(ELEMENTS), draw(ELEMENTS))
    if op == "LREM":
        return (op, key, draw(INTS), draw(ELEMENTS))
    if op == "LPOS":
        return (op, key, draw(ELEMENTS), "RANK", str(draw(st.sampled_from([1, 2, -1, -2]))), "COUNT",
                str(draw(st.integers(0, 3))))
    if op in ("LMOVE", "BLMOVE"):
        tail = ("0",) if op == "BLMOVE" else ()
        return (op, key, draw(KEYS), draw(SIDES), draw(SIDES), *tail)
    if op == "RPOPLPUSH":
        return (op, key, draw(KEYS))
    if op in ("BLPOP", "BRPOP"):
        return (op, key, draw(KEYS), "0")
    head = ("0",) if op == "BLMPOP" else ()
    return (op, *head, "2", key, draw(KEYS), draw(SIDES), "COUNT", str(draw(st.integers(1, 3))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(list_command(), min_size=1, max_size=25))
def test_generated_sequences(diff, commands):
    diff.check("FLUSHALL")
    for command in commands:
        if command[0].startswith("B"):
            # Inside MULTI a blocking pop runs as its non-blocking form: no waiting on empty lists
            # (Redis's timeouts have its 100 ms cron resolution).
            diff.check_all([("MULTI",), command, ("EXEC",)])
        else:
            diff.check(*command)
    diff.check("LRANGE", "a", "0", "-1")
    diff.check("LRANGE", "b", "0", "-1")


@pytest.mark.parametrize("command", [("LPUSH", "k"), ("LRANGE", "k", "0"), ("LINSERT", "k", "a", "b"), ("BLPOP", "k")])
def test_arity_errors(diff, command):
    diff.check(*command)


def test_propagated_forms(postroom_server):
    seen = propagated(postroom_server, [
        ("RPUSH", "l", "a", "b", "c"), ("LMPOP", "2", "x", "l", "RIGHT", "COUNT", "2"), ("BLPOP", "x", "l", "0"),
        ("RPUSH", "m", "1"), ("BLMOVE", "m", "n", "LEFT", "RIGHT", "0"), ("BRPOPLPUSH", "n", "m", "0"),
        ("BLMPOP", "0", "1", "m", "LEFT"), ("LPOP", "missing"),
    ])
    assert seen == [
        [b"RPUSH", b"l", b"a", b"b", b"c"], [b"RPOP", b"l", b"2"], [b"LPOP", b"l"], [b"RPUSH", b"m", b"1"],
        [b"LMOVE", b"m", b"n", b"LEFT", b"RIGHT"], [b"RPOPLPUSH", b"n", b"m"], [b"LPOP", b"m", b"1"],
    ]


def test_replies_inside_multi_are_snapshots(diff):
    diff.check("RPUSH", "l", "a", "b")
    diff.check_all([("MULTI",), ("LRANGE", "l", "0", "-1"), ("RPUSH", "l", "c"), ("LPOP", "l", "2"),
                    ("LRANGE", "l", "0", "-1"), ("EXEC",)])
