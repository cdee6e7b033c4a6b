"""The hash type: a ``dict`` of field -> value that remembers Redis's encoding, plus field expiry.

Encoding: Redis 7.0 keeps a small hash as a *listpack* until it holds more than
``hash-max-listpack-entries`` fields or a field or value longer than ``hash-max-listpack-value``
bytes, then converts it to a hashtable for good. A dict keeps insertion order, which is the
listpack's order too, so HGETALL of a small hash lists fields exactly as Redis does.

Field expiry (Redis 7.4 HEXPIRE and friends) is lazy plus active, like key expiry. Each hash with
volatile fields keeps ``expires`` (field -> unix ms) and ``next_deadline``, its earliest one, so
every access checks one integer and expires due fields first. :class:`FieldExpiry` keeps a heap
of (deadline, db, key) with one live entry per volatile hash and deletes due fields from the
broker's cron, so fields nobody reads do not pile up. An expired field is deleted with an
``hexpired`` event and propagated as HDEL; a hash left empty is deleted (``del`` event).
"""

from __future__ import annotations

import heapq
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from .database import register_type
from .scan import SMALL_CONTAINER, ScanOrder

if TYPE_CHECKING:
    from ..broker import Broker
    from .database import Database

#: ``next_deadline`` of a hash without volatile fields: later than any real deadline.
NEVER = 1 << 62


class HashValue(dict):
    """A Redis hash. ``listpack`` is True while Redis would still use its listpack encoding."""

    __slots__ = ("listpack", "scan_order", "expires", "next_deadline", "scheduled")

    scheduled: tuple[int, int, bytes] | None

    def __init__(self) -> None:
        super().__init__()
        self.listpack = True
        self.scan_order: ScanOrder | None = None
        self.expires: dict[bytes, int] | None = None
        self.next_deadline = NEVER
        self.scheduled = None  # this hash's live (deadline, db, key) entry in the FieldExpiry heap

    def copy(self) -> HashValue:
        """An independent hash with the same fields, TTLs and encoding (COPY). It has no heap entry
        yet: storing it at a key schedules its field expiry there (see :meth:`FieldExpiry.schedule`)."""
        clone = HashValue()
        clone.update(self)
        clone.listpack = self.listpack
        if self.expires:
            clone.expires = dict(self.expires)
            clone.next_deadline = self.next_deadline
        return clone

    def object_encoding(self, config: Any) -> str:
        """Redis 7.4's names: ``listpackex`` is a listpack hash that has had field TTLs."""
        if not self.listpack:
            return "hashtable"
        return "listpack" if self.expires is None else "listpackex"

    # -- fields --------------------------------------------------------------------------------

    def check_encoding(self, config: Any, lengths: Iterable[int]) -> None:
        """Leave the listpack encoding if any of ``lengths`` exceeds hash-max-listpack-value."""
        limit = config["hash-max-listpack-value"]
        for length in lengths:
            if length > limit:
                self.listpack = False
                return

    def put(self, field: bytes, value: bytes) -> bool:
        """Set ``field`` (dropping its TTL); True if it is new. Call :meth:`check_size` after."""
        new = field not in self
        self[field] = value
        if new:
            if self.scan_order is not None:
                self.scan_order.added(field)
        elif self.expires is not None and field in self.expires:
            self.forget_ttl(field)
        return new

    def check_size(self, config: Any) -> None:
        """Leave the listpack encoding once the hash has more than hash-max-listpack-entries fields."""
        if self.listpack and len(self) > config["hash-max-listpack-entries"]:
            self.listpack = False

    def remove(self, field: bytes) -> bool:
        """Delete ``field``; True if it existed."""
        if field not in self:
            return False
        del self[field]
        if self.scan_order is not None:
            self.scan_order.removed(field)
        if self.expires is not None and field in self.expires:
            self.forget_ttl(field)
        return True

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """One HSCAN step over field names; a listpack-encoded or small hash is returned whole."""
        if self.listpack or len(self) <= SMALL_CONTAINER:
            self.scan_order = None
            return 0, list(self)
        if self.scan_order is None:
            self.scan_order = ScanOrder()
        return self.scan_order.scan(self, cursor, count)

    # -- field TTLs ----------------------------------------------------------------------------

    def ttl_of(self, field: bytes) -> int | None:
        """The field's deadline (unix ms), ``None`` when it has none."""
        expires = self.expires
        return None if expires is None else expires.get(field)

    def set_ttl(self, field: bytes, deadline: int) -> None:
        """Give ``field`` a deadline; the caller schedules the hash with :func:`field_expiry`."""
        if self.expires is None:
            self.expires = {}
        self.expires[field] = deadline
        if deadline < self.next_deadline:
            self.next_deadline = deadline

    def forget_ttl(self, field: bytes) -> None:
        """Drop ``field``'s deadline (it must have one), keeping ``next_deadline`` the earliest left."""
        expires = self.expires
        assert expires is not None
        deadline = expires.pop(field)
        if deadline == self.next_deadline:
            self.next_deadline = min(expires.values()) if expires else NEVER

    def due_fields(self, now: int) -> list[bytes]:
        """Fields whose deadline is ``now`` or earlier; one comparison when none is due."""
        expires = self.expires
        if expires is None or self.next_deadline > now:
            return []
        return [field for field, deadline in expires.items() if deadline <= now]


