"""The set type: a ``set`` of ``bytes`` that remembers Redis's encoding.

Redis 7.0 keeps a set of integers as a sorted *intset* until it holds a non-integer or more than
``set-max-intset-entries`` members, then converts it to a hashtable for good. We track the same
fact so OBJECT ENCODING answers as Redis does and, like Redis, list an intset's members in
ascending numeric order (SMEMBERS, SUNION and friends are then identical to Redis's for sets of
integers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .database import register_type
from .scan import SMALL_CONTAINER, ScanOrder

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def is_int64(member: bytes) -> bool:
    """True if Redis would store ``member`` in an intset (canonical decimal, 64-bit)."""
    if not member or len(member) > 20 or member[0] not in b"-0123456789":
        return False
    try:
        number = int(member)
    except ValueError:
        return False
    return _INT64_MIN <= number <= _INT64_MAX and b"%d" % number == member


class SetValue(set):
    """A Redis set. ``intset`` is True while Redis would still use its intset encoding."""

    __slots__ = ("intset", "scan_order")

    def __init__(self, members: Iterable[bytes] = (), max_intset: int = 512) -> None:
        super().__init__(members)
        self.scan_order: ScanOrder | None = None
        self.intset = len(self) <= max_intset and all(is_int64(m) for m in set.__iter__(self))

    def __iter__(self) -> Iterator[bytes]:
        """An intset lists its members in ascending numeric order, as Redis does. That costs a sort,
        so code for which order does not matter iterates with ``set.__iter__`` instead."""
        if self.intset:
            return iter(sorted(set.__iter__(self), key=int))
        return set.__iter__(self)

    def copy(self) -> SetValue:
        """An independent set with the same encoding (COPY, SPOP of every member)."""
        clone = SetValue()
        clone.update(set.__iter__(self))
        clone.intset = self.intset
        return clone

    def add_members(self, members: list[bytes], max_intset: int) -> int:
        """Add ``members``; the number that were new. ``max_intset`` matters only while the set is
        still an intset (callers pass 0 otherwise, sparing the config lookup)."""
        before = len(self)
        scan_order = self.scan_order
        if scan_order is None:
            self.update(members)
        else:
            for member in members:
                if member not in self:
                    self.add(member)
                    scan_order.added(member)
        if self.intset and (len(self) > max_intset or not all(is_int64(m) for m in members)):
            self.intset = False
        return len(self) - before

    def remove_members(self, members: Iterable[bytes]) -> int:
        """Remove ``members``; the number that were present."""
        removed = 0
        scan_order = self.scan_order
        for member in members:
            if member in self:
                self.remove(member)
                removed += 1
                if scan_order is not None:
                    scan_order.removed(member)
        return removed

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """One SSCAN step: an intset (or any small set) is returned whole, as Redis does."""
        if self.intset or len(self) <= SMALL_CONTAINER:
            self.scan_order = None
            return 0, list(self)
        if self.scan_order is None:
            self.scan_order = ScanOrder()
        return self.scan_order.scan(self, cursor, count)

    def object_encoding(self, config: Any) -> str:
        return "intset" if self.intset else "hashtable"


register_type(SetValue, "set")
