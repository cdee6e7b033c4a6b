"""SCAN cursors: the ScanOrder guarantee (unit and property tests) and the SCAN command against the oracle."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.keyspace.scan import (
    SMALL_CONTAINER,
    ScanOrder,
    parse_cursor,
    parse_scan_options,
    position,
)
from postroom.protocol.replies import ReplyError


def full_scan(order: ScanOrder, keys: set[bytes], count: int, between=None) -> tuple[set[bytes], int]:
    """Iterate from cursor 0 to cursor 0, calling ``between(step)`` after each step; (returned, steps)."""
    seen: set[bytes] = set()
    cursor, steps = 0, 0
    while True:
        cursor, batch = order.scan(keys, cursor, count)
        seen.update(batch)
        steps += 1
        if cursor == 0:
            return seen, steps
        if between is not None:
            between(steps)


def test_small_container_is_one_step():
    order = ScanOrder()
    keys = {b"k%d" % i for i in range(SMALL_CONTAINER)}
    assert order.scan(keys, 0, 1) == (0, list(keys))
    assert order.index is None


def test_large_container_steps_by_count_without_duplicates():
    order = ScanOrder()
    keys = {b"k%d" % i for i in range(1000)}
    seen: list[bytes] = []
    cursor, steps = 0, 0
    while True:
        cursor, batch = order.scan(keys, cursor, 10)
        assert len(batch) == 10 or cursor == 0
        seen.extend(batch)
        steps += 1
        if cursor == 0:
            break
    assert steps == 100
    assert sorted(seen) == sorted(keys)


def test_order_is_by_reversed_hash_and_cursor_is_next_position():
    order = ScanOrder()
    keys = {b"k%d" % i for i in range(500)}
    cursor, batch = order.scan(keys, 0, 7)
    expected = sorted(keys, key=lambda k: (position(k), k))
    assert batch == expected[:7]
    assert cursor == position(expected[7])
    assert order.scan(keys, cursor, 3)[1] == expected[7:10]


def test_index_follows_additions_and_removals_once_built():
    order = ScanOrder()
    keys = {b"k%d" % i for i in range(300)}
    order.added(b"ignored")  # not built yet: a no-op
    order.scan(keys, 0, 10)
    keys.add(b"new")
    order.added(b"new")
    keys.discard(b"k1")
    order.removed(b"k1")
    seen, _ = full_scan(order, keys, 50)
    assert seen == keys
    order.cleared()
    assert order.index is None


def test_shared_position_is_never_split(monkeypatch):
    import postroom.keyspace.scan as scan_module

    monkeypatch.setattr(scan_module, "position", lambda key: int(key[:1]))  # force many ties
    order = ScanOrder()
    keys = {b"%d-%d" % (group, i) for group in range(1, 6) for i in range(40)}
    cursor, batch = order.scan(keys, 0, 5)
    assert len(batch) == 40 and cursor == 2
    seen, steps = full_scan(order, keys, 5)
    assert seen == keys and steps == 5


@settings(max_examples=60, deadline=None)
@given(
    initial=st.sets(st.binary(max_size=6), min_size=SMALL_CONTAINER + 1, max_size=400),
    count=st.integers(1, 40),
    changes=st.lists(st.tuples(st.booleans(), st.binary(max_size=6)), max_size=200),
)
def test_guarantee_under_concurrent_changes(initial, count, changes):
    """Every element present for the whole scan is returned, whatever happens between steps."""
    order = ScanOrder()
    keys = set(initial)
    stable = set(initial)
    pending = iter(changes)

    def mutate(step: int) -> None:
        for add, key in (next(pending, (None, None)) for _ in range(3)):
            if add is None:
                return
            if add and key not in keys:
                keys.add(key)
                order.added(key)
            elif not add and key in keys and len(keys) > SMALL_CONTAINER + 1:
                keys.discard(key)
                order.removed(key)
                stable.discard(key)

    seen, _ = full_scan(order, keys, count, mutate)
    assert stable <= seen


@pytest.mark.parametrize(
    ("text", "value"),
    [(b"0", 0), (b"", 0), (b"+5", 5), (b"007", 7), (b"-1", 2**64 - 1), (b"18446744073709551615", 2**64 - 1),
     (b"-18446744073709551615", 1)],
)
def test_parse_cursor_like_strtoul(text, value):
    assert parse_cursor(text) == value


@pytest.mark.parametrize("text", [b" 1", b"1 ", b"-", b"+", b"abc", b"1a", b"18446744073709551616", b"0x10"])
def test_parse_cursor_rejects(text):
    with pytest.raises(ReplyError, match="ERR invalid cursor"):
        parse_cursor(text)


def test_parse_scan_options():
    opts = parse_scan_options([b"SCAN", b"5", b"MATCH", b"a*", b"count", b"3", b"TyPe", b"hash"], 1, True)
    assert (opts.cursor, opts.pattern, opts.count, opts.type_name) == (5, b"a*", 3, b"hash")
    assert parse_scan_options([b"SCAN", b"0", b"MATCH", b"*"], 1, True).pattern is None
    assert opts.matching([b"abc", b"bcd", b"a"]) == [b"abc", b"a"]
    for argv, message in [
        ([b"HSCAN", b"h", b"0", b"TYPE", b"string"], "ERR syntax error"),
        ([b"SCAN", b"0", b"COUNT"], "ERR syntax error"),
        ([b"SCAN", b"0", b"COUNT", b"0"], "ERR syntax error"),
        ([b"SCAN", b"0", b"COUNT", b"x"], "ERR value is not an integer or out of range"),
        ([b"SCAN", b"x", b"COUNT", b"0"], "ERR invalid cursor"),
    ]:
        with pytest.raises(ReplyError) as info:
            parse_scan_options(argv, 2 if argv[0] == b"HSCAN" else 1, argv[0] == b"SCAN")
        assert info.value.message == message


# -- the SCAN command on a live server ---------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(1, 60),
    churn=st.lists(st.tuples(st.booleans(), st.integers(0, 599)), min_size=0, max_size=300),
)
def test_scan_command_guarantee_under_churn(r, count, churn):
    """Keys present for the whole iteration are all returned while others come and go between steps."""
    r.flushdb()
    initial = {f"key:{i}" for i in range(400)}
    r.mset({key: "v" for key in initial})
    stable = set(initial)
    changes = iter(churn)
    seen: set[bytes] = set()
    cursor = 0
    while True:
        cursor, batch = r.scan(cursor, count=count)
        seen.update(batch)
        if cursor == 0:
            break
        for add, n in (next(changes, (None, 0)) for _ in range(4)):
            if add is None:
                break
            key = f"key:{n}"
            if add:
                r.set(key, "v")
            else:
                r.delete(key)
                stable.discard(key)
    assert {key.encode() for key in stable} <= seen


def test_scan_match_and_type_filter_after_selection(r):
    """Like Redis, a step filters the elements it selected: it may return fewer than COUNT, even none."""
    r.mset({f"a{i}": 1 for i in range(300)})
    r.set("b", 1)
    cursor, batch = r.scan(0, match="b", count=10)
    assert cursor != 0 and len(batch) <= 1
    found = set(batch)
    while cursor:
        cursor, batch = r.scan(cursor, match="b", count=10)
        found.update(batch)
    assert found == {b"b"}
    assert set(r.scan_iter(_type="list")) == set()
    r.rpush("list", "x")
    assert set(r.scan_iter(_type="LIST", count=50)) == {b"list"}


def test_nth_walks_scan_order():
    order = ScanOrder()
    small = [b"a", b"b", b"c"]
    assert [order.nth(small, i) for i in range(3)] == small
    keys = {b"k%d" % i for i in range(500)}
    expected = sorted(keys, key=lambda k: (position(k), k))
    assert [order.nth(keys, i) for i in range(500)] == expected


def test_randomkey_on_a_large_keyspace_reaches_every_key(r):
    r.mset({f"k{i}": i for i in range(200)})
    pipe = r.pipeline(transaction=False)
    for _ in range(4000):
        pipe.randomkey()
    assert set(pipe.execute()) == {f"k{i}".encode() for i in range(200)}
