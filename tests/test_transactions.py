"""MULTI/EXEC/DISCARD/WATCH/UNWATCH against the oracle, WATCH races, propagation, the seed's consumer pattern."""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.resp import RawClient


def test_queued_replies_and_exec(diff):
    diff.check("MULTI")
    diff.check("SET", "a", "1")
    diff.check("INCR", "a")
    diff.check("GET", "a")
    diff.check("RPUSH", "l", "x", "y")
    diff.check("LRANGE", "l", 0, -1)
    diff.check("EXEC")


def test_empty_transaction(diff):
    diff.check("MULTI")
    diff.check("EXEC")


def test_state_errors(diff):
    diff.check("EXEC")
    diff.check("DISCARD")
    diff.check("MULTI")
    diff.check("MULTI")
    diff.check("WATCH", "x")
    diff.check("SET", "x", "1")
    diff.check("EXEC")
    diff.check("GET", "x")


def test_arity_errors(diff):
    diff.check("MULTI", "extra")
    diff.check("EXEC", "extra")
    diff.check("DISCARD", "extra")
    diff.check("WATCH")
    diff.check("UNWATCH", "extra")


@pytest.mark.parametrize("bad", [("NOSUCH", "x"), ("GET",), ("SET", "a")])
def test_queue_time_error_aborts(diff, bad):
    diff.check("SET", "a", "before")
    diff.check("MULTI")
    diff.check("SET", "a", "1")
    diff.check(*bad)
    diff.check("SET", "a", "2")
    diff.check("EXEC")
    diff.check("GET", "a")
    diff.check("EXEC")


def test_runtime_errors_do_not_roll_back(diff):
    diff.check("SET", "s", "text")
    diff.check("MULTI")
    diff.check("SET", "a", "1")
    diff.check("INCR", "s")
    diff.check("LPUSH", "s", "x")
    diff.check("INCR", "a")
    diff.check("EXEC")
    diff.check("MGET", "a", "s")


def test_discard(diff):
    diff.check("MULTI")
    diff.check("SET", "a", "1")
    diff.check("DISCARD")
    diff.check("GET", "a")
    diff.check("EXEC")


def test_blocking_commands_do_not_block(diff):
    diff.check("MULTI")
    diff.check("BLPOP", "nolist", 0)
    diff.check("BRPOPLPUSH", "nolist", "dst", 0)
    diff.check("BZPOPMIN", "nozset", 0)
    diff.check("XREAD", "BLOCK", 0, "STREAMS", "nostream", "$")
    diff.check("RPUSH", "l", "x")
    diff.check("BLPOP", "l", 0)
    diff.check("EXEC")


def test_not_allowed_inside_multi(diff):
    diff.check("MULTI")
    diff.check("SHUTDOWN")
    diff.check("SET", "a", "1")
    diff.check("EXEC")


def test_commands_that_run_inside_multi(diff):
    diff.check("MULTI")
    diff.check("PING")
    diff.check("ECHO", "x")
    diff.check("SELECT", 2)
    diff.check("SET", "in2", "x")
    diff.check("EXEC")
    diff.check("GET", "in2")
    diff.check("SELECT", 0)
    diff.check("EXISTS", "in2")


def test_eval_inside_multi(diff):
    diff.check("MULTI")
    diff.check("EVAL", "return redis.call('incr', KEYS[1])", 1, "n")
    diff.check("EVAL", "return redis.call('nosuch')", 0)
    diff.check("EVAL", "return {1, 'two', {ok='three'}, {map={a={double=1.5}}}, false}", 0)
    diff.check("INCR", "n")
    diff.check("EXEC")


class Pair:
    """One more connection on postroom (over the same transport as ``diff``) and on the oracle."""

    def __init__(self, diff, postroom_server, oracle_server) -> None:
        if diff.transport == "tcp":
            self.ours = RawClient(postroom_server.port)
        else:
            self.ours = RawClient(0, sock=postroom_server.raw_channel())
        self.theirs = RawClient(oracle_server.port)
        if diff.protocol == 3:
            self.ours.call("HELLO", 3)
            self.theirs.call("HELLO", 3)

    def check(self, *args):
        ours, theirs = self.ours.call(*args), self.theirs.call(*args)
        assert ours == theirs, f"{args!r}: postroom {ours!r} != redis {theirs!r}"
        return ours

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def other(diff, postroom_server, oracle_server):
    pair = Pair(diff, postroom_server, oracle_server)
    yield pair
    pair.close()


@pytest.mark.parametrize("write", [
    ("SET", "w", "other"), ("DEL", "w"), ("EXPIRE", "w", 100), ("INCR", "w"), ("FLUSHDB",), ("FLUSHALL",),
    ("EVAL", "return redis.call('set', KEYS[1], 'script')", 1, "w"), ("RENAME", "w", "w2"), ("SWAPDB", 0, 1),
])
def test_watch_invalidated_by_other_client(diff, other, write):
    diff.check("SET", "w", "1")
    diff.check("WATCH", "w")
    other.check(*write)
    diff.check("MULTI")
    diff.check("SET", "w", "mine")
    diff.check("EXEC")
    diff.check("GET", "w")


