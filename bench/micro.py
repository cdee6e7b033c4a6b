"""In-process microbenchmarks of the per-command hot path (no sockets, no event loop).

Measures, in µs per command, the layers a request crosses in the server:

* ``reader``: :class:`RequestReader` only (feed one read, drain its requests);
* ``execute``: :meth:`Broker.execute` only, on already-parsed requests;
* ``<CMD> P1`` / ``<CMD> P16``: reader + execute, one request per read or pipelines of 16;
* ``conn <CMD> P1/P16``: the whole :class:`Connection.data_received` path with a fake transport
  (reader, execute, encoder, the single write per read).

The machine running this is usually shared, so time is the thread's CPU time (``thread_time``,
which does not count the time other processes hold the CPU) and each figure is the **minimum**
over ``--runs`` timed runs (the run least disturbed by cache pollution and interrupts), which is
stable enough to compare before/after a change. Usage::

    .venv/bin/python bench/micro.py [--runs 30] [--number 300] [--only GET]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

from postroom.broker import Broker
from postroom.protocol.reader import RequestReader
from postroom.server.connection import Connection


def encode(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


REQUESTS: dict[str, bytes] = {
    "PING": encode(b"PING"),
    "GET": encode(b"GET", b"key:000000000042"),
    "SET": encode(b"SET", b"key:000000000042", b"x" * 3),
    "INCR": encode(b"INCR", b"counter:rand_int"),
    "LPUSH": encode(b"LPUSH", b"mylist", b"xxx"),
    "XADD": encode(b"XADD", b"mystream", b"*", b"field", b"value"),
    "MSET": encode(b"MSET", *[b"key:%012d" % i if j % 2 == 0 else b"xxx" for i in range(10) for j in range(2)]),
}


class FakeTransport:
    """Just enough of ``asyncio.Transport`` for :class:`Connection`: counts what it is given."""

    def __init__(self) -> None:
        self.written = 0

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 6379) if name in ("peername", "sockname") else None

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def timed(fn: Callable[[int], None], number: int, runs: int) -> float:
    """Minimum over ``runs`` of the seconds ``fn(number)`` takes, divided by ``number``."""
    fn(max(1, number // 10))  # warm up (command lookup cache, allocations)
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            start = time.thread_time()
            fn(number)
            best = min(best, time.thread_time() - start)
    finally:
        if gc_was:
            gc.enable()
    return best / number


def bench_reader(pipeline: int) -> Callable[[int], None]:
    data = REQUESTS["GET"] * pipeline
    reader = RequestReader()

    def run(n: int) -> None:
        feed, nxt = reader.feed, reader.next_request
        for _ in range(n):
            feed(data)
            while nxt() is not None:
                pass

    return run


def bench_execute(name: str) -> Callable[[int], None]:
    broker = Broker()
    client = broker.connect()
    reader = RequestReader()
    reader.feed(REQUESTS[name])
    argv = reader.next_request()
    assert argv is not None
    out = client.out

    def run(n: int) -> None:
        execute = broker.execute
        for _ in range(n):
            execute(client, argv)
            out.clear()

    return run


def bench_reader_execute(name: str, pipeline: int) -> Callable[[int], None]:
    """What ``Connection._process`` does per read, minus the write."""
    broker = Broker()
    client = broker.connect()
    reader = RequestReader()
    data = REQUESTS[name] * pipeline
    out = client.out

    def run(n: int) -> None:
        execute, feed, nxt = broker.execute, reader.feed, reader.next_request
        for _ in range(n):
            feed(data)
            while (request := nxt()) is not None:
                execute(client, request)
            out.clear()

    return run


def bench_connection(name: str, pipeline: int) -> Callable[[int], None]:
    broker = Broker()
    conn = Connection(broker, None)
    conn.connection_made(FakeTransport())  # type: ignore[arg-type]
    data = REQUESTS[name] * pipeline

    def run(n: int) -> None:
        received = conn.data_received
        for _ in range(n):
            received(data)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per case; the minimum is reported")
    parser.add_argument("--number", type=int, default=300, help="reads per timed run")
    parser.add_argument("--only", default="", help="run only the case with this label, or those whose label contains it")
    options = parser.parse_args()

    cases: list[tuple[str, Callable[[int], None], int]] = [
        ("reader GET P1", bench_reader(1), 1),
        ("reader GET P16", bench_reader(16), 16),
    ]
    for name in ("GET", "SET", "INCR"):
        cases.append((f"execute {name}", bench_execute(name), 1))
    for name in ("PING", "GET", "SET", "INCR", "LPUSH", "XADD", "MSET"):
        for pipeline in (1, 16):
            cases.append((f"{name} P{pipeline}", bench_reader_execute(name, pipeline), pipeline))
    for name in ("GET", "SET"):
        for pipeline in (1, 16):
            cases.append((f"conn {name} P{pipeline}", bench_connection(name, pipeline), pipeline))

    labels = {label for label, _, _ in cases}
    for label, fn, per_call in cases:
        if options.only and options.only not in label:
            continue
        if options.only in labels and options.only != label:
            continue  # an exact label runs alone ("GET P1" without "GET P16")
        seconds = timed(fn, options.number, options.runs)
        print(f"{label:<16} {seconds / per_call * 1e6:8.3f} µs/command", flush=True)


if __name__ == "__main__":
    main()
