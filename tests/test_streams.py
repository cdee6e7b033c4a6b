"""Differential tests of the stream log commands (XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID,
XREAD without blocking, XINFO STREAM) against redis-server, in RESP2 and RESP3."""

from __future__ import annotations

import pytest

from postroom.keyspace.stream import Stream


def test_xadd_ids_and_errors(diff):
    diff.check_all([
        ("XADD", "s", "1-1", "a", "1", "b", "2"),
        ("XADD", "s", "1-2", "a", "3", "b", "4"),
        ("XADD", "s", "1-*", "a", "3"),
        ("XADD", "s", "1-1", "a", "1"),
        ("XADD", "s", "0-0", "a", "1"),
        ("XADD", "new", "0-0", "a", "1"),
        ("XADD", "new", "0-*", "a", "1"),
        ("XADD", "s", "2", "a", "1"),
        ("XADD", "s", "3-0", "c", "1", "d", "2", "e", "3"),
        ("XADD", "s", "a"),
        ("XADD", "s", "*", "a"),
        ("XADD", "s", "5-0", "a", "1", "b"),
        ("XADD", "s", "5-x", "a", "1"),
        ("XADD", "s", "-5", "a", "1"),
        ("XADD", "s", "+", "a", "1"),
        ("XADD", "s", "-", "a", "1"),
        ("XADD", "s", "+7-1", "a", "1"),
        ("XADD", "s", "18446744073709551616-1", "a", "1"),
        ("XADD", "s", "9223372036854775808-1", "a", "1"),
        ("XADD", "s", "9223372036854775808-*", "a", "1"),
        ("XADD", "s", "18446744073709551615-18446744073709551615", "a", "1"),
        ("XADD", "s", "*", "a", "1"),
        ("XADD", "s", "18446744073709551615-*", "a", "1"),
        ("XADD", "t", "NOMKSTREAM", "*", "a", "1"),
        ("EXISTS", "t"),
        ("XADD", "t", "NOMKSTREAM", "MAXLEN", "5", "*", "a", "1"),
        ("XLEN", "s"),
        ("XLEN", "nokey"),
        ("XRANGE", "s", "-", "+"),
        ("XRANGE", "new", "-", "+"),
    ])


def test_xadd_star_generates_increasing_ids(diff):
    ours, theirs = diff.both("XADD", "s", "*", "f", "v")
    assert ours[0] == theirs[0] == "$"
    ms, seq = (int(x) for x in ours[1].split(b"-"))
    for _ in range(5):
        reply = diff.ours.call("XADD", "s", "*", "f", "v")
        new_ms, new_seq = (int(x) for x in reply[1].split(b"-"))
        assert (new_ms, new_seq) > (ms, seq)
        ms, seq = new_ms, new_seq
    far = f"{ms + 10_000_000}-5"
    diff.ours.call("XADD", "s", far, "f", "v")
    assert diff.ours.call("XADD", "s", "*", "f", "v") == ("$", f"{ms + 10_000_000}-6".encode())
    diff.ours.call("XADD", "s", f"{ms + 10_000_000}-*", "f", "v")
    assert diff.ours.call("XLEN", "s") == (":", b"9")


def test_xadd_option_errors(diff):
    diff.check_all([
        ("XADD", "s", "MAXLEN", "1", "MINID", "2", "*", "a", "1"),
        ("XADD", "s", "LIMIT", "10", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "3", "LIMIT", "10", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "-1", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "x", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "~", "3", "LIMIT", "-1", "*", "a", "1"),
        ("XADD", "s", "MINID", "foo", "*", "a", "1"),
        ("XADD", "s", "MINID", "-", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "5"),
        ("XADD", "s", "NOMKSTREAM", "MAXLEN", "5"),
        ("EXISTS", "s"),
    ])


@pytest.mark.parametrize("strategy", ["MAXLEN", "MINID"])
def test_xadd_trimming(diff, strategy):
    for i in range(1, 351):
        diff.check("XADD", "s", f"{i}-1", "f", str(i))
    threshold = {"MAXLEN": ("300", "250", "120"), "MINID": ("51", "100", "230")}[strategy]
    diff.check("XADD", "s", strategy, threshold[0], "400-1", "f", "x")
    diff.check("XADD", "s", strategy, "~", threshold[1], "401-1", "f", "x")
    diff.check("XADD", "s", strategy, "~", threshold[2], "LIMIT", "100", "402-1", "f", "x")
    diff.check("XADD", "s", strategy, "=", threshold[2], "403-1", "f", "x")
    diff.check("XLEN", "s")
    diff.check("XRANGE", "s", "-", "+", "COUNT", "3")
    diff.check("XINFO", "STREAM", "s")


