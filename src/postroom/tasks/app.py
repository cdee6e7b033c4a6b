"""The application object: task registry, producer API and settings."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import os
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from redis.cluster import RedisCluster

from . import codec
from .consumer import Consumer
from .cron import Cron
from .errors import TaskError
from .job import Job, envelope
from .keys import GROUP, PRIORITY_LEVELS, QueueKeys
from .middleware import Middleware, default_middleware, parse_rate
from .registry import live_workers
from .scripts import Scripts


def connect(target: str | redis.Redis | RedisCluster) -> redis.Redis | RedisCluster:
    """A client for *target*; a URL is probed so a cluster node gives a RedisCluster.

    The framework stores binary msgpack, so a client that decodes responses
    is rejected rather than silently corrupting jobs.
    """
    if isinstance(target, str):
        probe = redis.Redis.from_url(target)
        try:
            clustered = bool(probe.info("cluster").get("cluster_enabled"))
        except redis.ResponseError:
            clustered = False
        if not clustered:
            return probe
        probe.close()
        return RedisCluster.from_url(target)
    if target.get_encoder().decode_responses:
        raise ValueError("postroom.tasks needs a client created with decode_responses=False")
    return target


#: Jobs per ENQUEUE script call.
ENQUEUE_BATCH = 1000


def _process_tag() -> str:
    return f"{os.getpid():x}{os.urandom(3).hex()}"


_id_tag = _process_tag()
_id_counter = itertools.count()
os.register_at_fork(after_in_child=lambda: globals().update(_id_tag=_process_tag()))


def new_id() -> str:
    """A job id: time-ordered (sorts by creation) and unique without
    coordination (a per-process random tag and counter, cheaper than a uuid)."""
    return f"{time.time_ns() // 1000:x}{next(_id_counter) & 0xFFFF:04x}{_id_tag}"


def new_ids(n: int) -> list[str]:
    """*n* ids as :func:`new_id` makes them, reading the clock once per 4,096
    (the counter, 16 bits, cannot wrap within one microsecond's worth)."""
    ids: list[str] = []
    for start in range(0, n, 4096):
        stamp, tag = f"{time.time_ns() // 1000:x}", _id_tag
        ids += [f"{stamp}{next(_id_counter) & 0xFFFF:04x}{tag}" for _ in range(min(4096, n - start))]
    return ids


@dataclass
class Signature:
    """A task call to make later: the unit of chains and groups."""

    task: Task
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __or__(self, other: Signature) -> Chain:
        return Chain([self, other])


class Chain:
    """Signatures run one after another, each receiving the previous result as
    its first argument.  The link travels inside the job, so the chain
    continues even if the caller goes away."""

    def __init__(self, steps: list[Signature]) -> None:
        self.steps = steps

    def __or__(self, other: Signature) -> Chain:
        return Chain([*self.steps, other])

    def delay(self) -> Job:
        """Enqueue the first step; returns a handle on the last step's job
        (its id is chosen now, so its result can be awaited at once)."""
        first, rest = self.steps[0], self.steps[1:]
        link = [[s.task.name, list(s.args), s.kwargs, new_id()] for s in rest]
        # Never deduplicated: a unique first step would return another chain's
        # job, and this chain's later steps would never exist.
        job = first.task.enqueue([(first.args, first.kwargs)], meta={"link": link} if link else {},
                                 unique_window=0 if link else None)[0]
        if not link:
            return job
        last = rest[-1].task
        return Job(last.app, link[-1][3], last.queue, future=True)


class Group:
    """Signatures run in parallel; ``results()`` waits for all of them."""

    def __init__(self, steps: Iterable[Signature]) -> None:
        self.steps = list(steps)
        self.jobs: list[Job] = []

    def delay(self) -> Group:
        self.jobs = [s.task.delay(*s.args, **s.kwargs) for s in self.steps]
        return self

    def results(self, timeout: float | None = None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        return [j.result(None if deadline is None else max(deadline - time.monotonic(), 0.01)) for j in self.jobs]


class Task:
    """A function registered with the app; calling it runs it in-process."""

    def __init__(
        self,
        app: App,
        fn: Callable[..., Any],
        *,
        name: str,
        queue: str,
        retries: int,
        backoff: float,
        max_backoff: float,
        timeout: float | None,
        soft_timeout: float | None,
        priority: int,
        unique: float | None,
        rate_limit: str | tuple[int, float] | None,
        cron: str | None,
    ) -> None:
        if not 0 <= priority < PRIORITY_LEVELS:
            raise ValueError(f"priority must be in 0..{PRIORITY_LEVELS - 1}")
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.soft_timeout = soft_timeout
        self.priority = priority
        self.unique = unique
        self.rate_limit = parse_rate(rate_limit) if rate_limit else None
        self.cron = Cron(cron) if cron else None
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return Signature(self, args, kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> Job:
        return self.enqueue([(args, kwargs)])[0]

    def send_at(self, when: datetime | float, *args: Any, **kwargs: Any) -> Job:
        """Run at *when* (an aware/naive datetime in local time, or epoch seconds)."""
        due = when.timestamp() if isinstance(when, datetime) else float(when)
        return self.enqueue([(args, kwargs)], due=due)[0]

    def send_in(self, seconds: float, *args: Any, **kwargs: Any) -> Job:
        return self.enqueue([(args, kwargs)], due=time.time() + seconds)[0]

    async def adelay(self, *args: Any, **kwargs: Any) -> Job:
        """:meth:`delay` for asyncio code, on redis.asyncio."""
        return (await self.app.aenqueue_calls(self, [(args, kwargs)], 0.0, {}))[0]

    async def asend_in(self, seconds: float, *args: Any, **kwargs: Any) -> Job:
        return (await self.app.aenqueue_calls(self, [(args, kwargs)], time.time() + seconds, {}))[0]

    def map(self, calls: Iterable[tuple[tuple[Any, ...], dict[str, Any]] | tuple[Any, ...]]) -> list[Job]:
        """Enqueue many calls in a few round trips: each item is an args tuple
        or an ``(args, kwargs)`` pair."""
        batch: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for call in calls:
            if len(call) == 2 and isinstance(call[0], tuple | list) and isinstance(call[1], dict):
                batch.append((tuple(call[0]), call[1]))
            else:
                batch.append((tuple(call), {}))
        return self.enqueue(batch)

    def unique_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        digest = hashlib.sha1(codec.dumps([list(args), sorted(kwargs.items())])).hexdigest()
        return f"{self.name}:{digest}"

    def enqueue(
        self,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        due: float = 0.0,
        meta: dict[str, Any] | None = None,
        unique_key: str | None = None,
        unique_window: float | None = None,
        job_ids: list[str] | None = None,
    ) -> list[Job]:
        """Low-level enqueue used by every producer path (batched per 500 jobs)."""
        return self.app.enqueue_calls(self, calls, due, meta or {}, unique_key, unique_window, job_ids)


def _enqueued_ids(reply: Any, ids: list[str]) -> list[str]:
    """The job ids an ENQUEUE reply stands for: its own list when uniqueness may
    have replaced some by an existing job's id, else (a count) the ids sent."""
    return ids if isinstance(reply, int) else [i.decode() for i in reply]


class App:
    """Holds the client, the registered tasks and consumers, and settings.

    *async_client*: a factory of redis.asyncio clients for the async API
    (``adelay``, ``aresult``), needed only when *target* is not a URL.

    *lease* is how long a job may go without its worker's heartbeat before
    another worker reclaims it; workers extend the lease of every job they
    hold several times per lease, so it only expires when the worker is gone.
    """

    def __init__(
        self,
        target: str | redis.Redis | RedisCluster,
        *,
        prefix: str = "postroom",
        lease: float = 30.0,
        result_ttl: float = 3600.0,
        record_ttl: float = 7 * 86400.0,
        dead_maxlen: int = 100_000,
        max_deliveries: int = 5,
        middleware: list[Middleware] | None = None,
        async_client: Callable[[], Any] | None = None,
    ) -> None:
        self.url = target if isinstance(target, str) else None
        self.client = connect(target)
        self.clustered = isinstance(self.client, RedisCluster)
        self.prefix = prefix
        self.lease = lease
        self.result_ttl = result_ttl
        self.record_ttl = record_ttl
        self.dead_maxlen = dead_maxlen
        self.max_deliveries = max_deliveries
        self.middleware = default_middleware() if middleware is None else middleware
        self.scripts = Scripts(self.client)
        self._keys: dict[str, QueueKeys] = {}
        self._async_factory = async_client
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Scripts]] = (
            weakref.WeakKeyDictionary()
        )
        self.tasks: dict[str, Task] = {}
        self.consumers: dict[str, Consumer] = {}

    def keys(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys(self.prefix, queue)
        return keys

    @property
    def queues(self) -> list[str]:
        """Queues of the registered tasks, in registration order."""
        return list(dict.fromkeys(t.queue for t in self.tasks.values()))

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 3600.0,
        timeout: float | None = None,
        soft_timeout: float | None = None,
        priority: int = 0,
        unique: float | None = None,
        rate_limit: str | tuple[int, float] | None = None,
        cron: str | None = None,
    ) -> Any:
        """Register a plain or ``async def`` function as a task.

        retries/backoff: tries after the first, with exponential backoff from
        *backoff* seconds, with jitter.  timeout: hard limit in seconds;
        soft_timeout raises SoftTimeLimit inside the task first.  priority:
        0..2, higher first.  unique: dedupe identical calls for that many
        seconds.  rate_limit: "10/s", "100/m" or (count, seconds), shared by
        all workers.  cron: enqueue this (argument-less) task on that schedule.
        """

        def register(f: Callable[..., Any]) -> Task:
            task = Task(
                self,
                f,
                name=name or f"{f.__module__}.{f.__qualname__}",
                queue=queue,
                retries=retries,
                backoff=backoff,
                max_backoff=max_backoff,
                timeout=timeout,
                soft_timeout=soft_timeout,
                priority=priority,
                unique=unique,
                rate_limit=rate_limit,
                cron=cron,
            )
            if task.name in self.tasks:
                raise ValueError(f"task {task.name!r} is already registered")
            self.tasks[task.name] = task
            return task

        return register(fn) if fn is not None else register

    def consumer(self, stream: str, group: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        """Register an event-stream handler; see :class:`postroom.tasks.consumer.Consumer`."""

        def register(f: Callable[..., Any]) -> Consumer:
            c = Consumer(self, f, stream, group, **options)
            self.consumers[c.name] = c
            return c

        return register

    def job(self, job_id: str, queue: str = "default") -> Job:
        return Job(self, job_id, queue)

    def chain(self, *steps: Signature) -> Chain:
        return Chain(list(steps))

    def group(self, steps: Iterable[Signature]) -> Group:
        return Group(steps)

    def enqueue_calls(
        self,
        task: Task,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        due: float,
        meta: dict[str, Any],
        unique_key: str | None,
        unique_window: float | None,
        job_ids: list[str] | None,
    ) -> list[Job]:
        k = self.keys(task.queue)
        batches = self._enqueue_batches(task, calls, due, meta, unique_key, unique_window, job_ids)
        if len(calls) <= ENQUEUE_BATCH or self.clustered:
            outs: list[tuple[Any, list[str]]] = []
            try:
                for keys, args, ids in batches:
                    outs.append((self.scripts.enqueue(keys=keys, args=args), ids))
            except codec.CodecError as exc:
                exc.enqueued = [i for out, ids in outs for i in _enqueued_ids(out, ids)]
                raise
        else:
            outs = self._stream_batches(batches)
        return [Job(self, i, task.queue, k) for out, ids in outs for i in _enqueued_ids(out, ids)]

    def _stream_batches(self, batches: Iterator[tuple[list[str], list[Any], list[str]]]) -> list[tuple[Any, list[str]]]:
        """Send each ENQUEUE call as soon as it is encoded, read the replies at the end.

        The server runs batch *n* while this thread encodes batch *n+1*, and it
        always has the next call waiting: no round trip between batches, and no
        sender thread waiting for the GIL while the server sits idle.  (On a
        cluster the batches go one by one through the client, which knows the
        slot's node.)  A batch refused with NOSCRIPT (a server that lost its
        scripts) did nothing, and is sent again through the loading path.
        """
        script = self.scripts.enqueue
        pool = self.client.connection_pool
        conn = pool.get_connection()
        sent: list[tuple[list[str], list[Any], list[str]]] = []
        outs: list[tuple[Any, list[str]]] = []
        refused: codec.CodecError | None = None
        try:
            try:
                for keys, args, ids in batches:
                    conn.send_packed_command(conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args))
                    sent.append((keys, args, ids))
            except codec.CodecError as exc:
                refused = exc  # a later call cannot be encoded: the batches before it are in
            replies: list[Any] = []
            for _ in sent:
                try:
                    replies.append(conn.read_response())
                except redis.exceptions.NoScriptError as exc:  # the reply was read whole: still in step
                    replies.append(exc)
        except BaseException:
            conn.disconnect()  # replies may be left unread: never hand this connection out again
            raise
        finally:
            pool.release(conn)
        for (keys, args, ids), reply in zip(sent, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                reply = script(keys=keys, args=args)
            outs.append((reply, ids))
        if refused is not None:
            refused.enqueued = [i for out, ids in outs for i in _enqueued_ids(out, ids)]
            raise refused
        return outs

    async def aenqueue_calls(
        self,
        task: Task,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        due: float,
        meta: dict[str, Any],
    ) -> list[Job]:
        """:meth:`enqueue_calls` for asyncio producers (no thread, no blocking)."""
        k = self.keys(task.queue)
        _, scripts = self.async_client()
        jobs: list[Job] = []
        for keys, args, ids in self._enqueue_batches(task, calls, due, meta, None, None, None):
            out = await scripts.enqueue(keys=keys, args=args)
            jobs += [Job(self, i, task.queue, k) for i in _enqueued_ids(out, ids)]
        return jobs

    def _enqueue_batches(
        self,
        task: Task,
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
        due: float,
        meta: dict[str, Any],
        unique_key: str | None,
        unique_window: float | None,
        job_ids: list[str] | None,
    ) -> Iterator[tuple[list[str], list[Any], list[str]]]:
        """ENQUEUE calls (keys, arguments, job ids) of up to 1,000 jobs: a batch shares
        task, due time and uniqueness window, so each job adds only its key(s), id and envelope."""
        for m in self.middleware:
            m.before_enqueue(self, task, calls)
        k = self.keys(task.queue)
        window = unique_window if unique_window is not None else task.unique
        ids = job_ids or new_ids(len(calls))
        head = [int(time.time() * 1000), int(self.record_ttl * 1000), task.priority, int(due * 1000),
                int((window or 0) * 1000)]
        for start in range(0, len(calls), ENQUEUE_BATCH):
            end = start + ENQUEUE_BATCH
            keys = [k.stream(task.priority), k.delayed, k.wake]
            args: list[Any] = list(head)
            batch_ids = ids[start:end]
            for job_id, (a, kw) in zip(batch_ids, calls[start:end], strict=True):
                keys.append(k.job(job_id))
                if window:
                    keys.append(k.unique(unique_key or task.unique_key(a, kw)))
                args += [job_id, envelope(job_id, task.name, a, kw, 1, meta)]
            yield keys, args, batch_ids

    def async_client(self) -> tuple[Any, Scripts]:
        """The redis.asyncio client (and its scripts) of the running event loop.

        asyncio clients belong to the loop they were first used in, so there
        is one per loop, made by *async_client* (given to the App) or from the URL.
        """
        loop = asyncio.get_running_loop()
        pair = self._async_clients.get(loop)
        if pair is None:
            if self._async_factory is not None:
                client = self._async_factory()
            elif self.url is None:
                raise TaskError("App built on a client: pass async_client= to use the async API")
            elif self.clustered:
                client = redis.asyncio.RedisCluster.from_url(self.url)
            else:
                client = redis.asyncio.Redis.from_url(self.url)
            pair = self._async_clients[loop] = (client, Scripts(client))
        return pair

    # -- dead letters -------------------------------------------------------

    def dead(self, queue: str = "default", count: int = 100) -> list[dict[str, Any]]:
        """Buried jobs of *queue*, oldest first, with error and traceback."""
        out = []
        for entry_id, f in self.client.xrange(self.keys(queue).dead, count=count):
            _, task, args, kwargs, attempt, _ = codec.loads(f[b"j"])
            out.append(
                {
                    "entry": entry_id.decode(),
                    "id": f[b"id"].decode(),
                    "task": task,
                    "args": args,
                    "kwargs": kwargs,
                    "attempts": attempt,
                    "error": f[b"err"].decode(),
                    "traceback": f[b"tb"].decode(),
                }
            )
        return out

    def requeue_dead(self, queue: str = "default", entries: Iterable[str] | None = None) -> int:
        """Put buried jobs back on their queue as fresh tries (all when *entries* is None)."""
        k = self.keys(queue)
        wanted = None if entries is None else set(entries)
        moved = 0
        for entry_id, f in self.client.xrange(k.dead):
            if wanted is not None and entry_id.decode() not in wanted:
                continue
            job_id, task, args, kwargs, _, meta = codec.loads(f[b"j"])
            prio = self.tasks[task].priority if task in self.tasks else 0
            env = envelope(job_id, task, args, kwargs, 1, meta)
            # Before the step can run again and enqueue the next one.
            self._revive_chain(queue, meta.get("link") or [])
            if self.scripts.requeue_dead(
                keys=[k.dead, k.stream(prio), k.job(job_id), k.done(job_id)],
                args=[entry_id, env, prio, int(self.record_ttl * 1000)],
            ):
                moved += 1
        return moved

    def _revive_chain(self, queue: str, link: list[Any]) -> None:
        """Forget the ending given to the later steps of a requeued chain step
        (they never ran: they were marked buried when it failed), so waiting
        on them waits for the new try.  Each record and wake-up list go."""
        for name, _, _, job_id in link:
            task = self.tasks.get(name)
            k = self.keys(task.queue if task is not None else queue)
            self.client.delete(k.job(job_id), k.done(job_id))  # one queue: one slot

    def purge_dead(self, queue: str = "default") -> int:
        """Delete all buried jobs of *queue*; returns how many there were."""
        k = self.keys(queue)
        n = self.client.xlen(k.dead)
        self.client.delete(k.dead)
        return n

    def workers(self) -> list[dict[str, Any]]:
        """Live workers and what each is doing (from their heartbeats)."""
        return live_workers(self)

    def stats(self, queue: str = "default") -> dict[str, int]:
        """Backlog of *queue*: waiting (not yet delivered), held (delivered to a
        worker, not yet acknowledged), scheduled and buried jobs."""
        k = self.keys(queue)
        entries = held = 0
        for stream in k.streams:
            entries += self.client.xlen(stream)
            try:
                held += self.client.xpending(stream, GROUP)["pending"]
            except redis.ResponseError:  # no worker created the group yet
                pass
        return {
            "waiting": entries - held,
            "held": held,
            "scheduled": self.client.zcard(k.delayed),
            "dead": self.client.xlen(k.dead),
        }

    def replay(self, stream: str, group: str, from_id: str) -> None:
        """Make *group* re-read *stream* from *from_id* (exclusive)."""
        self.client.xgroup_setid(stream, group, from_id)
