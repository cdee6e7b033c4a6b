"""String commands against the oracle (RESP2 and RESP3): replies, errors, keyspace events, propagation."""

from __future__ import annotations

import random
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


def check_events(diff, events, *commands) -> list:
    """Run ``commands`` on both servers: same replies and the same keyevents in the same order."""
    events.take()
    for command in commands:
        diff.check(*command)
    ours, theirs = events.take()
    assert ours == theirs
    return ours


def now_ms() -> int:
    return int(time.time() * 1000)


# -- GET / SET ---------------------------------------------------------------------------------


def test_get_set_basics(diff):
    diff.check_all([
        ("GET", "missing"), ("SET", "k", "v"), ("GET", "k"), ("SET", "k", ""), ("GET", "k"),
        ("SET", "k", b"\x00\xff bin"), ("GET", "k"), ("RPUSH", "list", "a"), ("GET", "list"),
        ("SET", "list", "now a string"), ("GET", "list"), ("GET",), ("GET", "a", "b"), ("SET", "k"),
    ])


@pytest.mark.parametrize("options", [
    ("NX",), ("XX",), ("nx",), ("GET",), ("NX", "GET"), ("XX", "GET"), ("GET", "GET"), ("KEEPTTL",),
    ("EX", "100"), ("PX", "100000"), ("ex", "100", "NX"), ("XX", "PX", "50000", "GET"), ("EX", "5", "EX", "100"),
    ("NX", "XX"), ("XX", "NX"), ("EX", "10", "PX", "100"), ("KEEPTTL", "EX", "10"), ("EX", "10", "KEEPTTL"),
    ("EXAT", "10", "PXAT", "10"), ("EX",), ("PX",), ("GET", "EX"), ("FOO",), ("NXX",), ("EX", "abc"),
    ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("PX", "-5"), ("EXAT", "0"), ("PXAT", "-1"), ("EX", "1.5"),
    ("EX", "9223372036854775807"), ("EX", "9223372036854776"), ("PX", "9223372036854775807"),
    ("EXAT", "9223372036854775"), ("PXAT", "9223372036854775807"), ("PERSIST",),
])
def test_set_options(diff, options):
    diff.check("SET", "fresh", "v", *options)
    diff.check("GET", "fresh")
    diff.check("SET", "old", "before")
    diff.check("EXPIRE", "old", "500")
    diff.check("SET", "old", "after", *options)
    diff.check("GET", "old")
    diff.check("TTL", "old")
    diff.check("RPUSH", "list", "x")
    diff.check("SET", "list", "v", *options)
    diff.check("TYPE", "list")


def test_set_ttl_rules(diff):
    diff.check_all([
        ("SET", "k", "v", "EX", "100"), ("TTL", "k"), ("SET", "k", "v2", "KEEPTTL"), ("TTL", "k"),
        ("SET", "k", "v3"), ("TTL", "k"), ("SET", "k", "v", "PX", "100000"), ("TTL", "k"),
        ("SET", "k", "v", "EXAT", str(int(time.time()) + 1000)), ("EXPIRETIME", "k"),
        ("SET", "k", "v", "PXAT", str(now_ms() + 200_000)), ("TTL", "k"),
        ("SET", "past", "v", "PXAT", "1"), ("EXISTS", "past"), ("GET", "past"),
        ("SET", "past", "v", "EXAT", "1"), ("EXISTS", "past"),
    ])


def test_setnx_setex_psetex(diff):
    diff.check_all([
        ("SETNX", "k", "1"), ("SETNX", "k", "2"), ("GET", "k"), ("SETNX", "k"),
        ("SETEX", "e", "100", "v"), ("TTL", "e"), ("GET", "e"), ("SETEX", "e", "0", "v"), ("SETEX", "e", "-1", "v"),
        ("SETEX", "e", "x", "v"), ("SETEX", "e", "9223372036854775807", "v"), ("SETEX", "e", "10"),
        ("PSETEX", "p", "100000", "v"), ("TTL", "p"), ("PSETEX", "p", "0", "v"), ("PSETEX", "p", "1.5", "v"),
        ("PSETEX", "p", "9223372036854775807", "v"), ("RPUSH", "l", "a"), ("SETNX", "l", "v"), ("SETEX", "l", "10", "v"),
        ("TYPE", "l"),
    ])


