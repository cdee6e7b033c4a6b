"""postroom.tasks against RQ, arq, SAQ, Dramatiq and Celery: no-op jobs, one broker.

Same run, same broker (a redis-server this script starts on a free loopback
port), one worker process per framework, no-op jobs.  For each framework:

* enqueue: N jobs sent as fast as the framework's producer API allows
  (its batch API where it has one, else pipelined/concurrent calls);
* process: one worker process drains them; the clock runs from the first
  job taken to the last one done (a final job pushes to a list the bench
  blocks on), so start-up and imports are not counted.

Peers are optional: a framework that is not installed is reported as such
(install them with ``pip install -r bench/requirements-tasks.txt``).

The issue's bars: postroom.tasks enqueues at least 50,000 jobs/s in batches,
processes at least 10,000 jobs/s, and is faster than each peer.  The script
prints a Markdown table, and a ``BENCH-JSON`` line with those checks as rows
for ``python -m bench``; it exits 1 when one is missed or a peer could not be
measured.

Usage: python bench/tasks_bench.py [--jobs 10000] [--only postroom,rq]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

try:
    from .netutil import free_port
except ImportError:  # run as a script: python bench/tasks_bench.py
    from netutil import free_port

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path[:0] = [str(SRC), str(HERE)]  # postroom, and this file as module tasks_bench for RQ's worker

DONE = "bench:done"


# -- the jobs (module level, so each framework's worker can import them) ------


def noop() -> None:
    """The benchmarked job: no work, so the framework's overhead is all there is."""


def finish() -> None:
    """Last job: tells the bench the queue has been drained."""
    redis.Redis.from_url(os.environ["BENCH_URL"]).rpush(DONE, time.time())


async def anoop(ctx: dict) -> None:
    """noop for the asyncio frameworks (arq, SAQ pass a context)."""


async def afinish(ctx: dict) -> None:
    finish()


# -- per-framework producers and workers --------------------------------------


class Framework:
    name = ""
    module = ""

    def __init__(self, url: str) -> None:
        self.url = url

    def available(self) -> bool:
        try:
            __import__(self.module)
        except ImportError:
            return False
        return True

    def enqueue(self, n: int) -> None:
        raise NotImplementedError

    def enqueue_finish(self) -> None:
        raise NotImplementedError

    def backlog(self, client: redis.Redis) -> int:
        """Jobs not yet taken by the worker (to start the clock)."""
        raise NotImplementedError

    def work(self) -> None:
        """Run one worker in this (sub)process until killed."""
        raise NotImplementedError


class Postroom(Framework):
    name, module = "postroom.tasks", "postroom.tasks"

    def _app(self):
        from postroom.tasks import App

        app = App(self.url, prefix="bench", result_ttl=60)
        app.task(name="noop", retries=0)(noop)
        app.task(name="finish")(finish)
        return app

    def enqueue(self, n: int) -> None:
        self.app = self._app()
        noop_task = self.app.tasks["noop"]
        for start in range(0, n, 5000):
            noop_task.map([() for _ in range(min(5000, n - start))])

    def enqueue_finish(self) -> None:
        self.app.tasks["finish"].delay()

    def backlog(self, client: redis.Redis) -> int:
        return self.app.stats()["waiting"]

    def work(self) -> None:
        from postroom.tasks import Worker

        Worker(self._app(), concurrency=1, prefetch=1000).run()


class RQ(Framework):
    name, module = "RQ", "rq"

    def enqueue(self, n: int) -> None:
        import tasks_bench  # RQ refuses functions of __main__: use this file's importable twin
        from rq import Queue

        self.queue = Queue("bench", connection=redis.Redis.from_url(self.url))
        for start in range(0, n, 1000):
            batch = [Queue.prepare_data(tasks_bench.noop, result_ttl=0) for _ in range(min(1000, n - start))]
            self.queue.enqueue_many(batch)

    def enqueue_finish(self) -> None:
        import tasks_bench

        self.queue.enqueue(tasks_bench.finish, result_ttl=0)

    def backlog(self, client: redis.Redis) -> int:
        return self.queue.count

    def work(self) -> None:
        from rq import Queue, SimpleWorker

        conn = redis.Redis.from_url(self.url)
        # SimpleWorker runs jobs in-process: the fast RQ (the default forks per job).
        SimpleWorker([Queue("bench", connection=conn)], connection=conn).work(logging_level="WARNING")


