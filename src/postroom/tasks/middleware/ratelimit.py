"""Rate limits per task, shared by every worker through one Redis key."""

from __future__ import annotations

import time

from ..errors import Delay
from .base import Middleware

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate(rate: str | tuple[int, float]) -> tuple[int, float]:
    """``"10/s"``, ``"100/m"``, ``"5/10s"`` or ``(count, seconds)`` to (count, seconds)."""
    if isinstance(rate, tuple):
        count, period = rate
    else:
        count_text, _, unit = rate.partition("/")
        number = unit.rstrip("smhd")
        count, period = int(count_text), float(number or 1) * _UNITS[unit[len(number) :] or "s"]
    if count <= 0 or period <= 0:
        raise ValueError(f"bad rate limit {rate!r}")
    return int(count), float(period)


class RateLimits(Middleware):
    """Delays a job (without counting a try) when its task is over its rate,
    until the slot the limiter reserved for it; it then runs without asking again."""

    def before_process(self, worker, msg, task) -> None:
        if task.rate_limit is None or msg.meta.pop("rate_slot", None):
            return
        count, period = task.rate_limit
        app = worker.app
        wait_ms = app.scripts.rate(
            keys=[app.keys(task.queue).rate(task.name)],
            args=[count, int(period * 1000), int(time.time() * 1000)],
        )
        if wait_ms:
            msg.meta["rate_slot"] = 1  # travels in the delayed job's envelope
            raise Delay(wait_ms / 1000)