@pytest.mark.parametrize("options", [
    (), ("EX", "100"), ("PX", "100000"), ("EXAT", "99999999999"), ("PXAT", "99999999999999"), ("PERSIST",),
    ("persist",), ("EX", "0"), ("EX", "-1"), ("EX", "x"), ("PX", "0"), ("EX", "9223372036854775807"), ("EX",),
    ("EX", "10", "PX", "10"), ("PERSIST", "EX", "10"), ("EX", "10", "PERSIST"), ("KEEPTTL",), ("NX",),
    ("GET",), ("FOO",), ("EXAT", "1"), ("PXAT", "1"),
])
def test_getex(diff, options):
    diff.check("GETEX", "missing", *options)
    diff.check("SET", "k", "v", "EX", "500")
    diff.check("GETEX", "k", *options)
    diff.check("TTL", "k")
    diff.check("EXISTS", "k")
    diff.check("RPUSH", "l", "a")
    diff.check("GETEX", "l", *options)


def test_getdel_getset(diff):
    diff.check_all([
        ("GETDEL", "k"), ("SET", "k", "v", "EX", "100"), ("GETDEL", "k"), ("EXISTS", "k"), ("RPUSH", "l", "a"),
        ("GETDEL", "l"), ("GETSET", "k", "1"), ("GETSET", "k", "2"), ("SET", "t", "v", "EX", "100"),
        ("GETSET", "t", "w"), ("TTL", "t"), ("GETSET", "l", "x"), ("TYPE", "l"), ("GETSET", "k"),
    ])


def test_mget_mset_msetnx(diff):
    diff.check_all([
        ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "c", "a"), ("RPUSH", "l", "x"), ("MGET", "l", "a"),
        ("MSET", "a"), ("MSET", "a", "1", "b"), ("MSET", "a", "x", "a", "y"), ("GET", "a"),
        ("MSETNX", "n1", "1", "n2", "2"), ("MSETNX", "n2", "3", "n3", "4"), ("MGET", "n1", "n2", "n3"),
        ("MSETNX", "l", "1"), ("MSETNX", "n9"), ("MSETNX", "n9", "1", "n8"), ("MGET",),
        ("SET", "t", "v", "EX", "100"), ("MSET", "t", "w"), ("TTL", "t"),
    ])


# -- counters ----------------------------------------------------------------------------------


def test_incr_family(diff):
    diff.check_all([
        ("INCR", "n"), ("INCR", "n"), ("DECR", "n"), ("INCRBY", "n", "10"), ("DECRBY", "n", "3"),
        ("INCRBY", "n", "-20"), ("DECRBY", "n", "-5"), ("GET", "n"), ("INCRBY", "n", "x"), ("INCRBY", "n", "1.5"),
        ("INCRBY", "n", " 1"), ("INCRBY", "n", "01"), ("INCRBY", "n", "+1"), ("DECR", "new"), ("DECRBY", "new2", "7"),
        ("SET", "big", "9223372036854775806"), ("INCR", "big"), ("INCR", "big"), ("GET", "big"),
        ("SET", "small", "-9223372036854775807"), ("DECR", "small"), ("DECR", "small"), ("DECRBY", "small", "1"),
        ("DECRBY", "x", "-9223372036854775808"), ("INCRBY", "x", "-9223372036854775808"),
        ("INCRBY", "x", "9223372036854775808"), ("SET", "s", "abc"), ("INCR", "s"), ("SET", "s", " 1"), ("INCR", "s"),
        ("SET", "s", "1 "), ("INCR", "s"), ("SET", "s", "007"), ("INCR", "s"), ("SET", "s", ""), ("INCR", "s"),
        ("SET", "s", "1.0"), ("INCR", "s"), ("SET", "s", "-0"), ("INCR", "s"), ("RPUSH", "l", "a"), ("INCR", "l"),
        ("DECRBY", "l", "1"), ("SET", "t", "5", "EX", "100"), ("INCR", "t"), ("TTL", "t"), ("INCR",),
    ])


