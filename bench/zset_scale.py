"""Sorted set scaling: per-call time of ZADD, ZRANK and ZRANGEBYSCORE LIMIT as a set grows to 1M.

Redis's skiplist makes all three O(log n); postroom's dict + SortedList must stay as flat. The
commands run through the whole dispatcher (``Broker.execute``: lookup, checks, handler, reply
encoding) in-process, so the figures are the command cost without the network.

    .venv/bin/python bench/zset_scale.py [sizes...]     # default: 10000 100000 1000000
"""

from __future__ import annotations

import random
import sys
import time

from postroom.broker import Broker
from postroom.client import Client

KEY = b"scale"
BATCH = 1000  # members per ZADD while growing the set
SAMPLES = 3000  # timed calls per command and size


def grow(broker: Broker, client: Client, start: int, stop: int) -> None:
    """Add members ``start..stop-1`` with scores spread over [0, 1e6)."""
    for first in range(start, stop, BATCH):
        argv = [b"ZADD", KEY]
        for i in range(first, min(first + BATCH, stop)):
            argv += [b"%d" % ((i * 7919) % 1_000_003), b"member:%d" % i]
        broker.execute(client, argv)
        client.out.clear()


def per_call_us(broker: Broker, client: Client, commands: list[list[bytes]], rounds: int = 3) -> float:
    """Microseconds per command: the best mean of ``rounds`` slices (other load only adds time)."""
    execute = broker.execute
    out = client.out
    size = len(commands) // rounds
    best = float("inf")
    for first in range(0, size * rounds, size):
        start = time.perf_counter()
        for argv in commands[first:first + size]:
            execute(client, argv)
            out.clear()
        best = min(best, (time.perf_counter() - start) / size * 1e6)
    return best


def measure(broker: Broker, client: Client, size: int, rng: random.Random) -> dict[str, float]:
    """Per-call microseconds of each command on a set of ``size`` members."""
    fresh = [[b"ZADD", KEY, b"%d" % rng.randrange(1_000_000), b"new:%d:%d" % (size, i)] for i in range(SAMPLES)]
    ranks = [[b"ZRANK", KEY, b"member:%d" % rng.randrange(size)] for _ in range(SAMPLES)]
    ranges = [[b"ZRANGEBYSCORE", KEY, b"%d" % rng.randrange(1_000_000), b"+inf", b"LIMIT", b"0", b"10"]
              for _ in range(SAMPLES)]
    result = {
        "ZADD": per_call_us(broker, client, fresh),
        "ZRANK": per_call_us(broker, client, ranks),
        "ZRANGEBYSCORE LIMIT 0 10": per_call_us(broker, client, ranges),
    }
    broker.execute(client, [b"ZREM", KEY, *(argv[3] for argv in fresh)])  # back to exactly ``size``
    client.out.clear()
    return result


def run(sizes: list[int]) -> dict[int, dict[str, float]]:
    """Grow one set through ``sizes`` (ascending) and measure at each."""
    broker = Broker()
    client = broker.connect("embedded")
    rng = random.Random(7)
    results: dict[int, dict[str, float]] = {}
    have = 0
    for size in sizes:
        grow(broker, client, have, size)
        have = size
        results[size] = measure(broker, client, size, rng)
    return results


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    results = run(sorted(sizes))
    names = list(next(iter(results.values())))
    print(f"{'members':>10}  " + "  ".join(f"{name:>26}" for name in names))
    for size, figures in results.items():
        print(f"{size:>10}  " + "  ".join(f"{figures[name]:>23.2f} us" for name in names))


if __name__ == "__main__":
    main()
