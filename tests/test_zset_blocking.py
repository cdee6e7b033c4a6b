"""BZPOPMIN, BZPOPMAX and BZMPOP: who gets served, in what order, and with what, exactly as Redis 7.0.

Each scenario runs against postroom and against redis-server with raw clients, and the replies
every client saw must be identical, in RESP2 and RESP3.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.resp import RawClient, Reply

Scenario = Callable[[Callable[[], RawClient], RawClient], list[Reply]]


def blocked_count(admin: RawClient) -> int:
    info = admin.call("INFO", "clients")[1]
    for line in info.decode().splitlines():
        if line.startswith("blocked_clients:"):
            return int(line.split(":")[1])
    raise AssertionError("INFO clients has no blocked_clients")


def wait_blocked(admin: RawClient, count: int) -> None:
    """Until ``count`` clients are blocked (the server tells us; nothing else to wait on)."""
    deadline = time.monotonic() + 5
    while blocked_count(admin) != count:
        assert time.monotonic() < deadline, f"expected {count} blocked clients"
        time.sleep(0.002)


def run_both(postroom_server, oracle_server, protocol: int, scenario: Scenario) -> None:
    """Run ``scenario`` on both servers; the replies it collects must be the same."""
    results = []
    for port in (postroom_server.port, oracle_server.port):
        opened: list[RawClient] = []

        def connect(port: int = port, opened: list[RawClient] = opened) -> RawClient:
            client = RawClient(port)
            if protocol == 3:
                client.call("HELLO", 3)
            opened.append(client)
            return client

        admin = connect()
        admin.call("FLUSHALL")
        try:
            results.append(scenario(connect, admin))
        finally:
            for client in opened:
                client.close()
    assert results[0] == results[1], f"postroom {results[0]!r} != redis {results[1]!r}"


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def both(request, postroom_server, oracle_server):
    return lambda scenario: run_both(postroom_server, oracle_server, request.param, scenario)


def test_fifo_per_key(both):
    def scenario(connect, admin):
        waiters = [connect() for _ in range(3)]
        for i, waiter in enumerate(waiters):
            waiter.send("BZPOPMIN", "k", "0")
            wait_blocked(admin, i + 1)
        replies = [admin.call("ZADD", "k", "2", "b", "1", "a")]
        replies += [waiters[0].read(), waiters[1].read()]
        replies.append(admin.call("ZCARD", "k"))
        replies.append(admin.call("ZADD", "k", "3", "c"))
        replies.append(waiters[2].read())
        wait_blocked(admin, 0)
        return replies

    both(scenario)


def test_bzpopmax_and_several_keys(both):
    def scenario(connect, admin):
        first, second = connect(), connect()
        first.send("BZPOPMAX", "k1", "k2", "0")
        wait_blocked(admin, 1)
        second.send("BZPOPMAX", "k2", "k1", "0")
        wait_blocked(admin, 2)
        replies = [admin.call("ZADD", "k2", "1", "x", "5", "y", "3", "z")]
        replies += [first.read(), second.read(), admin.call("ZRANGE", "k2", "0", "-1")]
        return replies

    both(scenario)


def test_served_from_the_key_that_became_ready(both):
    """Redis 7.0 serves a client blocked on k1, k2 from whichever key was signalled first."""

    def scenario(connect, admin):
        waiter = connect()
        waiter.send("BZPOPMIN", "k1", "k2", "0")
        wait_blocked(admin, 1)
        replies = [admin.call("MULTI"), admin.call("ZADD", "k2", "1", "two"), admin.call("ZADD", "k1", "1", "one")]
        replies += [admin.call("EXEC"), waiter.read(), admin.call("ZCARD", "k1"), admin.call("ZCARD", "k2")]
        return replies

    both(scenario)


def test_bzmpop_count_and_fifo(both):
    def scenario(connect, admin):
        first, second, third = connect(), connect(), connect()
        first.send("BZMPOP", "0", "2", "a", "b", "MIN", "COUNT", "2")
        wait_blocked(admin, 1)
        second.send("BZMPOP", "0", "1", "b", "MAX", "COUNT", "10")
        wait_blocked(admin, 2)
        third.send("BZMPOP", "0", "1", "b", "MAX")
        wait_blocked(admin, 3)
        replies = [admin.call("ZADD", "b", "1", "p", "2", "q", "3", "r", "4", "s", "5", "t")]
        replies += [first.read(), second.read()]
        replies.append(admin.call("ZADD", "b", "9", "u"))
        replies.append(third.read())
        return replies

    both(scenario)


def test_multi_exec_wakes_once_with_final_state(both):
    def scenario(connect, admin):
        waiter = connect()
        waiter.send("BZPOPMIN", "k", "0")
        wait_blocked(admin, 1)
        replies = [admin.call("MULTI"), admin.call("ZADD", "k", "5", "five"), admin.call("ZADD", "k", "1", "one")]
        replies += [admin.call("EXEC"), waiter.read()]
        waiter.send("BZPOPMIN", "k2", "0")
        wait_blocked(admin, 1)
        replies += [admin.call("MULTI"), admin.call("ZADD", "k2", "1", "x"), admin.call("ZPOPMIN", "k2"),
                    admin.call("EXEC")]
        replies.append(admin.call("ZADD", "k2", "2", "y"))
        replies.append(waiter.read())
        return replies

    both(scenario)


def test_not_blocking_inside_multi(both):
    def scenario(connect, admin):
        return [admin.call("MULTI"), admin.call("BZPOPMIN", "k", "0"), admin.call("BZPOPMAX", "k", "1"),
                admin.call("BZMPOP", "0", "1", "k", "MIN"), admin.call("ZADD", "j", "1", "a"),
                admin.call("BZPOPMAX", "j", "0"), admin.call("EXEC")]

    both(scenario)


def test_timeouts(both):
    def scenario(connect, admin):
        waiter = connect()
        replies = []
        for command in (("BZPOPMIN", "k", "0.05"), ("BZPOPMAX", "k", "k2", "0.01"),
                        ("BZMPOP", "0.02", "1", "k", "MAX", "COUNT", "3")):
            start = time.monotonic()
            replies.append(waiter.call(*command))
            assert 0.005 <= time.monotonic() - start < 2
        return replies

    both(scenario)


def test_argument_errors_and_immediate_service(both):
    def scenario(connect, admin):
        admin.call("SET", "s", "x")
        admin.call("ZADD", "z", "1", "a", "2", "b", "3", "c")
        commands = [
            ("BZPOPMIN", "z", "-1"), ("BZPOPMIN", "z", "x"), ("BZPOPMIN", "z", "inf"), ("BZPOPMIN", "z", "nan"),
            ("BZPOPMIN", "nokey", "s", "0"), ("BZPOPMIN", "s", "z", "0"), ("BZPOPMIN", "nokey", "z", "0"),
            ("BZPOPMAX", "z", "0"), ("BZMPOP", "0", "0", "z", "MIN"), ("BZMPOP", "0", "x", "z", "MIN"),
            ("BZMPOP", "x", "1", "z", "MIN"), ("BZMPOP", "-1", "1", "z", "MIN"), ("BZMPOP", "0", "1", "z", "UP"),
            ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "0"), ("BZMPOP", "0", "2", "z", "MIN"),
            ("BZMPOP", "0", "2", "s", "z", "MIN"), ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "10"),
            ("BZPOPMIN", "z"), ("BZMPOP", "0", "1", "z"),
        ]
        return [admin.call(*command) for command in commands]

    both(scenario)


def test_disconnected_waiter_is_skipped(both):
    def scenario(connect, admin):
        gone, stays = connect(), connect()
        gone.send("BZPOPMIN", "k", "0")
        wait_blocked(admin, 1)
        stays.send("BZPOPMIN", "k", "0")
        wait_blocked(admin, 2)
        gone.close()
        wait_blocked(admin, 1)
        return [admin.call("ZADD", "k", "1", "a"), stays.read(), admin.call("ZCARD", "k")]

    both(scenario)


def test_client_unblock(both):
    def scenario(connect, admin):
        waiter = connect()
        waiter_id = waiter.call("CLIENT", "ID")[1]
        replies = []
        for how in ((), ("TIMEOUT",), ("ERROR",)):
            waiter.send("BZMPOP", "0", "1", "k", "MIN")
            wait_blocked(admin, 1)
            replies.append(admin.call("CLIENT", "UNBLOCK", waiter_id, *how))
            replies.append(waiter.read())
        replies.append(admin.call("CLIENT", "UNBLOCK", waiter_id))
        return replies

    both(scenario)


def test_wrong_type_keeps_waiting(both):
    """Redis 7.0 leaves a BZPOP client blocked when its key is created as another type."""

    def scenario(connect, admin):
        waiter = connect()
        waiter.send("BZPOPMIN", "k", "0")
        wait_blocked(admin, 1)
        replies = [admin.call("SET", "k", "string"), blocked_count(admin), admin.call("GETDEL", "k")]
        replies += [admin.call("ZADD", "k", "1", "a"), waiter.read()]
        waiter.send("BZPOPMIN", "q", "0")
        wait_blocked(admin, 1)
        replies += [admin.call("RPUSH", "q", "x"), blocked_count(admin), admin.call("LPOP", "q")]
        replies += [admin.call("ZADD", "q", "2", "b"), waiter.read()]
        return replies

    both(scenario)


def test_list_and_zset_waiters_on_one_key(both):
    def scenario(connect, admin):
        list_waiter, zset_waiter = connect(), connect()
        list_waiter.send("BLPOP", "k", "0")
        wait_blocked(admin, 1)
        zset_waiter.send("BZPOPMAX", "k", "0")
        wait_blocked(admin, 2)
        replies = [admin.call("ZADD", "k", "1", "a"), zset_waiter.read(), blocked_count(admin)]
        replies += [admin.call("RPUSH", "k", "x"), list_waiter.read()]
        return replies

    both(scenario)


def test_woken_by_every_creating_write(both):
    """ZINCRBY, ZUNIONSTORE, ZRANGESTORE, ZDIFFSTORE and COPY create the key and serve waiters."""

    def scenario(connect, admin):
        waiter = connect()
        admin.call("ZADD", "src", "1", "a", "2", "b")
        replies = []
        for write in (("ZINCRBY", "dst", "5", "m"), ("ZUNIONSTORE", "dst", "1", "src"),
                      ("ZRANGESTORE", "dst", "src", "0", "0"), ("ZDIFFSTORE", "dst", "1", "src"),
                      ("COPY", "src", "dst")):
            waiter.send("BZPOPMAX", "dst", "0")
            wait_blocked(admin, 1)
            replies += [admin.call(*write), waiter.read(), admin.call("ZRANGE", "dst", "0", "-1")]
            admin.call("ZREMRANGEBYRANK", "dst", "0", "-1")
        return replies

    both(scenario)


def test_served_pops_propagate_as_zpop(postroom_server):
    """A served blocking pop reaches the AOF as the ZPOPMIN/ZPOPMAX that it amounted to."""
    broker = postroom_server.broker
    seen: list[list[list[bytes]]] = []
    sink = lambda db, argvs: seen.append(argvs)  # noqa: E731
    postroom_server.call_in_loop(broker.propagation_sinks.append, sink)
    try:
        admin, waiter = RawClient(postroom_server.port), RawClient(postroom_server.port)
        admin.call("FLUSHALL")
        waiter.send("BZMPOP", "0", "1", "k", "MAX", "COUNT", "5")
        wait_blocked(admin, 1)
        admin.call("ZADD", "k", "1", "a", "2", "b")
        assert waiter.read()[0] == "*"
        waiter.send("BZPOPMIN", "k", "0")
        wait_blocked(admin, 1)
        admin.call("ZADD", "k", "1", "c")
        waiter.read()
        admin.call("ZADD", "k", "1", "d", "2", "e", "3", "f")
        waiter.call("BZPOPMAX", "k", "0")
        waiter.call("ZMPOP", "1", "k", "MIN", "COUNT", "9")
        waiter.call("ZMPOP", "1", "k", "MIN")
        admin.close()
        waiter.close()
    finally:
        postroom_server.call_in_loop(broker.propagation_sinks.remove, sink)
    written = [argv for argvs in seen for argv in argvs if argv[0] not in (b"FLUSHALL", b"ZADD")]
    assert written == [
        [b"ZPOPMAX", b"k", b"2"], [b"ZPOPMIN", b"k"], [b"ZPOPMAX", b"k"], [b"ZPOPMIN", b"k", b"2"],
    ]


async def test_redis_py_async_blocking(ar):
    """redis-py's own blocking calls work unchanged; the pusher runs on another connection."""
    import asyncio

    other = ar.client()  # a second connection from the same pool, whatever the transport
    waiting = asyncio.ensure_future(ar.bzpopmin(["q1", "q2"], timeout=5))
    await asyncio.sleep(0)
    while not (await other.info("clients"))["blocked_clients"]:
        await asyncio.sleep(0.002)
    await other.zadd("q2", {"m": 4.5})
    result = await waiting
    assert [bytes(result[0]), bytes(result[1]), float(result[2])] == [b"q2", b"m", 4.5]
    assert await ar.bzmpop(0.01, 1, ["q1"], min=True) is None
    await other.aclose()


