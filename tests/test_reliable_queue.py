"""The reliable-queue pattern under fire: producers LPUSH 100,000 messages, consumers BLMOVE each
into their own processing list and LREM it when done, and consumers are killed at random (socket
closed abruptly, mid-request or between receiving a message and acknowledging it). A supervisor
returns a dead consumer's leftovers to the queue once the server has dropped its connection.
Every message must be processed at least once and none may be lost."""

from __future__ import annotations

import random
import socket
import struct
import tempfile
import threading
import time

import pytest

from .support.resp import RawClient, encode_command
from .support.servers import PostroomProcess
from .support.waiting import wait_until

MESSAGES = 100_000
PRODUCERS = 2
CONSUMERS = 4
BATCH = 100
KILL_PROBABILITY = 0.002


class Consumer(threading.Thread):
    """Moves messages to ``processing:<name>``, records them, acknowledges with LREM; may die."""

    def __init__(self, port: int, name: str, processed: set[bytes], lock: threading.Lock, stop: threading.Event,
                 seed: int) -> None:
        super().__init__(daemon=True)
        self.client = RawClient(port)
        self.id = int(self.client.call("CLIENT", "ID")[1])
        self.name = name
        self.processing = f"processing:{name}"
        self.processed = processed
        self.lock = lock
        self.stop = stop
        self.random = random.Random(seed)
        self.killed = False

    def run(self) -> None:
        client = self.client
        previous: bytes | None = None
        while not self.stop.is_set():
            commands = [("BLMOVE", "queue", self.processing, "RIGHT", "LEFT", "0.1")]
            if previous is not None:
                commands.insert(0, ("LREM", self.processing, "1", previous))
            if self.random.random() < KILL_PROBABILITY:
                client.sock.sendall(b"".join(encode_command(c) for c in commands))
                self._die()  # killed with its request in flight
                return
            replies = client.pipeline(commands)
            message = replies[-1][1]
            previous = None
            if message is None:
                continue
            if self.random.random() < KILL_PROBABILITY:
                self._die()  # killed holding a message it never acknowledges
                return
            with self.lock:
                self.processed.add(message)
            previous = message
        if previous is not None:
            client.call("LREM", self.processing, "1", previous)
        client.close()

    def _die(self) -> None:
        self.killed = True
        sock = self.client.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
        sock.close()


def _produce(port: int, first: int, count: int) -> None:
    client = RawClient(port)
    for start in range(first, first + count, BATCH):
        batch = [f"m{i}" for i in range(start, min(start + BATCH, first + count))]
        client.call("LPUSH", "queue", *batch)
    client.close()


def _connected_ids(admin: RawClient) -> set[int]:
    listing = admin.call("CLIENT", "LIST")[1].decode()
    return {int(field[3:]) for line in listing.splitlines() for field in line.split() if field.startswith("id=")}


def _recover(admin: RawClient, dead: Consumer) -> None:
    """Once the server has dropped the dead consumer, push its unacknowledged messages back."""
    wait_until(lambda: dead.id not in _connected_ids(admin), 10, "the server never noticed a dead consumer")
    while admin.call("RPOPLPUSH", dead.processing, "queue")[1] is not None:
        pass


@pytest.mark.slow
def test_every_message_processed_despite_killed_consumers():
    with tempfile.TemporaryDirectory(prefix="postroom-queue-") as directory:
        server = PostroomProcess(directory, None, "--appendonly", "no", "--save", "")
        try:
            _run(server.port)
        finally:
            server.stop()


def _run(port: int) -> None:
    admin = RawClient(port)
    processed: set[bytes] = set()
    lock = threading.Lock()
    stop = threading.Event()
    seeds = iter(range(10_000))
    consumers = [Consumer(port, f"c{i}", processed, lock, stop, next(seeds)) for i in range(CONSUMERS)]
    for consumer in consumers:
        consumer.start()
    per_producer = MESSAGES // PRODUCERS
    producers = [threading.Thread(target=_produce, args=(port, i * per_producer, per_producer), daemon=True)
                 for i in range(PRODUCERS)]
    for producer in producers:
        producer.start()
    deaths = 0
    deadline = time.monotonic() + 90
    while True:
        with lock:
            done = len(processed) == MESSAGES
        # Redelivered duplicates may still be queued: run until the queue is drained as well.
        if done and admin.call("LLEN", "queue") == (":", b"0") and not any(c.killed for c in consumers):
            break
        assert time.monotonic() < deadline, f"only {len(processed)} of {MESSAGES} processed"
        for index, consumer in enumerate(consumers):
            if not consumer.is_alive() and consumer.killed:
                deaths += 1
                _recover(admin, consumer)
                consumers[index] = Consumer(port, f"c{index}-{deaths}", processed, lock, stop, next(seeds))
                consumers[index].start()
        time.sleep(0.01)
    stop.set()
    for consumer in consumers:
        consumer.join(5)
    for consumer in consumers:
        if consumer.killed:
            _recover(admin, consumer)
    for producer in producers:
        producer.join(5)
    assert processed == {f"m{i}".encode() for i in range(MESSAGES)}
    assert deaths > 0, "no consumer was killed: the test proved nothing"
    assert admin.call("LLEN", "queue") == (":", b"0")
    leftovers = admin.call("KEYS", "processing:*")[1]
    assert leftovers == [], leftovers
    admin.close()
