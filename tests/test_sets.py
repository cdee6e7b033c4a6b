"""Set commands against the oracle in RESP2 and RESP3, random commands checked by shape and
membership, and hypothesis-generated sequences."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.events import keyspace_events, propagated
from .support.requires import require


def shape(reply):
    """Type and length of a reply whose content is random."""
    kind, payload = reply
    return kind, len(payload) if isinstance(payload, list) else payload


def test_add_remove_members(diff):
    diff.check_all([
        ("SADD", "s", "a", "b", "c", "a"),
        ("SADD", "s", "a"),
        ("SADD", "s", "d"),
        ("SCARD", "s"),
        ("SCARD", "missing"),
        ("SISMEMBER", "s", "a"),
        ("SISMEMBER", "s", "z"),
        ("SISMEMBER", "missing", "a"),
        ("SMISMEMBER", "s", "a", "z", "b"),
        ("SMISMEMBER", "missing", "a"),
        ("SREM", "s", "a", "z"),
        ("SREM", "s", "zz"),
        ("SREM", "missing", "a"),
        ("SREM", "s", "b", "c", "d"),
        ("SCARD", "s"),
        ("SMEMBERS", "missing"),
        ("SADD", "s"),
        ("SMISMEMBER", "s"),
    ])
    diff.check("SADD", "t", "x", "y", "z")
    diff.check("SMEMBERS", "t", sort=True)


def test_intsets_list_in_numeric_order(diff):
    diff.check("SADD", "i", "10", "-5", "3", "100", "0", "-100")
    diff.check("SMEMBERS", "i")
    diff.check("SADD", "j", "3", "4", "-5")
    diff.check("SUNION", "i", "j")
    diff.check("SINTER", "i", "j")
    diff.check("SDIFF", "i", "j")
    diff.check("SINTERSTORE", "k", "i", "j")
    diff.check("SMEMBERS", "k")


def test_wrong_type(diff):
    diff.check("SET", "str", "v")
    diff.check("SADD", "s", "a")
    for command in [
        ("SADD", "str", "a"), ("SREM", "str", "a"), ("SMEMBERS", "str"), ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"), ("SCARD", "str"), ("SPOP", "str"), ("SPOP", "str", "2"),
        ("SRANDMEMBER", "str"), ("SRANDMEMBER", "str", "2"), ("SMOVE", "str", "s", "a"), ("SMOVE", "s", "str", "a"),
        ("SMOVE", "missing", "str", "a"), ("SINTER", "s", "str"), ("SINTER", "missing", "str"),
        ("SUNION", "s", "str"), ("SDIFF", "s", "str"), ("SDIFF", "missing", "str"), ("SINTERSTORE", "d", "s", "str"),
        ("SUNIONSTORE", "d", "str"), ("SDIFFSTORE", "d", "str"), ("SINTERCARD", "2", "s", "str"), ("SSCAN", "str", "0"),
    ]:
        diff.check(*command)


def test_smove(diff):
    diff.check_all([
        ("SADD", "a", "1", "2", "x"),
        ("SMOVE", "a", "b", "1"),
        ("SMOVE", "a", "b", "nope"),
        ("SMOVE", "missing", "b", "1"),
        ("SMOVE", "a", "a", "2"),
        ("SMOVE", "a", "a", "nope"),
        ("SMOVE", "a", "b", "1"),
        ("SMOVE", "a", "b", "2"),
        ("SMOVE", "a", "b", "x"),
        ("EXISTS", "a"),
        ("SMOVE", "b", "c", "x"),
    ])
    diff.check("SMEMBERS", "b", sort=True)
    diff.check("SMEMBERS", "c", sort=True)


def test_algebra(diff):
    diff.check("SADD", "a", "a", "b", "c", "d", "1")
    diff.check("SADD", "b", "c", "d", "e")
    diff.check("SADD", "c", "d", "e", "f", "1")
    for name in ("SINTER", "SUNION", "SDIFF"):
        for keys in (("a",), ("a", "b"), ("a", "b", "c"), ("b", "a"), ("a", "missing"), ("missing", "a")):
            diff.check(name, *keys, sort=True)
            diff.check(name + "STORE", "dest", *keys)
            diff.check("SMEMBERS", "dest", sort=True)
    diff.check("SET", "dest", "x")
    diff.check("EXPIRE", "dest", "100")
    diff.check("SUNIONSTORE", "dest", "a")
    diff.check("TTL", "dest")
    diff.check("SINTERSTORE", "dest", "a", "missing")
    diff.check("EXISTS", "dest")
    diff.check("SDIFFSTORE", "dest", "a", "a")
    diff.check("SDIFFSTORE", "a", "a", "b")
    diff.check("SMEMBERS", "a", sort=True)


def test_sintercard(diff):
    diff.check("SADD", "a", *"abcdef")
    diff.check("SADD", "b", *"bcdefg")
    diff.check_all([
        ("SINTERCARD", "2", "a", "b"), ("SINTERCARD", "2", "a", "b", "LIMIT", "2"),
        ("SINTERCARD", "2", "a", "b", "LIMIT", "0"), ("SINTERCARD", "2", "a", "b", "limit", "100"),
        ("SINTERCARD", "1", "a"), ("SINTERCARD", "2", "a", "missing"), ("SINTERCARD", "0", "a"),
        ("SINTERCARD", "-1", "a"), ("SINTERCARD", "x", "a"), ("SINTERCARD", "3", "a", "b"),
        ("SINTERCARD", "2", "a", "b", "LIMIT", "-1"), ("SINTERCARD", "2", "a", "b", "LIMIT", "x"),
        ("SINTERCARD", "2", "a", "b", "LIMIT"), ("SINTERCARD", "2", "a", "b", "FOO", "1"),
    ])


def test_random_members(diff):
    members = [str(i) for i in range(20)] + ["a"]
    diff.check("SADD", "s", *members)
    for count in ("0", "1", "5", "21", "30", "-5", "-30"):
        ours, theirs = diff.both("SRANDMEMBER", "s", count)
        assert shape(ours) == shape(theirs)
        assert all(item[1].decode() in members for item in ours[1])
        if not count.startswith("-"):
            assert len({item[1] for item in ours[1]}) == len(ours[1])
    diff.check_all([
        ("SRANDMEMBER", "missing"), ("SRANDMEMBER", "missing", "5"), ("SRANDMEMBER", "missing", "-5"),
        ("SRANDMEMBER", "s", "x"), ("SRANDMEMBER", "s", "-9223372036854775808"), ("SRANDMEMBER", "s", "1", "2"),
        ("SPOP", "missing"), ("SPOP", "missing", "3"), ("SPOP", "s", "-1"), ("SPOP", "s", "x"), ("SPOP", "s", "1", "2"),
        ("SPOP", "s", "0"),
    ])
    ours, theirs = diff.both("SRANDMEMBER", "s")
    assert ours[0] == theirs[0] == "$"
    popped = set()
    for count in ("1", "3", "10"):
        ours, theirs = diff.both("SPOP", "s", count)
        assert shape(ours) == shape(theirs)
        popped.update(item[1] for item in ours[1])
    ours, theirs = diff.both("SPOP", "s")
    popped.add(ours[1])
    diff.check("SCARD", "s")
    ours, theirs = diff.both("SPOP", "s", "100")
    assert shape(ours) == shape(theirs)
    popped.update(item[1] for item in ours[1])
    assert popped == {m.encode() for m in members}
    diff.check("EXISTS", "s")


def test_object_encoding(diff):
    require(diff, "OBJECT", "HELP")
    diff.check("SADD", "i", "1", "2", "3")
    diff.check("OBJECT", "ENCODING", "i")
    diff.check("SADD", "i", "-0")
    diff.check("OBJECT", "ENCODING", "i")
    diff.check("SREM", "i", "-0")
    diff.check("OBJECT", "ENCODING", "i")
    diff.check("SADD", "big", *[str(i) for i in range(512)])
    diff.check("OBJECT", "ENCODING", "big")
    diff.check("SADD", "big", "512")
    diff.check("OBJECT", "ENCODING", "big")
    diff.check("SADD", "s", "9223372036854775808")
    diff.check("OBJECT", "ENCODING", "s")
    diff.check("SADD", "n", "-9223372036854775808", "007")
    diff.check("OBJECT", "ENCODING", "n")
    diff.check("SUNIONSTORE", "u", "i", "big")
    diff.check("OBJECT", "ENCODING", "u")
    diff.check("SINTERSTORE", "v", "i", "big")
    diff.check("OBJECT", "ENCODING", "v")


def test_sscan(diff):
    diff.check("SADD", "small", "a", "b", "c")
    ours = diff.ours.call("SSCAN", "small", "0")
    assert ours[1][0] == ("$", b"0") and sorted(x[1] for x in ours[1][1][1]) == [b"a", b"b", b"c"]
    diff.check("SADD", "ints", "5", "1", "3")
    diff.check("SSCAN", "ints", "0")
    diff.check("SSCAN", "ints", "0", "MATCH", "[13]")
    diff.check("SSCAN", "missing", "0")
    diff.check("SSCAN", "ints", "x")
    diff.check("SSCAN", "ints", "0", "COUNT", "0")
    diff.check("SSCAN", "ints", "0", "FOO", "1")
    members = {f"m{i}".encode() for i in range(1000)}
    diff.check("SADD", "big", *members)
    cursor, seen = b"0", set()
    while True:
        kind, (cur, items) = diff.ours.call("SSCAN", "big", cursor, "COUNT", "50")
        seen.update(item[1] for item in items[1])
        cursor = cur[1]
        if cursor == b"0":
            break
    assert seen == members


OPS = st.sampled_from(["SADD", "SREM", "SISMEMBER", "SMISMEMBER", "SCARD", "SMOVE", "SINTERSTORE", "SUNIONSTORE",
                       "SDIFFSTORE", "SINTERCARD", "SINTER", "SUNION", "SDIFF", "SMEMBERS"])
KEYS = st.sampled_from(["a", "b", "c"])
MEMBERS = st.sampled_from(["1", "2", "-3", "x", "y", "10"])


@st.composite
def set_command(draw) -> tuple[str, ...]:
    op = draw(OPS)
    key = draw(KEYS)
    if op in ("SADD", "SREM", "SMISMEMBER"):
        return (op, key, *draw(st.lists(MEMBERS, min_size=1, max_size=4)))
    if op == "SISMEMBER":
        return (op, key, draw(MEMBERS))
    if op in ("SCARD", "SMEMBERS"):
        return (op, key)
    if op == "SMOVE":
        return (op, key, draw(KEYS), draw(MEMBERS))
    if op == "SINTERCARD":
        return (op, "2", key, draw(KEYS), "LIMIT", str(draw(st.integers(0, 3))))
    return (op, key, *draw(st.lists(KEYS, min_size=1, max_size=3)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(set_command(), min_size=1, max_size=25))
def test_generated_sequences(diff, commands):
    diff.check("FLUSHALL")
    for command in commands:
        diff.check(*command, sort=True)
    for key in ("a", "b", "c"):
        diff.check("SMEMBERS", key, sort=True)


def test_keyspace_events(postroom_server, oracle_server):
    """The same commands publish the same keyspace events, in the same order, as Redis."""
    commands = [
        ("SADD", "a", "1", "2", "3"), ("SADD", "a", "1"), ("SREM", "a", "9"), ("SREM", "a", "1"),
        ("SMOVE", "a", "b", "2"), ("SMOVE", "a", "b", "3"), ("SADD", "c", "x", "y"), ("SINTERSTORE", "d", "b", "c"),
        ("SUNIONSTORE", "d", "b", "c"), ("SDIFFSTORE", "e", "b", "c"), ("SINTERSTORE", "e", "b", "missing"),
        ("SPOP", "c"), ("SPOP", "d", "1"), ("SPOP", "d", "10"),
    ]
    assert keyspace_events(postroom_server.port, commands) == keyspace_events(oracle_server.port, commands)


def test_spop_propagates_as_srem(postroom_server):
    seen = propagated(postroom_server, [("SADD", "s", "a", "b", "c", "d"), ("SPOP", "s"), ("SPOP", "s", "2"),
                                        ("SPOP", "s", "5"), ("SPOP", "s"), ("SPOP", "t", "3")])
    assert seen[0] == [b"SADD", b"s", b"a", b"b", b"c", b"d"]
    assert seen[1][:2] == [b"SREM", b"s"] and len(seen[1]) == 3
    assert seen[2][:2] == [b"SREM", b"s"] and len(seen[2]) == 4
    assert seen[3] == [b"DEL", b"s"]
    popped = [seen[1][2], *seen[2][2:]]
    assert len(set(popped)) == 3 and set(popped) <= {b"a", b"b", b"c", b"d"}
    assert len(seen) == 4


def test_replies_inside_multi_are_snapshots(diff):
    diff.check("SADD", "s", "1", "2")
    diff.check_all([("MULTI",), ("SMEMBERS", "s"), ("SADD", "s", "3"), ("SREM", "s", "1"), ("SMEMBERS", "s"), ("EXEC",)])


def test_random_picks_cover_every_member(r):
    r.sadd("s", "a", "b", "c", "1")
    seen = {}
    for _ in range(400):
        member = r.srandmember("s")
        seen[member] = seen.get(member, 0) + 1
    assert set(seen) == {b"a", b"b", b"c", b"1"} and min(seen.values()) > 50
    popped = {r.spop("s") for _ in range(4)}
    assert popped == {b"a", b"b", b"c", b"1"} and r.exists("s") == 0


def test_random_picks_from_a_large_set_are_uniform(r):
    """Past the walk-to-a-position limit (65,536 members) picks come from the SCAN index by rank.

    2,000 single picks from 70,000 members repeat about 28 times if they are uniform (birthday
    bound); taking the hash table's next slot instead (the old shortcut) never repeats.
    """
    size = 70_000
    pipe = r.pipeline(transaction=False)
    for first in range(0, size, 10_000):
        pipe.sadd("big", *(f"m{i}" for i in range(first, first + 10_000)))
    pipe.execute()
    pipe = r.pipeline(transaction=False)
    for _ in range(2_000):
        pipe.srandmember("big")
    picks = pipe.execute()
    assert len(picks) - len(set(picks)) > 5
    popped = r.spop("big", 500)
    assert len(set(popped)) == 500 and r.scard("big") == size - 500
    assert not r.smismember("big", *popped)[0]
    single = [r.spop("big") for _ in range(20)]
    assert r.scard("big") == size - 520 and not any(r.smismember("big", *single))
    assert len(r.srandmember("big", -3_000)) == 3_000
