"""Server statistics that are sampled rather than counted: ops/sec, memory, command totals.

Counting every command in a global counter would cost the hot path an increment; the command
table already counts calls per command, so totals are summed from it when INFO asks, and the
instantaneous rate is sampled from those sums by the broker cron (Redis's ``trackInstantaneousMetric``:
one sample every 100 ms, the rate is the mean of the last 16).

Memory: Python cannot report bytes allocated cheaply (``tracemalloc`` slows every allocation), so
``used_memory`` is the process's resident set size read from ``/proc/self/statm``; that counts the
interpreter itself (~10-20 MB) on top of the data set.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import deque
from typing import TYPE_CHECKING

from .commands.registry import COMMANDS, Command

if TYPE_CHECKING:
    from .broker import Broker

SAMPLE_PERIOD_S = 0.1
SAMPLES = 16
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def human_bytes(n: int) -> str:
    """Redis's ``bytesToHuman``: ``967.23K``, ``6.66M``, ``0B``."""
    for unit, scale in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n}B"


def iter_commands() -> list[Command]:
    """Every command record, containers' subcommands included."""
    records: list[Command] = []
    for record in COMMANDS.values():
        records.append(record)
        records.extend(record.subcommands.values())
    return records


def total_commands_processed() -> int:
    """Commands run since start (or CONFIG RESETSTAT), summed from the per-command counters."""
    return sum(record.calls for record in iter_commands())


def rss_bytes() -> int:
    """Resident set size of this process (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


class ServerStats:
    """Identity and sampled metrics of one broker (INFO server/stats/memory)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.run_id = secrets.token_hex(20)
        self.ops_samples: deque[float] = deque(maxlen=SAMPLES)
        self._last_sample_time = time.monotonic()
        self._last_sample_ops = total_commands_processed()
        self.peak_memory = rss_bytes()
        self.startup_memory = self.peak_memory  # used_memory_startup: the process before any data
        # Network traffic, counted by the transports once per read and per write (not per command).
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.reads_processed = 0
        self.writes_processed = 0
        self.rejected_connections = 0
        self.input_samples: deque[float] = deque(maxlen=SAMPLES)
        self.output_samples: deque[float] = deque(maxlen=SAMPLES)
        self._last_input = self._last_output = 0
        broker.cron_hooks.append(self.sample)

    def sample(self) -> None:
        """Cron hook: record the ops/sec rate and the memory peak at most every 100 ms."""
        now = time.monotonic()
        elapsed = now - self._last_sample_time
        if elapsed < SAMPLE_PERIOD_S:
            return
        ops = total_commands_processed()
        self.ops_samples.append(max(0, ops - self._last_sample_ops) / elapsed)
        self.input_samples.append(max(0, self.net_input_bytes - self._last_input) / elapsed / 1024)
        self.output_samples.append(max(0, self.net_output_bytes - self._last_output) / elapsed / 1024)
        self._last_sample_time = now
        self._last_sample_ops = ops
        self._last_input, self._last_output = self.net_input_bytes, self.net_output_bytes
        self.peak_memory = max(self.peak_memory, rss_bytes())

    @property
    def instantaneous_ops_per_sec(self) -> int:
        """Mean of the last :data:`SAMPLES` rates, as Redis's ``getInstantaneousMetric``."""
        samples = self.ops_samples
        return int(sum(samples) / len(samples)) if samples else 0

    @staticmethod
    def _mean(samples: deque[float]) -> float:
        return sum(samples) / len(samples) if samples else 0.0

    @property
    def instantaneous_input_kbps(self) -> float:
        return self._mean(self.input_samples)

    @property
    def instantaneous_output_kbps(self) -> float:
        return self._mean(self.output_samples)

    def reset(self) -> None:
        """CONFIG RESETSTAT: zero the counters and the sampled rates."""
        for record in iter_commands():
            record.calls = record.usec = record.rejected_calls = record.failed_calls = 0
        self.ops_samples.clear()
        self._last_sample_ops = 0
        self.net_input_bytes = self.net_output_bytes = self._last_input = self._last_output = 0
        self.reads_processed = self.writes_processed = self.rejected_connections = 0
        self.input_samples.clear()
        self.output_samples.clear()
        broker = self.broker
        broker.keyspace_hits = broker.keyspace_misses = broker.expire_cycle_ns = 0
        self.peak_memory = rss_bytes()
