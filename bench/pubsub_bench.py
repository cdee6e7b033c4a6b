"""Pub/Sub throughput: postroom against redis-server, in the same run, on the same machine.

Two measurements, each on both servers:

* PUBLISH rate with ``redis-benchmark -c 50 -P 1`` (requests per second);
* fan-out: one publisher, ``--subscribers`` subscribers on one channel (SUBSCRIBE) and on one
  pattern (PSUBSCRIBE); messages delivered per second = messages published x subscribers / time
  from the first PUBLISH until every subscriber has received every message.

Subscribers run in their own process on a uvloop event loop and only count bytes (every message
has the same size), so the client side stays cheap next to the server. Each measurement is
repeated ``--rounds`` times, alternating servers, and the best round is kept. Next to the
wall-clock rates, the same work per CPU-second of the server process is printed: on a shared,
busy machine it says how much each server costs per operation, which wall-clock rates hide.

    python bench/pubsub_bench.py [--messages 20000] [--subscribers 50] [--size 64] [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

try:
    from .netutil import free_port, wait_for_port
except ImportError:  # run as a script: python bench/pubsub_bench.py
    from netutil import free_port, wait_for_port

CHANNEL = b"bench.chan"
PATTERN = b"bench.*"




def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def start_servers(workdir: str) -> dict[str, tuple[subprocess.Popen, int]]:
    servers = {}
    port = free_port()
    redis_dir = os.path.join(workdir, "redis")
    os.makedirs(redis_dir)
    servers["redis-server"] = (subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", redis_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
    port = free_port()
    ours_dir = os.path.join(workdir, "postroom")
    os.makedirs(ours_dir)
    servers["postroom"] = (subprocess.Popen(
        [sys.executable, "-m", "postroom", "serve", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", ours_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
    for _, port in servers.values():
        wait_for_port(port)
    return servers


# -- PUBLISH with redis-benchmark ------------------------------------------------------------


def publish_rate(port: int, requests: int) -> tuple[float, int]:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-P", "1", "-n", str(requests), "--csv",
         "PUBLISH", CHANNEL.decode(), "hello"], capture_output=True, text=True, check=True).stdout
    last = [line for line in out.splitlines() if line.startswith('"')][-1]
    return float(last.split(",")[1].strip('"')), requests


# -- fan-out ---------------------------------------------------------------------------------


class Counter(asyncio.Protocol):
    """Counts bytes received: ``subscribed`` after the confirmation, ``done`` after ``target`` more."""

    def __init__(self, confirmation: int, target: int, subscribed: asyncio.Future, done: asyncio.Future) -> None:
        self.target = target
        self.remaining = confirmation + target
        self.subscribed = subscribed
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.remaining -= len(data)
        if self.remaining <= self.target and not self.subscribed.done():
            self.subscribed.set_result(None)
        if self.remaining <= 0 and not self.done.done():
            self.done.set_result(time.monotonic())


def subscriber_process(port: int, pattern: bool, count: int, frame_size: int, messages: int,
                       ready: multiprocessing.Event, result: multiprocessing.Queue) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_subscribers(port, pattern, count, frame_size, messages, ready, result))


async def _subscribers(port: int, pattern: bool, count: int, frame_size: int, messages: int,
                       ready: multiprocessing.Event, result: multiprocessing.Queue) -> None:
    loop = asyncio.get_running_loop()
    kind, name = (b"psubscribe", PATTERN) if pattern else (b"subscribe", CHANNEL)
    confirmation = len(b"*3\r\n" + bulk(kind) + bulk(name) + b":1\r\n")
    subscribed, finished = [], []
    for _ in range(count):
        confirmed, done = loop.create_future(), loop.create_future()
        transport, _ = await loop.create_connection(
            lambda c=confirmed, d=done: Counter(confirmation, frame_size * messages, c, d), "127.0.0.1", port)
        transport.write(command(kind.upper(), name))
        subscribed.append(confirmed)
        finished.append(done)
    await asyncio.gather(*subscribed)
    ready.set()
    result.put(max(await asyncio.gather(*finished)))


def fanout_rate(port: int, pattern: bool, subscribers: int, messages: int, size: int) -> tuple[float, int]:
    payload = b"m" * size
    if pattern:
        frame = b"*4\r\n" + bulk(b"pmessage") + bulk(PATTERN) + bulk(CHANNEL) + bulk(payload)
    else:
        frame = b"*3\r\n" + bulk(b"message") + bulk(CHANNEL) + bulk(payload)
    ready, result = multiprocessing.Event(), multiprocessing.Queue()
    process = multiprocessing.Process(target=subscriber_process,
                                      args=(port, pattern, subscribers, len(frame), messages, ready, result))
    process.start()
    if not ready.wait(60):
        raise TimeoutError("subscribers did not subscribe")
    publisher = socket.create_connection(("127.0.0.1", port))
    publisher.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    batch = 50
    request = command(b"PUBLISH", CHANNEL, payload) * batch
    reply = b":%d\r\n" % subscribers
    start = time.monotonic()
    for _ in range(messages // batch):
        publisher.sendall(request)
        _read_exactly(publisher, len(reply) * batch)
    finish = result.get(timeout=300)
    process.join(30)
    publisher.close()
    delivered = messages // batch * batch * subscribers
    return delivered / (finish - start), delivered


def _read_exactly(sock: socket.socket, size: int) -> None:
    while size > 0:
        size -= len(sock.recv(size))


# -- driver ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000, help="messages published per fan-out round")
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="payload bytes per message")
    parser.add_argument("--requests", type=int, default=200000, help="PUBLISH requests for redis-benchmark")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        print("redis-server and redis-benchmark are needed", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="pubsub-bench-")
    servers = start_servers(workdir)
    results: dict[str, dict[str, float]] = {name: {} for name in servers}
    per_cpu: dict[str, dict[str, float]] = {name: {} for name in servers}
    measurements = {
        "PUBLISH (redis-benchmark -c 50 -P 1), req/s": lambda port: publish_rate(port, args.requests),
        f"fan-out 1 -> {args.subscribers} SUBSCRIBE, msg/s": lambda port: fanout_rate(
            port, False, args.subscribers, args.messages, args.size),
        f"fan-out 1 -> {args.subscribers} PSUBSCRIBE, msg/s": lambda port: fanout_rate(
            port, True, args.subscribers, args.messages, args.size),
    }
    try:
        for label, measure in measurements.items():
            for round_ in range(args.rounds):
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in order:
                    process, port = servers[name]
                    before = cpu_seconds(process.pid)
                    value, operations = measure(port)
                    used = max(cpu_seconds(process.pid) - before, 1e-3)
                    results[name][label] = max(results[name].get(label, 0.0), value)
                    per_cpu[name][label] = max(per_cpu[name].get(label, 0.0), operations / used)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print("| measurement | postroom | redis-server | ratio | postroom per server CPU-s | redis per CPU-s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label in measurements:
        ours, theirs = results["postroom"][label], results["redis-server"][label]
        ours_cpu, theirs_cpu = per_cpu["postroom"][label], per_cpu["redis-server"][label]
        print(f"| {label} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f}x | {ours_cpu:,.0f} | {theirs_cpu:,.0f} "
              f"| {ours_cpu / theirs_cpu:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