class Arq(Framework):
    name, module = "arq", "arq"

    def _settings(self):
        from arq.connections import RedisSettings

        return RedisSettings.from_dsn(self.url)

    def enqueue(self, n: int) -> None:
        from arq import create_pool

        async def go() -> None:
            pool = await create_pool(self._settings())
            for start in range(0, n, 1000):
                await asyncio.gather(*(pool.enqueue_job("anoop") for _ in range(min(1000, n - start))))
            await pool.aclose()

        asyncio.run(go())

    def enqueue_finish(self) -> None:
        from arq import create_pool

        async def go() -> None:
            pool = await create_pool(self._settings())
            await pool.enqueue_job("afinish")
            await pool.aclose()

        asyncio.run(go())

    def backlog(self, client: redis.Redis) -> int:
        return client.zcard("arq:queue")

    def work(self) -> None:
        from arq.worker import Worker

        Worker(functions=[anoop, afinish], redis_settings=self._settings(), keep_result=0, poll_delay=0.01).run()


class Saq(Framework):
    name, module = "SAQ", "saq"

    def enqueue(self, n: int) -> None:
        from saq import Queue

        async def go() -> None:
            queue = Queue.from_url(self.url, name="bench")
            await queue.connect()
            for start in range(0, n, 1000):
                await asyncio.gather(*(queue.enqueue("anoop") for _ in range(min(1000, n - start))))
            await queue.disconnect()

        asyncio.run(go())

    def enqueue_finish(self) -> None:
        from saq import Queue

        async def go() -> None:
            queue = Queue.from_url(self.url, name="bench")
            await queue.connect()
            await queue.enqueue("afinish")
            await queue.disconnect()

        asyncio.run(go())

    def backlog(self, client: redis.Redis) -> int:
        return client.llen("saq:bench:queued")

    def work(self) -> None:
        from saq import Queue, Worker

        async def go() -> None:
            queue = Queue.from_url(self.url, name="bench")
            await Worker(queue, functions=[anoop, afinish], concurrency=10).start()

        asyncio.run(go())


class Dramatiq(Framework):
    name, module = "Dramatiq", "dramatiq"

    def _actors(self):
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=self.url)
        dramatiq.set_broker(broker)
        return broker, dramatiq.actor(noop, queue_name="bench"), dramatiq.actor(finish, queue_name="bench")

    def enqueue(self, n: int) -> None:
        _, self.noop, self.finish = self._actors()
        for _ in range(n):
            self.noop.send()

    def enqueue_finish(self) -> None:
        self.finish.send()

    def backlog(self, client: redis.Redis) -> int:
        return client.llen("dramatiq:bench")

    def work(self) -> None:
        from dramatiq import Worker

        broker, _, _ = self._actors()
        worker = Worker(broker, worker_threads=8)
        worker.start()
        while True:
            time.sleep(1)


class Celery(Framework):
    name, module = "Celery", "celery"

    def _app(self):
        from celery import Celery as CeleryApp

        app = CeleryApp("bench", broker=self.url)
        app.conf.task_ignore_result = True
        app.conf.worker_hijack_root_logger = False
        return app, app.task(name="noop")(noop), app.task(name="finish")(finish)

    def enqueue(self, n: int) -> None:
        self.app, self.noop, self.finish = self._app()
        with self.app.producer_or_acquire() as producer:
            for _ in range(n):
                self.noop.apply_async(producer=producer)

    def enqueue_finish(self) -> None:
        self.finish.apply_async()

    def backlog(self, client: redis.Redis) -> int:
        return client.llen("celery")

    def work(self) -> None:
        app, _, _ = self._app()
        app.worker_main(["worker", "--pool=solo", "--concurrency=1", "--loglevel=WARNING", "--without-heartbeat",
                         "--without-gossip", "--without-mingle", "--prefetch-multiplier=100"])


FRAMEWORKS: list[type[Framework]] = [Postroom, RQ, Arq, Saq, Dramatiq, Celery]


# -- measuring ------------------------------------------------------------------



