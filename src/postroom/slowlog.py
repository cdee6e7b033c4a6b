"""Records of slow operations: the slow log (SLOWLOG) and the latency monitor (LATENCY).

Both are fed from one place, :meth:`SlowOps.record`, which ``Broker.call`` invokes only when a
command took at least ``broker.slow_threshold_ns``: the smaller of the two configured thresholds,
or "never" when both are disabled. The hot path therefore pays one integer comparison per
command, and the work of formatting an entry is done only for the rare slow command.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .monitor import peer_id

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client
    from .commands.registry import Command

#: "Never": larger than any elapsed time ``perf_counter_ns`` can measure in practice.
NEVER = 2**63
#: Redis keeps at most 32 arguments of 128 bytes each per slow log entry.
SLOWLOG_ENTRY_MAX_ARGC = 32
SLOWLOG_ENTRY_MAX_STRING = 128
#: Samples kept per latency event (Redis's LATENCY_TS_LEN).
LATENCY_HISTORY_LEN = 160


@dataclass(slots=True)
class SlowLogEntry:
    """One SLOWLOG GET entry, its arguments already truncated as Redis shows them."""

    id: int
    timestamp: int  # unix seconds
    duration_us: int
    argv: list[bytes]
    peer: bytes
    name: bytes


@dataclass(slots=True)
class LatencyEvent:
    """History of one latency event class ("command", "fast-command", ...)."""

    samples: deque[tuple[int, int]]  # (unix seconds, milliseconds)
    max_ms: int = 0


class SlowOps:
    """The slow log and the latency monitor of one broker."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.entries: deque[SlowLogEntry] = deque()
        self.next_id = 0
        self.events: dict[str, LatencyEvent] = {}
        config = broker.config
        for name in ("slowlog-log-slower-than", "latency-monitor-threshold", "slowlog-max-len"):
            config.on_change(name, self._configure)
        self._configure(None)

    def _configure(self, _value: object) -> None:
        """Config hook: recompute both thresholds (and the broker's one-comparison gate) and the cap."""
        config = self.broker.config
        slower_than_us = config["slowlog-log-slower-than"]
        self.slowlog_ns = slower_than_us * 1000 if slower_than_us >= 0 else NEVER
        latency_ms = config["latency-monitor-threshold"]
        self.latency_ns = latency_ms * 1_000_000 if latency_ms > 0 else NEVER
        self.broker.slow_threshold_ns = min(self.slowlog_ns, self.latency_ns)
        self.max_len = config["slowlog-max-len"]
        self._trim()

    def record(self, client: Client, cmd: Command, argv: list[bytes], elapsed_ns: int) -> None:
        """A command took at least the smaller threshold: log it where its duration qualifies."""
        if elapsed_ns >= self.slowlog_ns and "skip_slowlog" not in cmd.flags and client.waiter is None:
            self.push_slowlog(client, argv, elapsed_ns // 1000)
        if elapsed_ns >= self.latency_ns:
            self.add_latency_sample("fast-command" if cmd.is_fast else "command", elapsed_ns // 1_000_000)

    def push_slowlog(self, client: Client, argv: list[bytes], duration_us: int) -> None:
        """Log a command newest-first, keeping at most 32 arguments of 128 bytes as Redis does."""
        if self.max_len == 0:
            return
        shown: list[bytes] = []
        count = min(len(argv), SLOWLOG_ENTRY_MAX_ARGC)
        for i in range(count):
            if count != len(argv) and i == count - 1:
                shown.append(b"... (%d more arguments)" % (len(argv) - count + 1))
                break
            arg = argv[i]
            if len(arg) > SLOWLOG_ENTRY_MAX_STRING:
                extra = len(arg) - SLOWLOG_ENTRY_MAX_STRING
                arg = arg[:SLOWLOG_ENTRY_MAX_STRING] + b"... (%d more bytes)" % extra
            shown.append(arg)
        entry = SlowLogEntry(self.next_id, int(time.time()), duration_us, shown, peer_id(client).encode(), client.name)
        self.next_id += 1
        self.entries.appendleft(entry)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest entries beyond ``slowlog-max-len``."""
        entries = self.entries
        while len(entries) > self.max_len:
            entries.pop()

    def add_latency_sample(self, event: str, ms: int) -> None:
        """Record ``ms`` for ``event``; one sample per second is kept (the highest), as Redis does."""
        now = int(time.time())
        record = self.events.get(event)
        if record is None:
            record = self.events[event] = LatencyEvent(deque(maxlen=LATENCY_HISTORY_LEN))
        record.max_ms = max(record.max_ms, ms)
        samples = record.samples
        if samples and samples[-1][0] == now:
            samples[-1] = (now, max(samples[-1][1], ms))
        else:
            samples.append((now, ms))