def test_ranges(diff):
    for i in range(1, 30):
        diff.check("XADD", "s", f"{i // 3}-{i % 3}", "f", str(i), *(["g", "x"] if i % 4 == 0 else []))
    diff.check_all([
        ("XRANGE", "s", "-", "+"),
        ("XRANGE", "s", "-", "+", "COUNT", "2"),
        ("XRANGE", "s", "-", "+", "COUNT", "0"),
        ("XRANGE", "s", "-", "+", "COUNT", "-1"),
        ("XRANGE", "s", "-", "+", "count", "5", "COUNT", "3"),
        ("XRANGE", "s", "(1-1", "+", "COUNT", "4"),
        ("XRANGE", "s", "-", "(4"),
        ("XRANGE", "s", "(4", "(5"),
        ("XRANGE", "s", "(-", "+"),
        ("XRANGE", "s", "-", "(+"),
        ("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
        ("XRANGE", "s", "-", "(0-0"),
        ("XRANGE", "s", "2", "3"),
        ("XRANGE", "s", "3", "2"),
        ("XRANGE", "s", "5-1", "5-1"),
        ("XRANGE", "s", "-", "+", "FOO"),
        ("XRANGE", "s", "-", "+", "COUNT"),
        ("XRANGE", "s", "-", "+", "COUNT", "x"),
        ("XRANGE", "s", "x", "+"),
        ("XRANGE", "nokey", "-", "+"),
        ("XRANGE", "nokey", "-", "+", "COUNT", "0"),
        ("XREVRANGE", "s", "+", "-"),
        ("XREVRANGE", "s", "+", "-", "COUNT", "2"),
        ("XREVRANGE", "s", "(4", "-", "COUNT", "5"),
        ("XREVRANGE", "s", "4", "(2-2"),
        ("XREVRANGE", "s", "-", "+"),
        ("XREVRANGE", "s", "+", "-", "COUNT", "0"),
    ])


def test_xdel_and_tombstones(diff):
    for i in range(1, 250):
        diff.check("XADD", "s", f"{i}-0", "f", str(i))
    diff.check_all([
        ("XDEL", "s", "3-0"),
        ("XDEL", "s", "3-0", "1-0", "2-0", "200-0"),
        ("XDEL", "nokey", "1-1"),
        ("XDEL", "nokey", "bad"),
        ("XDEL", "s", "foo"),
        ("XDEL", "s", "5-0", "foo"),
        ("XDEL", "s", *[f"{i}-0" for i in range(100, 201)]),
        ("XLEN", "s"),
        ("XRANGE", "s", "95", "205"),
        ("XREVRANGE", "s", "205", "95"),
        ("XINFO", "STREAM", "s"),
        ("XDEL", "s", *[f"{i}-0" for i in range(1, 250)]),
        ("XLEN", "s"),
        ("EXISTS", "s"),
        ("XINFO", "STREAM", "s"),
        ("XADD", "s", "5-0", "f", "v"),
        ("XADD", "s", "300-0", "f", "v"),
        ("XINFO", "STREAM", "s"),
    ])


def test_xtrim(diff):
    for i in range(1, 500):
        diff.check("XADD", "s", f"{i}-0", "f", str(i), "g", "v")
    diff.check_all([
        ("XTRIM", "s"),
        ("XTRIM", "s", "MAXLEN"),
        ("XTRIM", "s", "FOO", "1"),
        ("XTRIM", "s", "MAXLEN", "1", "FOO"),
        ("XTRIM", "s", "MAXLEN", "-1"),
        ("XTRIM", "s", "MAXLEN", "10", "LIMIT", "10"),
        ("XTRIM", "s", "MINID", "(5"),
        ("XTRIM", "nokey", "MAXLEN", "0"),
        ("XTRIM", "s", "MAXLEN", "~", "420"),
        ("XTRIM", "s", "MAXLEN", "~", "100", "LIMIT", "150"),
        ("XTRIM", "s", "MAXLEN", "~", "100", "LIMIT", "0"),
        ("XTRIM", "s", "MAXLEN", "450"),
        ("XTRIM", "s", "MINID", "~", "410"),
        ("XTRIM", "s", "MINID", "410"),
        ("XTRIM", "s", "MINID", "=", "412-0"),
        ("XTRIM", "s", "MAXLEN", "=", "50"),
        ("XLEN", "s"),
        ("XINFO", "STREAM", "s"),
        ("XRANGE", "s", "-", "+", "COUNT", "2"),
        ("XTRIM", "s", "MAXLEN", "0"),
        ("XINFO", "STREAM", "s"),
        ("SET", "str", "x"),
        ("XTRIM", "str", "MAXLEN", "0"),
    ])


def test_xsetid(diff):
    diff.check_all([
        ("XSETID", "nokey", "1-1"),
        ("XADD", "s", "5-5", "a", "1"),
        ("XADD", "s", "6-6", "a", "1"),
        ("XSETID", "s", "1-1"),
        ("XSETID", "s", "6-5"),
        ("XSETID", "s", "-"),
        ("XSETID", "s", "99-0"),
        ("XADD", "s", "98-0", "a", "1"),
        ("XADD", "s", "99-*", "a", "1"),
        ("XSETID", "s", "100-0", "ENTRIESADDED", "0"),
        ("XSETID", "s", "100-0", "ENTRIESADDED", "-5"),
        ("XSETID", "s", "100-0", "ENTRIESADDED", "x"),
        ("XSETID", "s", "100-0", "MAXDELETEDID", "200-0"),
        ("XSETID", "s", "100-0", "ENTRIESADDED", "10", "MAXDELETEDID", "50-0"),
        ("XSETID", "s", "100-0", "FOO"),
        ("XSETID", "s", "100-0", "ENTRIESADDED"),
        ("XINFO", "STREAM", "s"),
        ("XDEL", "s", "99-1"),
        ("XSETID", "s", "99-0"),
        ("XDEL", "s", "5-5", "6-6"),
        ("XSETID", "s", "50-0"),
        ("XSETID", "s", "150-0"),
        ("XINFO", "STREAM", "s"),
        ("SET", "str", "x"),
        ("XSETID", "str", "1-1"),
    ])


def test_empty_stream_survives(diff):
    diff.check_all([
        ("XADD", "e", "5-5", "x", "y"),
        ("XDEL", "e", "5-5"),
        ("EXISTS", "e"),
        ("TYPE", "e"),
        ("XLEN", "e"),
        ("XRANGE", "e", "-", "+"),
        ("XINFO", "STREAM", "e"),
        ("XINFO", "STREAM", "e", "FULL"),
        ("XADD", "e", "5-5", "x", "y"),
        ("XADD", "e", "6-0", "x", "y", "MAXLEN", "0"),
    ])


def test_wrong_type(diff):
    diff.check("SET", "str", "x")
    for cmd in (("XADD", "str", "*", "a", "1"), ("XLEN", "str"), ("XRANGE", "str", "-", "+"),
                ("XREVRANGE", "str", "+", "-"), ("XDEL", "str", "1-1"), ("XREAD", "STREAMS", "str", "0"),
                ("XINFO", "STREAM", "str"), ("XGROUP", "CREATE", "str", "g", "$"), ("XACK", "str", "g", "1-1"),
                ("XPENDING", "str", "g"), ("XCLAIM", "str", "g", "c", "0", "1-1"),
                ("XAUTOCLAIM", "str", "g", "c", "0", "0"), ("XINFO", "GROUPS", "str")):
        diff.check(*cmd)


def test_xread_without_blocking(diff):
    diff.check_all([
        ("XREAD", "STREAMS", "s", "0"),
        ("XADD", "s", "1-1", "a", "1"),
        ("XADD", "s", "1-2", "a", "2"),
        ("XADD", "e", "7-1", "b", "1"),
        ("XREAD", "STREAMS", "s", "0"),
        ("XREAD", "COUNT", "1", "STREAMS", "s", "e", "0", "0"),
        ("XREAD", "COUNT", "0", "STREAMS", "s", "e", "0", "7-0"),
        ("XREAD", "COUNT", "-3", "STREAMS", "s", "1-1"),
        ("XREAD", "STREAMS", "s", "$"),
        ("XREAD", "STREAMS", "s", "1-2"),
        ("XREAD", "STREAMS", "s", "18446744073709551615-18446744073709551615"),
        ("XREAD", "STREAMS", "s"),
        ("XREAD", "STREAMS", "s", "e", "0"),
        ("XREAD", "STREAMS", "s", ">"),
        ("XREAD", "STREAMS", "s", "-"),
        ("XREAD", "STREAMS", "s", "x"),
        ("XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"),
        ("XREAD", "NOACK", "STREAMS", "s", "0"),
        ("XREAD", "FOO"),
        ("XREAD", "COUNT", "x", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "x", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "-1", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "1.5", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "10", "STREAMS", "s", "0"),
        ("XREAD", "STREAMS", "nokey", "0"),
        ("XREAD", "STREAMS", "nokey", "s", "0", "0"),
        ("XREAD", "COUNT", "1"),
    ])


def test_xread_plus_reads_the_last_entry(r):
    """XREAD ``+`` (Redis 7.4): the last entry of each stream; streams without entries are left out."""
    assert r.xread({"s": "+"}) in ([], {})
    r.xadd("s", {"a": "1"}, id="1-1")
    r.xadd("s", {"a": "2"}, id="1-2")
    r.xadd("t", {"b": "1"}, id="3-0")
    reply = r.execute_command("XREAD", "STREAMS", "s", "t", "+", "+")
    expected = {b"s": [(b"1-2", {b"a": b"2"})], b"t": [(b"3-0", {b"b": b"1"})]}
    if isinstance(reply, dict):  # RESP3: a map of stream to a one-element list of entry lists
        assert {k: v[0] for k, v in reply.items()} == expected
    else:
        assert dict(reply) == expected
    r.xdel("t", "3-0")
    reply = r.execute_command("XREAD", "STREAMS", "t", "s", "+", "+")
    assert list(reply)[0] in (b"s", [b"s", [(b"1-2", {b"a": b"2"})]])


def test_xinfo_stream(diff):
    diff.check_all([
        ("XINFO", "STREAM", "nokey"),
        ("XINFO", "STREAM", "nokey", "FULL", "COUNT"),
    ])
    for i in range(1, 260):
        diff.check("XADD", "s", f"{i * 1000}-{i % 7}", "f", str(i), *(["g", "x"] if i % 5 == 0 else []))
    diff.check_all([
        ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "s", "FULL"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "3"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "0"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "-1"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
        ("XINFO", "STREAM", "s", "FULL", "FOO", "1"),
        ("XINFO", "STREAM", "s", "FOO"),
        ("XINFO", "STREAM"),
        ("XINFO", "FOO"),
        ("XINFO", "HELP"),
        ("XINFO", "HELP", "x"),
    ])


def test_big_values_split_nodes(diff):
    big = "v" * 3000
    for i in range(1, 12):
        diff.check("XADD", "s", f"{i}-0", "f", big, "n", str(i))
    diff.check("XADD", "s", "20-0", "f", "x" * 70000)
    diff.check("XRANGE", "s", "-", "+")
    diff.check("XREVRANGE", "s", "+", "-", "COUNT", "4")
    diff.check("XLEN", "s")
    diff.check("XINFO", "STREAM", "s")


def test_keyspace_events(diff, postroom_server, oracle_server):
    subscribers = []
    for client in (diff.ours, diff.theirs):
        client.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
    from .support.resp import RawClient

    for port in (postroom_server.port, oracle_server.port):
        sub = RawClient(port)
        sub.call("PSUBSCRIBE", "__keyevent@0__:*")
        subscribers.append(sub)
    try:
        commands = [
            ("XADD", "s", "1-1", "a", "1"),
            ("XADD", "s", "MAXLEN", "1", "2-1", "a", "1"),
            ("XDEL", "s", "2-1"),
            ("XDEL", "s", "2-1"),
            ("XADD", "s", "3-1", "a", "1"),
            ("XTRIM", "s", "MAXLEN", "0"),
            ("XSETID", "s", "9-9"),
            ("XGROUP", "CREATE", "s", "g", "$"),
            ("XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"),
            ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
            ("XGROUP", "SETID", "s", "g", "0"),
            ("XADD", "s", "10-1", "a", "1"),
            ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
            ("XGROUP", "DELCONSUMER", "s", "g", "c"),
            ("XGROUP", "DESTROY", "s", "g"),
            ("SET", "done", "x"),
        ]
        for command in commands:
            diff.check(*command)
        events = []
        for sub in subscribers:
            got = []
            while True:
                message = sub.read()
                got.append(message)
                if message[1][2][1] == b"__keyevent@0__:set" or len(got) > 50:
                    break
            events.append(got)
        assert events[0] == events[1]
    finally:
        for sub in subscribers:
            sub.close()
        for client in (diff.ours, diff.theirs):
            client.call("CONFIG", "SET", "notify-keyspace-events", "")


def test_node_packing_and_copy(postroom_server):
    """The storage keeps one schema per node, flags deletions in place and copies deeply."""

    def build():
        stream = Stream()
        argv = [b"XADD", b"k", b"*", b"f1", b"a", b"f2", b"b"]
        for i in range(1, 251):
            argv[4] = b"%d" % i
            stream.append(i << 64, argv, 3, 100, 4096)
        stream.append(251 << 64, [b"x", b"y"], 0, 100, 4096)
        return stream

    stream = build()
    assert len(stream.keys) == 3 and stream.nodes[0].fields == [b"f1", b"f2"]
    assert stream.range(5 << 64, 7 << 64) == [(i << 64, [b"f1", b"%d" % i, b"f2", b"b"]) for i in (5, 6, 7)]
    assert stream.range(0, (1 << 128) - 1, 2, reverse=True) == [(251 << 64, [b"x", b"y"]), (250 << 64, [
        b"f1", b"250", b"f2", b"b"])]
    clone = stream.copy()
    for i in range(1, 80):
        assert stream.delete(i << 64)
    assert not stream.delete(3 << 64)
    assert stream.length == 172 and clone.length == 251
    assert len(stream.nodes[0].buf) < len(clone.nodes[0].buf)  # the sealed node was compacted
    assert stream.range(0, 81 << 64)[0][0] == 80 << 64
    assert clone.get(3 << 64) == [b"f1", b"3", b"f2", b"b"]
