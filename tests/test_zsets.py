"""Sorted set commands, differential against redis-server in RESP2 and RESP3.

Every reply (including error texts and RESP3 doubles and pairs) must be byte-identical to the
oracle's; only ZRANDMEMBER and ZSCAN of large sets, whose order Redis leaves random, are checked
by their properties.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.keyspace.zsets import ZSet

from .support.resp import RawClient

SCORES = ["0", "1", "-1", "1.5", "2.5", "-0", "inf", "-inf", "+inf", "1e3", "0.1", "3", "10", "1e-5"]


def seed(diff, key: str = "z", pairs: list[tuple[str, str]] | None = None) -> None:
    pairs = pairs or [("1", "a"), ("2", "b"), ("2", "c"), ("3", "d"), ("-1.5", "e"), ("inf", "f"), ("-inf", "g")]
    diff.check("ZADD", key, *[x for pair in pairs for x in pair])


def test_zadd_options(diff):
    diff.check("ZADD", "z", "1", "a", "2", "b")
    diff.check("ZADD", "z", "NX", "5", "a", "3", "c")
    diff.check("ZADD", "z", "XX", "5", "a", "3", "d")
    diff.check("ZADD", "z", "XX", "CH", "6", "a", "3", "d")
    diff.check("ZADD", "z", "CH", "6", "a", "7", "b", "8", "e")
    diff.check("ZADD", "z", "GT", "CH", "1", "a", "10", "b")
    diff.check("ZADD", "z", "LT", "CH", "1", "a", "100", "b")
    diff.check("ZADD", "z", "xx", "gt", "ch", "50", "a", "0", "b", "1", "zz")
    diff.check("ZADD", "z", "INCR", "2.5", "a")
    diff.check("ZADD", "z", "INCR", "NX", "2.5", "a")
    diff.check("ZADD", "z", "INCR", "NX", "2.5", "new")
    diff.check("ZADD", "z", "INCR", "XX", "1", "missing")
    diff.check("ZADD", "z", "INCR", "GT", "-1", "a")
    diff.check("ZADD", "z", "INCR", "LT", "-1", "a")
    diff.check("ZADD", "nokey", "XX", "1", "a")
    diff.check("ZADD", "nokey", "XX", "INCR", "1", "a")
    diff.check("ZADD", "z", "0", "a", "-0", "a")
    diff.check("ZADD", "z", "-0", "m0")
    diff.check("ZSCORE", "z", "m0")
    diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    diff.check("ZCARD", "nokey")


def test_zadd_errors(diff):
    diff.check("SET", "s", "x")
    for args in (
        ("z",), ("z", "1"), ("z", "1", "a", "2"), ("z", "NX"), ("z", "NX", "XX", "1", "a"),
        ("z", "GT", "LT", "1", "a"), ("z", "NX", "GT", "1", "a"), ("z", "NX", "LT", "1", "a"),
        ("z", "INCR", "1", "a", "2", "b"), ("z", "x", "a"), ("z", "nan", "a"), ("z", "1", "a", "x", "b"),
        ("z", " 1", "a"), ("z", "1 ", "a"), ("z", "", "a"), ("z", "1e400", "a"), ("z", "1e-400", "a"),
        ("z", "0x10", "a"), ("z", "1_0", "a"), ("z", "NX", "XX", "GT", "1", "a", "2"), ("s", "1", "a"),
        ("s", "XX", "1", "a"), ("z", "1e-310", "tiny"), ("z", "-0x1p-2", "hex"),
    ):
        diff.check("ZADD", *args)
    diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    diff.check("ZINCRBY", "s", "1", "a")
    diff.check("ZINCRBY", "z", "x", "a")
    diff.check("ZINCRBY", "z", "1", "a", "b")


def test_zincrby_and_nan(diff):
    diff.check("ZINCRBY", "z", "1.5", "a")
    diff.check("ZINCRBY", "z", "0.1", "a")
    diff.check("ZINCRBY", "z", "-10", "a")
    diff.check("ZINCRBY", "z", "inf", "b")
    diff.check("ZINCRBY", "z", "-inf", "b")
    diff.check("ZADD", "z", "INCR", "-inf", "b")
    diff.check("ZADD", "z", "INCR", "inf", "b")
    diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_doubles_format(diff):
    for score in ("0.1", "1.1", "1e20", "123456789012345678", "-2.5e-7", "3.0", "1e15", "4503599627370496.5"):
        diff.check("ZADD", "z", score, f"m{score}")
        diff.check("ZSCORE", "z", f"m{score}")
    diff.check("ZMSCORE", "z", "m0.1", "nothere", "m1.1")
    diff.check("ZMSCORE", "nokey", "a", "b")
    diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_zrem_and_point_lookups(diff):
    seed(diff)
    diff.check("SET", "s", "x")
    diff.check("ZREM", "z", "a", "nothere", "b", "a")
    diff.check("ZREM", "nokey", "a")
    diff.check("ZREM", "s", "a")
    diff.check("ZCARD", "z")
    diff.check("ZCARD", "s")
    diff.check("ZSCORE", "z", "c")
    diff.check("ZSCORE", "z", "nothere")
    diff.check("ZSCORE", "nokey", "a")
    diff.check("ZSCORE", "s", "a")
    diff.check("ZMSCORE", "s", "a")
    diff.check("ZREM", "z", "c", "d", "e", "f", "g")
    diff.check("ZCARD", "z")
    diff.check("ZADD", "z", "XX", "1", "c")  # the emptied key is gone


def test_zrank(diff):
    seed(diff)
    diff.check("SET", "s", "x")
    for member in ("a", "b", "c", "g", "f", "nothere"):
        diff.check("ZRANK", "z", member)
        diff.check("ZREVRANK", "z", member)
    diff.check("ZRANK", "nokey", "a")
    diff.check("ZRANK", "s", "a")


def test_zrank_withscore(r):
    """WITHSCORE is Redis 7.2's (the 7.0 oracle lacks it): ``[rank, score]``, null when absent."""
    r.zadd("z", {"a": 1, "b": 2.5, "c": 3})
    assert r.zrank("z", "b", withscore=True) == [1, 2.5]
    assert r.zrevrank("z", "b", withscore=True) == [1, 2.5]
    assert r.zrank("z", "nothere", withscore=True) is None
    assert r.zrank("nokey", "a", withscore=True) is None
    with pytest.raises(Exception, match="syntax error"):
        r.execute_command("ZRANK", "z", "a", "WITHSCOREZ")
    with pytest.raises(Exception, match="wrong number of arguments for 'zrank'"):
        r.execute_command("ZRANK", "z", "a", "WITHSCORE", "x")


