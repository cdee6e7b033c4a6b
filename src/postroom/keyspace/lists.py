"""The list type: a ``collections.deque`` of ``bytes``.

A deque gives O(1) pushes and pops at both ends, which is what queues (LPUSH/BRPOP, BLMOVE) do
all day; indexed access (LINDEX, LSET, LRANGE offsets) is O(n/64) because CPython stores deques
as blocks of 64 items, close to Redis's quicklist of listpack nodes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .database import register_type


class ListValue(deque):
    """A Redis list. Never empty while stored: commands delete the key when it empties."""

    __slots__ = ()

    def copy(self) -> ListValue:
        return ListValue(self)

    def object_encoding(self, config: Any) -> str:
        """Redis 7.0 always stores lists as a quicklist (the listpack encoding came in 7.2)."""
        return "quicklist"


register_type(ListValue, "list")
