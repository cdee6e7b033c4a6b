"""Streams against redis-server: memory per entry, XADD throughput, consumer-group delivery rate.

    python bench/stream_bench.py                   # 1,000,000 entries per memory scenario
    python bench/stream_bench.py --entries 100000  # quicker
    python bench/stream_bench.py --only memory     # or: xadd, groups

Both servers run as subprocesses with persistence off on ephemeral loopback ports, in one run.

* **memory**: resident memory growth for the same entries: postroom's RSS (``/proc/<pid>/status``)
  against redis-server's ``used_memory_rss``, for entries of 4 fields sharing one schema (about 30
  bytes of values per entry), of 1 field, and of mixed schemas. Afterwards reads, trims and
  deletes are checked on both servers at that size.
* **xadd**: ``redis-benchmark -c 50 -P 1|16 XADD s * f1 v1 f2 v2``, alternating which server goes
  first, best of ``--rounds``.
* **groups**: a consumer loop doing ``XREADGROUP COUNT 100`` then ``XACK`` of what it read, over a
  pre-filled stream: entries delivered and acknowledged per second.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

try:
    from .netutil import free_port
except ImportError:  # run as a script: python bench/stream_bench.py
    from netutil import free_port

REDIS_SERVER = shutil.which("redis-server")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
BATCH = 1000



def wait_for(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server on {port} did not start")
            time.sleep(0.05)


class Server:
    """One server subprocess: ``kind`` is ``redis`` or ``postroom``."""

    def __init__(self, kind: str, directory: str) -> None:
        self.kind = kind
        self.port = free_port()
        if kind == "redis":
            argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                    "no", "--dir", directory, "--daemonize", "no", "--loglevel", "warning"]
        else:
            argv = [sys.executable, "-m", "postroom", "serve", "--port", str(self.port), "--bind", "127.0.0.1",
                    "--appendonly", "no", "--save", "", "--dir", directory]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.port, self.proc)
        self.client = redis.Redis(port=self.port)

    def rss(self) -> int:
        """Resident memory as each project reports it: redis's used_memory_rss, our process's VmRSS."""
        if self.kind == "redis":
            return int(self.client.info("memory")["used_memory_rss"])
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def servers() -> Iterator[tuple[Server, Server]]:
    if REDIS_SERVER is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    tmp = tempfile.mkdtemp(prefix="stream-bench-")
    pair = (Server("redis", tmp), Server("postroom", tmp))
    try:
        yield pair
    finally:
        for server in pair:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# -- memory ------------------------------------------------------------------------------------

def four_fields(i: int) -> list[bytes]:
    """4 fields, one schema, about 30 bytes of values."""
    return [b"user", b"u%06d" % (i % 1000000), b"kind", b"click", b"page", b"/p/%05d" % (i % 99991),
            b"ms", b"%d" % (i * 7 % 100000)]


def one_field(i: int) -> list[bytes]:
    return [b"payload", b"event-%024d" % i]


def mixed(i: int) -> list[bytes]:
    """Schemas change from entry to entry: no shared field names to factor out."""
    if i % 3 == 0:
        return [b"user", b"u%06d" % i, b"kind", b"click"]
    if i % 3 == 1:
        return [b"order", b"o%08d" % i, b"amount", b"%d" % (i % 5000), b"currency", b"EUR"]
    return [b"sensor%d" % (i % 7), b"%d.%02d" % (i % 40, i % 100)]


SCENARIOS: dict[str, Callable[[int], list[bytes]]] = {"4-field": four_fields, "1-field": one_field, "mixed": mixed}


def fill(server: Server, key: str, entries: int, make: Callable[[int], list[bytes]]) -> None:
    """Append ``entries`` entries with explicit IDs (identical on both servers), pipelined."""
    conn = server.client.connection_pool.get_connection()
    try:
        for start in range(0, entries, BATCH):
            stop = min(start + BATCH, entries)
            conn.send_packed_command(conn.pack_commands(
                [("XADD", key, f"{1_700_000_000_000 + i // 4}-{i % 4}", *make(i)) for i in range(start, stop)]
            ))
            for _ in range(start, stop):
                conn.read_response()
    finally:
        server.client.connection_pool.release(conn)


def memory(entries: int) -> list[tuple[str, float, float]]:
    rows = []
    for name, make in SCENARIOS.items():
        with servers() as pair:
            growth = []
            for server in pair:
                before = server.rss()
                fill(server, "s", entries, make)
                time.sleep(0.2)
                growth.append(server.rss() - before)
            verify_large(pair, entries)
        rows.append((name, growth[0] / entries, growth[1] / entries))
        print(f"memory {name:8s} redis {growth[0] / entries:7.1f} B/entry   postroom {growth[1] / entries:7.1f} "
              f"B/entry   ratio {growth[1] / growth[0]:.2f}", flush=True)
    return rows


def verify_large(pair: tuple[Server, Server], entries: int) -> None:
    """Reading, trimming and deleting give the same answers on both servers at full size."""
    middle = f"{1_700_000_000_000 + entries // 8}-1"
    checks = [
        ("XLEN", "s"), ("XRANGE", "s", middle, "+", "COUNT", "50"), ("XREVRANGE", "s", "+", middle, "COUNT", "50"),
        ("XDEL", "s", middle, f"{1_700_000_000_000 + 5}-0"), ("XRANGE", "s", "-", "+", "COUNT", "30"),
        ("XTRIM", "s", "MAXLEN", "~", str(entries // 2)), ("XTRIM", "s", "MINID", f"{1_700_000_000_000 + entries // 5}"),
        ("XLEN", "s"), ("XRANGE", "s", "-", "+", "COUNT", "5"), ("XINFO", "STREAM", "s"),
    ]
    for command in checks:
        replies = [server.client.execute_command(*command) for server in pair]
        if command[0] == "XINFO":
            replies = [{k: v for k, v in _pairs(reply).items() if k != b"radix-tree-nodes"} for reply in replies]
        if replies[0] != replies[1]:
            raise AssertionError(f"{command}: redis {replies[0]!r} != postroom {replies[1]!r}")


def _pairs(reply: object) -> dict:
    if isinstance(reply, dict):
        return reply
    items = list(reply)  # type: ignore[call-overload]
    return dict(zip(items[::2], items[1::2], strict=True))


# -- XADD throughput ---------------------------------------------------------------------------

def redis_benchmark(server: Server, pipeline: int, requests: int) -> float:
    server.client.delete("s")
    out = subprocess.run(
        [REDIS_BENCHMARK, "-p", str(server.port), "-c", "50", "-P", str(pipeline), "-n", str(requests), "--csv",
         "XADD", "s", "*", "f1", "v1", "f2", "v2"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return float(rows[-1][1])


def xadd(rounds: int, requests: int) -> list[tuple[str, float, float]]:
    rows = []
    with servers() as pair:
        for pipeline in (1, 16):
            best = [0.0, 0.0]
            for round_ in range(rounds):
                order = (0, 1) if round_ % 2 == 0 else (1, 0)
                for index in order:
                    best[index] = max(best[index], redis_benchmark(pair[index], pipeline, requests * pipeline))
            rows.append((f"XADD -P {pipeline}", best[0], best[1]))
            print(f"xadd -P {pipeline:2d}  redis {best[0]:10.0f}/s  postroom {best[1]:10.0f}/s  "
                  f"ratio {best[1] / best[0]:.2f}", flush=True)
    return rows


# -- consumer-group pipeline -------------------------------------------------------------------

def consume(server: Server, entries: int) -> float:
    """Entries per second through XREADGROUP COUNT 100 + XACK until the group has read everything."""
    client = server.client
    client.delete("s")
    fill(server, "s", entries, four_fields)
    client.xgroup_create("s", "g", id="0")
    done = 0
    start = time.perf_counter()
    while True:
        reply = client.execute_command("XREADGROUP", "GROUP", "g", "worker", "COUNT", "100", "STREAMS", "s", ">")
        if not reply:
            break
        batch = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        ids = [entry_id for entry_id, _fields in batch]
        done += client.execute_command("XACK", "s", "g", *ids)
    elapsed = time.perf_counter() - start
    if done != entries:
        raise AssertionError(f"{server.kind}: acknowledged {done} of {entries}")
    return done / elapsed


def groups(rounds: int, entries: int) -> list[tuple[str, float, float]]:
    best = [0.0, 0.0]
    with servers() as pair:
        for round_ in range(rounds):
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for index in order:
                best[index] = max(best[index], consume(pair[index], entries))
    print(f"group pipeline  redis {best[0]:10.0f} entries/s  postroom {best[1]:10.0f} entries/s  "
          f"ratio {best[1] / best[0]:.2f}", flush=True)
    return [("XREADGROUP+XACK", best[0], best[1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries per memory scenario")
    parser.add_argument("--requests", type=int, default=100_000, help="redis-benchmark requests per pipeline depth")
    parser.add_argument("--group-entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("memory", "xadd", "groups"), action="append")
    options = parser.parse_args()
    only = options.only or ["xadd", "groups", "memory"]
    if "xadd" in only:
        xadd(options.rounds, options.requests)
    if "groups" in only:
        groups(options.rounds, options.group_entries)
    if "memory" in only:
        memory(options.entries)


if __name__ == "__main__":
    main()
