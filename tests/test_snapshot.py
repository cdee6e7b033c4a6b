"""Snapshots: SAVE, BGSAVE, save points, SHUTDOWN, startup loading, damaged files, Redis's replies.

Servers are real ``postroom serve`` subprocesses (they fork for BGSAVE), killed and restarted
over one data directory. ``rdb-key-save-delay`` (microseconds per key, as in Redis) makes a
background save last long enough to act while it runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from bench.persistence_bench import bgsave_latency

from postroom.embedded import Embedded
from postroom.persistence.snapshot import read_records

from .support.resp import RawClient
from .support.servers import OracleServer
from .test_aof import Server

pytestmark = pytest.mark.timeout(180)


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def persistence(r: redis.Redis) -> dict:
    return r.info("persistence")


@pytest.fixture
def rdb_server(tmp_path):
    srv = Server(tmp_path, "--appendonly", "no")
    yield srv
    srv.stop()


def test_save_survives_sigkill_and_resets_the_change_counter(rdb_server):
    rdb_server.start()
    r = rdb_server.client()
    r.set("s", "v")
    r.rpush("l", "a", "b")
    r.set("ttl", "x", px=600_000)
    assert persistence(r)["rdb_changes_since_last_save"] == 3
    before = int(time.time())
    assert r.save()
    info = persistence(r)
    assert info["rdb_changes_since_last_save"] == 0 and info["rdb_saves"] == 1
    assert r.lastsave().timestamp() >= before - 1
    r.set("unsaved", "1")
    rdb_server.kill()
    rdb_server.start()
    r = rdb_server.client()
    assert r.get("s") == b"v" and r.lrange("l", 0, -1) == [b"a", b"b"]
    assert 0 < r.pttl("ttl") <= 600_000
    assert r.get("unsaved") is None
    assert persistence(r)["rdb_last_load_keys_loaded"] == 3


def test_bgsave_serves_and_writes_during_the_save_wait_for_the_next_one(tmp_path):
    srv = Server(tmp_path, "--appendonly", "no", "--rdb-key-save-delay", "2000")
    srv.start()
    try:
        r = srv.client()
        r.mset({f"k{i}": i for i in range(400)})  # 400 keys x 2 ms: the child runs about a second
        assert r.info("persistence")["rdb_changes_since_last_save"] == 400
        assert r.bgsave()
        info = persistence(r)
        assert info["rdb_bgsave_in_progress"] == 1 and info["rdb_current_bgsave_time_sec"] >= 0
        started = time.perf_counter()
        assert r.get("k7") == b"7"
        r.set("during", "1")
        assert time.perf_counter() - started < 0.5  # the event loop is not waiting for the child
        wait_until(lambda: persistence(r)["rdb_bgsave_in_progress"] == 0)
        info = persistence(r)
        assert info["rdb_last_bgsave_status"] == "ok" and info["rdb_saves"] == 1
        assert info["rdb_changes_since_last_save"] == 1  # the write made while the child ran
        assert not list(tmp_path.glob("temp-*"))
        srv.kill()
        srv.start()
        r = srv.client()
        assert r.dbsize() == 400 and r.get("during") is None
    finally:
        srv.stop()


def test_replies_while_a_child_runs_match_redis(tmp_path):
    """BGSAVE/SAVE/BGREWRITEAOF conflicts answer exactly as redis-server 7.0 does."""
    sequence = [("BGSAVE",), ("BGSAVE",), ("SAVE",), ("BGREWRITEAOF",), ("BGSAVE", "foo"), ("BGSAVE",),
                ("BGSAVE", "SCHEDULE")]
    oracle = OracleServer("--rdb-key-save-delay", "20000")
    srv = Server(tmp_path, "--appendonly", "no", "--rdb-key-save-delay", "20000")
    srv.start()
    try:
        replies = []
        for port in (oracle.port, srv.port):
            redis.Redis(port=port).mset({f"key:{i}": "value" for i in range(100)})
            client = RawClient(port)
            replies.append([client.call(*command) for command in sequence])
            client.close()
        assert replies[1] == replies[0]
        assert replies[0][0] == ("+", b"Background saving started")
    finally:
        oracle.stop()
        srv.stop()


def test_save_points_start_a_background_save(tmp_path):
    srv = Server(tmp_path, "--appendonly", "no", "--save", "1 2")
    srv.start()
    try:
        r = srv.client()
        r.set("a", "1")
        time.sleep(1.5)
        assert persistence(r)["rdb_saves"] == 0  # one change: below the save point's threshold
        r.set("b", "2")
        wait_until(lambda: persistence(r)["rdb_saves"] == 1, timeout=10)
        assert (tmp_path / "dump.postroom").exists()
    finally:
        srv.stop()


def test_shutdown_saves_as_redis_does(tmp_path):
    srv = Server(tmp_path, "--appendonly", "no", "--save", "3600 1")
    srv.start()
    srv.client().set("by-shutdown", "1")
    RawClient(srv.port).send("SHUTDOWN")  # save points configured: saves
    assert srv.wait_exit() == 0
    srv.start()
    r = srv.client()
    assert r.get("by-shutdown") == b"1"
    r.set("by-nosave", "1")
    RawClient(srv.port).send("SHUTDOWN", "NOSAVE")
    srv.wait_exit()
    srv.start()
    r = srv.client()
    assert r.get("by-nosave") is None
    r.set("by-sigterm", "1")
    srv.stop()  # SIGTERM with save points: saves
    srv.start()
    assert srv.client().get("by-sigterm") == b"1"
    srv.stop()


def test_shutdown_save_without_save_points(rdb_server):
    rdb_server.start()
    rdb_server.client().set("k", "v")
    RawClient(rdb_server.port).send("SHUTDOWN", "SAVE")
    rdb_server.wait_exit()
    rdb_server.start()
    assert rdb_server.client().get("k") == b"v"


@pytest.mark.parametrize("damage", ["flip", "truncate", "version"])
def test_damaged_snapshot_stops_startup(rdb_server, damage):
    rdb_server.start()
    r = rdb_server.client()
    r.mset({f"k{i}": "x" * 50 for i in range(50)})
    assert r.save()
    rdb_server.kill()
    path = rdb_server.dir / "dump.postroom"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        del data[-100:]
    else:
        data[: data.index(b"\n")] = b"POSTROOM-SNAPSHOT 99"
    path.write_bytes(bytes(data))
    rdb_server.start(expect_ready=False)
    assert rdb_server.wait_exit() != 0
    output = rdb_server.output()
    assert str(path) in output
    assert {"flip": "checksum mismatch", "truncate": "checksum mismatch", "version": "version 99"}[damage] in output


def test_keys_that_expired_while_down_are_not_loaded(rdb_server):
    rdb_server.start()
    r = rdb_server.client()
    r.set("short", "1", px=1200)
    r.set("long", "1", px=600_000)
    r.hset("h", mapping={"gone": "1", "kept": "2"})
    r.hpexpire("h", 1200, "gone")
    assert r.save()
    rdb_server.kill()
    time.sleep(1.3)
    rdb_server.start()
    r = rdb_server.client()
    assert r.get("short") is None and r.get("long") == b"1"
    assert r.hgetall("h") == {b"kept": b"2"}
    assert persistence(r)["rdb_last_load_keys_expired"] == 1


def test_enabled_aof_wins_over_the_snapshot(tmp_path):
    srv = Server(tmp_path, "--appendonly", "no")
    srv.start()
    srv.client().set("only-in-snapshot", "1")
    assert srv.client().save()
    srv.stop()
    srv = Server(tmp_path, "--appendonly", "yes")
    srv.start()
    try:
        assert srv.client().get("only-in-snapshot") is None  # as Redis: the AOF is the source of truth
    finally:
        srv.stop()


def test_snapshot_file_format(rdb_server):
    rdb_server.start()
    r = rdb_server.client()
    r.set("a", "1")
    r.select(3)
    r.sadd("s", "x")
    assert r.save()
    path: Path = rdb_server.dir / "dump.postroom"
    assert path.read_bytes().startswith(b"POSTROOM-SNAPSHOT 1\n")
    records = list(read_records(path))
    assert records[0]["dbs"] == 16
    assert sorted((db, key, kind) for db, key, kind, _ttl, _body in records[1:]) == [(0, b"a", 0), (3, b"s", 2)]


def test_embedded_mode_saves_inline(tmp_path):
    """Embedded brokers never fork: BGSAVE runs before it answers."""
    with Embedded(dir=tmp_path, appendonly="no", save="") as broker:
        r = broker.client()
        r.set("k", "v")
        assert r.bgsave()
        info = persistence(r)
        assert info["rdb_bgsave_in_progress"] == 0 and info["rdb_saves"] == 1
    with Embedded(dir=tmp_path, appendonly="no", save="") as broker:
        assert broker.client().get("k") == b"v"


def test_bgsave_keeps_get_latency_low(rdb_server):
    """p99 of sequential GETs while a BGSAVE of 200,000 keys runs stays under 5 ms.

    ``bench/persistence_bench.py`` measures the same with 1,000,000 keys. On a machine so loaded
    that GETs are slow without any save, the figure says nothing about saving: the test skips.
    """
    rdb_server.start()
    latency = bgsave_latency(rdb_server.port, 200_000)
    if latency["baseline_p99_ms"] > 2.5:
        pytest.skip(f"machine too busy to measure: p99 without a save is {latency['baseline_p99_ms']} ms")
    assert latency["during_p99_ms"] <= 5.0, latency


def test_failed_bgsave_stops_writes_until_a_save_succeeds(tmp_path):
    """stop-writes-on-bgsave-error: MISCONF with Redis's text, lifted by a good save or by config."""
    srv = Server(tmp_path, "--appendonly", "no", "--save", "3600 1")
    srv.start()
    try:
        r = srv.client()
        r.set("k", "v")
        gone = tmp_path / "gone"
        gone.mkdir()
        r.config_set("dir", str(gone))
        gone.rmdir()
        assert r.bgsave()
        wait_until(lambda: r.info("persistence")["rdb_bgsave_in_progress"] == 0)
        assert r.info("persistence")["rdb_last_bgsave_status"] == "err"
        with pytest.raises(redis.ResponseError, match="MISCONF Redis is configured to save RDB snapshots"):
            r.set("k", "w")
        assert r.get("k") == b"v"  # reads still work
        r.config_set("stop-writes-on-bgsave-error", "no")
        r.set("k", "w")
        r.config_set("stop-writes-on-bgsave-error", "yes")
        with pytest.raises(redis.ResponseError, match="MISCONF"):
            r.set("k", "x")
        gone.mkdir()
        assert r.save()
        r.set("k", "x")
    finally:
        srv.stop()


