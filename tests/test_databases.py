"""Whole-database commands against the oracle: FLUSHDB, FLUSHALL, DBSIZE, SWAPDB, MOVE (RESP2 and RESP3),
plus their effects on blocked clients, WATCH and propagation."""

from __future__ import annotations

import time

import pytest

from .support.recorders import Propagation
from .support.resp import RawClient
from .support.waiting import wait_blocked, wait_until


@pytest.fixture
def propagated(postroom_server, diff):
    with Propagation(postroom_server) as recorder:
        yield recorder


def test_flush_and_dbsize(diff):
    diff.check_all([
        ("DBSIZE",), ("MSET", "a", "1", "b", "2"), ("RPUSH", "l", "x"), ("DBSIZE",), ("SELECT", "1"), ("SET", "c", "3"),
        ("DBSIZE",), ("FLUSHDB",), ("DBSIZE",), ("SELECT", "0"), ("DBSIZE",), ("SELECT", "2"), ("SET", "d", "4"),
        ("SELECT", "0"), ("FLUSHDB", "ASYNC"), ("DBSIZE",), ("SELECT", "2"), ("DBSIZE",), ("FLUSHALL", "sync"),
        ("DBSIZE",), ("FLUSHDB", "foo"), ("FLUSHDB", "ASYNC", "SYNC"), ("FLUSHALL", "bar"), ("FLUSHALL", "SYNC", "x"),
        ("FLUSHALL", "async"), ("FLUSHDB", "Sync"), ("DBSIZE", "x"),
    ])


def test_dbsize_counts_expired_keys_until_removed(diff):
    diff.check_all([("SET", "a", "1"), ("SET", "b", "1", "PX", "1")])
    time.sleep(0.01)
    diff.check("GET", "b")
    diff.check("DBSIZE")


def test_swapdb(diff):
    diff.check_all([
        ("SET", "a", "db0"), ("SET", "t", "v", "EX", "100"), ("SELECT", "1"), ("SET", "a", "db1"), ("RPUSH", "l", "x"),
        ("SWAPDB", "0", "1"), ("GET", "a"), ("TYPE", "l"), ("TTL", "t"), ("DBSIZE",), ("SELECT", "0"), ("GET", "a"),
        ("TYPE", "l"), ("DBSIZE",), ("SWAPDB", "1", "1"), ("SWAPDB", "0", "15"), ("DBSIZE",), ("SWAPDB", "15", "0"),
        ("SWAPDB", "0", "16"), ("SWAPDB", "16", "0"), ("SWAPDB", "-1", "0"), ("SWAPDB", "a", "0"), ("SWAPDB", "0", "b"),
        ("SWAPDB", "a", "b"), ("SWAPDB", "99999999999", "0"), ("SWAPDB", "0", "99999999999"), ("SWAPDB", "0"),
        ("SWAPDB", "1.5", "0"), ("GET", "a"),
    ])


def test_move(diff):
    diff.check_all([
        ("SET", "k", "v"), ("SET", "t", "v", "EX", "100"), ("MOVE", "k", "1"), ("EXISTS", "k"), ("MOVE", "k", "1"),
        ("MOVE", "t", "1"), ("SELECT", "1"), ("GET", "k"), ("TTL", "t"), ("SET", "back", "1"), ("SELECT", "0"),
        ("SET", "back", "0"), ("MOVE", "back", "1"), ("GET", "back"), ("MOVE", "back", "0"), ("MOVE", "back", "16"),
        ("MOVE", "back", "-1"), ("MOVE", "back", "x"), ("MOVE", "back", "99999999999"), ("MOVE", "missing", "0"),
        ("MOVE", "missing", "1"), ("MOVE", "missing", "16"), ("RPUSH", "l", "a"), ("MOVE", "l", "2"), ("SELECT", "2"),
        ("LRANGE", "l", "0", "-1"), ("MOVE", "l"),
    ])


def test_swapdb_serves_clients_blocked_on_swapped_in_keys(diff, postroom_server, oracle_server):
    blockers = RawClient(postroom_server.port), RawClient(oracle_server.port)
    try:
        diff.check_all([("SELECT", "1"), ("RPUSH", "q", "from-db1"), ("SELECT", "0")])
        for blocker in blockers:
            blocker.send("BLPOP", "q", "5")
        wait_until(lambda: postroom_server.broker.blocking.blocked_clients == 1)
        wait_blocked(diff.theirs, 1)
        diff.check("SWAPDB", "0", "1")
        ours, theirs = (blocker.read() for blocker in blockers)
        assert ours == theirs == ("*", [("$", b"q"), ("$", b"from-db1")])
        diff.check_all([("EXISTS", "q"), ("SELECT", "1"), ("EXISTS", "q")])
    finally:
        for blocker in blockers:
            blocker.close()


@pytest.mark.parametrize("command", [("FLUSHALL",), ("FLUSHDB",), ("SWAPDB", "0", "1"), ("SWAPDB", "1", "0"),
                                     ("MOVE", "w", "1")])
@pytest.mark.parametrize("present", ["db0", "db1", "neither"])
def test_watch_invalidation(diff, postroom_server, oracle_server, command, present):
    """WATCH w in db 0: a command that changes what w is (in either swapped db) aborts EXEC, as in Redis."""
    watchers = RawClient(postroom_server.port), RawClient(oracle_server.port)
    try:
        if present == "db0":
            diff.check("SET", "w", "0")
        elif present == "db1":
            diff.check_all([("SELECT", "1"), ("SET", "w", "1"), ("SELECT", "0")])
        for watcher in watchers:
            assert watcher.call("WATCH", "w") == ("+", b"OK")
        diff.check(*command)
        replies = []
        for watcher in watchers:
            watcher.call("MULTI")
            watcher.call("PING")
            replies.append(watcher.call("EXEC"))
        assert replies[0] == replies[1]
    finally:
        for watcher in watchers:
            watcher.close()


def test_database_commands_always_propagate(diff, propagated):
    diff.check("FLUSHALL")
    diff.check("FLUSHDB", "ASYNC")
    diff.check("SWAPDB", "2", "2")
    diff.check("SWAPDB", "0", "3")
    diff.check("MOVE", "missing", "1")
    assert propagated.take() == [[b"FLUSHALL"], [b"FLUSHDB", b"ASYNC"], [b"SWAPDB", b"2", b"2"],
                                 [b"SWAPDB", b"0", b"3"]]
    diff.check("SET", "k", "v")
    diff.check("MOVE", "k", "1")
    assert propagated.take() == [[b"SET", b"k", b"v"], [b"MOVE", b"k", b"1"]]
    diff.check("DBSIZE")
    assert propagated.take() == []


def test_swapdb_moves_scan_order_and_access_times(postroom_server, r):
    r.mset({f"k{i}": i for i in range(200)})
    keys = set(r.scan_iter(count=50))
    assert len(keys) == 200
    r.swapdb(0, 1)
    assert r.scan(0, count=1000) == (0, [])
    broker = postroom_server.broker
    assert broker.dbs[1].scan_order.index is not None and len(broker.dbs[1].access) == 200
    r.execute_command("SELECT", 1)
    assert r.dbsize() == 200
