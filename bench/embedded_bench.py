"""Embedded postroom vs fakeredis: the same redis-py calls, operations per second, in one run.

Also measures the transports considered for embedded mode (the in-process connection class, and
a loopback socket into the broker's loop thread), which is how the in-process one was chosen.

    python bench/embedded_bench.py [--rounds 5] [--ops 3000]
    python bench/embedded_bench.py --floor     # PUBLISH through a transport that does nothing
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import hiredis
import redis

from postroom import embedded
from postroom.embedded import Embedded

Workload = Callable[[redis.Redis, int], int]


def set_get(r: redis.Redis, n: int) -> int:
    for i in range(n):
        r.set("bench:key", i)
        r.get("bench:key")
    return 2 * n


def lpush_rpop(r: redis.Redis, n: int) -> int:
    for i in range(n):
        r.lpush("bench:list", i)
        r.rpop("bench:list")
    return 2 * n


def stream_group(r: redis.Redis, n: int) -> int:
    r.delete("bench:stream")
    r.xgroup_create("bench:stream", "g", id="0", mkstream=True)
    for i in range(n):
        r.xadd("bench:stream", {"n": i})
        entries = r.xreadgroup("g", "c", {"bench:stream": ">"}, count=1)
        if isinstance(entries, dict):  # RESP3 shape
            ids = [e[0] for streams in entries.values() for batch in streams for e in batch]
        else:
            ids = [e[0] for _, batch in entries for e in batch]
        r.xack("bench:stream", "g", *ids)
    return 3 * n


def publish(r: redis.Redis, n: int) -> int:
    subscriber = r.pubsub()
    subscriber.subscribe("bench:channel")
    subscriber.get_message(timeout=1)
    for i in range(n):
        r.publish("bench:channel", i)
        subscriber.get_message(timeout=1)
    subscriber.close()
    return n


def evalsha(r: redis.Redis, n: int) -> int:
    sha = r.script_load("return redis.call('INCR', KEYS[1])")
    for _ in range(n):
        r.evalsha(sha, 1, "bench:counter")
    return n


WORKLOADS: dict[str, Workload] = {
    "SET/GET": set_get,
    "LPUSH/RPOP": lpush_rpop,
    "XADD/XREADGROUP/XACK": stream_group,
    "PUBLISH to a subscriber": publish,
    "EVALSHA": evalsha,
}


def best_rate(client: redis.Redis, workload: Workload, ops: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        done = workload(client, ops)
        best = max(best, done / (time.perf_counter() - start))
    return best


class _CannedPublish:
    """A PUBLISH transport that does no work: ``:1`` to the publisher, the message straight into
    each subscriber's buffer. With it, the PUBLISH workload measures redis-py's own cost alone:
    the most any broker behind the embedded transport could reach (``--floor``)."""

    def __init__(self, broker: Embedded) -> None:
        self.broker = broker
        self.real = embedded._SyncChannel.sendall

    def __enter__(self) -> None:
        canned = self

        def sendall(channel: embedded._SyncChannel, data: bytes) -> None:
            request = hiredis.Reader()
            request.feed(bytes(data))
            argv = request.gets()
            if not argv or argv[0].upper() != b"PUBLISH":
                canned.real(channel, data)
                return
            for other in list(canned.broker._channels):
                if other.client.channels:
                    head = b">3" if other.client.resp == 3 else b"*3"
                    other._buffer += b"%s\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                        head, len(argv[1]), argv[1], len(argv[2]), argv[2])
            channel._buffer += b":1\r\n"

        embedded._SyncChannel.sendall = sendall  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        embedded._SyncChannel.sendall = self.real  # type: ignore[method-assign]


def floor(args: argparse.Namespace, fake: redis.Redis) -> None:
    """PUBLISH to a subscriber through a transport that does nothing, against fakeredis."""
    with Embedded() as broker:
        ours = broker.client()
        rates = {"canned": 0.0, "fakeredis": 0.0}
        for _ in range(args.rounds):
            with _CannedPublish(broker):
                rates["canned"] = max(rates["canned"], best_rate(ours, publish, args.ops, 1))
            rates["fakeredis"] = max(rates["fakeredis"], best_rate(fake, publish, args.ops, 1))
    print(f"PUBLISH to a subscriber through a transport that does nothing: {rates['canned']:.0f}/s, "
          f"fakeredis {rates['fakeredis']:.0f}/s: the most any broker could reach is "
          f"{rates['canned'] / rates['fakeredis']:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--json", help="write results here")
    parser.add_argument("--floor", action="store_true", help="only measure the PUBLISH floor (see _CannedPublish)")
    args = parser.parse_args()
    try:
        import fakeredis
    except ImportError:
        print("fakeredis is not installed: pip install fakeredis")
        return 2
    if args.floor:
        floor(args, fakeredis.FakeRedis())
        return 0
    rows = []
    with Embedded() as broker:
        ours = broker.client()
        tcp = redis.Redis(port=broker.listen(0))
        fake = fakeredis.FakeRedis()
        print(f"{'workload':26} {'postroom':>10} {'fakeredis':>10} {'ratio':>7} {'loopback':>10}")
        for name, workload in WORKLOADS.items():
            # Alternate the contenders round by round so machine noise hits both alike.
            rates = {"postroom": 0.0, "fakeredis": 0.0, "loopback": 0.0}
            for _ in range(args.rounds):
                for label, client in (("postroom", ours), ("fakeredis", fake), ("loopback", tcp)):
                    rates[label] = max(rates[label], best_rate(client, workload, args.ops, 1))
            ratio = rates["postroom"] / rates["fakeredis"]
            rows.append({"workload": name, **rates, "ratio": ratio})
            print(f"{name:26} {rates['postroom']:10.0f} {rates['fakeredis']:10.0f} {ratio:6.2f}x "
                  f"{rates['loopback']:10.0f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    # Rows for `python -m bench`: fakeredis stands in the "redis" column (the reference).
    print("BENCH-JSON " + json.dumps([
        {"test": f"{row['workload']} (vs fakeredis)", "redis": row["fakeredis"], "postroom": row["postroom"],
         "target": 1.5}
        for row in rows
    ]))
    return 0 if all(row["ratio"] >= 1.5 for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
