"""Job handles (what a caller holds) and messages (what a worker runs)."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import codec
from .errors import JobCancelled, JobFailed, TaskError
from .keys import GROUP, QueueKeys

if TYPE_CHECKING:
    from .app import App

#: Longest single blocking wait: below redis-py's default socket timeout (5 s).
WAIT_SLICE = 2.0

#: States after which a job never changes again (until its record expires).
TERMINAL = frozenset({"finished", "buried", "cancelled"})

# (app, job id, queue) of the running job; the Job handle is only built when
# a task asks for it, which keeps it off the per-job path of no-op jobs.
_current: contextvars.ContextVar[tuple[App, str, str] | None] = contextvars.ContextVar(
    "postroom_current_job", default=None
)


def _slice(left: float | None) -> float:
    """Timeout of one blocking wait on the ``done`` list.

    Waits are sliced below redis-py's default 5 s socket timeout, and never
    shorter than 10 ms: the server truncates a timeout to whole milliseconds,
    and a timeout of 0 would block for ever.
    """
    return WAIT_SLICE if left is None else max(min(left, WAIT_SLICE), 0.01)


def current_job() -> Job:
    """The job the calling task is running for (to report progress)."""
    running = _current.get()
    if running is None:
        raise TaskError("current_job() called outside a running task")
    return Job(*running)


class Job:
    """A handle on one job, usable from any process."""

    def __init__(self, app: App, job_id: str, queue: str, keys: QueueKeys | None = None, *,
                 future: bool = False) -> None:
        self.app = app
        self.id = job_id
        self.queue = queue
        self._keys = keys or app.keys(queue)
        # A later step of a chain: its record may not exist yet, and waiting for
        # it is fine.  For any other job a missing record means unknown or expired.
        self._future = future

    def __repr__(self) -> str:
        return f"<Job {self.id} queue={self.queue}>"

    def _info(self) -> list[Any]:
        k = self._keys
        return self.app.scripts.status(keys=[k.job(self.id), *[k.stream(p) for p in range(3)]], args=[GROUP])

    def status(self) -> str | None:
        """scheduled, queued, running, retrying, finished, buried, cancelled,
        or None once the record expired (or never existed)."""
        state = self._info()[0]
        return state.decode() if state is not None else None

    def info(self) -> dict[str, Any]:
        """State, result, error, traceback and last reported progress."""
        return _decode_info(self._info())

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to finish and return its result.

        Waiting blocks on a per-job list the finisher pushes a token to, so
        the caller learns the outcome as soon as it is recorded, without
        polling.  Raises JobFailed, JobCancelled or TimeoutError.

        The wait is BLMOVE from the list to itself: it wakes on the token
        without taking it, so every other waiter on the job wakes too, and
        the list never empties, so it keeps the expiry the finisher gave it
        (popping the token and pushing it back would recreate the list
        without one, leaking a key per job waited on).
        """
        client = self.app.client
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self._keys.done(self.id)
        woke = None
        while True:
            state = self.app.scripts.wait(keys=[self._keys.job(self.id)], args=self._wait_args())
            if self._settled(state):
                return self._outcome(self.info())
            if woke is not None:
                client.delete(done)  # a token from an outcome since undone (a requeued job): drop it
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"job {self.id} did not finish in {timeout}s")
            woke = client.blmove(done, done, _slice(left), "LEFT", "RIGHT")

    def _wait_args(self) -> list[Any]:
        return [int(self.app.record_ttl * 1000), 1 if self._future else 0]

    def _settled(self, state: bytes | None) -> bool:
        """True once WAIT's *state* is final; refuses to wait for a job that does not exist."""
        if state == b"missing":
            raise TaskError(f"job {self.id} is unknown, or its record expired")
        return state is not None and state.decode() in TERMINAL

    async def _ainfo(self) -> list[Any]:
        _, scripts = self.app.async_client()
        k = self._keys
        return await scripts.status(keys=[k.job(self.id), *[k.stream(p) for p in range(3)]], args=[GROUP])

    async def astatus(self) -> str | None:
        """:meth:`status` for asyncio code."""
        state = (await self._ainfo())[0]
        return state.decode() if state is not None else None

    async def aresult(self, timeout: float | None = None) -> Any:
        """:meth:`result` for asyncio code: the same wake-up list, awaited."""
        client, scripts = self.app.async_client()
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self._keys.done(self.id)
        woke = None
        while True:
            state = await scripts.wait(keys=[self._keys.job(self.id)], args=self._wait_args())
            if self._settled(state):
                return self._outcome(_decode_info(await self._ainfo()))
            if woke is not None:
                await client.delete(done)  # as in result(): a stale token
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"job {self.id} did not finish in {timeout}s")
            woke = await client.blmove(done, done, _slice(left), "LEFT", "RIGHT")

    def _outcome(self, info: dict[str, Any]) -> Any:
        if info["status"] == "finished":
            return info["result"]
        if info["status"] == "cancelled":
            raise JobCancelled(f"job {self.id} was cancelled")
        raise JobFailed(self.id, info["error"] or "", info["traceback"] or "")

    def cancel(self) -> str | None:
        """Cancel the job: a waiting job is removed at once ("cancelled"); a
        running one is interrupted by its worker ("cancelling")."""
        k = self._keys
        state = self.app.scripts.cancel(
            keys=[k.job(self.id), k.delayed, k.cancel, *[k.stream(p) for p in range(3)], k.done(self.id)],
            args=[self.id, GROUP, int(time.time() * 1000), int(self.app.result_ttl * 1000)],
        )
        return state.decode() if state is not None else None

    def progress(self, value: Any) -> None:
        """Record progress (any encodable value), e.g. from inside the task."""
        self.app.client.hset(self._keys.job(self.id), "prog", codec.dumps(value))


def _decode_info(raw: list[Any]) -> dict[str, Any]:
    state, result, error, tb, progress = raw
    return {
        "status": state.decode() if state is not None else None,
        "result": codec.loads(result),
        "error": error.decode() if error else None,
        "traceback": tb.decode() if tb else None,
        "progress": codec.loads(progress),
    }


@dataclass
class Message:
    """One delivery of a job to a worker."""

    queue: str
    queue_index: int
    stream: str
    entry_id: bytes
    envelope: bytes
    job_id: str = ""
    task: str = ""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    reclaimed: bool = False
    # Set by the worker while the job runs.
    started: float = 0.0
    soft_deadline: float | None = None
    hard_deadline: float | None = None

    def __post_init__(self) -> None:
        self.job_id, self.task, self.args, self.kwargs, self.attempt, self.meta = codec.loads(self.envelope)
        self.priority = int(self.stream.rsplit(":s", 1)[1])

    @classmethod
    def broken(cls, queue: str, queue_index: int, stream: str, entry_id: bytes) -> Message:
        """A stand-in for an entry that cannot be decoded, so it can be buried."""
        env = envelope(entry_id.decode(), "", [], {}, 1, {})
        return cls(queue, queue_index, stream, entry_id, env)


def envelope(job_id: str, task: str, args: Any, kwargs: dict[str, Any], attempt: int, meta: dict[str, Any]) -> bytes:
    """The encoded job as stored in a stream entry or a scheduled record."""
    return codec.dumps([job_id, task, list(args), kwargs, attempt, meta])
