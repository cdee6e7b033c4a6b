"""Event consumers: services reading a stream through a consumer group.

Unlike task queues, the stream here is the application's own event log (it
is not trimmed by the consumer, and several groups may read it).  A consumer
recovers its pending entries on start, reads new ones in batches,
acknowledges in batches, and moves an entry that keeps failing to a
dead-letter stream.  ``msg.atomic()`` is the idempotency pattern: the state
change and the acknowledgement commit together in one MULTI/EXEC, so a crash
leaves either both or neither.  (Redis does not roll a transaction back, so
a command that fails inside it is reported and the event dead-lettered.)

A consumer runs as long as its worker: lost connections, failovers and a
deleted group are waited out or repaired, never a reason to stop consuming.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
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

#: Dead-letter stream cap when the app does not say (the App's own default).
DEAD_MAXLEN = 100_000

#: Errors a consumer waits out (with a short backoff) instead of stopping: the
#: server restarts, is unreachable or loading, a cluster fails over or moves
#: the stream's slot (the reader's node is then stale), memory is short.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.AskError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.SlotNotCoveredError,
)

#: Longest wait between attempts after errors: short, so a consumer resumes
#: about as soon as the server is back.
MAX_BACKOFF = 1.0


class PartialTransactionError(Exception):
    """A command of an :meth:`Event.atomic` block failed when EXEC ran it.

    Redis does not roll a transaction back: the other commands, including the
    entry's XACK, were applied.  The event is therefore not retried; it was
    copied to the consumer's dead-letter stream with the error instead.
    """

    def __init__(self, message: str, failed: list[tuple[int, str, Exception]]) -> None:
        super().__init__(message)
        #: (position in the block from 1, command name, error) of each failed command.
        self.failed = failed


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
        must share the stream's slot on a cluster (see :meth:`key`).

        This is atomic with respect to crashes: the writes and the XACK are
        applied together or not at all.  It is not a rollback: Redis runs every
        queued command even when one fails (WRONGTYPE, say), so then the other
        writes and the XACK are applied.  Such an event cannot be retried (it
        is acknowledged), so it is copied to the dead-letter stream with the
        error and :class:`PartialTransactionError` is raised.  A command Redis
        rejects before EXEC (unknown command, wrong arity) aborts the whole
        transaction instead: nothing is applied and the event stays pending.
        """
        c = self._consumer
        pipe = c.app.client.pipeline(transaction=True)
        yield pipe
        pipe.xack(c.stream, c.group, self.id)
        names = _queued_names(pipe)
        results = pipe.execute(raise_on_error=False)
        failed = [(i + 1, names[i] if i < len(names) else "?", r)
                  for i, r in enumerate(results) if isinstance(r, Exception)]
        self.acked = not isinstance(results[-1], Exception)
        if failed:
            raise self._partial(failed)

    def _partial(self, failed: list[tuple[int, str, Exception]]) -> PartialTransactionError:
        """The error for a transaction that ran with failed commands, after
        dead-lettering the event if its XACK went through (else it stays
        pending and is retried like any failure)."""
        c = self._consumer
        what = "; ".join(f"command #{i} {name} failed: {err}" for i, name, err in failed)
        if not self.acked:
            return PartialTransactionError(
                f"atomic() for event {self.id} of {c.stream}: {what}; the transaction was partially applied"
                " (Redis does not roll back) and the event was not acknowledged", failed)
        try:
            c.dead_letter(self, error=what)
            where = f"copied to {c.dead}"
        except redis.RedisError as exc:
            log.error("consumer %s could not dead-letter %s %r: %s", c.name, self.id, self.fields, exc)
            where = f"NOT copied to {c.dead} ({exc})"
        return PartialTransactionError(
            f"atomic() for event {self.id} of {c.stream}: {what}; the transaction was partially applied"
            f" (Redis does not roll back): the event was acknowledged and {where}", failed)


