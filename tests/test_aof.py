"""The append-only file: durability across SIGKILL, and recovery from damaged files.

Recovery cases follow Redis's ``tests/integration/aof.tcl``: a truncated last command, a
half-written MULTI, garbage in the middle, a missing file listed in the manifest.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from postroom.persistence.aof import Manifest

from .support.resp import RawClient
from .support.servers import PostroomThread, free_port, wait_for_port

pytestmark = pytest.mark.timeout(180)


class Server:
    """``python -m postroom serve`` over a data directory, restartable and killable."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.dir = directory
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = directory / "server.log"

    def start(self, expect_ready: bool = True) -> None:
        cmd = [sys.executable, "-m", "postroom", "serve", "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", str(self.dir), "--save", "", *self.args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        if expect_ready:
            wait_for_port(self.port, timeout=30)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def wait_exit(self) -> int:
        assert self.proc is not None
        return self.proc.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, "--appendfsync", "always")
    yield srv
    srv.stop()


def incr_file(directory: Path) -> Path:
    manifest = Manifest(directory / "appendonlydir", "appendonly.aof")
    assert manifest.load()
    return directory / "appendonlydir" / manifest.increments[-1].name


def test_writes_survive_sigkill(server):
    server.start()
    r = server.client()
    r.set("s", "v")
    r.incr("n")
    r.rpush("l", "a", "b")
    r.set("ttl", "x", px=600_000)
    r.xadd("stream", {"f": "v"}, id="5-1")
    server.kill()
    server.start()
    r = server.client()
    assert r.get("s") == b"v"
    assert r.get("n") == b"1"
    assert r.lrange("l", 0, -1) == [b"a", b"b"]
    assert 0 < r.pttl("ttl") <= 600_000
    assert r.xrange("stream") == [(b"5-1", {b"f": b"v"})]