def test_zcount_and_score_ranges(diff):
    seed(diff)
    diff.check("SET", "s", "x")
    ranges = [
        ("-inf", "+inf"), ("1", "2"), ("(1", "2"), ("1", "(2"), ("(1", "(2"), ("(2", "(2"), ("2", "2"),
        ("3", "1"), ("-inf", "-inf"), ("(-inf", "+inf"), ("inf", "inf"), ("(inf", "inf"), ("", ""),
        ("(", "3"), (" 1", "2"), ("1e0", "0x2"), ("-1.5", "(inf"),
    ]
    for low, high in ranges:
        diff.check("ZCOUNT", "z", low, high)
        diff.check("ZRANGEBYSCORE", "z", low, high, "WITHSCORES")
        diff.check("ZREVRANGEBYSCORE", "z", high, low)
        diff.check("ZRANGE", "z", low, high, "BYSCORE")
    for low, high in (("x", "1"), ("1", "x"), ("(x", "1"), ("nan", "1"), ("1 ", "2"), (" ", "1"), ("((1", "2")):
        diff.check("ZCOUNT", "z", low, high)
        diff.check("ZRANGEBYSCORE", "z", low, high)
        diff.check("ZCOUNT", "nokey", low, high)
    diff.check("ZCOUNT", "nokey", "1", "2")
    diff.check("ZCOUNT", "s", "1", "2")
    diff.check("ZRANGEBYSCORE", "s", "1", "2")


def test_zrangebyscore_limit(diff):
    seed(diff)
    for offset, count in (("0", "2"), ("1", "2"), ("2", "-1"), ("0", "0"), ("-1", "2"), ("6", "5"),
                          ("7", "1"), ("100", "1"), ("3", "-5")):
        diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", offset, count)
        diff.check("ZRANGEBYSCORE", "z", "(1", "3", "WITHSCORES", "LIMIT", offset, count)
        diff.check("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", offset, count, "WITHSCORES")
        diff.check("ZRANGE", "z", "3", "(1", "BYSCORE", "REV", "LIMIT", offset, count)
    diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0")
    diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "x", "1")
    diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0", "1.5")
    diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORE")
    diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "REV")
    diff.check("ZRANGEBYSCORE", "z", "-inf", "+inf", "BYSCORE")


def test_zrange_by_rank(diff):
    seed(diff)
    for start, stop in (("0", "-1"), ("1", "3"), ("-3", "-1"), ("-100", "100"), ("5", "2"), ("7", "10"),
                        ("0", "0"), ("-1", "-1"), ("6", "-100")):
        diff.check("ZRANGE", "z", start, stop)
        diff.check("ZRANGE", "z", start, stop, "WITHSCORES")
        diff.check("ZRANGE", "z", start, stop, "REV", "withscores")
        diff.check("ZREVRANGE", "z", start, stop, "WITHSCORES")
    diff.check("ZRANGE", "z", "a", "1")
    diff.check("ZRANGE", "z", "0", "1", "LIMIT", "0", "1")
    diff.check("ZRANGE", "z", "a", "1", "LIMIT", "0", "1")
    diff.check("ZRANGE", "z", "0", "1", "LIMIT", "0", "-1")  # the default limit is no LIMIT for Redis
    diff.check("ZRANGE", "z", "0", "1", "REV", "REV")
    diff.check("ZRANGE", "z", "0", "1", "BYSCORE", "BYLEX")
    diff.check("ZRANGE", "z", "0", "1", "WITHSCORES", "foo")
    diff.check("ZREVRANGE", "z", "0", "1", "REV")
    diff.check("ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1")
    diff.check("ZRANGE", "nokey", "0", "-1")
    diff.check("ZRANGE", "nokey", "a", "b")
    diff.check("SET", "s", "x")
    diff.check("ZRANGE", "s", "0", "-1")