class Consumer:
    """A handler bound to (stream, group); started by a worker or by :meth:`start`.

    batch: entries per read.  max_deliveries: deliveries after which an entry
    goes to the dead-letter stream (default ``<stream>:dead``), which is capped
    at about dead_maxlen entries (default: the app's ``dead_maxlen``) so a
    stream of bad events cannot fill the server's memory.  start: where a new
    group begins ("$": only new events, "0": the whole stream); also where a
    group found missing (deleted, or lost with the server's data) is created
    again.  lease: an entry pending that long with another consumer is taken
    over.
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
        dead_maxlen: int | None = None,
    ) -> None:
        self.app = app
        self.fn = fn
        self.stream = stream
        self.group = group
        self.name = f"{stream}:{group}"
        self.batch = batch
        self.max_deliveries = max_deliveries
        self.dead = dead or f"{stream}:dead"
        self.dead_maxlen = getattr(app, "dead_maxlen", DEAD_MAXLEN) if dead_maxlen is None else dead_maxlen
        self.start_id = start
        self.lease = lease
        self.retry_delay = retry_delay
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.block_ms = int(block * 1000)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The newest entry read as new; a group found missing is created
        #: again there, so events added meanwhile are still read.
        self._last_read: bytes | None = None

    def __call__(self, event: Event) -> Any:
        return self.fn(event)

    def start(self, stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.run, args=(stop,), name=f"postroom-consumer-{self.name}", daemon=True)
        t.start()
        return t

    def ensure_group(self, at: str | bytes | None = None) -> None:
        """Create the group (and the stream) unless it exists, at *at* or ``start``."""
        try:
            self.app.client.xgroup_create(self.stream, self.group, id=at or self.start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def replay(self, from_id: str) -> None:
        """Re-read the stream from *from_id* (exclusive): "0" replays everything."""
        self.app.replay(self.stream, self.group, from_id)

    def run(self, stop: threading.Event) -> None:
        """Process until *stop* is set: own pending entries first, then new ones.

        Errors of the server or the network end one attempt, not the
        consumer: it backs off briefly (up to :data:`MAX_BACKOFF`), reconnects
        and re-reads its own pending entries (a read whose reply was lost
        left them there).  A missing group (the group or the stream was
        deleted, or the server lost its data) is created again after the last
        entry this consumer read (at ``start`` if none): events added while
        it was missing are still read, those handled are not read again.
        Other errors (a wrong key type, missing permissions) are mistakes to
        fix, not to wait out: they end the consumer with the error.
        """
        reader: BlockingReader | None = None
        own_pending, need_group = True, True
        next_reclaim = 0.0
        errors = 0
        try:
            while not stop.is_set():
                try:
                    if need_group:
                        self.ensure_group(self._last_read)
                        need_group = False
                    if reader is None:
                        reader = BlockingReader(self.app.client, self.stream)
                    if time.monotonic() >= next_reclaim:
                        next_reclaim = time.monotonic() + self.lease / 4
                        self._reclaim()
                    own_pending = self._step(reader, own_pending, stop)
                    errors = 0
                except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
                    if stop.is_set():
                        break
                    missing = _group_missing(exc)
                    if not missing and not isinstance(exc, TRANSIENT_ERRORS):
                        raise
                    errors = 1 if missing else errors + 1  # a server answering NOGROUP is back
                    delay = _backoff(errors)
                    log.warning("consumer %s: %s; %s in %.2fs", self.name, str(exc) or type(exc).__name__,
                                "creating the group again" if missing else "retrying", delay)
                    if reader is not None and not missing:
                        reader.close()  # its node may be gone (failover): connect afresh
                        reader = None
                    need_group = need_group or missing
                    own_pending = True
                    stop.wait(delay)
        finally:
            if reader is not None:
                reader.close()

    def _reclaim(self) -> None:
        """Take over entries other consumers left pending longer than the lease.

        XPENDING IDLE finds them anywhere in the pending list (XAUTOCLAIM looks
        at only ten times its COUNT per call, so entries of a dead consumer
        behind many live ones were never reached); XCLAIM with the same
        minimum idle time takes those still expired."""
        lease_ms = int(self.lease * 1000)
        client = self.app.client
        expired = client.xpending_range(self.stream, self.group, "-", "+", self.batch, idle=lease_ms)
        if expired:
            claimed = client.xclaim(self.stream, self.group, self.consumer, min_idle_time=lease_ms,
                                    message_ids=[p["message_id"] for p in expired])
            self._process([e for e in claimed if e[1]], known=False)

    def _step(self, reader: BlockingReader, own_pending: bool, stop: threading.Event) -> bool:
        """One read and its batch; returns whether own pending entries are left
        to re-read (the recovery after a start, an error or failed handlers)."""
        client = self.app.client
        if own_pending:
            resp = client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.batch)
            entries = [e for e in _entries(resp) if e[1]]
            if not entries:
                return False
            failures = self._process(entries, known=False)
        else:
            resp = reader.call(lambda c: c.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=self.block_ms))
            entries = _entries(resp)
            if entries:
                self._last_read = entries[-1][0]
            failures = self._process(entries, known=True)
        if failures:
            stop.wait(self.retry_delay)
            return True
        return own_pending

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
                if not event.acked:  # else atomic() committed its XACK and dead-lettered it
                    failures += 1
                continue
            if not event.acked:
                done.append(event.id)
        pipe = self.app.client.pipeline(transaction=False)
        for event in dead:
            self.dead_letter(event, pipe=pipe)
        if dead or done:
            pipe.xack(self.stream, self.group, *(done + [e.id for e in dead]))
            pipe.execute()
        return failures

    def dead_letter(self, event: Event, error: str | None = None, pipe: Any = None) -> None:
        """Copy *event* to the dead-letter stream (on *pipe* if given), with
        where it came from and, if given, why.  The stream is capped (MAXLEN ~,
        which trims whole stream nodes: cheap) at about ``dead_maxlen``."""
        fields: dict[str, Any] = {**event.fields, "_id": event.id, "_stream": self.stream,
                                  "_group": self.group, "_deliveries": event.deliveries}
        if error is not None:
            fields["_error"] = error
        (pipe or self.app.client).xadd(self.dead, fields, maxlen=self.dead_maxlen, approximate=True)

    def _deliveries(self, entries: list[Any]) -> dict[bytes, int]:
        """Delivery counts of exactly these entries, one XPENDING each (in one
        round trip).  A range query would also return the pending entries of
        other consumers between them; capped by a count, it could miss ours,
        which then looked like first deliveries and were never dead-lettered."""
        pipe = self.app.client.pipeline(transaction=False)
        for entry_id, _ in entries:
            pipe.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return {p["message_id"]: p["times_delivered"] for rows in pipe.execute() for p in rows}


def _group_missing(exc: BaseException) -> bool:
    """The group (or the whole stream) is gone: deleted, or lost with the data.
    NOGROUP answers a command; UNBLOCKED ends a blocked read whose stream was
    deleted (it also ends one cut short by CLIENT UNBLOCK ERROR, for which
    making sure the group exists is harmless)."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(("NOGROUP", "UNBLOCKED"))


def _backoff(errors: int) -> float:
    """Seconds to wait after *errors* errors in a row: doubling from 50 ms up
    to MAX_BACKOFF, with jitter so consumers do not all reconnect at once."""
    return min(MAX_BACKOFF, 0.05 * 2 ** min(errors - 1, 10)) * random.uniform(0.5, 1.0)


def _queued_names(pipe: Any) -> list[str]:
    """Names of the commands queued on a transaction pipeline, to say which
    one failed (redis-py keeps them elsewhere in a cluster pipeline)."""
    stack = [args for args, _ in pipe.command_stack]
    if not stack:
        strategy = getattr(pipe, "_execution_strategy", None)
        stack = [c.args for c in getattr(strategy, "command_queue", [])]
    return [a[0].decode() if isinstance(a[0], bytes) else str(a[0]) for a in stack]


def _entries(resp: Any) -> list[Any]:
    if not resp:
        return []
    items = resp.items() if isinstance(resp, dict) else resp
    return [e for _, entries in items for e in entries]
