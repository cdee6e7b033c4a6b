"""Exceptions a task, a middleware or a caller may see."""

from __future__ import annotations


class TaskError(Exception):
    """Base class of the framework's own exceptions."""


class JobFailed(TaskError):
    """Raised by ``Job.result()`` when the job was buried after its last try."""

    def __init__(self, job_id: str, error: str, traceback: str) -> None:
        super().__init__(f"job {job_id} failed: {error}")
        self.job_id = job_id
        self.error = error
        self.traceback = traceback


class JobCancelled(TaskError):
    """Raised by ``Job.result()`` for a cancelled job, and inside a running
    task when it is cancelled so that it stops at its next Python instruction."""


class SoftTimeLimit(TaskError):
    """Raised inside a task when its soft time limit expires: the task may
    clean up, and is failed (then retried) if it lets the exception escape."""


class HardTimeLimit(TaskError):
    """Recorded as the error of a task stopped by its hard time limit."""


class Delay(TaskError):  # noqa: N818 - a signal, not an error
    """Raised by a middleware to put a job back for later without counting a
    try (used by rate limits)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"delayed by {seconds:.3f}s")
        self.seconds = seconds
