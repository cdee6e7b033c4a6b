"""Idempotent producers (Redis 8.6 ``XADD IDMP``/``IDMPAUTO``, ``XCFGSET``).

Per stream, each producer ID maps its recent idempotent IDs to the entry each one added, oldest
first (dict insertion order). An idempotent ID is forgotten after ``duration`` seconds or when the
producer has more than ``maxsize`` of them, so a retried XADD within that window returns the
original entry's ID instead of appending a duplicate.
"""

from __future__ import annotations

import hashlib

DEFAULT_DURATION = 100  # seconds
DEFAULT_MAXSIZE = 100


def auto_iid(pairs: list[bytes]) -> bytes:
    """IDMPAUTO: the idempotent ID derived from the entry's content (fields and values)."""
    digest = hashlib.blake2b(digest_size=16)
    for item in pairs:
        digest.update(b"%d:" % len(item))
        digest.update(item)
    return digest.digest()


class Producers:
    """The idempotency state of one stream."""

    __slots__ = ("duration", "maxsize", "pids", "iids_added", "iids_duplicates")

    def __init__(self) -> None:
        self.duration = DEFAULT_DURATION
        self.maxsize = DEFAULT_MAXSIZE
        self.pids: dict[bytes, dict[bytes, tuple[int, int]]] = {}  # pid -> iid -> (entry ID, added ms)
        self.iids_added = 0
        self.iids_duplicates = 0

    def lookup(self, pid: bytes, iid: bytes, now_ms: int) -> int | None:
        """The entry ID a tracked ``(pid, iid)`` added (counted as a duplicate), else ``None``."""
        iids = self.pids.get(pid)
        if iids is None:
            return None
        horizon = now_ms - self.duration * 1000
        while iids:
            oldest = next(iter(iids))
            if iids[oldest][1] > horizon:
                break
            del iids[oldest]
        if not iids:
            del self.pids[pid]
            return None
        found = iids.get(iid)
        if found is None:
            return None
        self.iids_duplicates += 1
        return found[0]

    def record(self, pid: bytes, iid: bytes, entry_id: int, now_ms: int) -> None:
        iids = self.pids.setdefault(pid, {})
        iids[iid] = (entry_id, now_ms)
        while len(iids) > self.maxsize:
            del iids[next(iter(iids))]
        self.iids_added += 1

    def configure(self, duration: int | None, maxsize: int | None) -> None:
        """XCFGSET: a changed setting forgets every tracked idempotent ID."""
        changed = (duration is not None and duration != self.duration) or (
            maxsize is not None and maxsize != self.maxsize
        )
        if duration is not None:
            self.duration = duration
        if maxsize is not None:
            self.maxsize = maxsize
        if changed:
            self.pids.clear()

    def info(self) -> dict[str, int]:
        """The XINFO STREAM fields."""
        return {
            "idmp-duration": self.duration,
            "idmp-maxsize": self.maxsize,
            "pids-tracked": len(self.pids),
            "iids-tracked": sum(map(len, self.pids.values())),
            "iids-added": self.iids_added,
            "iids-duplicates": self.iids_duplicates,
        }

    def copy(self) -> Producers:
        clone = Producers()
        clone.duration, clone.maxsize = self.duration, self.maxsize
        clone.pids = {pid: dict(iids) for pid, iids in self.pids.items()}
        clone.iids_added, clone.iids_duplicates = self.iids_added, self.iids_duplicates
        return clone


__all__ = ["Producers", "auto_iid"]