@pytest.mark.parametrize("steps", [
    ["0.1", "0.2"], ["10.5", "0.1"], ["1e30", "-1e30", "1.5e-20"], ["0x10", ".5", "5."], ["3.0e3"],
    ["-0.1", "0.1"], ["1e-17"], ["1e-18"], ["5.0000000000000001"], ["1e4000"], ["-1e4000"], ["1e4933"],
    ["inf"], ["-inf"], ["nan"], ["infinity"], [""], ["abc"], [" 1"], ["1 "], ["1e"], ["0x"], ["1/2"], ["1_0"],
    ["1e-5000"], ["0e-99999"], ["1e5000"], ["123456789012345678901234567890.123"], ["0.3333333333333333333"],
    ["1.7976931348623157e308", "1.7976931348623157e308"], ["7", "0.5"], ["-7", "7"],
])
def test_incrbyfloat(diff, steps):
    for step in steps:
        diff.check("INCRBYFLOAT", "f", step)
        diff.check("GET", "f")


def test_incrbyfloat_on_existing_values(diff):
    diff.check_all([
        ("SET", "v", "10"), ("INCRBYFLOAT", "v", "0.1"), ("SET", "v", "1e3"), ("INCRBYFLOAT", "v", "1"),
        ("SET", "v", "abc"), ("INCRBYFLOAT", "v", "1"), ("SET", "v", ""), ("INCRBYFLOAT", "v", "1"),
        ("SET", "v", " 1"), ("INCRBYFLOAT", "v", "1"), ("SET", "v", "inf"), ("INCRBYFLOAT", "v", "1"),
        ("RPUSH", "l", "a"), ("INCRBYFLOAT", "l", "1"), ("INCRBYFLOAT", "l", "x"),
        ("SET", "t", "1", "EX", "100"), ("INCRBYFLOAT", "t", "1.5"), ("TTL", "t"),
    ])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr)
                | st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str), min_size=1, max_size=6))
def test_incrbyfloat_property(diff, increments):
    diff.check("DEL", "f")
    for increment in increments:
        diff.check("INCRBYFLOAT", "f", increment)


# -- parts of strings --------------------------------------------------------------------------


def test_append_strlen(diff):
    diff.check_all([
        ("APPEND", "k", "Hello"), ("APPEND", "k", " World"), ("GET", "k"), ("STRLEN", "k"), ("STRLEN", "none"),
        ("APPEND", "k", ""), ("APPEND", "e", ""), ("EXISTS", "e"), ("SET", "n", "12"), ("APPEND", "n", "3"),
        ("INCR", "n"), ("RPUSH", "l", "a"), ("APPEND", "l", "x"), ("STRLEN", "l"),
        ("SET", "t", "a", "EX", "100"), ("APPEND", "t", "b"), ("TTL", "t"), ("APPEND", "k"),
    ])


RANGES = [(0, -1), (0, 3), (-3, -1), (5, 2), (-1, -3), (-100, 100), (100, 200), (3, 3), (-1, 0), (0, 0),
          (2, -2), (-5, 100), (9223372036854775807, -9223372036854775808)]


def test_getrange_substr(diff):
    diff.check("SET", "s", "This is a string")
    diff.check("SET", "empty", "")
    diff.check("SET", "num", "12345")
    for key in ("s", "empty", "num", "missing"):
        for start, end in RANGES:
            diff.check("GETRANGE", key, start, end)
            diff.check("SUBSTR", key, start, end)
    diff.check("RPUSH", "l", "a")
    diff.check_all([
        ("GETRANGE", "l", 0, 1), ("GETRANGE", "s", "x", 1), ("GETRANGE", "s", 0, "1.5"), ("GETRANGE", "missing", "x", 1),
        ("GETRANGE", "s", 0), ("SUBSTR", "l", 0, 1),
    ])


