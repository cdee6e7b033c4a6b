"""postroom.tasks: task queues and event consumers on the Redis API.

Quick start::

    app = App("redis://localhost:6379")

    @app.task(retries=5, timeout=60)
    def resize(path: str) -> str: ...

    job = resize.delay("/tmp/a.png")
    job.result(timeout=30)

Run workers with ``postroom worker myapp.tasks:app``.  See docs/TASKS.md.
"""

from __future__ import annotations

from .app import App, Chain, Group, Signature, Task
from .consumer import Consumer, Event, PartialTransactionError
from .cron import Cron
from .errors import Delay, HardTimeLimit, JobCancelled, JobFailed, SoftTimeLimit, TaskError
from .job import Job, current_job
from .middleware import Middleware, Outcome
from .worker import Worker, run_processes

__all__ = [
    "App",
    "Chain",
    "Consumer",
    "Cron",
    "Delay",
    "Event",
    "Group",
    "HardTimeLimit",
    "Job",
    "JobCancelled",
    "JobFailed",
    "Middleware",
    "Outcome",
    "PartialTransactionError",
    "Signature",
    "SoftTimeLimit",
    "Task",
    "TaskError",
    "Worker",
    "current_job",
    "run_processes",
]