register_type(HashValue, "hash")


class FieldExpiry:
    """Active expiry of hash fields for one broker: a heap of (deadline, db index, key)."""

    __slots__ = ("broker", "heap", "__weakref__")

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.heap: list[tuple[int, int, bytes]] = []
        broker.cron_hooks.append(self.cycle)

    def schedule(self, db: Database, key: bytes, value: HashValue) -> None:
        """Make sure the heap holds an entry for ``key`` no later than the hash's earliest field deadline.

        Called when TTLs change and when a hash with volatile fields is stored at a key (RENAME,
        MOVE, COPY, RESTORE, loading): an entry for another key or db no longer counts.
        """
        deadline = value.next_deadline
        current = value.scheduled
        if deadline == NEVER or (current is not None and current[0] <= deadline and current[1] == db.index
                                 and current[2] == key):
            return
        entry = value.scheduled = (deadline, db.index, key)
        heapq.heappush(self.heap, entry)

    def swapped(self, first: int, second: int) -> None:
        """SWAPDB exchanged databases ``first`` and ``second``: the entries follow their hashes.

        O(entries), one per hash with volatile fields; Redis's SWAPDB is O(1) but it keeps no
        such schedule, sampling each database's hashes instead.
        """
        moved = {first: second, second: first}
        dbs = self.broker.dbs
        heap = []
        for entry in self.heap:
            deadline, index, key = entry
            target = moved.get(index, index)
            if target != index:
                value = dbs[target].data.get(key)  # the swap already put the hash there
                entry_now = (deadline, target, key)
                if type(value) is HashValue and value.scheduled == entry:
                    value.scheduled = entry_now
                entry = entry_now
            heap.append(entry)
        heapq.heapify(heap)
        self.heap = heap

    def cycle(self) -> None:
        """Expire due fields of every hash whose earliest deadline has passed (cron, 25% budget)."""
        heap = self.heap
        broker = self.broker
        now = broker.now_ms
        budget = time.perf_counter() + 0.25 / max(1, broker.config["hz"])
        handled = 0
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            db = broker.dbs[entry[1]]
            key = entry[2]
            value = db.data.get(key)
            if type(value) is not HashValue or value.scheduled != entry:
                continue  # superseded: the key changed, moved, or got an earlier entry
            value.scheduled = None
            if not expire_fields(broker, db, key, value):
                self.schedule(db, key, value)
            handled += 1
            if handled % 32 == 0 and time.perf_counter() > budget:
                break


_EXPIRY: weakref.WeakKeyDictionary[Broker, FieldExpiry] = weakref.WeakKeyDictionary()


def field_expiry(broker: Broker) -> FieldExpiry:
    """The broker's field-expiry scheduler, created (and hooked into its cron) on first use."""
    expiry = _EXPIRY.get(broker)
    if expiry is None:
        expiry = _EXPIRY[broker] = FieldExpiry(broker)
    return expiry


def databases_swapped(broker: Broker, first: int, second: int) -> None:
    """SWAPDB: keep active field expiry pointed at where the hashes went (see FieldExpiry.swapped)."""
    expiry = _EXPIRY.get(broker)
    if expiry is not None:
        expiry.swapped(first, second)


def expire_fields(broker: Broker, db: Database, key: bytes, value: HashValue) -> bool:
    """Delete the fields of ``value`` whose deadline passed; True if that emptied (deleted) the hash."""
    due = value.due_fields(broker.now_ms)
    if not due:
        return False
    for field in due:
        value.remove(field)
    broker.stats["expired_hash_fields"] += len(due)
    broker.signal_modified(db, key)
    broker.notify(ev.HASH, b"hexpired", key, db.index)
    broker.propagate(db.index, [b"HDEL", key, *due])
    if not value:
        db.delete(key)
        broker.notify(ev.GENERIC, b"del", key, db.index)
        return True
    return False