@given(st.binary(max_size=12), st.integers(-15, 15), st.integers(-15, 15))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_getrange_property(diff, value, start, end):
    diff.check("SET", "s", value)
    diff.check("GETRANGE", "s", start, end)


def test_setrange(diff):
    diff.check_all([
        ("SETRANGE", "k", "0", "Hello"), ("SETRANGE", "k", "6", "World"), ("GET", "k"), ("SETRANGE", "k", "1", "i"),
        ("GET", "k"), ("SETRANGE", "n", "3", ""), ("EXISTS", "n"), ("SETRANGE", "k", "100", ""), ("STRLEN", "k"),
        ("SETRANGE", "z", "4", "x"), ("GET", "z"), ("SETRANGE", "k", "-1", "x"), ("SETRANGE", "k", "x", "x"),
        ("SETRANGE", "k", "536870912", "x"), ("SETRANGE", "k", "536870911", "xy"),
        ("SETRANGE", "k", "9223372036854775807", "x"), ("SETRANGE", "k", "9223372036854775808", "x"),
        ("SET", "num", "123"), ("SETRANGE", "num", "1", "9"), ("INCR", "num"),
        ("RPUSH", "l", "a"), ("SETRANGE", "l", "0", "x"), ("SETRANGE", "l", "0", ""), ("SETRANGE", "l", "-1", ""),
        ("SET", "t", "abc", "EX", "100"), ("SETRANGE", "t", "1", "X"), ("TTL", "t"), ("SETRANGE", "k", "0"),
    ])


# -- LCS ---------------------------------------------------------------------------------------


