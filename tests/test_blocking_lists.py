"""Blocking list pops against the oracle: several waiters, who gets what, in which order, woken by
plain commands and by MULTI/EXEC, timeouts, disconnects, CLIENT UNBLOCK, and propagation."""

from __future__ import annotations

import select
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.recorders import Propagation
from .support.resp import RawClient
from .support.waiting import blocked_clients, wait_blocked, wait_until


class Pair:
    """One connection to postroom and one to the oracle, driven in lockstep."""

    def __init__(self, ports: tuple[int, int], protocol: int) -> None:
        self.clients = [RawClient(port) for port in ports]
        if protocol == 3:
            for client in self.clients:
                client.call("HELLO", 3)
        ours, theirs = self.clients
        self.id = (ours.call("CLIENT", "ID")[1], theirs.call("CLIENT", "ID")[1])

    def send(self, *args) -> None:
        for client in self.clients:
            client.send(*args)

    def call(self, *args):
        """Run on both; assert the same reply; return it."""
        ours, theirs = (client.call(*args) for client in self.clients)
        assert ours == theirs, f"{args!r}: postroom {ours!r} != redis {theirs!r}"
        return ours

    def read(self):
        ours, theirs = (client.read() for client in self.clients)
        assert ours == theirs, f"postroom {ours!r} != redis {theirs!r}"
        return ours

    def close(self) -> None:
        for client in self.clients:
            client.close()


class Scene:
    """Several client pairs plus a way to wait until a number of clients are blocked on both servers."""

    def __init__(self, postroom_server, oracle_server, protocol: int) -> None:
        self.ports = (postroom_server.port, oracle_server.port)
        self.protocol = protocol
        self.pairs: list[Pair] = []
        self.admin = self.pair()
        self.admin.call("FLUSHALL")

    def pair(self) -> Pair:
        pair = Pair(self.ports, self.protocol)
        self.pairs.append(pair)
        return pair

    def blocked(self, count: int) -> None:
        """Wait until exactly ``count`` clients are blocked on each server."""
        for client in self.admin.clients:
            wait_blocked(client, count)

    def close(self) -> None:
        for pair in self.pairs:
            pair.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def scene(request, postroom_server, oracle_server):
    scene = Scene(postroom_server, oracle_server, request.param)
    yield scene
    scene.close()


def park(scene: Scene, commands: list[tuple]) -> list[Pair]:
    """One client per command, each blocked before the next blocks (FIFO order is then known)."""
    waiters = []
    for i, command in enumerate(commands, 1):
        pair = scene.pair()
        pair.send(*command)
        scene.blocked(i)
        waiters.append(pair)
    return waiters


def test_fifo_waiters_share_a_push(scene):
    waiters = park(scene, [("BLPOP", "q", "0"), ("BRPOP", "q", "0"), ("BLPOP", "q", "0")])
    scene.admin.call("RPUSH", "q", "a", "b", "c", "d")
    replies = [w.read() for w in waiters]
    assert [r[1][1][1] for r in replies] == [b"a", b"d", b"b"]
    scene.admin.call("LRANGE", "q", "0", "-1")
    scene.blocked(0)


def test_one_element_per_push(scene):
    waiters = park(scene, [("BLPOP", "q", "0"), ("BLPOP", "q", "0")])
    scene.admin.call("LPUSH", "q", "x")
    waiters[0].read()
    scene.blocked(1)
    scene.admin.call("LPUSH", "q", "y")
    waiters[1].read()
    scene.admin.call("EXISTS", "q")


def test_multi_key_waiter_served_from_the_key_that_became_ready(scene):
    waiters = park(scene, [("BLPOP", "k1", "k2", "0"), ("BLPOP", "k1", "0")])
    scene.admin.call("MULTI")
    scene.admin.call("RPUSH", "k2", "from-k2")
    scene.admin.call("RPUSH", "k1", "from-k1")
    scene.admin.call("EXEC")
    for waiter in waiters:
        waiter.read()
    scene.admin.call("LRANGE", "k1", "0", "-1")
    scene.admin.call("LRANGE", "k2", "0", "-1")


def test_multi_push_then_pop_serves_nobody(scene):
    waiters = park(scene, [("BLPOP", "q", "0")])
    scene.admin.call("MULTI")
    scene.admin.call("RPUSH", "q", "a")
    scene.admin.call("LPOP", "q")
    scene.admin.call("EXEC")
    scene.blocked(1)
    scene.admin.call("RPUSH", "q", "b")
    waiters[0].read()


def test_blmove_chain(scene):
    waiters = park(scene, [("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"), ("BLPOP", "dst", "0"),
                           ("BRPOPLPUSH", "src", "other", "0")])
    scene.admin.call("RPUSH", "src", "a", "b")
    for waiter in waiters:
        waiter.read()
    for key in ("src", "dst", "other"):
        scene.admin.call("LRANGE", key, "0", "-1")