def test_the_format_knows_every_attribute_of_the_value_classes():
    """A value class that gains state must gain it in ``snapshot.py`` (and ``docs/PERSISTENCE.md``) too.

    Each slot is either written by the snapshot or derived on load (encodings, scan cursors,
    expiry scheduling, sort caches); this list is the checklist.
    """
    from postroom.keyspace.hashes import HashValue
    from postroom.keyspace.sets import SetValue
    from postroom.keyspace.stream import Stream
    from postroom.keyspace.stream.groups import Consumer, Group, Nack, Pending
    from postroom.keyspace.stream.idmp import Producers
    from postroom.keyspace.stream.node import Node
    from postroom.keyspace.zsets import ZSet

    assert {cls.__name__: set(cls.__slots__) for cls in (HashValue, SetValue, ZSet, Stream, Node, Group, Consumer,
                                                         Nack, Pending, Producers)} == {
        "HashValue": {"listpack", "scan_order", "expires", "next_deadline", "scheduled"},
        "SetValue": {"intset", "scan_order"},
        "ZSet": {"scores", "order", "scan_order", "skiplist"},
        "Stream": {"nodes", "keys", "length", "last_id", "first_id", "max_deleted_id", "entries_added", "groups",
                   "producers"},
        "Node": {"master", "fields", "buf", "live", "total", "last"},
        "Group": {"name", "last_id", "entries_read", "pel", "consumers"},
        "Consumer": {"name", "seen_time", "active_time", "pel"},
        "Nack": {"consumer", "delivery_time", "delivery_count"},
        "Pending": {"map", "_top", "_ordered", "_keys"},
        "Producers": {"duration", "maxsize", "pids", "iids_added", "iids_duplicates"},
    }


