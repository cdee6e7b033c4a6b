"""Soft and hard time limits: sets the deadlines the worker's watchdog enforces."""

from __future__ import annotations

import time

from .base import Middleware


class TimeLimits(Middleware):
    """Stamps each delivery with its task's deadlines.

    Enforcement needs the executor (interrupting a thread, cancelling a
    coroutine, ending a process), so the worker's watchdog does it; keeping
    the policy here lets an application replace it (say, limits per call).
    """

    def before_process(self, worker, msg, task) -> None:
        now = time.monotonic()
        if task.soft_timeout:
            msg.soft_deadline = now + task.soft_timeout
        if task.timeout:
            msg.hard_deadline = now + task.timeout
