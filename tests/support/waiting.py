"""Waiting for a server to reach a state (clients blocked, a background write done) without sleeps
of a guessed length: poll briefly until the condition holds, fail after a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .resp import RawClient


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition not reached") -> None:
    """Poll ``predicate`` every 2 ms until it is true; AssertionError with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def blocked_clients(raw: RawClient) -> int:
    """``blocked_clients`` from INFO clients of the server behind ``raw`` (RESP2 or RESP3)."""
    info = raw.call("INFO", "clients")[1]
    return int(info.split(b"blocked_clients:")[1].split(b"\r\n")[0])


def wait_blocked(raw: RawClient, count: int, timeout: float = 5.0) -> None:
    """Wait until exactly ``count`` clients are blocked on the server behind ``raw``."""
    wait_until(lambda: blocked_clients(raw) == count, timeout, f"never saw {count} blocked clients")
