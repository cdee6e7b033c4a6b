"""The middleware contract.

The worker core only fetches, dispatches and acknowledges; everything else
(retries, limits, results, metrics) hooks in here.  Every hook is a no-op so
a middleware overrides only what it needs; ``before_*`` hooks run in list
order and ``after_*`` hooks in reverse, so the first middleware wraps all
the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import App, Task
    from ..job import Message
    from ..worker import Worker


@dataclass
class Outcome:
    """What became of one delivery; after_process hooks may rewrite it.

    kind is one of: ok, error (not yet decided), retry, delay (retry without
    counting a try), bury, cancel, requeue (handed back unrun).
    """

    kind: str
    result: Any = None
    encoded: bytes = b""
    error: BaseException | None = None
    traceback: str = ""
    due: float = 0.0


class Middleware:
    """Base class: override the hooks you need."""

    def before_enqueue(self, app: App, task: Task, calls: list[Any]) -> None:
        """Called in the producer before a batch of calls is enqueued."""

    def on_worker_start(self, worker: Worker) -> None:
        """Called once when a worker starts, before it fetches anything."""

    def on_worker_stop(self, worker: Worker) -> None:
        """Called once when a worker has stopped."""

    def before_process(self, worker: Worker, msg: Message, task: Task) -> None:
        """Called before the task runs; may raise Delay or any error to skip it."""

    def after_process(self, worker: Worker, msg: Message, task: Task | None, outcome: Outcome) -> None:
        """Called after the task ran (or was skipped) with its outcome."""