def test_lcs(diff):
    diff.check("MSET", "key1", "ohmytext", "key2", "mynewtext", "e", "")
    for options in [(), ("LEN",), ("IDX",), ("IDX", "MINMATCHLEN", "4"), ("IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
                    ("IDX", "WITHMATCHLEN"), ("idx", "minmatchlen", "-3"), ("LEN", "IDX"), ("IDX", "LEN"),
                    ("MINMATCHLEN",), ("MINMATCHLEN", "x"), ("FOO",), ("WITHMATCHLEN",), ("LEN", "LEN")]:
        diff.check("LCS", "key1", "key2", *options)
        diff.check("LCS", "key1", "missing", *options)
        diff.check("LCS", "e", "key1", *options)
    diff.check("RPUSH", "l", "a")
    diff.check("LCS", "l", "key1")
    diff.check("LCS", "key1", "l", "FOO")
    diff.check("LCS", "key1")


@given(st.text("abc", max_size=14), st.text("abc", max_size=14), st.integers(0, 3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_lcs_property(diff, a, b, min_len):
    diff.check("MSET", "a", a, "b", b)
    diff.check("LCS", "a", "b")
    diff.check("LCS", "a", "b", "IDX", "MINMATCHLEN", min_len, "WITHMATCHLEN")


# -- OBJECT on strings -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["123", "0", "9999", "10000", "-1", "0123", "-0", "+1", "9223372036854775807",
                                   "9223372036854775808", "x" * 44, "x" * 45, "1.5", ""])
def test_object_on_strings(diff, value):
    diff.check("SET", "k", value)
    diff.check("OBJECT", "ENCODING", "k")
    diff.check("OBJECT", "REFCOUNT", "k")
    diff.check("INCR", "k")
    diff.check("OBJECT", "ENCODING", "k")


# -- keyspace events and propagation -----------------------------------------------------------


def test_string_events(diff, events):
    emitted = check_events(
        diff, events,
        ("SET", "k", "v"), ("SET", "k", "v", "EX", "100"), ("SET", "k", "v", "NX"), ("SET", "k", "w", "XX", "GET"),
        ("SETNX", "n", "1"), ("SETNX", "n", "1"), ("SETEX", "e", "100", "v"), ("PSETEX", "p", "100000", "v"),
        ("GETEX", "k", "EX", "200"), ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PXAT", "1"),
        ("SET", "k", "v"), ("GETDEL", "k"), ("GETDEL", "k"), ("GETSET", "g", "1"), ("MSET", "a", "1", "b", "2"),
        ("MSETNX", "c", "1", "d", "2"), ("MSETNX", "c", "1"), ("INCR", "i"), ("DECR", "i"), ("INCRBY", "i", "5"),
        ("DECRBY", "i", "2"), ("INCRBYFLOAT", "i", "1.5"), ("APPEND", "i", "0"), ("APPEND", "ap", "x"),
        ("SETRANGE", "ap", "3", "y"), ("SETRANGE", "ap", "0", ""), ("SET", "x", "v", "EX", "0"),
    )
    assert {event for event, _, _ in emitted} == {
        b"set", b"expire", b"persist", b"del", b"incrby", b"incrbyfloat", b"append", b"setrange"}


def test_set_propagation(diff, propagated):
    diff.check("SET", "k", "v")
    assert propagated.take() == [[b"SET", b"k", b"v"]]
    before = now_ms()
    diff.check("SET", "k", "v", "EX", "100")
    [(name, key, value, pxat, deadline)] = propagated.take()
    assert (name, key, value, pxat) == (b"SET", b"k", b"v", b"PXAT")
    assert before + 100_000 <= int(deadline) <= now_ms() + 100_000
    diff.check("SET", "k", "v", "PXAT", "99999999999999")
    assert propagated.take() == [[b"SET", b"k", b"v", b"PXAT", b"99999999999999"]]
    diff.check("SET", "k", "w", "GET", "XX", "get")
    assert propagated.take() == [[b"SET", b"k", b"w", b"XX"]]
    diff.check("SET", "k", "w", "NX")
    assert propagated.take() == []
    diff.check("PSETEX", "k", "5000", "v")
    assert propagated.take()[0][3] == b"PXAT"


def test_other_string_propagation(diff, propagated):
    diff.check("SET", "k", "v")
    propagated.take()
    before = now_ms()
    diff.check("GETEX", "k", "EX", "100")
    [(name, key, deadline)] = propagated.take()
    assert (name, key) == (b"PEXPIREAT", b"k") and before + 100_000 <= int(deadline) <= now_ms() + 100_000
    diff.check("GETEX", "k", "PERSIST")
    assert propagated.take() == [[b"PERSIST", b"k"]]
    diff.check("GETEX", "k", "PERSIST")
    diff.check("GETEX", "k")
    assert propagated.take() == []
    diff.check("GETEX", "k", "EXAT", "1")
    assert propagated.take() == [[b"DEL", b"k"]]
    diff.check("INCRBYFLOAT", "f", "0.1")
    assert propagated.take() == [[b"SET", b"f", b"0.1", b"KEEPTTL"]]
    diff.check("GETDEL", "f")
    assert propagated.take() == [[b"DEL", b"f"]]
    diff.check("GETSET", "g", "1")
    assert propagated.take() == [[b"SET", b"g", b"1"]]
    diff.check("INCR", "g")
    diff.check("SETRANGE", "g", "5", "")
    assert propagated.take() == [[b"INCR", b"g"]]


def test_lcs_long_strings(diff):
    """Long inputs: the bit-parallel table must agree with Redis on the LCS, its length and the ranges."""
    rng = random.Random(7)
    a = "".join(rng.choice("acgt") for _ in range(1500))
    b = "".join(rng.choice("acgt") for _ in range(1200))
    diff.check("MSET", "a", a, "b", b)
    diff.check("LCS", "a", "b")
    diff.check("LCS", "a", "b", "LEN")
    diff.check("LCS", "a", "b", "IDX", "MINMATCHLEN", "5", "WITHMATCHLEN")
