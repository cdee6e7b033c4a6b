"""The stream value: packed nodes behind a sorted index, plus the metadata Redis keeps.

``keys`` is the sorted list of node master IDs (Redis's radix tree keys), so finding the node
that may hold an ID is one ``bisect`` (O(log n)); ``nodes`` is the parallel list of nodes. The
metadata (last generated ID, first ID, max deleted ID, entries added) drives XINFO and the
consumer-group lag estimates exactly as in Redis 7 (``t_stream.c``).
"""

from __future__ import annotations

from bisect import bisect_right

from ..database import register_type
from .groups import INVALID_ENTRIES_READ, Group
from .idmp import Producers
from .ids import MAX_ID
from .node import DELETED, Node

#: Redis's STREAM_LISTPACK_MAX_SIZE: a node never grows past this whatever the configuration says.
NODE_MAX_SIZE = 1 << 30

Entry = tuple[int, list[bytes]]


class Stream:
    """An append-only log of ``(id, [field, value, ...])`` entries and its consumer groups."""

    __slots__ = ("nodes", "keys", "length", "last_id", "first_id", "max_deleted_id", "entries_added", "groups",
                 "producers")

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.keys: list[int] = []
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted_id = 0
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}
        self.producers: Producers | None = None  # idempotent producers, once IDMP or XCFGSET is used

    def __len__(self) -> int:
        return self.length

    # -- writing -------------------------------------------------------------------------------

    def append(self, stream_id: int, argv: list[bytes], start: int, max_entries: int, max_bytes: int) -> None:
        """Append the entry with pairs ``argv[start:]``; ``stream_id`` is already validated."""
        nodes = self.nodes
        tail = nodes[-1] if nodes else None
        if tail is not None and (
            (max_entries and tail.total >= max_entries)
            or len(tail.buf) + sum(map(len, argv[start:])) >= (max_bytes or NODE_MAX_SIZE)
        ):
            tail.seal()
            tail = None
        if tail is None:
            tail = Node(stream_id, argv[start::2])
            nodes.append(tail)
            self.keys.append(stream_id)
        tail.append(stream_id, argv, start)
        if not self.length:
            self.first_id = stream_id
        self.length += 1
        self.last_id = stream_id
        self.entries_added += 1

    def delete(self, stream_id: int) -> bool:
        """XDEL one entry; ``True`` if it existed."""
        index = bisect_right(self.keys, stream_id) - 1
        if index < 0:
            return False
        node = self.nodes[index]
        if not node.delete(stream_id):
            return False
        self.length -= 1
        self._after_delete(index)
        return True

    def _after_delete(self, index: int) -> None:
        node = self.nodes[index]
        if node.live == 0:
            del self.nodes[index]
            del self.keys[index]
        elif index < len(self.nodes) - 1 and node.total - node.live > node.live:
            node.compact()

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """XTRIM/XADD trimming (``streamTrim``): whole nodes first, then entries unless ``approx``."""
        if maxlen is not None and self.length <= maxlen:
            return 0
        deleted = 0
        while self.nodes:
            node = self.nodes[0]
            entries = node.live
            if limit and deleted + entries > limit:
                break
            remove = self.length - entries >= maxlen if maxlen is not None else node.last < minid  # type: ignore[operator]
            if remove:
                del self.nodes[0]
                del self.keys[0]
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            if maxlen is not None:
                done = node.delete_first(self.length - maxlen)
            else:
                done = node.delete_first(entries, below=minid)
            self.length -= done
            deleted += done
            self._after_delete(0)
            break
        if deleted:
            self.first_id = self.edge_id() if self.length else 0
        return deleted

    def trim_by_reference(self, maxlen: int | None, minid: int | None, approx: bool, limit: int,
                          acked_only: bool) -> list[int]:
        """Trimming with a reference policy (Redis 8.2 ``ACKED``/``DELREF``): returns the IDs removed.

        With ``acked_only`` entries some group still needs are kept: exact trimming skips them,
        approximate trimming stops at the first node holding one.
        """
        removed: list[int] = []
        if maxlen is not None and self.length <= maxlen:
            return removed
        if approx:
            while self.nodes:
                node = self.nodes[0]
                if limit and len(removed) + node.live > limit:
                    break
                if not (self.length - node.live >= maxlen if maxlen is not None else node.last < minid):  # type: ignore[operator]
                    break
                ids = [stream_id for stream_id, _s, flags, _b, _e in node.headers() if not flags & DELETED]
                if acked_only and any(map(self.referenced, ids)):
                    break
                del self.nodes[0]
                del self.keys[0]
                self.length -= len(ids)
                removed += ids
        else:
            if maxlen is not None:
                candidates = [stream_id for stream_id, _ in self.range(0, MAX_ID, self.length - maxlen)]
            else:
                candidates = [stream_id for stream_id, _ in self.range(0, minid - 1)] if minid else []  # type: ignore[operator]
            for stream_id in candidates:
                if not (acked_only and self.referenced(stream_id)) and self.delete(stream_id):
                    removed.append(stream_id)
        if removed:
            self.first_id = self.edge_id() if self.length else 0
        return removed

    def referenced(self, stream_id: int) -> bool:
        """Whether a consumer group still needs the entry: pending somewhere, or not yet delivered."""
        return any(group.last_id < stream_id or stream_id in group.pel for group in self.groups.values())

    def drop_references(self, stream_id: int) -> bool:
        """Remove ``stream_id`` from every group's PELs (``DELREF``); ``True`` if any held it."""
        dropped = False
        for group in self.groups.values():
            if group.forget(stream_id) is not None:
                dropped = True
        return dropped

    def edge_id(self, last: bool = False) -> int:
        """ID of the first (or last) live entry; 0 when empty."""
        nodes = reversed(self.nodes) if last else iter(self.nodes)
        for node in nodes:
            found = node.first_live(reverse=last)
            if found is not None:
                return found
        return 0

    # -- reading -------------------------------------------------------------------------------

    def range(self, lo: int, hi: int, limit: int = 0, reverse: bool = False) -> list[Entry]:
        """Live entries with ``lo <= id <= hi``, at most ``limit`` (0: all), oldest first unless ``reverse``."""
        out: list[Entry] = []
        if lo > hi or not self.length:
            return out
        nodes = self.nodes
        if reverse:
            index = bisect_right(self.keys, hi) - 1
            while index >= 0 and nodes[index].collect_reverse(lo, hi, limit, out):
                index -= 1
        else:
            index = max(bisect_right(self.keys, lo) - 1, 0)
            count = len(nodes)
            while index < count and nodes[index].collect(lo, hi, limit, out):
                index += 1
        return out

    def range_resp(self, lo: int, hi: int = MAX_ID, limit: int = 0) -> tuple[list[int], bytes]:
        """Live entries with ``lo <= id <= hi`` (at most ``limit``), oldest first, as their IDs and
        one encoded RESP array."""
        ids: list[int] = []
        parts: list[bytes] = [b""]
        if self.length and lo <= hi:
            nodes = self.nodes
            index = max(bisect_right(self.keys, lo) - 1, 0)
            count = len(nodes)
            while index < count and nodes[index].collect_resp(lo, hi, limit, ids, parts):
                index += 1
        parts[0] = b"*%d\r\n" % len(ids)
        return ids, b"".join(parts)

    def get(self, stream_id: int) -> list[bytes] | None:
        """Fields of entry ``stream_id`` if it is live."""
        index = bisect_right(self.keys, stream_id) - 1
        return None if index < 0 else self.nodes[index].entry(stream_id)

    def __contains__(self, stream_id: int) -> bool:
        return self.get(stream_id) is not None

    # -- consumer-group bookkeeping (t_stream.c: lag and entries-read estimates) -----------------

    def has_tombstones(self, start: int, end: int = MAX_ID) -> bool:
        """Whether a deleted entry may lie in ``[start, end]`` (streamRangeHasTombstones)."""
        tomb = self.max_deleted_id
        if not self.length or not tomb or self.first_id > tomb:
            return False
        return start <= tomb <= end

    def estimate_entries_read(self, stream_id: int) -> int:
        """The logical read counter of ``stream_id`` if knowable (streamEstimateDistanceFromFirstEverEntry)."""
        if not self.entries_added:
            return 0
        if not self.length and stream_id <= self.last_id:
            return self.entries_added
        if stream_id == self.last_id:
            return self.entries_added
        if stream_id > self.last_id:
            return INVALID_ENTRIES_READ
        tomb = self.max_deleted_id
        if not tomb or tomb < self.first_id:
            if stream_id < self.first_id:
                return self.entries_added - self.length
            if stream_id == self.first_id:
                return self.entries_added - self.length + 1
        return INVALID_ENTRIES_READ

    def lag(self, group: Group) -> int | None:
        """Entries not yet delivered to ``group``, ``None`` when it cannot be known."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_entries_read(group.last_id)
        return None if read == INVALID_ENTRIES_READ else self.entries_added - read

    def copy(self) -> Stream:
        clone = Stream()
        for node in self.nodes:
            twin = Node(node.master, node.fields)
            twin.buf = bytearray(node.buf) if type(node.buf) is bytearray else node.buf
            twin.live, twin.total, twin.last = node.live, node.total, node.last
            clone.nodes.append(twin)
        clone.keys = list(self.keys)
        clone.length, clone.last_id, clone.first_id = self.length, self.last_id, self.first_id
        clone.max_deleted_id, clone.entries_added = self.max_deleted_id, self.entries_added
        clone.groups = {name: group.copy() for name, group in self.groups.items()}
        clone.producers = self.producers.copy() if self.producers is not None else None
        return clone


register_type(Stream, "stream")

__all__ = ["Entry", "Stream"]