# -- generated blocking orders --------------------------------------------------------------------

BLOCK_KEYS = st.lists(st.sampled_from(["k1", "k2", "k3"]), min_size=1, max_size=2, unique=True)


@st.composite
def waiter_commands(draw) -> tuple:
    keys = draw(BLOCK_KEYS)
    kind = draw(st.sampled_from(["BZPOPMIN", "BZPOPMAX", "BZMPOP"]))
    if kind != "BZMPOP":
        return (kind, *keys, "0")
    count = draw(st.sampled_from([(), ("COUNT", "2"), ("COUNT", "5")]))
    return ("BZMPOP", "0", str(len(keys)), *keys, draw(st.sampled_from(["MIN", "MAX"])), *count)


@st.composite
def pusher_steps(draw) -> list[tuple]:
    """One step: a write, or several in one MULTI/EXEC (served once, after EXEC)."""
    writes = draw(st.lists(st.one_of(
        st.tuples(st.just("ZADD"), st.sampled_from(["k1", "k2", "k3"]), st.sampled_from(["1", "2", "3"]),
                  st.sampled_from(["a", "b", "c", "d"])),
        st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), st.sampled_from(["k1", "k2", "k3"])),
        st.tuples(st.just("ZREM"), st.sampled_from(["k1", "k2", "k3"]), st.sampled_from(["a", "b"])),
    ), min_size=1, max_size=3))
    if len(writes) > 1 and draw(st.booleans()):
        return [("MULTI",), *writes, ("EXEC",)]
    return writes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(waiters=st.lists(waiter_commands(), min_size=1, max_size=4),
       steps=st.lists(pusher_steps(), min_size=1, max_size=4))
def test_generated_blocking_orders(both, waiters, steps):
    """Random waiters, then random writes: every waiter gets what it gets from Redis, in the same order."""

    def scenario(connect, admin):
        clients = [connect() for _ in waiters]
        ids = [client.call("CLIENT", "ID")[1] for client in clients]
        for i, (client, command) in enumerate(zip(clients, waiters, strict=True)):
            client.send(*command)
            wait_blocked(admin, i + 1)
        replies = [admin.call(*write) for step in steps for write in step]
        for client_id in ids:
            admin.call("CLIENT", "UNBLOCK", client_id)  # whoever is still waiting answers "timeout"
        replies += [client.read() for client in clients]
        replies += [admin.call("ZRANGE", key, "0", "-1", "WITHSCORES") for key in ("k1", "k2", "k3")]
        return replies

    both(scenario)