@pytest.mark.parametrize("write", [("SET", "unrelated", "x"), ("GET", "w"), ("EXPIRE", "missing", 10), ("DEL", "missing")])
def test_watch_not_invalidated(diff, other, write):
    diff.check("SET", "w", "1")
    diff.check("WATCH", "w")
    other.check(*write)
    diff.check("MULTI")
    diff.check("INCR", "w")
    diff.check("EXEC")


def test_watch_own_write_invalidates(diff):
    diff.check("WATCH", "w")
    diff.check("SET", "w", "1")
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")


def test_watch_missing_key_created(diff, other):
    diff.check("WATCH", "w")
    other.check("SET", "w", "x")
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")


def test_unwatch_exec_and_discard_forget_watches(diff, other):
    diff.check("WATCH", "w")
    diff.check("UNWATCH")
    other.check("SET", "w", "1")
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")
    diff.check("WATCH", "w")
    diff.check("MULTI")
    diff.check("DISCARD")
    other.check("SET", "w", "2")
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")


def test_watch_key_in_other_database(diff, other):
    diff.check("SELECT", 1)
    diff.check("WATCH", "w")
    other.check("SET", "w", "db0")
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")
    other.check("SELECT", 1)
    diff.check("WATCH", "w")
    other.check("SET", "w", "db1")
    diff.check("MULTI")
    diff.check("GET", "w")
    diff.check("EXEC")


def test_watch_aborts_when_key_expires_before_exec(diff):
    diff.check("SET", "w", "1", "PX", 40)
    diff.check("WATCH", "w")
    time.sleep(0.1)  # nothing to await: the key must expire with no command touching it
    diff.check("MULTI")
    diff.check("SET", "x", "1")
    diff.check("EXEC")
    diff.check("GET", "x")


def test_watch_already_expired_key_does_not_abort(diff):
    diff.check("SET", "w", "1", "PX", 1)
    time.sleep(0.02)
    diff.check("WATCH", "w")
    diff.check("GET", "w")
    diff.check("MULTI")
    diff.check("SET", "x", "1")
    diff.check("EXEC")


# -- hypothesis: interleavings of a transaction and a second client --------------------------------

