"""The servers under test and the core suite: the real ``redis-benchmark`` against both.

:class:`Servers` starts redis-server and postroom (``python -m postroom serve``, uvloop) with
persistence off on ephemeral loopback ports, in temporary directories. :class:`RedisBenchmarkSuite`
runs ``redis-benchmark -t TEST -c 50 -P N -q --csv`` on each, alternating which server goes first
from round to round so that drifting machine load does not favour one of them, and keeps each
server's best round. The request count is calibrated per test so that a run on postroom lasts
about ``seconds`` (3 s, or 1 s with ``--quick``).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from . import Endpoints, Options, Result, ScriptSuite, Suite, register
from .netutil import free_port, wait_for_port

REDIS_SERVER = shutil.which("redis-server")
REDIS_BENCHMARK = shutil.which("redis-benchmark")




class Servers:
    """redis-server and postroom, persistence off, for the duration of a ``with`` block."""

    def __init__(self) -> None:
        if REDIS_SERVER is None or REDIS_BENCHMARK is None:
            raise SystemExit("redis-server and redis-benchmark are needed: apt-get install redis-server redis-tools")
        self.tmp = tempfile.mkdtemp(prefix="postroom-bench-")
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Endpoints:
        redis_port, postroom_port = free_port(), free_port()
        self._start(
            [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.tmp, "--daemonize", "no", "--loglevel", "warning"],
            redis_port,
        )
        self._start(
            [sys.executable, "-m", "postroom", "serve", "--port", str(postroom_port), "--bind", "127.0.0.1",
             "--appendonly", "no", "--save", "", "--dir", self.tmp, "--loglevel", "warning"],
            postroom_port,
        )
        return Endpoints(redis_port, postroom_port)

    def _start(self, argv: list[str], port: int) -> None:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_for_port(port, proc)

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]


def redis_benchmark(port: int, test: str | list[str], requests: int, pipeline: int, clients: int = 50) -> dict[str, float]:
    """Run redis-benchmark once; ``{row name: requests per second}`` (``-t ping`` gives two rows).

    ``test`` is a ``-t`` test name, or a whole command line (``["XADD", "s", "*", "f", "v"]``).
    """
    assert REDIS_BENCHMARK is not None
    what = ["-t", test] if isinstance(test, str) else list(test)
    out = subprocess.run(
        [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-n", str(requests), "-c", str(clients),
         "-P", str(pipeline), "-q", "--csv", *what],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return {row[0]: float(row[1]) for row in rows[1:] if len(row) > 1}


@dataclass
class RedisBenchmarkSuite(Suite):
    """``redis-benchmark`` tests at several pipeline depths, postroom against redis-server."""

    name: str
    tests: list[str | list[str]]  # -t names, or whole command lines
    pipelines: list[int]
    targets: dict[int, float] = field(default_factory=lambda: {1: 0.9, 16: 0.5})  # per pipeline depth
    overrides: dict[str, dict[int, float]] = field(default_factory=dict)  # row name prefix -> targets
    clients: int = 50
    seconds: float = 3.0
    description: str = ""

    def target_for(self, row: str, pipeline: int) -> float | None:
        for prefix, targets in self.overrides.items():
            if row.upper().startswith(prefix.upper()):
                return targets.get(pipeline)
        return self.targets.get(pipeline)

    def run(self, endpoints: Endpoints | None, options: Options) -> list[Result]:
        assert endpoints is not None
        seconds = 1.0 if options.quick else self.seconds
        rounds = 1 if options.quick else options.rounds
        results: list[Result] = []
        for test in self.tests:
            for pipeline in self.pipelines:
                requests = self._calibrate(endpoints.postroom_port, test, pipeline, seconds)
                best: dict[str, dict[str, float]] = {"redis": {}, "postroom": {}}
                samples: dict[str, dict[str, list[float]]] = {"redis": {}, "postroom": {}}
                for round_number in range(rounds):
                    order = [("redis", endpoints.redis_port), ("postroom", endpoints.postroom_port)]
                    if round_number % 2:
                        order.reverse()
                    for server, port in order:
                        for row, rps in redis_benchmark(port, test, requests, pipeline, self.clients).items():
                            samples[server].setdefault(row, []).append(rps)
                            best[server][row] = max(best[server].get(row, 0.0), rps)
                for row in best["redis"]:
                    results.append(Result(
                        self.name, row, pipeline, best["redis"][row], best["postroom"].get(row),
                        self.target_for(row, pipeline),
                        {server: samples[server].get(row, []) for server in samples},
                    ))
                    _print_progress(results[-1], requests)
        return results

    def _calibrate(self, port: int, test: str, pipeline: int, seconds: float) -> int:
        """Requests for a run of about ``seconds`` on postroom, from a short probe run."""
        probe = 5000 * min(pipeline, 8)
        rates = redis_benchmark(port, test, probe, pipeline, self.clients)
        rate = min(rates.values()) if rates else 10000.0
        return int(min(max(rate * seconds, 10000), 20_000_000))


def _print_progress(result: Result, requests: int) -> None:
    ratio = f"{result.ratio:.2f}" if result.ratio is not None else "-"
    print(f"  {result.test:<16} -P {result.pipeline:<3} n={requests:<9} redis {result.redis or 0:>11,.0f}  "
          f"postroom {result.postroom or 0:>11,.0f}  ratio {ratio}", flush=True)


register(RedisBenchmarkSuite(
    "core", ["ping", "set", "get", "incr", "mset"], [1, 16],
    description="issue 2: redis-benchmark -t ping,set,get,incr,mset -c 50 at -P 1 and -P 16",
))
register(RedisBenchmarkSuite(
    "collections", ["lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "zadd", "zpopmin", "lrange_100"],
    [1, 16], overrides={"LRANGE_100": {1: 0.9, 16: 0.3}}, seconds=2.0,
    description="issue 3: lists, sets, hashes, sorted sets with redis-benchmark -c 50",
))
register(RedisBenchmarkSuite(
    "xadd", [["XADD", "s", "*", "f1", "v1", "f2", "v2"]], [1, 16],
    description="issue 4: XADD s * f1 v1 f2 v2 with redis-benchmark -c 50",
))
register(RedisBenchmarkSuite(
    "publish", [["PUBLISH", "channel", "message"]], [1], targets={1: 0.9},
    description="issue 5: PUBLISH with redis-benchmark -c 50 (no subscribers)",
))
register(ScriptSuite(
    "scripting", "scripting_bench.py", [], ["--seconds", "1", "--rounds", "1"],
    description="issue 6: EVALSHA (redis-benchmark -c 50) and MULTI/INCR/EXEC",
))
register(ScriptSuite(
    "streams", "stream_bench.py", ["--only", "memory", "--only", "groups"],
    ["--only", "memory", "--only", "groups", "--entries", "100000", "--rounds", "1"],
    description="issue 4: stream memory per entry and the consumer-group pipeline",
))
register(ScriptSuite(
    "persistence", "persistence_bench.py", [], ["--keys", "100000"],
    description="issue 7: SET under appendfsync always/everysec, GET p99 during BGSAVE",
))
register(ScriptSuite(
    "embedded", "embedded_bench.py", [], ["--rounds", "1", "--ops", "500"],
    description="issue 8: embedded postroom against fakeredis, same redis-py calls",
))
register(ScriptSuite(
    "zset-scale", "zset_scale.py", [], ["10000", "100000"],
    description="sorted set per-call cost as the set grows (in-process, postroom only)",
))
register(ScriptSuite(
    "pubsub", "pubsub_bench.py", [], ["--messages", "5000", "--requests", "50000", "--rounds", "1"],
    description="PUBLISH rate and fan-out to many subscribers",
))
register(ScriptSuite(
    "tasks", "tasks_bench.py", ["--jobs", "10000"], ["--jobs", "2000"], python_from="BENCH_TASKS_PYTHON",
    description="issue 9: postroom.tasks against RQ, arq, SAQ, Dramatiq and Celery (baseline: each peer)",
))

__all__ = ["RedisBenchmarkSuite", "Servers", "free_port", "redis_benchmark"]