def test_truncated_last_command_is_dropped_with_a_warning(server):
    server.start()
    server.client().set("kept", "1")
    server.kill()
    with open(incr_file(server.dir), "ab") as handle:
        handle.write(b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1")
    server.start()
    r = server.client()
    assert r.get("kept") == b"1"
    assert r.get("lost") is None
    assert "short read while loading the AOF" in server.output()
    r.set("after", "1")  # appends after the truncation point, not after the garbage
    server.kill()
    server.start()
    assert server.client().get("after") == b"1"


def test_half_written_multi_is_reverted(server):
    server.start()
    server.client().set("before", "1")
    server.kill()
    with open(incr_file(server.dir), "ab") as handle:
        handle.write(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$7\r\npartial\r\n$1\r\n1\r\n")
    server.start()
    r = server.client()
    assert r.get("before") == b"1"
    assert r.get("partial") is None
    r.set("next", "1")
    server.kill()
    server.start()
    assert server.client().get("next") == b"1"
    assert server.client().get("partial") is None


def test_garbage_in_the_middle_stops_startup_naming_file_and_offset(server):
    server.start()
    server.client().set("a", "1")
    server.kill()
    path = incr_file(server.dir)
    good = path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(b"!!garbage!!\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n")
    server.start(expect_ready=False)
    assert server.wait_exit() != 0
    output = server.output()
    assert "Bad file format" in output and str(path) in output and f"offset {good}" in output
    fixed = subprocess.run([sys.executable, "-m", "postroom", "check-aof", "--fix", str(path)],
                           capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert path.stat().st_size == good
    server.start()
    assert server.client().get("a") == b"1"


def test_missing_increment_stops_startup(server):
    server.start()
    server.client().set("a", "1")
    server.kill()
    incr_file(server.dir).unlink()
    server.start(expect_ready=False)
    assert server.wait_exit() != 0
    assert "does not exist" in server.output()


def test_check_aof_reports_a_clean_file(server):
    server.start()
    server.client().set("a", "1")
    server.stop()
    result = subprocess.run([sys.executable, "-m", "postroom", "check-aof", str(incr_file(server.dir))],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "OK" in result.stdout


def test_failed_write_under_always_is_not_acknowledged(monkeypatch, tmp_path):
    server = PostroomThread(appendonly="yes", appendfsync="always")
    try:
        r = redis.Redis(port=server.port, socket_timeout=5)
        r.set("ok", "1")
        real_write = os.write

        def failing_write(fd: int, data) -> int:
            if threading.current_thread().name == "postroom-embedded":
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", failing_write)
        raw = RawClient(server.port)
        raw.send("SET", "unacknowledged", "1")  # executed in memory, never acknowledged:
        assert raw.read_closed()  # the connection drops without a reply, as after a crash
        r2 = redis.Redis(port=server.port, socket_timeout=5)
        with pytest.raises(redis.ResponseError, match="MISCONF Errors writing to the AOF file: No space left"):
            r2.set("refused", "1")
        assert r2.get("ok") == b"1"  # reads still work
        assert r2.info("persistence")["aof_last_write_status"] == "err"
        monkeypatch.setattr(os, "write", real_write)
        server.call_in_loop(server.server.persistence.commit)  # the disk is back (the cron retries too)
        assert r2.set("accepted", "1") is True
        assert r2.get("unacknowledged") == b"1"  # it was sent, and is now on disk as well
    finally:
        server.stop()


def test_failed_fsync_under_always_is_retried_without_writing_twice(monkeypatch):
    """The write reached the file but its fsync failed: the retry fsyncs, it does not append again."""
    server = PostroomThread(appendonly="yes", appendfsync="always")
    try:
        r = redis.Redis(port=server.port, socket_timeout=5)
        r.incr("n")
        real_fsync = os.fsync

        def failing_fsync(fd: int) -> None:
            if threading.current_thread().name == "postroom-embedded":
                raise OSError(errno.EIO, "Input/output error")
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", failing_fsync)
        raw = RawClient(server.port)
        raw.send("INCR", "n")
        assert raw.read_closed()  # not acknowledged
        with pytest.raises(redis.ResponseError, match="MISCONF Errors writing to the AOF file: Input/output error"):
            redis.Redis(port=server.port, socket_timeout=5).incr("refused")
        monkeypatch.setattr(os, "fsync", real_fsync)
        server.call_in_loop(server.server.persistence.commit)
        r = redis.Redis(port=server.port, socket_timeout=5)
        assert r.incr("n") == 3
        assert incr_file(Path(server.tmp)).read_bytes().count(b"INCR") == 3  # each INCR once
    finally:
        server.stop()


@pytest.mark.parametrize("can_cut_back", [True, False], ids=["cut-back", "rest-later"])
def test_short_write_leaves_each_command_once(monkeypatch, can_cut_back):
    """A full disk stops a write halfway. Whether the partial data can be cut off again (Redis's
    ftruncate) or not (the rest is written on retry), the AOF ends with each command once."""
    server = PostroomThread(appendonly="yes", appendfsync="everysec")
    try:
        redis.Redis(port=server.port, socket_timeout=5).set("before", "1")
        real_write = os.write
        writes = []

        def short_then_full(fd: int, data) -> int:
            if threading.current_thread().name != "postroom-embedded":
                return real_write(fd, data)
            writes.append(len(data))
            if len(writes) == 1:
                return real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", short_then_full)
        if not can_cut_back:
            def refuse(fd: int, length: int) -> None:
                raise OSError(errno.EIO, "Input/output error")

            monkeypatch.setattr(os, "ftruncate", refuse)
        raw = RawClient(server.port)
        raw.send("SET", "during", "x" * 100)
        assert raw.read_closed()  # the write failed: not acknowledged
        monkeypatch.undo()
        assert len(writes) == 2  # half written, then the disk is full
        server.call_in_loop(server.server.persistence.commit)  # the disk is back (the cron retries too)
        assert redis.Redis(port=server.port, socket_timeout=5).set("after", "1")
        server.call_in_loop(lambda: server.server.persistence.commit(force=True))
        path = incr_file(Path(server.tmp))
        assert path.read_bytes().count(b"x" * 100) == 1
        result = subprocess.run([sys.executable, "-m", "postroom", "check-aof", str(path)],
                                capture_output=True, text=True)
        assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr
    finally:
        server.stop()


class _Writers:
    """Four clients writing INCR + RPUSH + XADD until the server dies, recording what was acked."""

    def __init__(self, server: Server, label: str) -> None:
        self.server = server
        self.label = label
        self.stop = threading.Event()
        self.progress = 0
        self.acked_counter = 0
        self.acked: set[bytes] = set()
        self.sent: set[bytes] = set()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._write, args=(w,)) for w in range(4)]

    def _write(self, worker: int) -> None:
        r = self.server.client()
        sequence = 0
        while not self.stop.is_set():
            item = f"{self.label}:{worker}:{sequence}".encode()
            sequence += 1
            self.sent.add(item)
            try:
                pipe = r.pipeline(transaction=False)
                pipe.incr("counter").rpush("items", item).xadd("events", {"item": item})
                count, _, _ = pipe.execute()
            except (redis.ConnectionError, redis.TimeoutError):
                return
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)
                return
            self.acked.add(item)
            self.acked_counter = max(self.acked_counter, count)
            self.progress += 1

    def run_until_killed(self, writes_before_kill: int) -> None:
        for thread in self.threads:
            thread.start()
        while self.progress < writes_before_kill and all(t.is_alive() for t in self.threads):
            threading.Event().wait(0.005)
        self.server.kill()
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


@pytest.mark.slow
def test_acknowledged_writes_survive_repeated_sigkill(server):
    """Clients write continuously; the server is SIGKILLed at random moments; nothing acked is lost."""
    rng = random.Random(7)
    acked: set[bytes] = set()
    sent: set[bytes] = set()
    acked_counter = 0
    server.start()
    for round_number in range(6):
        writers = _Writers(server, str(round_number))
        writers.run_until_killed(rng.randint(20, 200))
        assert not writers.errors, writers.errors
        acked |= writers.acked
        sent |= writers.sent
        acked_counter = max(acked_counter, writers.acked_counter)
        server.start()
        r = server.client()
        stored = set(r.lrange("items", 0, -1))
        assert acked <= stored, f"lost acknowledged items: {sorted(acked - stored)[:5]}"
        assert stored <= sent, "items appeared that were never sent"
        assert int(r.get("counter")) >= acked_counter
        assert int(r.get("counter")) == len(stored) == r.xlen("events")


@pytest.mark.slow
def test_everysec_sigkill_loses_no_acknowledged_write(tmp_path):
    """Under everysec a reply waits for its write (not its fsync), as in Redis's beforeSleep:
    killing the process loses nothing acknowledged. An OS crash or power loss can lose the last
    fsync interval, and a write postponed behind a slow fsync up to about two seconds.
    """
    server = Server(tmp_path, "--appendfsync", "everysec")
    try:
        server.start()
        acked: set[bytes] = set()
        for round_number in range(3):
            writers = _Writers(server, f"everysec-{round_number}")
            writers.run_until_killed(300)
            assert not writers.errors, writers.errors
            acked |= writers.acked
            server.start()
            stored = set(server.client().lrange("items", 0, -1))
            lost = acked - stored
            assert not lost, f"{len(lost)} acknowledged writes lost"
    finally:
        server.stop()