def test_lex_ranges(diff):
    diff.check("ZADD", "l", *[x for m in "abcdefg" for x in ("0", m)], "0", "", "0", "ab", "0", "b\x00")
    diff.check("SET", "s", "x")
    ranges = [
        ("-", "+"), ("[a", "[c"), ("(a", "(c"), ("[b", "(b"), ("[b", "[b"), ("+", "-"), ("-", "-"), ("+", "+"),
        ("[", "(b"), ("(", "+"), ("-", "[a"), ("[c", "+"), ("[z", "+"), ("-", "(a"), ("[d", "[c"), ("[ab", "[b"),
    ]
    for low, high in ranges:
        diff.check("ZLEXCOUNT", "l", low, high)
        diff.check("ZRANGEBYLEX", "l", low, high)
        diff.check("ZREVRANGEBYLEX", "l", high, low)
        diff.check("ZRANGE", "l", low, high, "BYLEX", "LIMIT", "1", "2")
        diff.check("ZRANGE", "l", high, low, "BYLEX", "REV", "LIMIT", "1", "3")
    for low, high in (("a", "+"), ("-", "c"), ("+a", "+"), ("-", "-a"), ("", "+")):
        diff.check("ZLEXCOUNT", "l", low, high)
        diff.check("ZRANGEBYLEX", "l", low, high)
        diff.check("ZLEXCOUNT", "nokey", low, high)
    diff.check("ZRANGEBYLEX", "l", "-", "+", "WITHSCORES")
    diff.check("ZRANGE", "l", "-", "+", "BYLEX", "WITHSCORES")
    diff.check("ZRANGEBYLEX", "l", "-", "+", "LIMIT", "2", "-1")
    diff.check("ZRANGEBYLEX", "s", "-", "+")
    diff.check("ZLEXCOUNT", "s", "-", "+")


def test_lex_ranges_with_mixed_scores(diff):
    """Redis leaves lex ranges over differing scores undefined; small sets behave like its listpack."""
    diff.check("ZADD", "m", "1", "b", "2", "a", "3", "d", "4", "c", "5", "a2")
    for low, high in (("-", "+"), ("[a", "[c"), ("[b", "[b"), ("(a", "+"), ("[c", "[d"), ("-", "[a")):
        diff.check("ZLEXCOUNT", "m", low, high)
        diff.check("ZRANGEBYLEX", "m", low, high)
        diff.check("ZREVRANGEBYLEX", "m", high, low)


def test_zremrange(diff):
    for args in (("0", "1"), ("-2", "-1"), ("5", "1"), ("-100", "100"), ("10", "20"), ("x", "1")):
        seed(diff)
        diff.check("ZREMRANGEBYRANK", "z", *args)
        diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    for args in (("1", "2"), ("(1", "(3"), ("-inf", "+inf"), ("5", "1"), ("x", "1")):
        seed(diff)
        diff.check("ZREMRANGEBYSCORE", "z", *args)
        diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
    for args in (("[a", "[b"), ("-", "+"), ("(a", "(c"), ("+", "-"), ("a", "b")):
        diff.check("ZADD", "l", "0", "a", "0", "b", "0", "c")
        diff.check("ZREMRANGEBYLEX", "l", *args)
        diff.check("ZRANGE", "l", "0", "-1")
    diff.check("SET", "s", "x")
    for name in ("ZREMRANGEBYRANK", "ZREMRANGEBYSCORE"):
        diff.check(name, "s", "0", "1")
        diff.check(name, "nokey", "0", "1")
    diff.check("ZREMRANGEBYLEX", "s", "-", "+")
    diff.check("ZREMRANGEBYLEX", "nokey", "-", "+")


def test_zrangestore(diff):
    seed(diff)
    diff.check("ZRANGESTORE", "dst", "z", "0", "2")
    diff.check("ZRANGE", "dst", "0", "-1", "WITHSCORES")
    diff.check("ZRANGESTORE", "dst", "z", "(1", "inf", "BYSCORE", "REV", "LIMIT", "1", "2")
    diff.check("ZRANGE", "dst", "0", "-1", "WITHSCORES")
    diff.check("ZRANGESTORE", "dst", "z", "[a", "[c", "BYLEX")
    diff.check("ZRANGE", "dst", "0", "-1", "WITHSCORES")
    diff.check("ZRANGESTORE", "dst", "z", "5", "1")
    diff.check("ZCARD", "dst")
    diff.check("SET", "str", "x")
    diff.check("ZRANGESTORE", "str", "z", "0", "0")
    diff.check("ZRANGE", "str", "0", "-1")
    diff.check("ZRANGESTORE", "str", "nokey", "0", "-1")
    diff.check("ZCARD", "str")
    diff.check("SET", "str", "x")
    diff.check("ZRANGESTORE", "dst", "str", "0", "-1")
    diff.check("ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES")
    diff.check("ZRANGESTORE", "dst", "z", "0", "-1", "LIMIT", "0", "1")
    diff.check("ZRANGESTORE", "z", "z", "1", "2")
    diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")


