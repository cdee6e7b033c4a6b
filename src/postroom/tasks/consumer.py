"""Event consumers: services reading a stream through a consumer group.

Unlike task queues, the stream here is the application's own event log (it
is not trimmed by the consumer, and several groups may read it).  A consumer
recovers its pending entries on start, reads new ones in batches,
acknowledges in batches, and moves an entry that keeps failing to a
dead-letter stream.  ``msg.atomic()`` is the idempotency pattern: the state
change and the acknowledgement commit together in one MULTI/EXEC, so a crash
leaves either both or neither.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import redis

from .blocking import BlockingReader

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger("postroom.tasks")


def hash_tag(key: str) -> str:
    """The part of *key* Redis Cluster hashes (the whole key without a tag)."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


class Event:
    """One stream entry handed to a handler."""

    def __init__(self, consumer: Consumer, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        self.id = entry_id.decode()
        self.fields = {k.decode(): v for k, v in fields.items()}
        self.deliveries = deliveries
        self.acked = False
        self._consumer = consumer

    def __repr__(self) -> str:
        return f"<Event {self._consumer.stream} {self.id}>"

    def key(self, name: str) -> str:
        """A key in the stream's cluster slot, usable inside :meth:`atomic`."""
        return "{" + hash_tag(self._consumer.stream) + "}:" + name

    @contextmanager
    def atomic(self) -> Iterator[Any]:
        """A transaction pipeline; on leaving the block the entry's XACK is
        appended and everything is executed as one MULTI/EXEC.  Keys written
        must share the stream's slot on a cluster (see :meth:`key`)."""
        c = self._consumer
        pipe = c.app.client.pipeline(transaction=True)
        yield pipe
        pipe.xack(c.stream, c.group, self.id)
        pipe.execute()
        self.acked = True


class Consumer:
    """A handler bound to (stream, group); started by a worker or by :meth:`start`.

    batch: entries per read.  max_deliveries: deliveries after which an entry
    goes to the dead-letter stream (default ``<stream>:dead``).  start: where a
    new group begins ("$": only new events, "0": the whole stream).  lease: an
    entry pending that long with another consumer is taken over.
    """

    def __init__(
        self,
        app: App,
        fn: Callable[[Event], Any],
        stream: str,
        group: str,
        *,
        batch: int = 100,
        max_deliveries: int = 5,
        dead: str | None = None,
        start: str = "$",
        lease: float = 60.0,
        retry_delay: float = 1.0,
        consumer: str | None = None,
        block: float = 1.0,
    ) -> None:
        self.app = app
        self.fn = fn
        self.stream = stream
        self.group = group
        self.name = f"{stream}:{group}"
        self.batch = batch
        self.max_deliveries = max_deliveries
        self.dead = dead or f"{stream}:dead"
        self.start_id = start
        self.lease = lease
        self.retry_delay = retry_delay
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.block_ms = int(block * 1000)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, event: Event) -> Any:
        return self.fn(event)

    def start(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(stop,), name=f"postroom-consumer-{self.name}", daemon=True)
        t.start()
        return t

    def ensure_group(self) -> None:
        try:
            self.app.client.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def replay(self, from_id: str) -> None:
        """Re-read the stream from *from_id* (exclusive): "0" replays everything."""
        self.app.replay(self.stream, self.group, from_id)

    def run(self, stop: threading.Event) -> None:
        """Process until *stop* is set: own pending entries first, then new ones."""
        self.ensure_group()
        reader = BlockingReader(self.app.client, self.stream)
        client = self.app.client
        own_pending = True
        next_reclaim = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + self.lease / 4
                    resp = client.xautoclaim(self.stream, self.group, self.consumer,
                                             min_idle_time=int(self.lease * 1000), count=self.batch)
                    if resp[1]:
                        self._process([e for e in resp[1] if e[1]], known=False)
                if own_pending:
                    resp = client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.batch)
                    entries = [e for e in _entries(resp) if e[1]]
                    if not entries:
                        own_pending = False
                        continue
                    failures = self._process(entries, known=False)
                else:
                    resp = reader.call(lambda c: c.xreadgroup(
                        self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=self.block_ms))
                    failures = self._process(_entries(resp), known=True)
                if failures:
                    own_pending = True
                    stop.wait(self.retry_delay)
        except redis.ConnectionError:
            if not stop.is_set():
                raise
        finally:
            reader.close()

    def _process(self, entries: list[Any], known: bool) -> int:
        """Handle a batch; return how many failed (they stay pending)."""
        if not entries:
            return 0
        counts = {} if known else self._deliveries(entries)
        done, dead, failures = [], [], 0
        for entry_id, fields in entries:
            event = Event(self, entry_id, fields, counts.get(entry_id, 1))
            if event.deliveries > self.max_deliveries:
                dead.append(event)
                continue
            try:
                result = self.fn(event)
                if inspect.isawaitable(result):
                    self._loop = self._loop or asyncio.new_event_loop()
                    self._loop.run_until_complete(result)
            except Exception:
                log.exception("consumer %s failed on %s (delivery %d)", self.name, event.id, event.deliveries)
                failures += 1
                continue
            if not event.acked:
                done.append(event.id)
        pipe = self.app.client.pipeline(transaction=False)
        for event in dead:
            pipe.xadd(self.dead, {**event.fields, "_id": event.id, "_stream": self.stream,
                                  "_group": self.group, "_deliveries": event.deliveries})
        if dead or done:
            pipe.xack(self.stream, self.group, *(done + [e.id for e in dead]))
            pipe.execute()
        return failures

    def _deliveries(self, entries: list[Any]) -> dict[bytes, int]:
        pending = self.app.client.xpending_range(
            self.stream, self.group, min=entries[0][0], max=entries[-1][0], count=len(entries) + 1000
        )
        return {p["message_id"]: p["times_delivered"] for p in pending}


def _entries(resp: Any) -> list[Any]:
    if not resp:
        return []
    items = resp.items() if isinstance(resp, dict) else resp
    return [e for _, entries in items for e in entries]
