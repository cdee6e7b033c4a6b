"""Consumer groups: last delivered ID, pending entries lists (PEL) and consumers.

Every delivered, unacknowledged entry has one :class:`Nack` shared by the group's PEL and its
owner's PEL (as Redis shares one ``streamNACK``). PELs are dicts kept in ID order: deliveries
with ``>`` always append IDs above everything pending, so insertion order normally *is* ID order
and adds/acks are plain dict operations. An out-of-order insertion (XCLAIM moving an entry to
another consumer, FORCE) only marks the dict unsorted; it is re-sorted the next time an ordered
view is asked for. Seeks by ID use a sorted key list built on demand and dropped on change.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

INVALID_ENTRIES_READ = -1


class Nack:
    """Delivery state of one pending entry; ``consumer`` is ``None`` while nobody owns it (XNACK)."""

    __slots__ = ("consumer", "delivery_time", "delivery_count")

    def __init__(self, consumer: Consumer | None, delivery_time: int, delivery_count: int = 1) -> None:
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count

    @property
    def owner_name(self) -> bytes:
        return b"" if self.consumer is None else self.consumer.name

    def disown(self, stream_id: int) -> None:
        """Leave the owner's PEL (the entry stays in the group's)."""
        if self.consumer is not None:
            self.consumer.pel.pop(stream_id)
            self.consumer = None


class Pending:
    """A PEL: pending IDs to their :class:`Nack`, iterable in ID order."""

    __slots__ = ("map", "_top", "_ordered", "_keys")

    def __init__(self) -> None:
        self.map: dict[int, Nack] = {}
        self._top = -1
        self._ordered = True
        self._keys: list[int] | None = None

    def __len__(self) -> int:
        return len(self.map)

    def __contains__(self, stream_id: int) -> bool:
        return stream_id in self.map

    def get(self, stream_id: int) -> Nack | None:
        return self.map.get(stream_id)

    def add(self, stream_id: int, nack: Nack) -> None:
        entries = self.map
        if stream_id not in entries:
            if stream_id > self._top:
                self._top = stream_id
            else:
                self._ordered = False
            self._keys = None
        entries[stream_id] = nack

    def pop(self, stream_id: int) -> Nack | None:
        nack = self.map.pop(stream_id, None)
        if nack is not None:
            self._keys = None
        return nack

    def sorted_ids(self) -> list[int]:
        if self._keys is None:
            if not self._ordered:
                self.map = dict(sorted(self.map.items()))
                self._ordered = True
            self._keys = list(self.map)
        return self._keys

    def first(self) -> int:
        return self.sorted_ids()[0]

    def last(self) -> int:
        return self.sorted_ids()[-1]

    def range(self, lo: int, hi: int) -> Iterator[tuple[int, Nack]]:
        """Pending ``(id, nack)`` with ``lo <= id <= hi`` in ID order (the PEL may not change meanwhile)."""
        keys = self.sorted_ids()
        entries = self.map
        for i in range(bisect_left(keys, lo), len(keys)):
            stream_id = keys[i]
            if stream_id > hi:
                return
            yield stream_id, entries[stream_id]


class Consumer:
    """A named reader in a group; ``seen_time`` is its last attempt, ``active_time`` its last success."""

    __slots__ = ("name", "seen_time", "active_time", "pel")

    def __init__(self, name: bytes, now_ms: int) -> None:
        self.name = name
        self.seen_time = now_ms
        self.active_time = -1
        self.pel = Pending()


class Group:
    """A consumer group of one stream."""

    __slots__ = ("name", "last_id", "entries_read", "pel", "consumers")

    def __init__(self, name: bytes, last_id: int, entries_read: int) -> None:
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel = Pending()
        self.consumers: dict[bytes, Consumer] = {}

    def consumer(self, name: bytes) -> Consumer | None:
        return self.consumers.get(name)

    def add_consumer(self, name: bytes, now_ms: int) -> Consumer:
        consumer = Consumer(name, now_ms)
        self.consumers[name] = consumer
        return consumer

    def forget(self, stream_id: int) -> Nack | None:
        """Drop ``stream_id`` from the group's and its owner's PEL (XACK, dangling references)."""
        nack = self.pel.pop(stream_id)
        if nack is not None and nack.consumer is not None:
            nack.consumer.pel.pop(stream_id)
        return nack

    def delete_consumer(self, consumer: Consumer) -> None:
        """Forget ``consumer`` and its pending entries (XGROUP DELCONSUMER)."""
        for stream_id in consumer.pel.map:
            self.pel.pop(stream_id)
        del self.consumers[consumer.name]

    def copy(self) -> Group:
        clone = Group(self.name, self.last_id, self.entries_read)
        for name, consumer in self.consumers.items():
            twin = clone.add_consumer(name, consumer.seen_time)
            twin.active_time = consumer.active_time
        for stream_id in self.pel.sorted_ids():
            nack = self.pel.map[stream_id]
            owner = None if nack.consumer is None else clone.consumers[nack.consumer.name]
            twin_nack = Nack(owner, nack.delivery_time, nack.delivery_count)
            clone.pel.add(stream_id, twin_nack)
            if owner is not None:
                owner.pel.add(stream_id, twin_nack)
        return clone


__all__ = ["INVALID_ENTRIES_READ", "Consumer", "Group", "Nack", "Pending"]
