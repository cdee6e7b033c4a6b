"""In-process counters, published with the worker's heartbeat."""

from __future__ import annotations

import threading
import time
from collections import Counter

from .base import Middleware, Outcome


class Metrics(Middleware):
    """Counts deliveries by outcome and sums run time, per worker."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.busy_seconds = 0.0
        self._lock = threading.Lock()

    def after_process(self, worker, msg, task, outcome: Outcome) -> None:
        took = time.monotonic() - msg.started if msg.started else 0.0
        with self._lock:
            self.counts[outcome.kind] += 1
            self.busy_seconds += took

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self.counts, "busy_seconds": round(self.busy_seconds, 3)}