def test_zpop(diff):
    seed(diff)
    diff.check("ZPOPMIN", "z")
    diff.check("ZPOPMAX", "z")
    diff.check("ZPOPMIN", "z", "2")
    diff.check("ZPOPMAX", "z", "1")
    diff.check("ZPOPMIN", "z", "0")
    diff.check("ZPOPMAX", "z", "100")
    diff.check("ZPOPMIN", "z")
    diff.check("ZPOPMIN", "z", "1")
    diff.check("ZPOPMIN", "z", "-1")
    diff.check("ZPOPMIN", "z", "x")
    diff.check("ZPOPMIN", "z", "1", "2")
    diff.check("SET", "s", "x")
    diff.check("ZPOPMIN", "s")
    diff.check("ZPOPMAX", "s", "0")


def test_zmpop(diff):
    seed(diff, "z2")
    diff.check("SET", "s", "x")
    diff.check("ZMPOP", "2", "nokey", "z2", "MIN")
    diff.check("ZMPOP", "2", "nokey", "z2", "max", "COUNT", "2")
    diff.check("ZMPOP", "1", "z2", "MIN", "count", "100")
    diff.check("ZMPOP", "1", "z2", "MIN")
    for args in (("0", "z", "MIN"), ("-1", "z", "MIN"), ("x", "z", "MIN"), ("2", "z", "MIN"), ("1", "z", "MID"),
                 ("1", "z", "MIN", "COUNT"), ("1", "z", "MIN", "COUNT", "0"), ("1", "z", "MIN", "COUNT", "x"),
                 ("1", "z", "MIN", "COUNT", "1", "COUNT", "1"), ("1", "z", "MIN", "FOO"), ("2", "nokey", "s", "MIN"),
                 ("5", "a", "b", "MIN")):
        diff.check("ZMPOP", *args)


def test_setops(diff):
    diff.check("ZADD", "a", "1", "x", "2", "y", "3", "z")
    diff.check("ZADD", "b", "10", "y", "20", "z", "30", "w", "inf", "i")
    diff.check("ZADD", "c", "-inf", "i", "5", "z")
    diff.check("SET", "s", "x")
    for name in ("ZUNION", "ZINTER", "ZDIFF"):
        diff.check(name, "2", "a", "b")
        diff.check(name, "3", "a", "b", "c", "WITHSCORES")
        diff.check(name, "2", "a", "nokey", "withscores")
        diff.check(name, "1", "a")
        diff.check(name, "2", "a", "a", "WITHSCORES")
        diff.check(name, "0", "a")
        diff.check(name, "-1", "a")
        diff.check(name, "x", "a")
        diff.check(name, "3", "a", "b")
        diff.check(name, "2", "a", "s")
        diff.check(name, "1", "a", "WITHSCORES", "foo")
    for name in ("ZUNION", "ZINTER"):
        diff.check(name, "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES")
        diff.check(name, "2", "b", "c", "WEIGHTS", "1", "1", "WITHSCORES")
        diff.check(name, "2", "b", "c", "WEIGHTS", "0", "1", "WITHSCORES")
        for aggregate in ("SUM", "min", "MAX", "avg"):
            diff.check(name, "3", "a", "b", "c", "AGGREGATE", aggregate, "WITHSCORES")
        diff.check(name, "2", "a", "b", "WEIGHTS", "1")
        diff.check(name, "2", "a", "b", "WEIGHTS", "1", "x")
        diff.check(name, "2", "a", "b", "AGGREGATE")
        diff.check(name, "2", "a", "b", "WEIGHTS", "1", "2", "AGGREGATE", "MAX", "WEIGHTS", "3", "4", "WITHSCORES")
    diff.check("ZDIFF", "2", "a", "b", "WEIGHTS", "1", "2")
    diff.check("ZDIFF", "2", "a", "b", "AGGREGATE", "MIN")


def test_setops_with_plain_sets(diff, postroom_server):
    if "sadd" not in _command_names(postroom_server):
        pytest.skip("set commands are not in this build yet")
    diff.check("ZADD", "a", "1", "x", "2", "y")
    diff.check("SADD", "set", "y", "q")
    diff.check("ZUNION", "2", "a", "set", "WITHSCORES")
    diff.check("ZINTER", "2", "a", "set", "WEIGHTS", "3", "4", "WITHSCORES")
    diff.check("ZDIFF", "2", "set", "a", "WITHSCORES")
    diff.check("ZINTERCARD", "2", "a", "set")


def _command_names(server) -> set[str]:
    from postroom.commands.registry import COMMANDS

    return {name.decode() for name in COMMANDS}