def test_blmpop_with_count(scene):
    waiters = park(scene, [("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"),
                           ("BLMPOP", "0", "1", "b", "LEFT", "COUNT", "5")])
    scene.admin.call("RPUSH", "b", "1", "2", "3", "4", "5")
    for waiter in waiters:
        waiter.read()
    scene.admin.call("LRANGE", "b", "0", "-1")


def test_wrong_type_keeps_waiting(scene):
    waiters = park(scene, [("BLPOP", "k", "0"), ("BLMOVE", "src", "k", "LEFT", "LEFT", "0")])
    scene.admin.call("SET", "k", "string")
    scene.admin.call("RPUSH", "src", "x")
    waiters[1].read()  # the destination holds a string: WRONGTYPE, element stays in src
    scene.admin.call("LRANGE", "src", "0", "-1")
    scene.blocked(1)
    scene.admin.call("DEL", "k")
    scene.admin.call("RPUSH", "k", "v")
    waiters[0].read()


def test_timeouts(scene):
    waiter = scene.pair()
    for command in [("BLPOP", "q", "0.05"), ("BRPOP", "q", "q2", "0.02"), ("BLMOVE", "q", "d", "LEFT", "LEFT", "0.02"),
                    ("BRPOPLPUSH", "q", "d", "0.02"), ("BLMPOP", "0.02", "1", "q", "LEFT"),
                    ("BLPOP", "q", "0.0004")]:  # under a millisecond: rounded up to 1 ms, not 0 (forever)
        start = time.monotonic()
        waiter.call(*command)
        assert time.monotonic() - start >= (0.015 if command[-1] != "0.0004" else 0)


def test_inside_multi_behaves_as_non_blocking(scene):
    client = scene.pair()
    client.call("MULTI")
    for command in [("BLPOP", "q", "0"), ("BRPOP", "q", "0"), ("BLMOVE", "q", "d", "LEFT", "LEFT", "0"),
                    ("BRPOPLPUSH", "q", "d", "0"), ("BLMPOP", "0", "1", "q", "LEFT"), ("RPUSH", "q", "a"),
                    ("BLPOP", "q", "0")]:
        client.call(*command)
    client.call("EXEC")


def test_disconnected_waiter_is_skipped(scene):
    first, second = park(scene, [("BLPOP", "q", "0"), ("BLPOP", "q", "0")])
    first.close()
    scene.blocked(1)
    scene.admin.call("RPUSH", "q", "a", "b")
    second.read()
    scene.admin.call("LRANGE", "q", "0", "-1")


def test_client_unblock(scene):
    first, second = park(scene, [("BLPOP", "q", "0"), ("BLMOVE", "q", "d", "LEFT", "LEFT", "0")])
    for client, client_id in zip(scene.admin.clients, first.id, strict=True):
        assert client.call("CLIENT", "UNBLOCK", client_id) == (":", b"1")
    first.read()
    for client, client_id in zip(scene.admin.clients, second.id, strict=True):
        assert client.call("CLIENT", "UNBLOCK", client_id, "ERROR") == (":", b"1")
    second.read()
    scene.blocked(0)
    first.call("PING")


def test_requests_sent_while_blocked_run_after(scene):
    waiter = scene.pair()
    for client in waiter.clients:
        client.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n")
    scene.blocked(1)
    scene.admin.call("RPUSH", "q", "a")
    waiter.read()
    waiter.read()


def test_served_pops_propagate_as_non_blocking(postroom_server):
    broker = postroom_server.broker
    admin, a, b, c = (RawClient(postroom_server.port) for _ in range(4))
    try:
        with Propagation(postroom_server) as recorder:
            a.send("BLPOP", "pq1", "0")
            b.send("BLMOVE", "pq2", "pd", "RIGHT", "LEFT", "0")
            c.send("BLMPOP", "0", "1", "pq3", "LEFT", "COUNT", "2")
            wait_until(lambda: postroom_server.call_in_loop(lambda: broker.blocking.blocked_clients) >= 3)
            admin.call("RPUSH", "pq1", "x")
            admin.call("RPUSH", "pq2", "y")
            admin.call("RPUSH", "pq3", "z")
            assert recorder.wait_for(lambda argv: argv[0] == b"LPOP" and argv[1] == b"pq3")
            assert a.read() == ("*", [("$", b"pq1"), ("$", b"x")])
            seen = recorder.take()
    finally:
        for client in (admin, a, b, c):
            client.close()
    assert [b"LPOP", b"pq1"] in seen
    assert [b"LMOVE", b"pq2", b"pd", b"RIGHT", b"LEFT"] in seen
    assert [b"LPOP", b"pq3", b"2"] in seen
    assert not any(command[0].startswith(b"B") for command in seen)