def measure(fw: Framework, n: int, client: redis.Redis, timeout: float) -> tuple[float, float]:
    """(enqueued jobs/s, processed jobs/s) for one framework."""
    client.flushall()
    started = time.perf_counter()
    fw.enqueue(n)
    enqueue_rate = n / (time.perf_counter() - started)
    fw.enqueue_finish()
    env = {**os.environ, "BENCH_URL": fw.url, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    worker = subprocess.Popen([sys.executable, __file__, "--worker", fw.name, "--url", fw.url], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while fw.backlog(client) >= n:  # the clock starts with the first job taken
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{fw.name} worker never started (exit {worker.returncode})")
            time.sleep(0.001)
        t0, left = time.time(), fw.backlog(client)
        popped = client.blpop([DONE], timeout=timeout)
        if popped is None:
            raise RuntimeError(f"{fw.name} did not finish {n} jobs in {timeout}s")
        took = float(popped[1]) - t0
        return enqueue_rate, (left + 1) / took
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--only", help="comma-separated framework names")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    by_name: dict[str, Callable[[str], Framework]] = {f.name: f for f in FRAMEWORKS}
    if args.worker:
        by_name[args.worker](args.url).work()
        return 0
    server = shutil.which("redis-server")
    if server is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    wanted = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                 "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_timeout=None)  # it blocks as long as a peer needs
        try:
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.02)
            version = client.info("server")["redis_version"]
            print(f"broker: redis-server {version}, {args.jobs} no-op jobs, one worker process, Python "
                  f"{sys.version.split()[0]}\n")
            rows: list[tuple[str, float | None, float | None, str]] = []
            for cls in FRAMEWORKS:
                if wanted and cls.name not in wanted:
                    continue
                fw = cls(url)
                if not fw.available():
                    rows.append((cls.name, None, None, "not installed"))
                    continue
                try:
                    enq, proc_rate = measure(fw, args.jobs, client, args.timeout)
                    rows.append((cls.name, enq, proc_rate, ""))
                except Exception as exc:  # one broken peer must not hide the others' numbers
                    rows.append((cls.name, None, None, f"failed: {exc}"))
                print(f"  measured {cls.name}", file=sys.stderr)
            print_table(rows)
        finally:
            proc.terminate()
            proc.wait(10)
    checks = bench_rows(rows)
    print("BENCH-JSON " + json.dumps(checks))
    measured_all = all(rate is not None for _, _, rate, _ in rows)
    met = all(_met(c) for c in checks)
    return 0 if measured_all and met else 1


#: The issue's floors for postroom.tasks, in jobs/s.
ENQUEUE_FLOOR, PROCESS_FLOOR = 50_000, 10_000


def bench_rows(rows: list[tuple[str, float | None, float | None, str]]) -> list[dict]:
    """The checks as ``python -m bench`` rows: our two floors, then each peer as a baseline
    that postroom.tasks must beat (ratio target 1.0) at enqueueing and at processing."""
    ours = next((r for r in rows if r[0] == Postroom.name), None)
    if ours is None or ours[2] is None:
        return []
    _, our_enqueue, our_process, _ = ours
    checks: list[dict] = [
        {"test": "enqueue jobs/s", "postroom": our_enqueue, "minimum": ENQUEUE_FLOOR},
        {"test": "process jobs/s", "postroom": our_process, "minimum": PROCESS_FLOOR},
    ]
    for name, enqueue, process, note in rows:
        if name == Postroom.name:
            continue
        if process is None:
            checks.append({"test": f"vs {name}: {note}", "postroom": our_process})
            continue
        checks.append({"test": f"enqueue vs {name}", "redis": enqueue, "postroom": our_enqueue, "target": 1.0})
        checks.append({"test": f"process vs {name}", "redis": process, "postroom": our_process, "target": 1.0})
    return checks


def _met(check: dict) -> bool:
    if "minimum" in check and check["postroom"] < check["minimum"]:
        return False
    return "target" not in check or check["postroom"] >= check["redis"] * check["target"]


def print_table(rows: list[tuple[str, float | None, float | None, str]]) -> None:
    ours = next((r for r in rows if r[0] == Postroom.name and r[2]), None)
    print("| framework | enqueue jobs/s | process jobs/s | postroom.tasks is faster by |")
    print("|---|---:|---:|---:|")
    for name, enq, rate, note in rows:
        if rate is None:
            print(f"| {name} | – | – | {note} |")
            continue
        ratio = "" if ours is None or name == Postroom.name else f"{ours[2] / rate:.1f}x"
        print(f"| {name} | {enq:,.0f} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