def test_setop_store(diff):
    diff.check("ZADD", "a", "1", "x", "2", "y", "3", "z")
    diff.check("ZADD", "b", "10", "y", "20", "z", "30", "w")
    diff.check("SET", "s", "x")
    for name in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
        diff.check(name, "dst", "2", "a", "b")
        diff.check("ZRANGE", "dst", "0", "-1", "WITHSCORES")
        diff.check(name, "dst", "2", "nokey", "nokey2")
        diff.check("ZCARD", "dst")
        diff.check(name, "dst", "1", "a", "WITHSCORES")
        diff.check(name, "dst", "2", "a", "s")
        diff.check(name, "s", "1", "a")
        diff.check("ZRANGE", "s", "0", "-1")
        diff.check(name, "a", "2", "a", "b")
        diff.check("ZRANGE", "a", "0", "-1", "WITHSCORES")
        diff.check(name, "dst", "0", "a")
        diff.check(name, "dst", "3", "a", "b")
        diff.check("SET", "s", "x")
    diff.check("ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "2", "3", "AGGREGATE", "MIN")
    diff.check("ZRANGE", "dst", "0", "-1", "WITHSCORES")


def test_zintercard(diff):
    diff.check("ZADD", "a", "1", "x", "2", "y", "3", "z")
    diff.check("ZADD", "b", "10", "y", "20", "z", "30", "w")
    diff.check("SET", "s", "x")
    for args in (("2", "a", "b"), ("2", "a", "b", "LIMIT", "1"), ("2", "a", "b", "LIMIT", "0"), ("1", "a"),
                 ("2", "a", "b", "LIMIT", "-1"), ("2", "a", "b", "LIMIT", "x"), ("2", "a", "b", "LIMIT"),
                 ("2", "a", "nokey"), ("0", "a"), ("3", "a", "b"), ("2", "a", "s"), ("1", "a", "WITHSCORES"),
                 ("2", "a", "b", "WEIGHTS", "1", "1")):
        diff.check("ZINTERCARD", *args)


def test_zrandmember(diff, r):
    seed(diff)
    diff.check("ZRANDMEMBER", "nokey")
    diff.check("ZRANDMEMBER", "nokey", "5")
    diff.check("ZRANDMEMBER", "z", "0")
    diff.check("ZRANDMEMBER", "z", "7", "WITHSCORES")  # the whole set, in order
    diff.check("ZRANDMEMBER", "z", "100")
    diff.check("ZRANDMEMBER", "z", "x")
    diff.check("ZRANDMEMBER", "z", "1", "WITHSCORE")
    diff.check("ZRANDMEMBER", "z", "1", "WITHSCORES", "x")
    diff.check("ZRANDMEMBER", "z", "-9223372036854775808")
    diff.check("ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES")
    diff.check("SET", "s", "x")
    diff.check("ZRANDMEMBER", "s")
    diff.check("ZRANDMEMBER", "s", "1")
    members = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    r.zadd("r", members)
    assert r.zrandmember("r").decode() in members
    picked = r.zrandmember("r", -20)
    assert len(picked) == 20 and {m.decode() for m in picked} <= set(members)
    distinct = r.zrandmember("r", 3, withscores=True)
    names = [m.decode() for m, _ in distinct] if isinstance(distinct[0], list) else [
        m.decode() for m in distinct[::2]]
    assert len(set(names)) == 3 and set(names) <= set(members)


def test_zscan(diff, r):
    seed(diff)
    diff.check("ZSCAN", "z", "0")
    diff.check("ZSCAN", "z", "0", "MATCH", "[a-c]")
    diff.check("ZSCAN", "z", "0", "COUNT", "1")
    diff.check("ZSCAN", "nokey", "0")
    diff.check("ZSCAN", "nokey", "0", "COUNT", "0")
    diff.check("ZSCAN", "z", "x")
    diff.check("ZSCAN", "z", "0", "COUNT", "0")
    diff.check("ZSCAN", "z", "0", "MATCH")
    diff.check("ZSCAN", "z", "0", "TYPE", "zset")
    diff.check("SET", "s", "x")
    diff.check("ZSCAN", "s", "0")
    diff.check("ZSCAN", "s", "x")
    big = {f"m{i}": i * 0.5 for i in range(1000)}
    r.zadd("big", big)
    cursor, seen = 0, {}
    while True:
        cursor, items = r.zscan("big", cursor, count=50)
        seen.update({k.decode(): v for k, v in items})
        if cursor == 0:
            break
    assert seen == big


def test_object_encoding_follows_redis(diff):
    """listpack until a set outgrows zset-max-listpack-entries/value, then skiplist for good."""
    diff.check("ZADD", "small", *[x for i in range(128) for x in (str(i), f"m{i}")])
    assert diff.check("OBJECT", "ENCODING", "small")[1] == b"listpack"
    diff.check("ZADD", "small", "1", "one-more")
    assert diff.check("OBJECT", "ENCODING", "small")[1] == b"skiplist"
    diff.check("ZPOPMIN", "small", "100")
    assert diff.check("OBJECT", "ENCODING", "small")[1] == b"skiplist"
    diff.check("ZADD", "long", "1", "x" * 65)
    diff.check("OBJECT", "ENCODING", "long")
    diff.check("ZRANGESTORE", "copy", "small", "0", "3")
    assert diff.check("OBJECT", "ENCODING", "copy")[1] == b"listpack"
    diff.check("ZUNIONSTORE", "u", "2", "small", "long")
    diff.check("OBJECT", "ENCODING", "u")
    diff.check("ZINTERSTORE", "i", "1", "small")
    diff.check("OBJECT", "ENCODING", "i")
    diff.check("ZSCAN", "copy", "0")


def test_value_copy_is_independent():
    zset = ZSet()
    zset.insert(b"a", 1.0)
    clone = zset.copy()
    clone.insert(b"b", 2.0)
    clone.update(b"a", 1.0, 5.0)
    assert len(zset) == 1 and list(zset.order) == [(1.0, b"a")]
    assert list(clone.order) == [(2.0, b"b"), (5.0, b"a")]


def test_keyspace_notifications(postroom_server, oracle_server):
    """Events (zadd, zincr, zrem, zpopmin, zremrangeby*, zrangestore, z*store, del) as Redis emits them."""
    script = [
        ("ZADD", "k", "1", "a", "2", "b", "3", "c"), ("ZADD", "k", "1", "a"), ("ZINCRBY", "k", "1", "a"),
        ("ZADD", "k", "XX", "5", "nothere"), ("ZREM", "k", "nothere"), ("ZREM", "k", "a"), ("ZPOPMIN", "k"),
        ("ZPOPMAX", "k", "0"), ("ZADD", "k", "1", "x", "2", "y"), ("ZREMRANGEBYRANK", "k", "0", "0"),
        ("ZREMRANGEBYSCORE", "k", "100", "200"), ("ZADD", "k", "0", "p", "0", "q"),
        ("ZREMRANGEBYLEX", "k", "[p", "[p"), ("ZRANGESTORE", "d", "k", "0", "-1"),
        ("ZUNIONSTORE", "d", "2", "k", "d"), ("ZINTERSTORE", "d", "1", "nokey"), ("ZDIFFSTORE", "e", "1", "k"),
        ("ZMPOP", "1", "k", "MAX", "COUNT", "10"), ("ZPOPMIN", "e"), ("ZREM", "e", "x"),
    ]
    logs = []
    for port in (postroom_server.port, oracle_server.port):
        admin = RawClient(port)
        admin.call("FLUSHALL")
        admin.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        listener = RawClient(port)
        listener.call("PSUBSCRIBE", "__key*@0__:*")
        listener.call("SUBSCRIBE", "end")
        for command in script:
            admin.call(*command)
        admin.call("PUBLISH", "end", "x")
        events = []
        while True:
            message = listener.read()
            if message[1][0][1] == b"message":
                break
            if message[1][0][1] == b"pmessage":
                events.append((message[1][2][1], message[1][3][1]))
        logs.append(events)
        admin.call("CONFIG", "SET", "notify-keyspace-events", "")
        admin.close()
        listener.close()
    assert logs[0] == logs[1]


# -- generated command sequences ------------------------------------------------------------------

MEMBERS = st.sampled_from(["a", "b", "c", "d", "e", "f", "aa", "ab", ""])
KEYS = st.sampled_from(["k1", "k2", "k3"])
SCORE = st.sampled_from(SCORES)
RANK = st.integers(-6, 6).map(str)
BOUND = st.sampled_from(["-inf", "+inf", "0", "1", "(1", "2.5", "(-1", "3", "(inf"])
LEX = st.sampled_from(["-", "+", "[a", "(a", "[b", "(c", "[aa", "[", "(f"])


def _command(draw) -> tuple:
    key = draw(KEYS)
    kind = draw(st.integers(0, 21))
    if kind == 0:
        opts = draw(st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH"]), max_size=2, unique=True))
        pairs = draw(st.lists(st.tuples(SCORE, MEMBERS), min_size=1, max_size=4))
        return ("ZADD", key, *opts, *[x for pair in pairs for x in pair])
    if kind == 1:
        return ("ZINCRBY", key, draw(SCORE), draw(MEMBERS))
    if kind == 2:
        return ("ZREM", key, *draw(st.lists(MEMBERS, min_size=1, max_size=3)))
    if kind == 3:
        return ("ZRANGE", key, draw(RANK), draw(RANK), *draw(st.sampled_from([(), ("WITHSCORES",), ("REV",)])))
    if kind == 4:
        return ("ZRANGEBYSCORE", key, draw(BOUND), draw(BOUND), "WITHSCORES", "LIMIT", draw(RANK), draw(RANK))
    if kind == 5:
        return ("ZREVRANGEBYSCORE", key, draw(BOUND), draw(BOUND))
    if kind == 6:
        return ("ZRANGEBYLEX", key, draw(LEX), draw(LEX))
    if kind == 7:
        return ("ZREVRANGEBYLEX", key, draw(LEX), draw(LEX), "LIMIT", "0", draw(RANK))
    if kind == 8:
        return ("ZRANK", key, draw(MEMBERS))
    if kind == 9:
        return ("ZREVRANK", key, draw(MEMBERS))
    if kind == 10:
        return ("ZCOUNT", key, draw(BOUND), draw(BOUND))
    if kind == 11:
        return ("ZLEXCOUNT", key, draw(LEX), draw(LEX))
    if kind == 12:
        return (draw(st.sampled_from(["ZPOPMIN", "ZPOPMAX"])), key, *draw(st.sampled_from([(), ("0",), ("2",)])))
    if kind == 13:
        return ("ZREMRANGEBYRANK", key, draw(RANK), draw(RANK))
    if kind == 14:
        return ("ZREMRANGEBYSCORE", key, draw(BOUND), draw(BOUND))
    if kind == 15:
        return ("ZREMRANGEBYLEX", key, draw(LEX), draw(LEX))
    if kind == 16:
        name = draw(st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"]))
        agg = () if name == "ZDIFF" else ("AGGREGATE", draw(st.sampled_from(["SUM", "MIN", "MAX"])))
        return (name, "2", key, draw(KEYS), *agg, "WITHSCORES")
    if kind == 17:
        name = draw(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]))
        return (name, draw(KEYS), "2", key, draw(KEYS))
    if kind == 18:
        return ("ZRANGESTORE", draw(KEYS), key, draw(BOUND), draw(BOUND), "BYSCORE")
    if kind == 19:
        return ("ZMPOP", "2", key, draw(KEYS), draw(st.sampled_from(["MIN", "MAX"])), "COUNT", "2")
    if kind == 20:
        return ("ZMSCORE", key, draw(MEMBERS), draw(MEMBERS))
    return ("ZCARD", key)


commands = st.composite(lambda draw: _command(draw))()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(commands, min_size=1, max_size=25))
def test_generated_sequences(diff, sequence):
    diff.check("FLUSHALL")
    for command in sequence:
        diff.check(*command)
    for key in ("k1", "k2", "k3"):
        diff.check("ZRANGE", key, "0", "-1", "WITHSCORES")