def test_killed_waiter_takes_nothing(scene):
    killed, survivor = park(scene, [("BLPOP", "q", "0"), ("BLMOVE", "src", "q", "LEFT", "LEFT", "0")])
    for client, client_id in zip(scene.admin.clients, killed.id, strict=True):
        assert client.call("CLIENT", "KILL", "ID", client_id) == (":", b"1")
    scene.admin.call("RPUSH", "q", "a")
    scene.admin.call("RPUSH", "src", "b")
    survivor.read()
    scene.admin.call("LRANGE", "q", "0", "-1")
    scene.blocked(0)
    for client in killed.clients:
        assert client.read_closed()


# -- generated scenarios ---------------------------------------------------------------------

WAIT_KEYS = st.sampled_from(["a", "b"])
SIDES = st.sampled_from(["LEFT", "RIGHT"])


@st.composite
def waiter_command(draw) -> tuple[str, ...]:
    kind = draw(st.sampled_from(["BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP"]))
    if kind in ("BLPOP", "BRPOP"):
        return (kind, *draw(st.lists(WAIT_KEYS, min_size=1, max_size=2, unique=True)), "0")
    if kind == "BLMOVE":
        return (kind, draw(WAIT_KEYS), draw(st.sampled_from(["a", "b", "c"])), draw(SIDES), draw(SIDES), "0")
    if kind == "BRPOPLPUSH":
        return (kind, draw(WAIT_KEYS), draw(st.sampled_from(["a", "b", "c"])), "0")
    keys = draw(st.lists(WAIT_KEYS, min_size=1, max_size=2, unique=True))
    return (kind, "0", str(len(keys)), *keys, draw(SIDES), "COUNT", str(draw(st.integers(1, 3))))


@st.composite
def write_batch(draw) -> list[tuple[str, ...]]:
    def push() -> tuple[str, ...]:
        return (draw(st.sampled_from(["RPUSH", "LPUSH"])), draw(WAIT_KEYS),
                *draw(st.lists(st.sampled_from(["1", "2", "3", "4"]), min_size=1, max_size=3)))

    shape = draw(st.sampled_from(["push", "push", "multi", "wrongtype"]))
    if shape == "push":
        return [push()]
    if shape == "multi":
        return [("MULTI",), push(), push(), *([("LPOP", draw(WAIT_KEYS))] if draw(st.booleans()) else []), ("EXEC",)]
    key = draw(WAIT_KEYS)
    return [("MULTI",), ("DEL", key), ("SET", key, "string"), ("EXEC",), ("DEL", key)]


def _ready(pairs: list[Pair], count: int) -> list[Pair]:
    """The ``count`` pairs whose replies have arrived on both servers (the servers already decided)."""
    found: list[Pair] = []
    deadline = time.monotonic() + 5
    while len(found) < count:
        pending = [pair for pair in pairs if pair not in found]
        ready = [pair for pair in pending
                 if all(client.buf or select.select([client.sock], [], [], 0)[0] for client in pair.clients)]
        found.extend(ready)
        assert time.monotonic() < deadline, "served clients never received their replies"
        if len(found) < count:
            time.sleep(0.002)
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(waiters=st.lists(waiter_command(), min_size=1, max_size=4), batches=st.lists(write_batch(), min_size=1,
                                                                                   max_size=4))
def test_generated_scenarios(scene, waiters, batches):
    """Random waiters, then random writes: every reply, in every order, and the final lists match Redis."""
    scene.admin.call("FLUSHALL")
    start = len(scene.pairs)
    parked = park_from(scene, waiters)
    pending = list(parked)
    for batch in batches:
        for command in batch:
            scene.admin.call(*command)
        still = _blocked_count(scene)
        for pair in _ready(pending, len(pending) - still):
            pair.read()
            pending.remove(pair)
    for pair in pending:
        for client, client_id in zip(scene.admin.clients, pair.id, strict=True):
            client.call("CLIENT", "UNBLOCK", client_id)
        pair.read()
    for key in ("a", "b", "c"):
        scene.admin.call("LRANGE", key, "0", "-1")
    for pair in scene.pairs[start:]:
        pair.close()
    del scene.pairs[start:]


def park_from(scene: Scene, commands: list[tuple]) -> list[Pair]:
    """Like :func:`park`, counting clients already blocked."""
    base = _blocked_count(scene)
    waiters = []
    for i, command in enumerate(commands, 1):
        pair = scene.pair()
        pair.send(*command)
        scene.blocked(base + i)
        waiters.append(pair)
    return waiters


def _blocked_count(scene: Scene) -> int:
    counts = [blocked_clients(client) for client in scene.admin.clients]
    assert counts[0] == counts[1], f"blocked clients: postroom {counts[0]} != redis {counts[1]}"
    return counts[0]
