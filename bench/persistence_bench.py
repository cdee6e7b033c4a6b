"""Persistence costs: AOF write throughput against redis-server, and GET latency during BGSAVE.

1. ``redis-benchmark -t set -c 50 -P 1`` against, in the same run and alternating order:
   redis-server and postroom with ``appendonly yes, appendfsync always``; postroom with
   ``everysec``; postroom without persistence. Targets: postroom ``always`` >= 0.8x redis-server
   ``always``; postroom ``everysec`` >= 0.9x postroom without persistence. Best round of each.
2. Load N keys (default 1,000,000) into postroom, then time sequential GETs from one client before
   and during a BGSAVE (the fork and the child's work). Target: p99 during BGSAVE <= 5 ms.

    python bench/persistence_bench.py [--keys 1000000] [--requests 100000] [--rounds 3] [--skip-aof]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import redis

try:
    from .netutil import free_port, wait_for_port
except ImportError:  # run as a script: python bench/persistence_bench.py
    from netutil import free_port, wait_for_port

REDIS_SERVER = shutil.which("redis-server")
REDIS_BENCHMARK = shutil.which("redis-benchmark")




@dataclass
class Running:
    """A server process on a port with its data directory."""

    name: str
    port: int
    proc: subprocess.Popen
    directory: str

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis(name: str, *args: str) -> Running:
    if REDIS_SERVER is None:
        raise SystemExit("redis-server is needed: apt-get install redis-server")
    port, directory = free_port(), tempfile.mkdtemp(prefix="postroom-pbench-")
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory,
                             "--daemonize", "no", "--loglevel", "warning", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return Running(name, port, proc, directory)


def start_postroom(name: str, *args: str) -> Running:
    port, directory = free_port(), tempfile.mkdtemp(prefix="postroom-pbench-")
    proc = subprocess.Popen([sys.executable, "-m", "postroom", "serve", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--dir", directory, "--loglevel", "warning", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return Running(name, port, proc, directory)


# -- 1. AOF throughput ---------------------------------------------------------------------------


def set_rps(port: int, requests: int) -> float:
    """Requests per second of ``redis-benchmark -t set -c 50 -P 1``."""
    if REDIS_BENCHMARK is None:
        raise SystemExit("redis-benchmark is needed: apt-get install redis-tools")
    out = subprocess.run([REDIS_BENCHMARK, "-p", str(port), "-t", "set", "-c", "50", "-P", "1", "-n", str(requests),
                          "-r", "100000", "-q", "--csv"], capture_output=True, text=True, check=True).stdout
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] == "SET"]
    return float(rows[0][1])


def aof_throughput(requests: int, rounds: int) -> dict[str, float]:
    servers = [
        start_redis("redis always", "--appendonly", "yes", "--appendfsync", "always"),
        start_postroom("postroom always", "--appendonly", "yes", "--appendfsync", "always"),
        start_postroom("postroom everysec", "--appendonly", "yes", "--appendfsync", "everysec"),
        start_postroom("postroom no persistence", "--appendonly", "no"),
    ]
    best = {s.name: 0.0 for s in servers}
    try:
        for round_ in range(rounds):
            order = servers if round_ % 2 == 0 else list(reversed(servers))
            for server in order:
                rps = set_rps(server.port, requests)
                best[server.name] = max(best[server.name], rps)
                print(f"  round {round_ + 1}: {server.name:<24} {rps:>10,.0f} SET/s", flush=True)
    finally:
        for server in servers:
            server.stop()
    return best


# -- 2. GET latency during BGSAVE ----------------------------------------------------------------


def load_keys(r: redis.Redis, keys: int, batch: int = 1000) -> None:
    pipe = r.pipeline(transaction=False)
    for start in range(0, keys, batch):
        pipe.mset({f"key:{i}": f"value:{i}" for i in range(start, min(start + batch, keys))})
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def get_latencies(r: redis.Redis, keys: int, until: callable, minimum: float) -> list[float]:  # type: ignore[valid-type]
    """Sequential GETs of random keys until ``until()`` is true and ``minimum`` seconds passed; ms each."""
    samples = []
    started = time.monotonic()
    check_at = started
    while True:
        key = f"key:{random.randrange(keys)}"
        t0 = time.perf_counter()
        r.get(key)
        samples.append((time.perf_counter() - t0) * 1000)
        now = time.monotonic()
        if now >= check_at:
            check_at = now + 0.05
            if now - started >= minimum and until():
                return samples


def bgsave_latency(port: int, keys: int) -> dict[str, float]:
    """Load ``keys`` keys, then GET latency before and during a BGSAVE (server on ``port``, saving off)."""
    r = redis.Redis(port=port, socket_timeout=60)
    admin = redis.Redis(port=port, socket_timeout=60)
    load_keys(r, keys)
    baseline = get_latencies(r, keys, lambda: True, 1.0)
    saves = admin.info("persistence")["rdb_saves"]
    started = time.monotonic()
    assert admin.bgsave()
    during = get_latencies(r, keys, lambda: admin.info("persistence")["rdb_saves"] > saves, 0.0)
    duration = time.monotonic() - started
    info = admin.info("persistence")
    assert info["rdb_last_bgsave_status"] == "ok"
    return {
        "fork_ms": round(admin.info("stats")["latest_fork_usec"] / 1000, 1),  # Stats, as in Redis
        "keys": keys,
        "bgsave_seconds": round(duration, 2),
        "baseline_p50_ms": round(percentile(baseline, 0.50), 3),
        "baseline_p99_ms": round(percentile(baseline, 0.99), 3),
        "baseline_max_ms": round(max(baseline), 3),
        "during_gets": len(during),
        "during_p50_ms": round(percentile(during, 0.50), 3),
        "during_p99_ms": round(percentile(during, 0.99), 3),
        "during_max_ms": round(max(during), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000, help="redis-benchmark requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-aof", action="store_true")
    parser.add_argument("--skip-bgsave", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {}
    ok = True
    if not args.skip_aof:
        print("SET -c 50 -P 1 (best of rounds):", flush=True)
        best = aof_throughput(args.requests, args.rounds)
        always = best["postroom always"] / best["redis always"]
        everysec = best["postroom everysec"] / best["postroom no persistence"]
        report["aof"] = {**best, "always_vs_redis": round(always, 3), "everysec_vs_no_persistence": round(everysec, 3)}
        print(f"  appendfsync always:   postroom/redis-server = {always:.2f} (target >= 0.80)")
        print(f"  appendfsync everysec: postroom/postroom without persistence = {everysec:.2f} (target >= 0.90)")
        ok = ok and always >= 0.8 and everysec >= 0.9
    if not args.skip_bgsave:
        server = start_postroom("postroom", "--appendonly", "no")
        try:
            print(f"GET latency during BGSAVE of {args.keys:,} keys:", flush=True)
            latency = bgsave_latency(server.port, args.keys)
        finally:
            server.stop()
        report["bgsave"] = latency
        for name, value in latency.items():
            print(f"  {name}: {value}")
        ok = ok and latency["during_p99_ms"] <= 5.0
    print(json.dumps(report))
    rows = []
    if "aof" in report:
        aof = report["aof"]
        rows.append({"test": "SET -P 1, appendfsync always (vs redis-server always)", "redis": aof["redis always"],
                     "postroom": aof["postroom always"], "target": 0.8})
        rows.append({"test": "SET -P 1, appendfsync everysec (vs postroom without persistence)",
                     "redis": aof["postroom no persistence"], "postroom": aof["postroom everysec"], "target": 0.9})
    print("BENCH-JSON " + json.dumps(rows))  # rows for `python -m bench`; the BGSAVE latency is printed above
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
