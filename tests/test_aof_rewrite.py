"""AOF rewrite: compaction into a snapshot base, writes during the rewrite, crashes, automatic rewrites.

The crash cases follow Redis's ``tests/integration/aof-multi-part.tcl``: whatever moment the
server (or the rewriting child) dies, the manifest on disk loads every acknowledged write.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from postroom.embedded import Embedded
from postroom.persistence.aof import Manifest

from .support.resp import RawClient
from .test_aof import Server

pytestmark = pytest.mark.timeout(180)


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def manifest(directory: Path) -> Manifest:
    loaded = Manifest(directory / "appendonlydir", "appendonly.aof")
    assert loaded.load()
    return loaded


def aof_files(directory: Path) -> set[str]:
    return {p.name for p in (directory / "appendonlydir").iterdir()}


def rewriting(r: redis.Redis) -> bool:
    return r.info("persistence")["aof_rewrite_in_progress"] == 1


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(x) for x in handle.read().split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def slow_rewrite(tmp_path):
    """AOF on, fsync always, and a child that spends 5 ms per key."""
    srv = Server(tmp_path, "--appendfsync", "always", "--rdb-key-save-delay", "5000")
    yield srv
    srv.stop()


def test_rewrite_compacts_and_keeps_writes_made_during_it(tmp_path):
    srv = Server(tmp_path, "--appendfsync", "always", "--rdb-key-save-delay", "3000")
    srv.start()
    try:
        r = srv.client()
        for _ in range(300):
            r.incr("counter")
        r.mset({f"k{i}": i for i in range(200)})  # 201 keys x 3 ms: the child runs about 0.6 s
        before = r.info("persistence")["aof_current_size"]
        assert RawClient(srv.port).call("BGREWRITEAOF") == ("+", b"Background append only file rewriting started")
        assert rewriting(r)
        assert RawClient(srv.port).call("BGREWRITEAOF") == (
            "-", b"ERR Background append only file rewriting already in progress")
        r.incr("counter")
        r.set("during", "1")
        wait_until(lambda: not rewriting(r))
        info = r.info("persistence")
        assert info["aof_last_bgrewrite_status"] == "ok" and info["aof_rewrites"] == 1
        assert info["aof_current_size"] < before
        entries = manifest(tmp_path).entries
        assert [(e.kind, e.name) for e in entries] == [("b", "appendonly.aof.1.base.snapshot"),
                                                        ("i", "appendonly.aof.2.incr.aof")]
        assert aof_files(tmp_path) == {"appendonly.aof.manifest", *(e.name for e in entries)}  # old files gone
        srv.kill()
        srv.start()
        r = srv.client()
        assert r.get("counter") == b"301" and r.get("during") == b"1" and r.dbsize() == 202
    finally:
        srv.stop()


def test_crash_during_rewrite_loses_nothing(slow_rewrite, tmp_path):
    srv = slow_rewrite
    srv.start()
    r = srv.client()
    r.mset({f"k{i}": i for i in range(400)})  # about 2 s of rewriting
    assert r.bgrewriteaof()
    assert rewriting(r)
    (child,) = children_of(srv.proc.pid)
    for i in range(50):
        r.set(f"during{i}", i)
    old_manifest = [(e.kind, e.name) for e in manifest(tmp_path).entries]
    assert old_manifest == [("i", "appendonly.aof.1.incr.aof"), ("i", "appendonly.aof.2.incr.aof")]
    srv.kill()
    wait_until(lambda: not alive(child), timeout=10)  # the child dies with its parent
    srv.start()
    r = srv.client()
    assert r.dbsize() == 450 and r.get("k399") == b"399" and r.get("during49") == b"49"
    assert not [name for name in aof_files(tmp_path) if name.startswith("temp-")]
    assert r.bgrewriteaof()
    wait_until(lambda: not rewriting(r), timeout=60)
    assert r.info("persistence")["aof_last_bgrewrite_status"] == "ok"
    srv.kill()
    srv.start()
    assert srv.client().dbsize() == 450


def test_killed_child_fails_the_rewrite_but_not_the_data(slow_rewrite, tmp_path):
    srv = slow_rewrite
    srv.start()
    r = srv.client()
    r.mset({f"k{i}": i for i in range(300)})
    assert r.bgrewriteaof()
    (child,) = children_of(srv.proc.pid)
    os.kill(child, 9)
    wait_until(lambda: not rewriting(r))
    info = r.info("persistence")
    assert info["aof_last_bgrewrite_status"] == "err" and info["aof_rewrites_consecutive_failures"] == 1
    assert not [name for name in aof_files(tmp_path) if name.startswith("temp-")]
    r.set("after", "1")
    srv.kill()
    srv.start()
    r = srv.client()
    assert r.dbsize() == 301


def test_bgsave_and_rewrite_schedule_each_other(slow_rewrite):
    srv = slow_rewrite
    srv.start()
    r = srv.client()
    r.mset({f"k{i}": i for i in range(100)})
    raw = RawClient(srv.port)
    assert raw.call("BGREWRITEAOF") == ("+", b"Background append only file rewriting started")
    assert raw.call("BGSAVE") == ("-", b"ERR Another child process is active (AOF?): can't BGSAVE right now. "
                                       b"Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
    assert raw.call("BGSAVE", "SCHEDULE") == ("+", b"Background saving scheduled")
    wait_until(lambda: r.info("persistence")["rdb_saves"] == 1)  # started by the cron once the rewrite ended
    assert r.info("persistence")["aof_rewrites"] == 1
    assert raw.call("BGSAVE") == ("+", b"Background saving started")
    assert raw.call("BGREWRITEAOF") == ("+", b"Background append only file rewriting scheduled")
    assert r.info("persistence")["aof_rewrite_scheduled"] == 1
    wait_until(lambda: r.info("persistence")["aof_rewrites"] == 2)


def test_automatic_rewrite_on_growth(tmp_path):
    srv = Server(tmp_path, "--auto-aof-rewrite-min-size", "20000", "--auto-aof-rewrite-percentage", "100")
    srv.start()
    try:
        r = srv.client()
        for i in range(100):
            r.set("same-key", "x" * 100 + str(i))  # about 13 kB of log for one small key
        time.sleep(0.5)
        assert r.info("persistence")["aof_rewrites"] == 0  # below the minimum size
        for i in range(100):
            r.set("same-key", "x" * 100 + str(i))
        wait_until(lambda: r.info("persistence")["aof_rewrites"] == 1, timeout=10)
        info = r.info("persistence")
        assert info["aof_current_size"] < 20000 and info["aof_base_size"] == info["aof_current_size"]
    finally:
        srv.stop()


def test_rewrite_with_the_aof_off_writes_a_base(tmp_path):
    srv = Server(tmp_path, "--appendonly", "no")
    srv.start()
    try:
        r = srv.client()
        r.set("k", "v")
        assert r.bgrewriteaof()
        wait_until(lambda: r.info("persistence")["aof_rewrites"] == 1)
        assert [(e.kind, e.name) for e in manifest(tmp_path).entries] == [("b", "appendonly.aof.1.base.snapshot")]
    finally:
        srv.stop()
    srv = Server(tmp_path, "--appendonly", "yes")
    srv.start()
    try:
        assert srv.client().get("k") == b"v"
    finally:
        srv.stop()


def test_waitaof(tmp_path):
    with Embedded(dir=tmp_path / "on", appendonly="yes", appendfsync="everysec", save="") as broker:
        r = broker.client()
        r.set("k", "v")
        assert r.execute_command("WAITAOF", 1, 0, 0) == [1, 0]
    with Embedded(dir=tmp_path / "off", appendonly="no", save="") as broker:
        with pytest.raises(redis.ResponseError, match="WAITAOF cannot be used when numlocal is set but appendonly "
                                                      "is disabled"):
            broker.client().execute_command("WAITAOF", 1, 0, 0)
        assert broker.client().execute_command("WAITAOF", 0, 0, 0) == [0, 0]