def test_edge_values(diff):
    big, small = "9223372036854775807", "-9223372036854775808"
    seed(diff)
    diff.check("ZADD", "z", "1", "", "1e-5", "tiny", "0.30000000000000004", "sum")
    for command in (
        ("ZRANGE", "z", "0", big, "WITHSCORES"), ("ZRANGE", "z", small, "-1"), ("ZRANGE", "z", small, big),
        ("ZRANGE", "z", "0", "9223372036854775808"), ("ZREMRANGEBYRANK", "z", small, small),
        ("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", big, big), ("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0", big),
        ("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", small, "1"), ("ZRANGEBYLEX", "z", "-", "+", "LIMIT", "0", "-5"),
        ("ZRANGE", "z", "(1", "5", "BYSCORE", "LIMIT", "0", "-1", "WITHSCORES"), ("ZRANGE", "z", "+inf", "(inf", "BYSCORE"),
        ("ZRANGE", "z", "(inf", "+inf", "BYSCORE"), ("ZRANGESTORE", "d", "z", "0", "-1", "BYLEX"),
        ("ZPOPMIN", "nokey", big), ("ZINTERCARD", "1", "z", "LIMIT", big), ("ZUNION", big, "z"),
        ("ZDIFF", "2", "z", "z", "WITHSCORES"), ("ZRANDMEMBER", "z", big), ("ZRANDMEMBER", "z", big, "WITHSCORES"),
        ("ZMPOP", big, "z", "MIN"), ("ZCOUNT", "z", "(-inf", "(+inf"), ("ZSCORE", "z", ""), ("ZRANK", "z", ""),
        ("ZADD", "z", "0x1p-3", "hexa"), ("ZADD", "z", "1.", "dot"), ("ZADD", "z", ".5", "half"), ("ZADD", "z", ".", "x"),
        ("ZADD", "z", "+.5e1", "plus"), ("ZADD", "z", "infinity", "infinite"), ("ZADD", "z", "-INF", "minf"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZPOPMAX", "z", big),
    ):
        diff.check(*command)
    for low, high in (("(1", b"2\x00x"), (b"\x00", "3"), (b"(\x001", "+inf")):
        diff.check("ZCOUNT", "z", low, high)
    diff.check("ZADD", "z", b"1\x00", "nul")
    diff.check("ZADD", "one", "5", "only")
    diff.check("ZRANDMEMBER", "one", "-3", "WITHSCORES")
    diff.check("ZRANDMEMBER", "one", "1")


def test_weights_and_aggregates_with_infinities(diff):
    diff.check("ZADD", "a", "inf", "x", "-inf", "y", "0", "z", "1", "w")
    diff.check("ZADD", "b", "-inf", "x", "inf", "y", "0", "z", "2", "w")
    for weights in (("1", "1"), ("0", "1"), ("inf", "1"), ("-inf", "0"), ("0.1", "0.2"), ("-0", "-0")):
        for aggregate in ("SUM", "MIN", "MAX"):
            diff.check("ZUNION", "2", "a", "b", "WEIGHTS", *weights, "AGGREGATE", aggregate, "WITHSCORES")
            diff.check("ZINTER", "2", "a", "b", "WEIGHTS", *weights, "AGGREGATE", aggregate, "WITHSCORES")
    diff.check("ZUNIONSTORE", "d", "3", "a", "b", "a", "WEIGHTS", "0.1", "0.2", "0.3")
    diff.check("ZRANGE", "d", "0", "-1", "WITHSCORES")
    diff.check("ZINTERSTORE", "d", "2", "a", "a", "WEIGHTS", "2", "3")
    diff.check("ZRANGE", "d", "0", "-1", "WITHSCORES")


def _pairs(flat: list) -> list:
    return sorted(zip(flat[::2], flat[1::2], strict=True))


def test_listpack_limits_from_config(diff):
    """CONFIG SET zset-max-listpack-* changes when sets convert (and with it -0 and ZSCAN shape)."""
    try:
        diff.check("CONFIG", "SET", "zset-max-listpack-entries", "0")
        diff.check("ZADD", "z", "-0", "neg", "1", "a")
        diff.check("ZSCORE", "z", "neg")
        diff.check("ZADD", "z", "INCR", "-0", "a2")
        diff.check("ZRANGE", "z", "0", "-1", "WITHSCORES")
        diff.check("CONFIG", "SET", "zset-max-listpack-entries", "3")
        diff.check("CONFIG", "SET", "zset-max-listpack-value", "2")
        diff.check("ZADD", "y", "-0", "a", "1", "b", "2", "c")
        diff.check("ZADD", "y", "-0", "d")
        diff.check("ZADD", "y", "-0", "e")
        diff.check("ZADD", "x", "-0", "abc", "-0", "b")
        diff.check("ZSCORE", "x", "b")
        diff.check("ZADD", "x", "-0", "c", "-0", "d", "-0", "e")
        diff.check("ZRANGESTORE", "r", "x", "0", "-1")  # a listpack until the 4th member: 3 lose the sign
        diff.check("ZRANGE", "r", "0", "-1", "WITHSCORES")
        diff.check("ZUNIONSTORE", "u", "1", "x")
        diff.check("ZRANGE", "u", "0", "-1", "WITHSCORES")
        diff.check("ZUNIONSTORE", "u", "1", "x", "WEIGHTS", "1")
        diff.check("ZRANGESTORE", "r", "x", "0", "1")
        diff.check("ZRANGE", "r", "0", "-1", "WITHSCORES")
        for key in ("x", "y"):
            diff.check("ZRANGE", key, "0", "-1", "WITHSCORES")
            ours, theirs = diff.both("ZSCAN", key, "0", "COUNT", "100")
            assert ours[1][0] == theirs[1][0] == ("$", b"0")
            assert _pairs(ours[1][1][1]) == _pairs(theirs[1][1][1])
    finally:
        diff.check("CONFIG", "SET", "zset-max-listpack-entries", "128")
        diff.check("CONFIG", "SET", "zset-max-listpack-value", "64")


def _scored(pairs) -> list[tuple[bytes, float]]:
    """redis-py gives tuples in RESP2 and lists in RESP3, float or bytes scores: compare the values."""
    return [(member, float(score)) for member, score in pairs]


def test_redis_py_unchanged(r):
    """redis-py 8's sorted set helpers work over our RESP2 and RESP3 replies."""
    assert r.zadd("z", {"a": 1, "b": 2.5, "c": -3}) == 3
    assert r.zadd("z", {"a": 10}, gt=True, ch=True) == 1
    assert r.zincrby("z", 0.5, "b") == 3.0
    assert _scored(r.zrange("z", 0, -1, withscores=True)) == [(b"c", -3.0), (b"b", 3.0), (b"a", 10.0)]
    assert r.zrange("z", "(0", "+inf", byscore=True, offset=0, num=1) == [b"b"]
    assert _scored(r.zrevrangebyscore("z", "+inf", "-inf", withscores=True, start=1, num=1)) == [(b"b", 3.0)]
    assert r.zscore("z", "a") == 10.0
    assert r.zmscore("z", ["a", "nothere"]) == [10.0, None]
    assert r.zrank("z", "a") == 2 and r.zrevrank("z", "a") == 0
    assert r.zcount("z", "-inf", "(10") == 2
    assert _scored(r.zpopmin("z", 1)) == [(b"c", -3.0)]
    assert _scored(r.zpopmax("z", 2)) == [(b"a", 10.0), (b"b", 3.0)]
    assert r.zcard("z") == 0
    r.zadd("x", {"m": 1, "n": 2})
    r.zadd("y", {"n": 3, "o": 4})
    assert r.zunionstore("u", ["x", "y"], aggregate="MAX") == 3
    assert _scored(r.zrange("u", 0, -1, withscores=True)) == [(b"m", 1.0), (b"n", 3.0), (b"o", 4.0)]
    assert _scored(r.zinter(["x", "y"], withscores=True)) == [(b"n", 5.0)]
    assert r.zdiff(["x", "y"]) == [b"m"]
    assert r.zintercard(2, ["x", "y"]) == 1
    assert {m: float(s) for m, s in r.zscan_iter("u")} == {b"m": 1.0, b"n": 3.0, b"o": 4.0}
    key, popped = r.zmpop(2, ["nothere", "u"], min=True, count=2)
    assert key == b"u" and _scored(popped) == [(b"m", 1.0), (b"n", 3.0)]
    key, member, score = r.bzpopmin(["nothere", "u"], timeout=1)
    assert (key, member, float(score)) == (b"u", b"o", 4.0)
    assert r.bzmpop(0.01, 1, ["u"], max=True) is None


def test_zscan_guarantee_under_writes(r):
    """Members present for a whole ZSCAN are all returned, whatever is added or removed meanwhile."""
    r.zadd("big", {f"keep{i}": i for i in range(600)})
    r.zadd("big", {f"gone{i}": i for i in range(300)})
    cursor, seen, step = 0, set(), 0
    while True:
        cursor, items = r.zscan("big", cursor, count=25)
        seen.update(member for member, _ in items)
        r.zrem("big", f"gone{step}", f"gone{step + 150}")
        r.zadd("big", {f"new{step}": -step})
        step += 1
        if cursor == 0:
            break
    assert {f"keep{i}".encode() for i in range(600)} <= seen
    assert step > 20  # it really took many steps, with writes in between