KEYS = ["k1", "k2", "k3"]
key = st.sampled_from(KEYS)
queued = st.one_of(
    st.tuples(st.just("SET"), key, st.sampled_from(["1", "x", "10"])),
    st.tuples(st.just("INCR"), key),
    st.tuples(st.just("GET"), key),
    st.tuples(st.just("DEL"), key),
    st.tuples(st.just("RPUSH"), key, st.just("e")),
    st.tuples(st.just("NOSUCH"), key),
    st.tuples(st.just("GET")),
)
others = st.one_of(
    st.tuples(st.just("SET"), key, st.just("o")),
    st.tuples(st.just("INCR"), key),
    st.tuples(st.just("DEL"), key),
    st.tuples(st.just("GET"), key),
    st.tuples(st.just("EXPIRE"), key, st.just("100")),
    st.tuples(st.just("FLUSHDB")),
    st.tuples(st.just("EVAL"), st.just("return redis.call('set', KEYS[1], 's')"), st.just("1"), key),
)
step = st.one_of(
    st.tuples(st.just("A"), st.one_of(
        st.tuples(st.just("WATCH"), key), st.tuples(st.just("UNWATCH")), st.tuples(st.just("MULTI")),
        st.tuples(st.just("EXEC")), st.tuples(st.just("DISCARD")), queued)),
    st.tuples(st.just("B"), others),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_watch_races_match_redis(diff, other, steps):
    diff.both("DISCARD")
    diff.check("UNWATCH")
    diff.check("FLUSHALL")
    for who, command in steps:
        (diff if who == "A" else other).check(*command)
    diff.check("MGET", *KEYS)


# -- propagation -----------------------------------------------------------------------------------


@pytest.fixture
def propagated(postroom_server):
    units: list[tuple[int, list[list[bytes]]]] = []

    def sink(db: int, commands: list[list[bytes]]) -> None:
        units.append((db, [list(c) for c in commands]))

    broker = postroom_server.broker
    postroom_server.call_in_loop(broker.propagation_sinks.append, sink)
    yield units
    postroom_server.call_in_loop(broker.propagation_sinks.remove, sink)


def test_exec_propagates_one_unit(r, propagated):
    with r.pipeline(transaction=True) as pipe:
        pipe.set("a", "1").set("b", "2").get("a").lpush("l", "x")
        pipe.execute()
    assert len(propagated) == 1
    assert [[c[0].upper()] + c[1:] for c in propagated[0][1]] == [
        [b"MULTI"], [b"SET", b"a", b"1"], [b"SET", b"b", b"2"], [b"LPUSH", b"l", b"x"], [b"EXEC"]]


def test_read_only_exec_propagates_nothing(r, propagated):
    with r.pipeline(transaction=True) as pipe:
        pipe.get("a").exists("b")
        pipe.execute()
    assert propagated == []


def test_script_effects_propagate_as_one_unit(r, propagated):
    r.eval("redis.call('set', KEYS[1], 'v') redis.call('select', 5) redis.call('del', KEYS[1], KEYS[2]) "
           "redis.call('set', KEYS[2], 'w')", 2, "a", "b")
    assert len(propagated) == 1
    db, unit = propagated[0]
    assert db == 0
    assert [[c[0].upper()] + c[1:] for c in unit] == [
        [b"MULTI"], [b"SET", b"a", b"v"], [b"SELECT", b"5"], [b"SET", b"b", b"w"], [b"EXEC"]]
    propagated.clear()
    r.eval("return redis.call('set', KEYS[1], 'v')", 1, "single")
    assert [[c[0].upper()] + c[1:] for c in propagated[0][1]] == [[b"SET", b"single", b"v"]]
    propagated.clear()
    r.eval("redis.set_repl(redis.REPL_NONE) redis.call('set', 'hidden', '1') redis.set_repl(redis.REPL_ALL) "
           "redis.call('set', 'shown', '1')", 0)
    assert [[c[0].upper()] + c[1:] for c in propagated[0][1]] == [[b"SET", b"shown", b"1"]]


# -- the seed's idempotent consumer --------------------------------------------------------------


def read_batch(client: redis.Redis) -> list:
    """This consumer's pending entries first (re-processing after a crash), else new ones."""
    pending = client.xreadgroup("workers", "c1", {"orders": "0"}, count=10)
    if pending and pending[0][1]:
        return pending[0][1]
    batch = client.xreadgroup("workers", "c1", {"orders": ">"}, count=10)
    return batch[0][1] if batch else []


def consume(port: int, crash_before_exec: bool) -> None:
    """Read a batch with XREADGROUP, then in one MULTI add to per-item totals and XACK the batch."""
    client = redis.Redis(port=port)
    entries = read_batch(client)
    commands = [("INCRBY", b"total:" + fields[b"item"], fields[b"qty"]) for _, fields in entries]
    commands.append(("XACK", "orders", "workers", *[entry_id for entry_id, _ in entries]))
    conn = redis.Connection(port=port)
    conn.send_command("MULTI")
    assert conn.read_response() == b"OK"
    for command in commands:
        conn.send_command(*command)
        assert conn.read_response() == b"QUEUED"
    if crash_before_exec:
        conn.disconnect()  # the consumer dies before EXEC
    else:
        conn.send_command("EXEC")
        conn.read_response()
        conn.disconnect()
    client.close()


@pytest.mark.parametrize("server", ["postroom", "oracle"])
def test_idempotent_consumer(request, server):
    port = request.getfixturevalue(f"{server}_server").port
    client = redis.Redis(port=port)
    client.flushall()
    client.xgroup_create("orders", "workers", id="0", mkstream=True)
    for item, qty in [("apple", 3), ("pear", 2), ("apple", 4), ("plum", 1)]:
        client.xadd("orders", {"item": item, "qty": qty})
    consume(port, crash_before_exec=True)
    assert client.keys("total:*") == []  # no partial totals
    assert client.xpending("orders", "workers")["pending"] == 4
    consume(port, crash_before_exec=False)  # re-processing the pending batch
    totals = {k: client.get(k) for k in sorted(client.keys("total:*"))}
    assert totals == {b"total:apple": b"7", b"total:pear": b"2", b"total:plum": b"1"}
    assert client.xpending("orders", "workers")["pending"] == 0
    client.close()


# -- the AOF replays transactions and script effects deterministically ----------------------------


def test_aof_replays_transactions_and_script_effects(tmp_path):
    from .support.servers import PostroomProcess

    server = PostroomProcess(tmp_path, None, "--appendonly", "yes", "--appendfsync", "always")
    try:
        client = redis.Redis(port=server.port)
        with client.pipeline(transaction=True) as pipe:
            pipe.set("a", "1").incrby("a", 5).rpush("l", "x", "y").execute()
        client.eval("local t = redis.call('time') redis.call('set', 'stamp', t[1] .. '.' .. t[2]) "
                    "redis.call('incr', 'a') redis.call('lpop', 'l')", 0)
        client.function_load("#!lua name=lib\nredis.register_function('bump', function(keys) "
                             "return redis.call('incrby', keys[1], 10) end)")
        client.fcall("bump", 1, "a")
        before = (sorted(client.keys("*")), client.get("a"), client.lrange("l", 0, -1), client.get("stamp"))
        stamp = client.get("stamp")
        client.close()
        server.kill()  # no shutdown: only the AOF survives
        server.start()
        client = redis.Redis(port=server.port)
        assert (sorted(client.keys("*")), client.get("a"), client.lrange("l", 0, -1), client.get("stamp")) == before
        assert client.get("stamp") == stamp  # effects, not the script, were replayed
        assert client.get("a") == b"17"
        assert client.fcall("bump", 1, "a") == 27  # the library was persisted too
        client.close()
    finally:
        server.stop()
