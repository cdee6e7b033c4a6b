"""Key layout.

Every key that belongs to a queue starts with the hash tag ``{prefix:queue}``
so that all of them live in one Redis Cluster slot: Lua scripts and
MULTI/EXEC transactions may then touch several of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

#: Priority levels inside one queue (0 is the default, 2 the most urgent).
#: Each level is its own stream so that urgent jobs never wait behind a
#: backlog of ordinary ones; the set is fixed so that producers and workers
#: agree on it without coordination.
PRIORITY_LEVELS = 3

#: Name of the consumer group every worker of a queue joins.
GROUP = "workers"


@dataclass(frozen=True)
class QueueKeys:
    """Names of all keys of one queue."""

    prefix: str
    queue: str

    @cached_property
    def tag(self) -> str:
        return "{" + self.prefix + ":" + self.queue + "}"

    def stream(self, priority: int = 0) -> str:
        return f"{self.tag}:s{priority}"

    @property
    def streams(self) -> list[str]:
        """Streams from the most to the least urgent priority."""
        return [self.stream(p) for p in reversed(range(PRIORITY_LEVELS))]

    @property
    def delayed(self) -> str:
        return f"{self.tag}:delayed"

    @property
    def wake(self) -> str:
        return f"{self.tag}:wake"

    @property
    def dead(self) -> str:
        return f"{self.tag}:dead"

    @property
    def cancel(self) -> str:
        return f"{self.tag}:cancel"

    def job(self, job_id: str) -> str:
        return f"{self.tag}:j:{job_id}"

    def done(self, job_id: str) -> str:
        return f"{self.tag}:done:{job_id}"

    def unique(self, key: str) -> str:
        return f"{self.tag}:u:{key}"

    def rate(self, task: str) -> str:
        return f"{self.tag}:rate:{task}"

    def cron(self, name: str) -> str:
        return f"{self.tag}:cron:{name}"

    def priority_of(self, stream: str) -> int:
        return int(stream.rsplit(":s", 1)[1])


def registry_key(prefix: str) -> str:
    """Hash of live workers (one key: fine in a cluster, it is never combined)."""
    return f"{prefix}:workers"
