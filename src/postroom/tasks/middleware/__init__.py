"""Middleware: the optional behaviour around the worker core."""

from __future__ import annotations

from .base import Middleware, Outcome
from .metrics import Metrics
from .ratelimit import RateLimits, parse_rate
from .results import Results
from .retries import Retries, backoff_delay
from .timelimits import TimeLimits


def default_middleware() -> list[Middleware]:
    """The stack an App gets unless told otherwise (outermost first)."""
    return [Metrics(), RateLimits(), TimeLimits(), Retries(), Results()]


__all__ = [
    "Metrics",
    "Middleware",
    "Outcome",
    "RateLimits",
    "Results",
    "Retries",
    "TimeLimits",
    "backoff_delay",
    "default_middleware",
    "parse_rate",
]
