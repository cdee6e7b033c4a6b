"""Every data type survives a restart through a snapshot and through an AOF rewrite (property test).

Hypothesis builds a random keyspace over two databases: strings, lists, sets (intset and not),
sorted sets (infinite and negative-zero scores), hashes with field TTLs, streams with deletions,
consumer groups, consumers, pending entries and acknowledgements, and key TTLs. The server saves
(SAVE, or BGREWRITEAOF plus later writes in the new incremental file), stops, and a new server on
the same directory loads it. Equality is DUMP-like, read through commands: type, absolute expiry
time, and the full contents of every key (XINFO STREAM FULL for streams: entries, metadata,
groups, PELs with delivery times and counts, consumers with their times).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.embedded import Embedded

from .support.servers import PostroomProcess

pytestmark = pytest.mark.timeout(600)

DBS = (0, 1)
FAR = 10**7  # TTLs far enough ahead that nothing expires during an example

names = st.binary(min_size=1, max_size=6)
values = st.binary(max_size=20)
ints = st.integers(-(2**63), 2**63 - 1).map(lambda n: str(n).encode())
members = st.one_of(ints, values)
scores = st.one_of(st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, float("inf"), float("-inf")]))
ttl = st.none() | st.integers(600_000, FAR)


@st.composite
def stream_ops(draw: Any) -> list[tuple]:
    """Commands building a stream (``{key}`` stands for its key): entries, deletions, groups, deliveries,
    acks, claims, released entries (XNACK), idempotent producers (IDMP, XCFGSET)."""
    ops: list[tuple] = []
    count = draw(st.integers(1, 25))
    ms = 1
    ids = []
    for _ in range(count):
        ms += draw(st.integers(0, 3))
        seq = draw(st.integers(0, 2))
        entry_id = f"{ms}-{seq + len(ids)}"
        ids.append(entry_id)
        fields = draw(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c"]), values), min_size=1, max_size=3))
        ops.append(("XADD", "{key}", entry_id, *[x for pair in fields for x in pair]))
    for entry_id in draw(st.lists(st.sampled_from(ids), max_size=5)):
        ops.append(("XDEL", "{key}", entry_id))
    for g in range(draw(st.integers(0, 2))):
        group = f"g{g}".encode()
        ops.append(("XGROUP", "CREATE", "{key}", group, draw(st.sampled_from(["0", "$", ids[0]]))))
        for c in range(draw(st.integers(0, 3))):
            consumer = f"c{c}".encode()
            ops.append(("XREADGROUP", "GROUP", group, consumer, "COUNT", draw(st.integers(1, 5)), "STREAMS", "{key}",
                        ">"))
        if draw(st.booleans()):
            ops.append(("XGROUP", "CREATECONSUMER", "{key}", group, b"idle"))
        for entry_id in draw(st.lists(st.sampled_from(ids), max_size=3)):
            ops.append(("XACK", "{key}", group, entry_id))
        if draw(st.booleans()):
            ops.append(("XCLAIM", "{key}", group, b"thief", 0, draw(st.sampled_from(ids)), "RETRYCOUNT", 7))
        if draw(st.booleans()):  # Redis 8.2: the entry stays pending in the group, owned by nobody
            ops.append(("XNACK", "{key}", group, draw(st.sampled_from(["SILENT", "FAIL", "FATAL"])), "IDS", 1,
                        draw(st.sampled_from(ids))))
    if draw(st.booleans()):  # idempotent producers (Redis 8.6), auto IDs come after the explicit ones
        if draw(st.booleans()):
            ops.append(("XCFGSET", "{key}", "IDMP-DURATION", draw(st.integers(60, 3600)), "IDMP-MAXSIZE",
                        draw(st.integers(1, 10))))
        for _ in range(draw(st.integers(1, 4))):
            pid = draw(st.sampled_from([b"p1", b"p2"]))
            if draw(st.booleans()):
                ops.append(("XADD", "{key}", "IDMP", pid, draw(st.sampled_from([b"i1", b"i2", b"i3"])), "*", "f", "v"))
            else:
                ops.append(("XADD", "{key}", "IDMPAUTO", pid, "*", "f", draw(st.sampled_from([b"x", b"y"]))))
    return ops


@st.composite
def key_ops(draw: Any) -> tuple[str, list[tuple]]:
    kind = draw(st.sampled_from(["string", "list", "set", "zset", "hash", "stream"]))
    if kind == "string":
        return kind, [("SET", "{key}", draw(values))]
    if kind == "list":
        return kind, [("RPUSH", "{key}", *draw(st.lists(values, min_size=1, max_size=20)))]
    if kind == "set":
        return kind, [("SADD", "{key}", *draw(st.lists(members, min_size=1, max_size=20)))]
    if kind == "zset":
        pairs = draw(st.lists(st.tuples(scores, members), min_size=1, max_size=20))
        return kind, [("ZADD", "{key}", *[x for s, m in pairs for x in (repr(s), m)])]
    if kind == "hash":
        fields = draw(st.lists(st.tuples(names, values), min_size=1, max_size=10))
        ops: list[tuple] = [("HSET", "{key}", *[x for pair in fields for x in pair])]
        for field, _ in fields:
            field_ttl = draw(ttl)
            if field_ttl is not None:
                ops.append(("HPEXPIRE", "{key}", field_ttl, "FIELDS", 1, field))
        return kind, ops
    return kind, draw(stream_ops())


keyspaces = st.lists(st.tuples(st.sampled_from(DBS), names, key_ops(), ttl), min_size=1, max_size=12)


def build(r: redis.Redis, keyspace: list) -> None:
    """Apply the generated commands (errors, e.g. XCLAIM of a deleted entry, are part of the game)."""
    for db, key, (_kind, ops), key_ttl in keyspace:
        r.execute_command("SELECT", db)
        for op in ops:
            try:
                r.execute_command(*[key if a == "{key}" else a for a in op])
            except redis.ResponseError:
                pass
        if key_ttl is not None:
            r.execute_command("PEXPIRE", key, key_ttl)
    r.execute_command("SELECT", 0)


def describe(r: redis.Redis) -> dict:
    """Every key of the databases under test: type, absolute expiry, full contents."""
    state: dict = {}
    for db in DBS:
        r.execute_command("SELECT", db)
        for key in r.execute_command("KEYS", "*"):
            kind = r.execute_command("TYPE", key)
            expiry = r.execute_command("PEXPIRETIME", key)
            if kind == b"string":
                content: Any = r.execute_command("GET", key)
            elif kind == b"list":
                content = r.execute_command("LRANGE", key, 0, -1)
            elif kind == b"set":
                content = sorted(r.execute_command("SMEMBERS", key))
            elif kind == b"zset":
                content = r.execute_command("ZRANGE", key, 0, -1, "WITHSCORES")
            elif kind == b"hash":
                pairs = r.hgetall(key)
                fields = list(pairs)
                times = r.execute_command("HPEXPIRETIME", key, "FIELDS", len(fields), *fields)
                content = sorted(zip(fields, pairs.values(), times, strict=True))
            else:
                content = (r.execute_command("XRANGE", key, "-", "+"),
                           r.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", 0))
            state[(db, key)] = (kind, expiry, content)
    r.execute_command("SELECT", 0)
    return state


def replayed(state: dict, keyspace: list) -> dict:
    """``state`` without the consumer times of the streams ``keyspace`` wrote.

    Replaying the AOF re-creates a consumer at load time (Redis's AOF has the same limit), and a
    duplicate XADD IDMP writes nothing to count: only what a snapshot (the base) holds keeps
    seen-time, active-time and iids-duplicates.
    """
    touched = {(db, key) for db, key, _ops, _ttl in keyspace}
    masked = {}
    for slot, (kind, expiry, content) in state.items():
        if kind == b"stream" and slot in touched:
            entries, info = content
            info = {k: v for k, v in info.items() if k != b"iids-duplicates"}  # a duplicate writes nothing
            info[b"groups"] = [
                {**group, b"consumers": [{k: v for k, v in c.items() if k not in (b"seen-time", b"active-time")}
                                         for c in group[b"consumers"]]}
                for group in info[b"groups"]
            ]
            content = (entries, info)
        masked[slot] = (kind, expiry, content)
    return masked


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Restartable:
    """A data directory served by an embedded broker (no fork: jobs run inline) or a subprocess server (forks)."""

    def __init__(self, directory: str, forked: bool, **config: str) -> None:
        self.directory = directory
        self.forked = forked
        self.config = {"save": "", **config}
        self.embedded: Embedded | None = None
        self.process: PostroomProcess | None = None

    def start(self) -> redis.Redis:
        if self.forked:
            args = [x for name, value in self.config.items() for x in (f"--{name}", value)]
            self.process = PostroomProcess(self.directory, None, *args)
            return redis.Redis(port=self.process.port, socket_timeout=30)
        self.embedded = Embedded(dir=self.directory, **self.config)
        return self.embedded.client()

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.close()
            self.embedded = None
        if self.process is not None:
            self.process.stop()
            self.process = None


def snapshot_round_trip(keyspace: list, forked: bool) -> None:
    directory = tempfile.mkdtemp(prefix="postroom-roundtrip-")
    server = Restartable(directory, forked, appendonly="no")
    try:
        r = server.start()
        build(r, keyspace)
        before = describe(r)
        if forked:
            assert r.bgsave()  # redis-py turns "Background saving started" into True
            wait_until(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0)
            assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
        else:
            assert r.save()
        server.stop()
        assert describe(server.start()) == before
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def rewrite_round_trip(keyspace: list, later: list, forked: bool) -> None:
    directory = tempfile.mkdtemp(prefix="postroom-roundtrip-")
    server = Restartable(directory, forked, appendonly="yes", appendfsync="always")
    try:
        r = server.start()
        build(r, keyspace)
        assert r.bgrewriteaof()
        build(r, later)  # lands in the new incremental file (while the child writes the base, if forked)
        wait_until(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0)
        assert r.info("persistence")["aof_last_bgrewrite_status"] == "ok"
        before = replayed(describe(r), later)
        server.stop()
        assert replayed(describe(server.start()), later) == before
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


inline = settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
forked = settings(inline, max_examples=4)


@inline
@given(keyspace=keyspaces)
def test_snapshot_round_trip(keyspace):
    snapshot_round_trip(keyspace, forked=False)


@inline
@given(keyspace=keyspaces, later=keyspaces)
def test_aof_rewrite_round_trip(keyspace, later):
    rewrite_round_trip(keyspace, later, forked=False)


@forked
@given(keyspace=keyspaces)
def test_forked_bgsave_round_trip(keyspace):
    snapshot_round_trip(keyspace, forked=True)


@forked
@given(keyspace=keyspaces, later=keyspaces)
def test_forked_rewrite_round_trip(keyspace, later):
    rewrite_round_trip(keyspace, later, forked=True)
