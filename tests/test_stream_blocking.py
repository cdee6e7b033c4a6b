"""Blocking XREAD / XREADGROUP: parked without polling, woken by XADD from any client, by MULTI,
on any of several streams, and answered with Redis's errors when the group or key goes away.

Each scenario runs on postroom and on redis-server; the blocked client's reply must be identical.
"""

from __future__ import annotations

import time

import pytest

from .support.resp import RawClient


class Pair:
    """One admin and one waiter connection per server."""

    def __init__(self, postroom_port: int, oracle_port: int, protocol: int) -> None:
        self.ports = (postroom_port, oracle_port)
        self.admins = [RawClient(port) for port in self.ports]
        self.waiters = [RawClient(port) for port in self.ports]
        for client in self.admins + self.waiters:
            if protocol == 3:
                client.call("HELLO", "3")
        self.admins[0].call("FLUSHALL")
        self.admins[1].call("FLUSHALL")

    def admin(self, *args) -> None:
        replies = [client.call(*args) for client in self.admins]
        assert replies[0] == replies[1], f"{args!r}: {replies!r}"

    def block(self, *args, count: int = 1) -> None:
        for waiter, admin in zip(self.waiters, self.admins, strict=True):
            waiter.send(*args)
            wait_blocked(admin, count)

    def replies(self) -> tuple:
        got = tuple(waiter.read() for waiter in self.waiters)
        assert got[0] == got[1], f"postroom {got[0]!r} != redis {got[1]!r}"
        return got[0]

    def close(self) -> None:
        for client in self.admins + self.waiters:
            client.close()


def wait_blocked(admin: RawClient, count: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        info = admin.call("INFO", "clients")[1]
        if b"blocked_clients:%d\r\n" % count in info:
            return
        assert time.monotonic() < deadline, f"never saw {count} blocked clients: {info!r}"
        time.sleep(0.002)


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(request, postroom_server, oracle_server):
    servers = Pair(postroom_server.port, oracle_server.port, request.param)
    yield servers
    servers.close()


def test_xread_block_woken_by_xadd(pair):
    pair.admin("XADD", "s", "1-1", "a", "1")
    pair.block("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    pair.admin("XADD", "s", "2-1", "b", "2")
    pair.replies()


def test_xread_block_on_missing_key_and_several_streams(pair):
    pair.admin("XADD", "t", "5-0", "x", "y")
    pair.block("XREAD", "BLOCK", "0", "STREAMS", "nokey", "t", "$", "$")
    pair.admin("XADD", "t", "6-0", "b", "2")
    pair.replies()
    pair.block("XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "nokey", "t", "0", "6-0")
    pair.admin("XADD", "nokey", "1-0", "c", "3")
    pair.replies()


def test_xread_block_times_out(pair):
    pair.admin("XADD", "s", "1-1", "a", "1")
    for waiter in pair.waiters:
        waiter.send("XREAD", "BLOCK", "30", "STREAMS", "s", "$")
    pair.replies()


def test_xread_block_woken_inside_multi(pair):
    pair.block("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    pair.admin("MULTI")
    pair.admin("XADD", "s", "1-1", "a", "1")
    pair.admin("XADD", "s", "1-2", "a", "2")
    pair.admin("EXEC")
    pair.replies()


def test_xread_keeps_waiting_through_delete_and_type_change(pair):
    pair.admin("XADD", "s", "3-1", "a", "1")
    pair.block("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    pair.admin("DEL", "s")
    pair.admin("SET", "s", "string")
    pair.admin("DEL", "s")
    pair.admin("XADD", "s", "2-1", "too", "old")
    pair.admin("XADD", "s", "4-1", "new", "1")
    pair.replies()


def test_xread_in_multi_does_not_block(pair):
    pair.admin("MULTI")
    pair.admin("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    pair.admin("EXEC")


def test_xreadgroup_block_woken_by_xadd(pair):
    pair.admin("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    pair.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    pair.admin("XADD", "s", "1-1", "a", "1")
    pair.replies()
    pair.admin("XPENDING", "s", "g")
    pair.block("XREADGROUP", "GROUP", "g", "c", "NOACK", "BLOCK", "0", "STREAMS", "s", ">")
    pair.admin("XADD", "s", "1-2", "a", "2")
    pair.replies()
    pair.admin("XPENDING", "s", "g")
    pair.admin("XINFO", "GROUPS", "s")


def test_xreadgroup_history_never_blocks(pair):
    pair.admin("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    pair.admin("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", "0")


def test_xreadgroup_group_destroyed(pair):
    pair.admin("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    pair.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    pair.admin("XGROUP", "DESTROY", "s", "g")
    pair.replies()


@pytest.mark.parametrize("removal", [("DEL", "s"), ("SET", "s", "x")], ids=["deleted", "type-changed"])
def test_xreadgroup_key_gone(pair, removal):
    pair.admin("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    pair.block("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    pair.admin(*removal)
    pair.replies()


def test_fifo_between_group_readers(pair):
    pair.admin("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    second = [RawClient(port) for port in pair.ports]
    try:
        pair.block("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">")
        for client, admin in zip(second, pair.admins, strict=True):
            client.send("XREADGROUP", "GROUP", "g", "c2", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(admin, 2)
        pair.admin("XADD", "s", "1-1", "a", "1")
        pair.replies()
        pair.admin("XADD", "s", "1-2", "a", "2")
        got = [client.read() for client in second]
        assert got[0] == got[1]
    finally:
        for client in second:
            client.close()


def test_blocked_reader_served_after_waking_write_propagation(postroom_server):
    """Served waiters propagate their deterministic form (XCLAIM ... + XGROUP SETID)."""
    broker = postroom_server.broker
    seen: list = []

    def add_sink():
        broker.propagation_sinks.append(lambda db, argvs: seen.append(argvs))

    def drop_sink():
        broker.propagation_sinks.pop()

    admin = RawClient(postroom_server.port)
    waiter = RawClient(postroom_server.port)
    try:
        admin.call("FLUSHALL")
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        postroom_server.call_in_loop(add_sink)
        waiter.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        entry_id = admin.call("XADD", "s", "*", "a", "1")[1]
        assert entry_id in repr(waiter.read()).encode()
    finally:
        postroom_server.call_in_loop(drop_sink)
        admin.close()
        waiter.close()
    flat = [argv for unit in seen for argv in unit]
    assert [b"XADD", b"s", entry_id, b"a", b"1"] in flat
    assert [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c"] in flat
    claims = [argv for argv in flat if argv[0] == b"XCLAIM"]
    assert claims and claims[0][:6] == [b"XCLAIM", b"s", b"g", b"c", b"0", entry_id]
    assert [b"XGROUP", b"SETID", b"s", b"g", entry_id, b"ENTRIESREAD", b"1"] in flat


def test_xread_plus_blocks_then_serves_the_first_new_entry(postroom_server):
    """XREAD ``+`` (Redis 7.4) on a missing stream waits like ``$`` and gets the entry that woke it."""
    admin = RawClient(postroom_server.port)
    waiter = RawClient(postroom_server.port)
    try:
        admin.call("FLUSHALL")
        waiter.send("XREAD", "BLOCK", "0", "STREAMS", "s", "+")
        wait_blocked(admin, 1)
        admin.call("XADD", "s", "5-1", "a", "1")
        assert waiter.read() == ("*", [("*", [("$", b"s"), ("*", [("*", [("$", b"5-1"), ("*", [
            ("$", b"a"), ("$", b"1")])])])])])
    finally:
        admin.close()
        waiter.close()
