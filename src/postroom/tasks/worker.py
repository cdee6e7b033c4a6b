"""The worker core: fetch, dispatch, acknowledge; plus leases and schedules.

Threads of one worker process and what each does:

* one fetcher per queue: blocking XREADGROUP over the queue's priority
  streams (``>``: new entries), and every quarter lease XPENDING IDLE +
  XCLAIM of entries whose lease expired (their worker is gone);
* executors (threads, or one asyncio loop) run the jobs, most urgent first;
* one acker: finishes jobs in batches with one script call per stream
  (ack, delete the entry, store result / schedule retry / bury);
* heartbeat: extends the lease of every held job (XCLAIM JUSTID resets
  the idle time the reclaimers look at), checks cancellations and publishes
  the worker in the registry;
* watchdog: soft and hard time limits;
* one scheduler per queue: moves due delayed jobs to their stream and
  enqueues cron ticks, sleeping in BLPOP on a wake-up list until the next due
  time or until a producer schedules something earlier.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import itertools
import logging
import os
import queue as queue_mod
import signal
import socket
import threading
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from . import codec, registry
from .blocking import BlockingReader
from .errors import Delay, HardTimeLimit, JobCancelled, SoftTimeLimit, TaskError
from .job import WAIT_SLICE, Message, _current, envelope
from .keys import GROUP, PRIORITY_LEVELS, QueueKeys
from .middleware import Outcome

if TYPE_CHECKING:
    from .app import App, Task

log = logging.getLogger("postroom.tasks")

#: Scheduled jobs the scheduler keeps track of ahead of time (and promotes per call).
UPCOMING = 100

#: How long a job that ignores its hard time limit is given before the worker
#: records the failure and moves on without it.
HARD_LIMIT_GRACE = 1.0


@dataclass
class Running:
    """A job being executed, and how to interrupt it."""

    msg: Message
    thread_id: int
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None
    reason: type[TaskError] | None = None
    abandoned: bool = False
    done: bool = False


class Worker:
    """Runs the jobs of *queues* (listed most important first).

    pool: "threads" (default; plain and async tasks, each thread with its own
    loop), "asyncio" (one event loop, up to *concurrency* coroutines; plain
    tasks go to a thread pool) or "processes" (see :func:`run_processes`).
    """

    def __init__(
        self,
        app: App,
        queues: list[str] | None = None,
        *,
        concurrency: int = 8,
        pool: str = "threads",
        name: str | None = None,
        prefetch: int | None = None,
        block: float = 1.0,
        consumers: list[str] | None = None,
        exit_on_abandon: bool = False,
    ) -> None:
        if pool not in ("threads", "asyncio"):
            raise ValueError("pool must be 'threads' or 'asyncio' (processes: run_processes)")
        self.app = app
        self.queues = queues or app.queues or ["default"]
        self.keys = [app.keys(q) for q in self.queues]
        self.concurrency = concurrency
        self.pool = pool
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.prefetch = prefetch or max(4 * concurrency, 64)
        self.block_ms = int(block * 1000)
        self.consumer_names = list(app.consumers) if consumers is None else consumers
        self.exit_on_abandon = exit_on_abandon
        self.started_at = time.time()

        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._held: dict[tuple[str, bytes], Message] = {}
        self._running: dict[tuple[str, bytes], Running] = {}
        # Jobs given up at their hard limit whose code has not returned yet: their
        # late outcome is discarded (it was recorded as a failure already).
        self._abandoned: set[tuple[str, bytes]] = set()
        # Of those, the asyncio-pool jobs whose slot was handed on at abandonment.
        self._slot_freed: set[tuple[str, bytes]] = set()
        self._cancelled: set[str] = set()
        self._dispatch: queue_mod.PriorityQueue[tuple[int, int, int, Message | None]] = queue_mod.PriorityQueue()
        self._seq = itertools.count()
        self._outcomes: queue_mod.SimpleQueue[tuple[Message, Outcome] | None] = queue_mod.SimpleQueue()
        self._readers: list[BlockingReader] = []
        self._threads: list[threading.Thread] = []
        self._executors: list[threading.Thread] = []
        self._acker: threading.Thread | None = None
        self._service_stop = threading.Event()
        self._watch = threading.Event()
        self._local = threading.local()
        self._aio_loop: asyncio.AbstractEventLoop | None = None
        self._aio_slots = threading.Semaphore(concurrency)
        self._first_reads = threading.Semaphore(0)
        self._started = threading.Event()
        self._start_lock = threading.Lock()
        self._consumers: list[Any] = []
        self.processed = 0

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Worker:
        """Start all threads and return at once (see :meth:`run` for a blocking call)."""
        for m in self.app.middleware:
            m.on_worker_start(self)
        for k in self.keys:
            self._ensure_groups(k)
        self._acker = self._spawn(self._ack_loop, "acker")
        self._spawn(self._heartbeat_loop, "heartbeat")
        self._spawn(self._watchdog_loop, "watchdog")
        if self.pool == "asyncio":
            self._spawn(self._aio_feed_loop, "aio-feed", executor=True)
        else:
            for i in range(self.concurrency):
                self._spawn(self._exec_loop, f"exec-{i}", executor=True)
        for qi, k in enumerate(self.keys):
            self._spawn(self._fetch_loop, f"fetch-{k.queue}", qi, k)
            self._spawn(self._schedule_loop, f"sched-{k.queue}", k)
        for name in self.consumer_names:
            consumer = self.app.consumers[name]
            self._consumers.append(consumer.start(self._stop))
        return self

    def stop(self, grace: float = 30.0) -> None:
        """Stop fetching, hand back jobs not started, let running ones finish
        for up to *grace* seconds and hand back the rest, then flush acks."""
        self._stop.set()
        deadline = time.monotonic() + grace
        fetchers = [t for t in self._threads if t.name.startswith(("postroom-fetch-", "postroom-sched-"))]
        while any(t.is_alive() for t in fetchers) and time.monotonic() < deadline:
            for r in self._readers:
                r.unblock()
            for t in fetchers:
                t.join(0.05)
        self._hand_back_waiting()
        for _ in self._executors:
            self._dispatch.put((1 << 30, 0, 0, None))
        for t in self._executors:
            t.join(max(deadline - time.monotonic(), 0))
        with self._lock:
            leftovers = [r for r in self._running.values() if not r.abandoned]
            for r in leftovers:
                r.abandoned = True
                self._abandoned.add((r.msg.stream, r.msg.entry_id))  # handed back: a late outcome is void
        for r in leftovers:
            self._outcomes.put((r.msg, Outcome("requeue")))
        self._hand_back_waiting()
        self._outcomes.put(None)
        if self._acker is not None:
            self._acker.join(max(deadline - time.monotonic(), 5.0))
        for c in self._consumers:
            c.join(max(deadline - time.monotonic(), 1.0))
        self._service_stop.set()
        self._watch.set()
        for t in self._threads:
            t.join(2.0)
        if self._aio_loop is not None:
            self._aio_loop.call_soon_threadsafe(self._aio_loop.stop)
        for r in self._readers:
            r.close()
        try:
            registry.remove(self.app, self.id)
            self._leave_groups()
        except redis.RedisError:
            pass
        for m in reversed(self.app.middleware):
            m.on_worker_stop(self)

    def run(self, grace: float = 30.0) -> None:
        """Run until SIGTERM/SIGINT, then stop gracefully."""
        stop = threading.Event()
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not stop.wait(1.0):
                if self._stop.is_set():
                    break
        finally:
            self.stop(grace)
            for s, h in previous.items():
                signal.signal(s, h)

    def _spawn(self, target: Any, name: str, *args: Any, executor: bool = False) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=f"postroom-{name}", daemon=True)
        t.start()
        (self._executors if executor else self._threads).append(t)
        return t

    def _leave_groups(self) -> None:
        """Delete this worker's consumer from each group it read, unless it
        still holds entries (a grace period that ran out): every worker and
        every restarted pool child is a new consumer, and the group would
        otherwise keep them all.  Deleting a consumer drops its pending
        entries, so one that holds any is left for the reclaimers."""
        for k in self.keys:
            for stream in k.streams:
                if not self.app.client.xpending_range(stream, GROUP, "-", "+", 1, consumername=self.id):
                    self.app.client.xgroup_delconsumer(stream, GROUP, self.id)

    def _ensure_groups(self, k: QueueKeys) -> None:
        for stream in k.streams:
            try:
                # "0": entries added before any worker ever ran are delivered too.
                self.app.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # -- fetching -------------------------------------------------------------

    def _wait_room(self) -> int:
        with self._room:
            while len(self._held) >= self.prefetch and not self._stop.is_set():
                self._room.wait(0.5)
            return self.prefetch - len(self._held)

    def _fetch_loop(self, qi: int, k: QueueKeys) -> None:
        reader = BlockingReader(self.app.client, k.stream())
        self._readers.append(reader)
        streams = {s: ">" for s in k.streams}
        next_reclaim = 0.0
        first_done = False
        while not self._stop.is_set():
            room = self._wait_room()
            if self._stop.is_set():
                break
            try:
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + self.app.lease / 4
                    room -= self._reclaim(qi, k, room)
                    if room <= 0:
                        continue
                # What is there already, most urgent stream first.  The first read
                # never blocks: executors wait for every queue's first read, so a
                # worker starting on a backlog begins with the most important queue,
                # not with whichever fetcher happened to answer first.
                batches = self._read_ready(k, room)
                if not batches and first_done:
                    resp = reader.call(
                        lambda c, n=room: c.xreadgroup(GROUP, self.id, streams, count=n, block=self.block_ms))
                    batches = [(s.decode(), e) for s, e in (resp.items() if isinstance(resp, dict) else resp or [])]
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self._ensure_groups(k)
                    continue
                log.exception("fetching from %s failed (will retry)", k.queue)  # e.g. READONLY in a failover
                if self._stop.wait(1.0):
                    break
                continue
            except (redis.ConnectionError, redis.TimeoutError):
                if self._stop.wait(0.5):
                    break
                continue
            for stream, entries in batches:
                # COUNT bounds each stream of a blocking read, not their sum: what
                # is over the room goes straight back (rare: entries must have
                # reached several priorities in the same instant).
                kept, over = entries[:max(room, 0)], entries[max(room, 0):]
                room -= self._accept(qi, k, stream, kept, reclaimed=False)
                if over:
                    self._hand_back_entries(qi, k, stream, over)
            if not first_done:
                first_done = True
                self._first_reads.release()
        reader.close()

    def _read_ready(self, k: QueueKeys, room: int) -> list[tuple[str, list[Any]]]:
        """Non-blocking reads of the queue's streams, most urgent first, until
        *room* entries are taken: one XREADGROUP over all three would take up
        to *room* from each, three times what this worker may hold."""
        batches = []
        for stream in k.streams:
            if room <= 0:
                break
            resp = self.app.client.xreadgroup(GROUP, self.id, {stream: ">"}, count=room)
            entries = next(iter(resp.values() if isinstance(resp, dict) else [e for _, e in resp or []]), [])
            if entries:
                batches.append((stream, entries))
                room -= len(entries)
        return batches

    def _hand_back_entries(self, qi: int, k: QueueKeys, stream: str, entries: list[Any]) -> None:
        """Give entries just read back to the queue, through the acker (FINISH requeue)."""
        for entry_id, fields in entries:
            try:
                msg = Message(k.queue, qi, stream, entry_id, fields[b"j"])
            except Exception:
                continue  # deleted or malformed: left pending, a reclaim buries it
            with self._lock:
                self._held[(stream, entry_id)] = msg
            self._outcomes.put((msg, Outcome("requeue")))

    def _accept(self, qi: int, k: QueueKeys, stream: str, entries: list[Any], reclaimed: bool) -> int:
        accepted = []
        if reclaimed:
            # Our own entries come back when a heartbeat was late: they are running
            # or waiting here already, and must not run a second time.
            with self._lock:
                entries = [e for e in entries if (stream, e[0]) not in self._held]
        for entry_id, fields in entries:
            if not fields:
                continue
            try:
                msg = Message(k.queue, qi, stream, entry_id, fields[b"j"], reclaimed=reclaimed)
            except Exception as exc:  # a malformed entry is buried, never retried forever
                msg = Message.broken(k.queue, qi, stream, entry_id)
                with self._lock:
                    self._held[(stream, entry_id)] = msg
                self._outcomes.put((msg, Outcome("bury", error=exc, traceback=f"malformed entry: {exc!r}\n")))
                continue
            accepted.append(msg)
        with self._lock:
            for msg in accepted:
                self._held[(msg.stream, msg.entry_id)] = msg
        if self._stop.is_set():
            for msg in accepted:
                self._outcomes.put((msg, Outcome("requeue")))
        else:
            for msg in accepted:
                self._dispatch.put((qi, -msg.priority, next(self._seq), msg))
        return len(accepted)

    def _reclaim(self, qi: int, k: QueueKeys, room: int) -> int:
        """Take over jobs whose lease expired; bury those that keep killing workers.

        XPENDING IDLE finds the expired leases wherever they are in the pending
        list (XAUTOCLAIM would look at only ten times its COUNT entries per
        call: with little room, jobs of a dead worker behind many live ones were
        never reached).  XCLAIM with the same min-idle-time then takes only
        those still expired: a heartbeat that came meanwhile wins.
        """
        client = self.app.client
        lease_ms = int(self.app.lease * 1000)
        taken = 0
        for stream in k.streams:
            if taken >= room:
                break
            expired = client.xpending_range(stream, GROUP, min="-", max="+", count=room - taken, idle=lease_ms)
            if not expired:
                continue
            claimed = client.xclaim(stream, GROUP, self.id, min_idle_time=lease_ms,
                                    message_ids=[p["message_id"] for p in expired])
            entries = [e for e in claimed if e[1]]
            if entries:
                log.warning("worker %s reclaimed %d job(s) from %s", self.id, len(entries), stream)
                live = self._sort_out_poison(qi, k, stream, entries)
                taken += self._accept(qi, k, stream, live, reclaimed=True) + len(entries) - len(live)
        return taken

    def _sort_out_poison(self, qi: int, k: QueueKeys, stream: str, entries: list[Any]) -> list[Any]:
        """Bury the reclaimed jobs that killed their workers too often; return the others.

        What counts is how often a job was *started* (recorded by :meth:`_begin`
        for redelivered jobs), not the stream's delivery count: every reclaim
        counts as a delivery for each job a dead worker merely held in its
        buffer, and those never ran.  A job's first delivery is not recorded
        (that would cost a round trip per job), so it is assumed started.
        """
        ids: list[str | None] = []
        for _, fields in entries:
            try:
                ids.append(codec.loads(fields[b"j"])[0])
            except Exception:
                ids.append(None)  # malformed: _accept buries it
        pipe = self.app.client.pipeline(transaction=False)
        for job_id in ids:
            if job_id is not None:
                pipe.hget(k.job(job_id), "starts")
        found = iter(pipe.execute())
        live = []
        for entry, job_id in zip(entries, ids, strict=True):
            starts = 0 if job_id is None else int(next(found) or 0) + 1
            if starts >= self.app.max_deliveries:
                self._bury_poison(qi, k, stream, entry, starts)
            else:
                live.append(entry)
        return live

    def _bury_poison(self, qi: int, k: QueueKeys, stream: str, entry: Any, starts: int) -> None:
        msg = Message(k.queue, qi, stream, entry[0], entry[1][b"j"], reclaimed=True)
        with self._lock:
            if (stream, msg.entry_id) in self._held:
                return  # our own job, running here: its heartbeat was late, it is not poison
            self._held[(stream, msg.entry_id)] = msg
        error = TaskError(f"started {starts} times by workers that died running it")
        self._outcomes.put((msg, Outcome("bury", error=error, traceback=f"{error}\n")))

    def _hand_back_waiting(self) -> None:
        while True:
            try:
                item = self._dispatch.get_nowait()
            except queue_mod.Empty:
                return
            if item[3] is not None:
                self._outcomes.put((item[3], Outcome("requeue")))

    # -- executing ------------------------------------------------------------

    def _wait_first_reads(self) -> None:
        """Block until every fetcher made its first read (or a few seconds passed)."""
        with self._start_lock:
            if self._started.is_set():
                return
            deadline = time.monotonic() + 5.0
            for _ in self.keys:
                if not self._first_reads.acquire(timeout=max(deadline - time.monotonic(), 0)):
                    break
            self._started.set()

    def _exec_loop(self) -> None:
        self._wait_first_reads()
        while True:
            msg = self._dispatch.get()[3]
            if msg is None:
                return
            if self._stop.is_set():
                self._outcomes.put((msg, Outcome("requeue")))
                continue
            task = self.app.tasks.get(msg.task)
            outcome = self._begin(msg, task)
            if outcome is None:
                outcome = self._call_sync(msg, task)
            if self._end(msg, task, outcome):
                return  # this thread was abandoned: a replacement runs instead

    def _begin(self, msg: Message, task: Task | None) -> Outcome | None:
        """Run the before hooks; an outcome means the task must not run."""
        msg.started = time.monotonic()
        if msg.reclaimed:
            self._count_start(msg)
        try:
            if task is None:
                raise TaskError(f"unknown task {msg.task!r}")
            if msg.job_id in self._cancelled:
                raise JobCancelled(f"job {msg.job_id} was cancelled")
            for m in self.app.middleware:
                m.before_process(self, msg, task)
        except Exception as exc:
            return self._failure(exc)
        return None

    def _count_start(self, msg: Message) -> None:
        """Record that a redelivered job starts now, before it runs: if it kills
        this worker too, the next reclaim knows (see :meth:`_sort_out_poison`)."""
        try:
            self.app.scripts.started(keys=[self.app.keys(msg.queue).job(msg.job_id)])
        except redis.RedisError:
            log.warning("could not record the start of job %s", msg.job_id, exc_info=True)

    def _failure(self, exc: BaseException) -> Outcome:
        if isinstance(exc, Delay):
            return Outcome("delay", due=time.time() + exc.seconds)
        if isinstance(exc, JobCancelled):
            return Outcome("cancel", error=exc)
        return Outcome("error", error=exc, traceback=traceback.format_exc())

    def _call_sync(self, msg: Message, task: Task) -> Outcome:
        running = Running(msg, threading.get_ident())
        key = (msg.stream, msg.entry_id)
        token = _current.set((self.app, msg.job_id, msg.queue))
        with self._lock:
            self._running[key] = running
        if msg.soft_deadline is not None or msg.hard_deadline is not None:
            self._watch.set()  # the watchdog recomputes its next wake-up
        outcome: Outcome | None = None
        while True:
            try:
                if outcome is None:
                    outcome = self._run_in_thread(msg, task, running)
                with self._lock:
                    running.done = True  # from here on no interruption is sent
                break
            except TaskError as exc:
                # An interruption sent just as the task returned lands here, in
                # the worker's own code: record it instead of losing the thread.
                if outcome is None:
                    outcome = self._failure(exc)
        _current.reset(token)
        return outcome

    def _run_in_thread(self, msg: Message, task: Task, running: Running) -> Outcome:
        try:
            if task.is_async:
                loop = getattr(self._local, "loop", None) or asyncio.new_event_loop()
                self._local.loop = loop
                running.loop = loop
                running.future = loop.create_task(task.fn(*msg.args, **msg.kwargs))
                if running.reason is not None:  # interrupted before the coroutine existed
                    running.future.cancel()
                result = loop.run_until_complete(running.future)
            else:
                result = task.fn(*msg.args, **msg.kwargs)
            return Outcome("ok", result=result)
        except asyncio.CancelledError:
            reason = running.reason or JobCancelled
            try:
                raise reason(f"{reason.__name__} for job {msg.job_id}") from None
            except TaskError as exc:
                return self._failure(exc)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a task fail the job, not the worker
            return self._failure(exc)

    def _end(self, msg: Message, task: Task | None, outcome: Outcome) -> bool:
        """Run the after hooks and queue the outcome; True if the job had been
        abandoned (its outcome was already recorded by the watchdog)."""
        key = (msg.stream, msg.entry_id)
        with self._lock:
            self._running.pop(key, None)
            if key in self._abandoned:
                self._abandoned.discard(key)
                return True
        for m in reversed(self.app.middleware):
            m.after_process(self, msg, task, outcome)
        if outcome.kind == "error":
            outcome.kind = "bury"
        self._outcomes.put((msg, outcome))
        return False

    # asyncio pool: a feeder thread hands jobs to one event loop.

    def _aio_feed_loop(self) -> None:
        self._wait_first_reads()
        loop = asyncio.new_event_loop()
        self._aio_loop = loop
        threading.Thread(target=loop.run_forever, name="postroom-aio-loop", daemon=True).start()
        while True:
            msg = self._dispatch.get()[3]
            if msg is None:
                break
            if self._stop.is_set():
                self._outcomes.put((msg, Outcome("requeue")))
                continue
            self._aio_slots.acquire()
            if self._stop.is_set():  # stopping began while every slot was busy
                self._aio_slots.release()
                self._outcomes.put((msg, Outcome("requeue")))
                continue
            asyncio.run_coroutine_threadsafe(self._aio_run(msg), loop)
        for _ in range(self.concurrency):  # wait for the coroutines still running
            self._aio_slots.acquire()

    async def _aio_run(self, msg: Message) -> None:
        key = (msg.stream, msg.entry_id)
        try:
            task = self.app.tasks.get(msg.task)
            outcome = self._begin(msg, task)
            if outcome is None:
                outcome = await self._call_async(msg, task)
            self._end(msg, task, outcome)
        finally:
            with self._lock:
                freed = key in self._slot_freed
                self._slot_freed.discard(key)
            if not freed:
                self._aio_slots.release()

    async def _call_async(self, msg: Message, task: Task) -> Outcome:
        loop = asyncio.get_running_loop()
        running = Running(msg, threading.get_ident(), loop=loop)
        key = (msg.stream, msg.entry_id)
        # Each job is its own asyncio Task, with its own copy of the context:
        # the variable needs no reset (and a Task finalised after its loop
        # stopped could not reset it from there).
        _current.set((self.app, msg.job_id, msg.queue))
        try:
            if task.is_async:
                running.future = asyncio.ensure_future(task.fn(*msg.args, **msg.kwargs))
            else:
                # The executor's thread does not inherit the context: carry it, so
                # current_job() works in plain functions too.
                context = contextvars.copy_context()
                running.future = loop.run_in_executor(None, lambda: context.run(task.fn, *msg.args, **msg.kwargs))
            with self._lock:
                self._running[key] = running
            if msg.soft_deadline is not None or msg.hard_deadline is not None:
                self._watch.set()
            return Outcome("ok", result=await running.future)
        except asyncio.CancelledError:
            reason = running.reason or JobCancelled
            try:
                raise reason(f"{reason.__name__} for job {msg.job_id}") from None
            except TaskError as exc:
                return self._failure(exc)
        except BaseException as exc:  # as in _run_in_thread: a task's SystemExit fails the job
            return self._failure(exc)

    # -- interrupts -----------------------------------------------------------

    def _interrupt(self, running: Running, reason: type[TaskError]) -> None:
        """Make the job's code stop: cancel its coroutine, or raise *reason*
        in its thread at the next Python instruction.  Never once the job is
        done: the exception would land in whatever the thread does next."""
        with self._lock:
            if running.done:
                return
            running.reason = reason
            if running.future is not None and running.loop is not None:
                running.loop.call_soon_threadsafe(running.future.cancel)
            elif running.loop is None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(running.thread_id), ctypes.py_object(reason)
                )

    def _watchdog_loop(self) -> None:
        while not self._service_stop.is_set():
            now = time.monotonic()
            wake = now + 1.0
            expired: list[tuple[Running, str]] = []
            with self._lock:
                for r in self._running.values():
                    m = r.msg
                    if r.abandoned:
                        continue
                    if m.hard_deadline is not None:
                        if now >= m.hard_deadline + HARD_LIMIT_GRACE:
                            expired.append((r, "abandon"))
                        elif now >= m.hard_deadline and r.reason is not HardTimeLimit:
                            expired.append((r, "hard"))
                        else:
                            nxt = m.hard_deadline if now < m.hard_deadline else m.hard_deadline + HARD_LIMIT_GRACE
                            wake = min(wake, nxt)
                    if m.soft_deadline is not None and r.reason is None:
                        if now >= m.soft_deadline:
                            expired.append((r, "soft"))
                        else:
                            wake = min(wake, m.soft_deadline)
            for r, what in expired:
                if what == "soft":
                    self._interrupt(r, SoftTimeLimit)
                elif what == "hard":
                    self._interrupt(r, HardTimeLimit)
                    wake = min(wake, time.monotonic() + HARD_LIMIT_GRACE)
                else:
                    self._abandon(r)
            self._watch.wait(max(wake - time.monotonic(), 0.001))
            self._watch.clear()

    def _abandon(self, running: Running) -> None:
        """Record a job that ignored its hard limit as failed and go on without it."""
        msg = running.msg
        key = (msg.stream, msg.entry_id)
        with self._lock:
            if self._running.get(key) is not running:
                return
            running.abandoned = True
            del self._running[key]
            self._abandoned.add(key)
            if self.pool == "asyncio":
                self._slot_freed.add(key)
        if self.pool == "asyncio":
            self._aio_slots.release()  # the next job may start; the stuck coroutine keeps no slot
        task = self.app.tasks.get(msg.task)
        error = HardTimeLimit(f"job {msg.job_id} exceeded its hard time limit and ignored the interruption")
        outcome = Outcome("error", error=error, traceback=f"{error}\n")
        for m in reversed(self.app.middleware):
            m.after_process(self, msg, task, outcome)
        if outcome.kind == "error":
            outcome.kind = "bury"
        self._outcomes.put((msg, outcome))
        if self.exit_on_abandon:
            # A process-pool child: hand back what it holds, flush, and exit so
            # the supervisor replaces it (this is what really stops the code).
            threading.Thread(target=self._exit_after_flush, daemon=True).start()
        elif self.pool == "threads":
            # The stuck thread (plain or running a coroutine that ignores its
            # cancellation) exits when its code returns; meanwhile another serves.
            self._spawn(self._exec_loop, "exec-replacement", executor=True)

    def _exit_after_flush(self) -> None:
        self._stop.set()
        self._hand_back_waiting()
        self._outcomes.put(None)
        if self._acker is not None:
            self._acker.join(10.0)
        os._exit(75)

    # -- acknowledging --------------------------------------------------------

    def _ack_loop(self) -> None:
        while True:
            first = self._outcomes.get()
            if first is None:
                return
            batch = [first]
            last = False
            while len(batch) < 1000:
                try:
                    item = self._outcomes.get_nowait()
                except queue_mod.Empty:
                    break
                if item is None:
                    last = True
                    break
                batch.append(item)
            try:
                self._finish(batch)
            except Exception:
                # The acker must outlive any error: if it died, the heartbeat would
                # keep extending the leases of jobs nobody will ever finish.
                log.exception("finishing %d job(s) failed; they will be reclaimed after the lease", len(batch))
            if last:
                return

    def _finish(self, batch: list[tuple[Message, Outcome]]) -> None:
        """Record the outcomes of *batch*.  Whatever happens, the jobs leave
        ``_held``: one whose outcome could not be recorded is no longer
        extended, so its lease runs out and another delivery redoes it."""
        by_stream: dict[str, list[tuple[Message, Outcome]]] = defaultdict(list)
        for msg, outcome in batch:
            by_stream[msg.stream].append((msg, outcome))
        app = self.app
        now_ms = int(time.time() * 1000)
        try:
            for stream, items in by_stream.items():
                k = app.keys(items[0][0].queue)
                items = self._follow_links(items)
                for start in range(0, len(items), 500):
                    chunk = items[start : start + 500]
                    keys = [stream, k.delayed, k.dead, k.wake, k.cancel]
                    args: list[Any] = [GROUP, now_ms, int(app.result_ttl * 1000), app.dead_maxlen,
                                       int(app.record_ttl * 1000)]
                    for msg, outcome in chunk:
                        keys += [k.job(msg.job_id), k.done(msg.job_id)]
                        args += [msg.entry_id, msg.job_id, *self._finish_args(msg, outcome)]
                    applied = self._call_with_retry(
                        lambda keys=keys, args=args: app.scripts.finish(keys=keys, args=args))
                    if applied is not None:
                        self._end_failed_chains(chunk, applied)
        finally:
            with self._room:
                for msg, _ in batch:
                    self._held.pop((msg.stream, msg.entry_id), None)
                    self._cancelled.discard(msg.job_id)
                self.processed += len(batch)
                self._room.notify_all()

    @staticmethod
    def _finish_args(msg: Message, outcome: Outcome) -> list[Any]:
        kind = outcome.kind
        if kind == "ok":
            return ["ok", outcome.encoded, "", ""]
        if kind in ("retry", "delay"):
            attempt = msg.attempt + 1 if kind == "retry" else msg.attempt
            env = envelope(msg.job_id, msg.task, msg.args, msg.kwargs, attempt, msg.meta)
            return ["retry", env, int(outcome.due * 1000), _error_text(outcome.error)]
        if kind == "bury":
            return ["bury", msg.envelope, _error_text(outcome.error), outcome.traceback]
        if kind == "cancel":
            return ["cancel", "", "", ""]
        return ["requeue", msg.envelope, "", ""]

    def _follow_links(self, items: list[tuple[Message, Outcome]]) -> list[tuple[Message, Outcome]]:
        """Continue or end the chains of *items* before they are acknowledged;
        return the items to acknowledge.

        After a step succeeds, the next one is enqueued first, so a crash in
        between duplicates it (deduplicated by its fixed job id) instead of
        losing the rest of the chain.  A step that cannot be enqueued keeps the
        current one unacknowledged: it runs again after its lease.  (A step that
        ends buried or cancelled ends the rest of its chain after FINISH: see
        :meth:`_end_failed_chains`.)
        """
        kept = []
        for msg, outcome in items:
            link = msg.meta.get("link")
            if link and outcome.kind == "ok":
                (name, args, kwargs, job_id), rest = link[0], link[1:]
                task = self.app.tasks.get(name)
                if task is None:
                    error = f"chain step {msg.job_id} finished, but its next task {name!r} is not registered here"
                    self._end_chain(msg.queue, link, "buried", error)
                elif self._call_with_retry(
                    lambda t=task, a=args, kw=kwargs, j=job_id, r=rest, o=outcome: t.enqueue(
                        [((o.result, *a), kw)], meta={"link": r} if r else {},
                        unique_key=f"link:{j}", unique_window=self.app.record_ttl, job_ids=[j],
                    )
                ) is None:
                    continue  # not acknowledged: redone after its lease, link and all
            kept.append((msg, outcome))
        return kept

    def _end_failed_chains(self, chunk: list[tuple[Message, Outcome]], applied: list[bytes]) -> None:
        """End the rest of the chains whose step FINISH buried or cancelled.

        After FINISH, from what it applied: a retry or a hand-back it turned into
        a cancellation counts, a stale duplicate it dropped does not."""
        for (msg, outcome), kind in zip(chunk, applied, strict=True):
            link = msg.meta.get("link")
            if link and kind in (b"bury", b"cancel"):
                state = "buried" if kind == b"bury" else "cancelled"
                detail = _error_text(outcome.error) if kind == b"bury" else "cancelled"
                self._end_chain(msg.queue, link, state, f"chain step {msg.job_id} {state}: {detail}")

    def _end_chain(self, queue: str, link: list[Any], state: str, error: str) -> None:
        """Mark every later step of a chain buried or cancelled, waking its waiters."""
        now_ms = int(time.time() * 1000)
        for name, _, _, job_id in link:
            task = self.app.tasks.get(name)
            k = self.app.keys(task.queue if task is not None else queue)
            self._call_with_retry(lambda k=k, j=job_id: self.app.scripts.resolve(
                keys=[k.job(j), k.done(j)], args=[state, error, now_ms, int(self.app.result_ttl * 1000)]))

    def _call_with_retry(self, fn: Any) -> Any:
        """Acks must not be dropped on a transient error: the job would run
        again.  Retry a few times; past that the lease expires and another
        worker redoes the job (at-least-once still holds).  None means it gave up."""
        for attempt in range(6):
            try:
                return fn()
            except (redis.ConnectionError, redis.TimeoutError):
                if attempt == 5:
                    log.exception("giving up on finishing a batch; its jobs will be reclaimed")
                    return None
                time.sleep(0.1 * 2**attempt)
        return None

    # -- heartbeat --------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = min(self.app.lease / 3, 1.0)
        while not self._service_stop.wait(interval):
            try:
                self._extend_leases()
                self._check_cancels()
                registry.publish(self.app, self.id, self.describe())
            except redis.RedisError:
                log.exception("heartbeat failed (will retry)")

    def _extend_leases(self) -> None:
        with self._lock:
            held = list(self._held)
        by_stream: dict[str, list[bytes]] = defaultdict(list)
        for stream, entry_id in held:
            by_stream[stream].append(entry_id)
        for stream, ids in by_stream.items():
            for start in range(0, len(ids), 1000):
                self.app.client.xclaim(stream, GROUP, self.id, 0, ids[start : start + 1000], justid=True)

    def _check_cancels(self) -> None:
        with self._lock:
            held = list(self._held.values())
        by_queue: dict[str, list[Message]] = defaultdict(list)
        for msg in held:
            by_queue[msg.queue].append(msg)
        for q, msgs in by_queue.items():
            flags = self.app.client.smismember(self.app.keys(q).cancel, [m.job_id for m in msgs])
            hit = {m.job_id for m, f in zip(msgs, flags, strict=True) if f}
            if not hit:
                continue
            with self._lock:
                self._cancelled |= hit
                targets = [r for r in self._running.values() if r.msg.job_id in hit and r.reason is None]
            for r in targets:
                self._interrupt(r, JobCancelled)

    def describe(self) -> dict[str, Any]:
        """What the registry shows about this worker."""
        with self._lock:
            running = [
                {"id": r.msg.job_id, "task": r.msg.task, "queue": r.msg.queue,
                 "seconds": round(time.monotonic() - r.msg.started, 3)}
                for r in self._running.values()
            ]
            held = len(self._held)
        metrics = next((m.snapshot() for m in self.app.middleware if hasattr(m, "snapshot")), {})
        return {
            "host": socket.gethostname(), "pid": os.getpid(), "queues": self.queues, "pool": self.pool,
            "concurrency": self.concurrency, "started": self.started_at, "held": held,
            "processed": self.processed, "running": running, "metrics": metrics,
        }

    # -- scheduling -------------------------------------------------------------

    def _schedule_loop(self, k: QueueKeys) -> None:
        reader = BlockingReader(self.app.client, k.wake)
        self._readers.append(reader)
        crons = [t for t in self.app.tasks.values() if t.cron is not None and t.queue == k.queue]
        ticks = {t.name: t.cron.next_after(time.time()) for t in crons}
        upcoming: list[tuple[bytes, float]] = []  # (job id, due epoch s), earliest first
        refresh = True
        while not self._stop.is_set():
            try:
                now = time.time()
                for t in crons:
                    if ticks[t.name] <= now:
                        self._fire(t, ticks[t.name])
                        ticks[t.name] = t.cron.next_after(max(ticks[t.name], now))
                due = [job_id for job_id, at in upcoming if at <= now]
                if due or refresh:
                    upcoming = self._promote(k, due[:UPCOMING])
                    refresh = False
                    continue
                wake_at = min([now + WAIT_SLICE, *ticks.values(), *[at for _, at in upcoming[:1]]])
                wait = wake_at - time.time()
                if wait > 0.3:
                    # A server may time blocked clients out up to 100 ms late (Redis
                    # checks at 10 Hz): wake early and sleep the rest locally.  Any
                    # wake-up re-reads the set: a producer may have added earlier jobs.
                    reader.call(lambda c, w=wait: c.blpop([k.wake], timeout=w - 0.2))
                    refresh = True
                elif wait > 0:
                    # Short waits are local, in slices that re-read the set, so a job
                    # scheduled meanwhile for even sooner is at most 50 ms late.
                    self._stop.wait(min(wait, 0.05))
                    refresh = wait > 0.05
            except (redis.ConnectionError, redis.TimeoutError):
                self._stop.wait(0.5)
            except redis.RedisError:
                log.exception("scheduling for %s failed (will retry)", k.queue)
                self._stop.wait(1.0)
        reader.close()

    def _promote(self, k: QueueKeys, due: list[bytes]) -> list[tuple[bytes, float]]:
        """Move the *due* jobs to their streams; return the next scheduled jobs.

        The scheduler only ever passes jobs it saw in the set, and it re-reads
        the head of the set at each call, so a job added later is seen before
        its due time: either it is the new earliest (the producer pushes a
        wake-up) or an earlier job's promotion comes first and refreshes.
        """
        streams = [k.stream(p) for p in range(PRIORITY_LEVELS)]
        _, flat = self.app.scripts.promote(
            keys=[k.delayed, *streams, *[k.job(i.decode()) for i in due]],
            args=[int(time.time() * 1000), UPCOMING, *due],
        )
        return [(flat[i], float(flat[i + 1]) / 1000) for i in range(0, len(flat), 2)]

    def _fire(self, task: Task, tick: float) -> None:
        """Enqueue one cron tick: the unique key makes it once per tick however
        many schedulers race for it."""
        following = task.cron.next_after(tick)
        task.enqueue(
            [((), {})], unique_key=f"cron:{task.name}:{int(tick)}",
            unique_window=max(60.0, 3 * (following - tick)),
        )


def _error_text(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else ""


def run_processes(app: App, queues: list[str] | None, processes: int, grace: float = 30.0, **options: Any) -> None:
    """Supervise *processes* single-job worker processes until SIGTERM/SIGINT.

    Processes give real parallelism and the only hard time limit that stops
    any code: a child whose job ignores its limit records the failure and
    exits, and the supervisor starts a new one.  A child that dies any other
    way is replaced too; its jobs come back to the queue when their lease ends.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    stopping = threading.Event()

    supervisor = os.getpid()

    def orphan_watch() -> None:
        # A supervisor killed with SIGKILL cannot stop its children: they notice
        # being re-parented and stop gracefully themselves.
        while os.getppid() == supervisor:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    # A child runs one job at a time: it takes one at a time too, so that short
    # jobs never wait in the buffer of a child busy with a long one while the
    # other children are idle.
    if options.get("prefetch") is None:
        options["prefetch"] = 1

    def child() -> None:
        threading.Thread(target=orphan_watch, name="postroom-orphan-watch", daemon=True).start()
        Worker(app, queues, concurrency=1, exit_on_abandon=True, **options).run(grace)

    children = [ctx.Process(target=child, daemon=False) for _ in range(processes)]
    for p in children:
        p.start()
    previous = {s: signal.signal(s, lambda *_: stopping.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.wait(0.5):
            for i, p in enumerate(children):
                if not p.is_alive():
                    log.warning("worker process %s exited with %s; starting another", p.pid, p.exitcode)
                    children[i] = ctx.Process(target=child, daemon=False)
                    children[i].start()
    finally:
        for p in children:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
        for p in children:
            p.join(grace + 5)
        for s, h in previous.items():
            signal.signal(s, h)
