"""Retries with exponential backoff and full jitter, then burial."""

from __future__ import annotations

import random
import time

from ..errors import JobCancelled
from .base import Middleware, Outcome


def backoff_delay(base: float, cap: float, attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1``.

    Jitter spreads the retries of jobs that failed together (say, while a
    database was down) so that they do not all hit it again at once.
    """
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class Retries(Middleware):
    """Turns an undecided error into a retry, or a burial after the last try."""

    def after_process(self, worker, msg, task, outcome: Outcome) -> None:
        if outcome.kind != "error":
            return
        if task is None or isinstance(outcome.error, JobCancelled) or msg.attempt > task.retries:
            outcome.kind = "bury"
            return
        outcome.kind = "retry"
        outcome.due = time.time() + backoff_delay(task.backoff, task.max_backoff, msg.attempt)