def test_shutdown_force_exits_even_when_the_save_fails(rdb_server):
    rdb_server.start()
    rdb_server.client().set("k", "v")
    (rdb_server.dir / "dump.postroom").mkdir()  # the save cannot rename its file into place
    assert RawClient(rdb_server.port).call("SHUTDOWN", "SAVE") == ("-", b"ERR Errors trying to SHUTDOWN. Check logs.")
    assert rdb_server.client().get("k") == b"v"  # refused: still serving
    RawClient(rdb_server.port).send("SHUTDOWN", "SAVE", "FORCE")
    assert rdb_server.wait_exit() == 0
    assert "exiting anyway (SHUTDOWN FORCE)" in rdb_server.output()


def test_flushall_with_save_points_saves_the_empty_dataset(tmp_path):
    """As in Redis, FLUSHALL saves at once when save points are configured: a crash right after
    it cannot bring the flushed keys back from the last snapshot."""
    srv = Server(tmp_path, "--appendonly", "no", "--save", "3600 1")
    try:
        srv.start()
        r = srv.client()
        r.set("flushed", "1")
        assert r.save()
        assert r.flushall()
        assert r.info("persistence")["rdb_changes_since_last_save"] == 1
        srv.kill()
        srv.start()
        assert srv.client().dbsize() == 0
    finally:
        srv.stop()


def test_debug_reload(rdb_server):
    rdb_server.start()
    r = rdb_server.client()
    r.set("kept", "1", px=600_000)
    r.rpush("list", "a", "b")
    assert r.execute_command("DEBUG", "RELOAD") in (b"OK", "OK", True)  # save, flush, load back
    assert r.get("kept") == b"1" and 0 < r.pttl("kept") <= 600_000 and r.lrange("list", 0, -1) == [b"a", b"b"]
    r.set("unsaved", "1")
    r.execute_command("DEBUG", "RELOAD", "NOSAVE")  # loads the snapshot on disk: without it
    assert r.get("unsaved") is None and r.get("kept") == b"1"
    r.set("unsaved", "1")
    r.execute_command("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE")
    assert r.get("unsaved") == b"1" and r.get("kept") == b"1"
    with pytest.raises(redis.ResponseError, match="only supports the MERGE, NOFLUSH and NOSAVE options"):
        r.execute_command("DEBUG", "RELOAD", "SOON")
