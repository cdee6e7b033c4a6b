"""Key expiry: lazy and active, millisecond precision, ``expired`` events, TTL rules on writes.

Waiting is done on ``expired`` keyspace events (or the server's own state), not on fixed sleeps,
except where a test must show that a key is still alive before its deadline.
"""

from __future__ import annotations

import time

import pytest

from .support.recorders import Propagation
from .support.resp import RawClient


class ExpiredEvents:
    """A connection subscribed to ``__keyevent@*__:expired`` on one server."""

    def __init__(self, port: int) -> None:
        self.admin = RawClient(port)
        self.admin.call("CONFIG", "SET", "notify-keyspace-events", "Ex")
        self.sub = RawClient(port)
        self.sub.call("PSUBSCRIBE", "__keyevent@*__:expired")

    def wait(self, count: int) -> list[tuple[bytes, bytes]]:
        """The next ``count`` (channel, key) expired events, in order."""
        events = []
        for _ in range(count):
            _, items = self.sub.read()
            events.append((items[2][1], items[3][1]))
        return events

    def close(self) -> None:
        self.admin.call("CONFIG", "SET", "notify-keyspace-events", "")
        self.admin.close()
        self.sub.close()


@pytest.fixture
def expired(postroom_server, oracle_server, diff):
    listeners = ExpiredEvents(postroom_server.port), ExpiredEvents(oracle_server.port)
    yield listeners
    for listener in listeners:
        listener.close()


def test_active_expiry_removes_untouched_keys(diff, expired, postroom_server):
    keys = [f"k{i}" for i in range(50)]
    for key in keys:
        diff.check("SET", key, "v", "PX", "30")
    diff.check("SET", "stays", "v")
    db = postroom_server.broker.dbs[0]
    ours = expired[0].wait(len(keys))
    theirs = expired[1].wait(len(keys))
    assert sorted(ours) == sorted(theirs) == sorted((b"__keyevent@0__:expired", k.encode()) for k in keys)
    assert len(db.data) == 1 and not db.expires
    diff.check("DBSIZE")
    diff.check("KEYS", "*")


def test_lazy_expiry_on_access(diff, postroom_server):
    postroom_server.call_in_loop(postroom_server.broker.config.set, "hz", "1")
    try:
        diff.check("SET", "k", "v", "PX", "20")
        time.sleep(0.03)
        db = postroom_server.broker.dbs[0]
        diff.check("GET", "k")
        assert b"k" not in db.data
        diff.check_all([("EXISTS", "k"), ("TTL", "k"), ("DBSIZE",)])
    finally:
        postroom_server.call_in_loop(postroom_server.broker.config.set, "hz", "10")


def test_expired_events_match_oracle_for_lazy_expiry(diff, expired, postroom_server):
    diff.check("SET", "a", "1", "PX", "10")
    diff.check("SET", "b", "2", "PX", "10")
    time.sleep(0.02)
    diff.check("GET", "a")
    diff.check("EXISTS", "b")
    assert sorted(expired[0].wait(2)) == sorted(expired[1].wait(2))


def wait_past(deadline_ms: int) -> None:
    while int(time.time() * 1000) <= deadline_ms:
        time.sleep(0.002)


def test_millisecond_precision(r, postroom_server):
    """A key lives until its exact millisecond deadline and not one millisecond more."""
    postroom_server.call_in_loop(postroom_server.broker.config.set, "hz", "1")
    try:
        r.set("k", "v", px=1500)
        assert 1000 < r.pttl("k") <= 1500
        deadline = postroom_server.broker.dbs[0].expires[b"k"]
        assert r.exists("k") == 1
        wait_past(deadline)
        assert r.get("k") is None
        r.set("k", "v")
        deadline = int(time.time() * 1000) + 1000
        r.pexpireat("k", deadline)
        assert r.pexpiretime("k") == deadline
        assert r.exists("k") == 1
        wait_past(deadline)
        assert r.exists("k") == 0
    finally:
        postroom_server.call_in_loop(postroom_server.broker.config.set, "hz", "10")


def test_expiry_propagates_del(diff, postroom_server, expired):
    with Propagation(postroom_server) as recorder:
        diff.check("SET", "k", "v", "PX", "10")
        recorder.take()
        expired[0].wait(1)
        assert recorder.take() == [[b"DEL", b"k"]]


@pytest.mark.parametrize(("write", "keeps"), [
    (("SET", "k", "new"), False), (("SET", "k", "new", "KEEPTTL"), True), (("SET", "k", "new", "XX"), False),
    (("SET", "k", "new", "GET"), False), (("GETSET", "k", "new"), False), (("MSET", "k", "new"), False),
    (("SETEX", "k", "5000", "new"), None), (("INCR", "n"), True), (("DECRBY", "n", "2"), True),
    (("INCRBYFLOAT", "n", "1.5"), True), (("APPEND", "k", "x"), True), (("SETRANGE", "k", "0", "x"), True),
    (("GETEX", "k"), True), (("GETEX", "k", "PERSIST"), False), (("PERSIST", "k"), False),
    (("RENAME", "k", "k2"), True), (("COPY", "k", "k3"), True), (("SETNX", "k", "x"), True),
])
def test_ttl_after_writes(diff, write, keeps):
    diff.check_all([("SET", "k", "old", "EX", "1000"), ("SET", "n", "10", "EX", "1000")])
    diff.check(*write)
    for key in ("k", "n", "k2", "k3"):
        reply = diff.check("TTL", key)
        if keeps is not None and key == write[1] and write[0] not in ("RENAME", "COPY"):
            assert (reply[1] == b"1000") is keeps


def test_expired_key_is_gone_for_every_command(diff, postroom_server):
    postroom_server.call_in_loop(postroom_server.broker.config.set, "hz", "1")
    try:
        for command in [("GET", "k"), ("EXISTS", "k"), ("TYPE", "k"), ("TTL", "k"), ("STRLEN", "k"),
                        ("APPEND", "k", "x"), ("INCR", "k"), ("SETNX", "k", "y"), ("SET", "k", "z", "XX"),
                        ("RENAME", "k", "r"), ("COPY", "k", "c"), ("EXPIRE", "k", "100"), ("PERSIST", "k"),
                        ("DEL", "k"), ("OBJECT", "ENCODING", "k"), ("MOVE", "k", "1"), ("GETDEL", "k")]:
            diff.check("SET", "k", "5", "PX", "5")
            time.sleep(0.01)
            diff.check(*command)
            diff.check("GET", "k")
            diff.check("FLUSHALL")
    finally:
        postroom_server.call_in_loop(postroom_server.broker.config.set, "hz", "10")


def test_expired_keys_leave_the_scan_index(postroom_server, r):
    r.mset({f"k{i}": i for i in range(300)})
    assert r.scan(0, count=10)[0] != 0  # builds the index
    for i in range(100):
        r.pexpire(f"k{i}", 5)
    db = postroom_server.broker.dbs[0]
    deadline = time.monotonic() + 5
    while len(db.data) > 200:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(db.scan_order.index) == 200
    seen = set(r.scan_iter(count=37))
    assert seen == {f"k{i}".encode() for i in range(100, 300)}
