"""One logical database: a dict of keys to values plus a dict of keys to expiry times.

Values are plain Python objects whose *type* is the Redis type: ``bytes`` is a string and each
other data type has its own class registered with :func:`register_type` (lists, hashes, sets,
sorted sets, streams). No value is ever empty: a command that empties a collection deletes the
key, as Redis does, so "key exists" and "collection is non-empty" are the same question.

Expiry is lazy plus active. Every lookup checks the key's deadline (lazy); a periodic cycle
(:meth:`Database.active_expire`) removes keys nobody touches. Redis finds candidates by sampling
random keys that have a TTL; we keep a heap ordered by deadline, which finds exactly the keys that
are due in O(log n) each, so no expired key lingers, and bound each cycle's time as Redis does.
Heap entries whose key was deleted or got a new deadline are skipped when they surface and the
heap is rebuilt when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..protocol.replies import ReplyError
from .scan import ScanOrder

if TYPE_CHECKING:
    from ..broker import Broker

WRONGTYPE = ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value")

#: Redis type name for each value class (``TYPE``, ``SCAN TYPE``, keyspace events).
TYPE_NAMES: dict[type, str] = {bytes: "string"}


def register_type(cls: type, name: str) -> None:
    """Declare ``cls`` as the class of values of Redis type ``name``."""
    TYPE_NAMES[cls] = name


def type_name(value: Any) -> str:
    return TYPE_NAMES[type(value)]


class Database:
    """Keys, values and expiry times of one numbered database (``SELECT n``)."""

    __slots__ = ("index", "data", "expires", "_heap", "broker", "avg_ttl", "scan_order", "access")

    def __init__(self, index: int, broker: Broker) -> None:
        self.index = index
        self.broker = broker
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}  # key -> absolute deadline in unix milliseconds
        self._heap: list[tuple[int, bytes]] = []
        self.avg_ttl = 0
        self.scan_order = ScanOrder()  # SCAN cursors; told of every key created or removed
        # key -> unix ms of the last lookup or write (OBJECT IDLETIME): one dict store per access.
        self.access: dict[bytes, int] = {}

    # -- lookups -------------------------------------------------------------------------------

    def get(self, key: bytes) -> Any:
        """The live value at ``key`` or ``None``; deletes the key first if it has expired."""
        value = self.data.get(key)
        broker = self.broker
        if value is not None:
            now = broker.now_ms
            expires = self.expires
            if expires:  # most databases hold few or no TTLs: skip the second hash lookup then
                deadline = expires.get(key)
                if deadline is not None and deadline <= now:
                    self._expire_key(key)
                    if broker.reading:
                        broker.keyspace_misses += 1
                    return None
            self.access[key] = now
            if broker.reading:
                broker.keyspace_hits += 1
        elif broker.reading:
            broker.keyspace_misses += 1
        return value

    def peek(self, key: bytes) -> Any:
        """Like :meth:`get` without counting as an access (OBJECT, Redis's ``LOOKUP_NOTOUCH``)."""
        value = self.data.get(key)
        if value is not None and key in self.expires and self.expires[key] <= self.broker.now_ms:
            self._expire_key(key)
            return None
        return value

    def get_typed(self, key: bytes, cls: type) -> Any:
        """Like :meth:`get`, but a value of another type is a WRONGTYPE error."""
        value = self.data.get(key)
        broker = self.broker
        if value is None:
            if broker.reading:
                broker.keyspace_misses += 1
            return None
        now = broker.now_ms
        expires = self.expires
        if expires:  # as in get(): no second hash lookup when the database has no TTLs
            deadline = expires.get(key)
            if deadline is not None and deadline <= now:
                self._expire_key(key)
                if broker.reading:
                    broker.keyspace_misses += 1
                return None
        if type(value) is not cls:
            raise WRONGTYPE
        self.access[key] = now
        if broker.reading:
            broker.keyspace_hits += 1
        return value

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self.data)

    def idle_seconds(self, key: bytes) -> int:
        """Whole seconds since the key was last read or written (OBJECT IDLETIME)."""
        now = self.broker.now_ms
        return max(now - self.access.get(key, now), 0) // 1000

    def keys(self) -> Iterator[bytes]:
        """Live keys (expired ones are skipped, not deleted: safe while iterating)."""
        now = self.broker.now_ms
        expires = self.expires
        for key in self.data:
            deadline = expires.get(key)
            if deadline is None or deadline > now:
                yield key

    # -- writes --------------------------------------------------------------------------------

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store ``value`` at ``key``, replacing any value; the TTL is cleared unless ``keep_ttl``."""
        data = self.data
        expires = self.expires
        broker = self.broker
        now = broker.now_ms
        if expires and key in expires:  # one test for the common case: a database without TTLs
            if expires[key] <= now:
                self._expire_key(key)  # as Redis's lookupKeyWrite: the expired key goes (and is announced) first
            elif not keep_ttl:
                del expires[key]
        created = key not in data
        data[key] = value
        self.access[key] = now
        if created:
            if self.scan_order.index is not None:
                self.scan_order.added(key)
            broker.key_created(self, key, value)
        elif broker.blocking.waiting:
            broker.signal_ready(self, key)  # a stream replaced by another type wakes XREADGROUP

    def replace(self, key: bytes, value: Any) -> None:
        """Store ``value`` at a live key that :meth:`get` just returned, keeping its TTL (INCR): it
        exists, has not expired and was just marked accessed, so nothing else changes."""
        self.data[key] = value

    def add(self, key: bytes, value: Any) -> None:
        """Store ``value`` at a key known not to exist (after :meth:`get` returned ``None``)."""
        self.data[key] = value
        self.access[key] = self.broker.now_ms
        if self.scan_order.index is not None:
            self.scan_order.added(key)
        self.broker.key_created(self, key, value)

    def delete(self, key: bytes) -> bool:
        """Remove ``key`` (live or not); ``True`` if it held a live value."""
        value = self.data.pop(key, None)
        if value is None:
            return False
        deadline = self.expires.pop(key, None)
        self.access.pop(key, None)
        if self.scan_order.index is not None:
            self.scan_order.removed(key)
        self.broker.key_deleted(self, key, value)
        return deadline is None or deadline > self.broker.now_ms

    def delete_if_empty(self, key: bytes, value: Any) -> bool:
        """Delete ``key`` if its collection ``value`` became empty (Redis never stores empties)."""
        if len(value) == 0:
            self.delete(key)
            return True
        return False

    def set_expire(self, key: bytes, deadline_ms: int) -> None:
        """Give an existing key an absolute deadline (unix ms)."""
        self.expires[key] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, key))
        if len(self._heap) > 2 * len(self.expires) + 1024:
            self._heap = [(d, k) for k, d in self.expires.items()]
            heapq.heapify(self._heap)

    def persist(self, key: bytes) -> bool:
        """Remove the key's TTL; ``True`` if it had one."""
        return self.expires.pop(key, None) is not None

    def ttl_ms(self, key: bytes) -> int | None:
        deadline = self.expires.get(key)
        return None if deadline is None else deadline - self.broker.now_ms

    def clear(self) -> int:
        """Remove every key (FLUSHDB); returns how many there were."""
        removed = len(self.data)
        old = self.data
        self.data = {}
        self.expires = {}
        self._heap = []
        self.access = {}
        self.scan_order.cleared()
        self.broker.database_cleared(self, old)
        return removed

    def swap_contents(self, other: Database) -> None:
        """Exchange all keys with ``other`` (SWAPDB)."""
        self.data, other.data = other.data, self.data
        self.expires, other.expires = other.expires, self.expires
        self._heap, other._heap = other._heap, self._heap
        self.scan_order, other.scan_order = other.scan_order, self.scan_order
        self.access, other.access = other.access, self.access

    # -- expiry --------------------------------------------------------------------------------

    def _expire_key(self, key: bytes) -> None:
        value = self.data.pop(key)
        del self.expires[key]
        self.access.pop(key, None)
        if self.scan_order.index is not None:
            self.scan_order.removed(key)
        self.broker.key_expired(self, key, value)

    def active_expire(self, deadline: Callable[[], bool]) -> int:
        """Delete due keys in deadline order until none is due or ``deadline()`` says stop."""
        heap = self._heap
        expires = self.expires
        now = self.broker.now_ms
        removed = 0
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if expires.get(key) != when:
                continue  # stale entry: key deleted or given another deadline
            self._expire_key(key)
            removed += 1
            if removed % 32 == 0 and deadline():
                break
        return removed
