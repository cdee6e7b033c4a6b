"""Packed entry nodes: the storage unit of a stream, like Redis's listpacks.

A node holds up to ``stream-node-max-entries`` entries in one byte buffer. The field names of
the node's first entry are kept once per node (``fields``); entries with exactly those names store
only their values. Each entry is::

    flags | ms - master_ms (varint) | seq (varint) | values...           (SAME flag set)
    flags | ms - master_ms (varint) | seq (varint) | n | field, value ... (otherwise)

where every string is a varint length followed by its bytes. ``flags`` bit 0 marks a deleted
entry (XDEL, trimming inside a node): deletion flips one byte and never moves data. A sealed
node whose deleted entries outnumber the live ones is compacted (its live entries copied into a
new buffer). The tail node's buffer is a ``bytearray`` that appends grow in place; it becomes
immutable ``bytes`` when the next node starts. Readers decode only the entries they return.
"""

from __future__ import annotations

from collections.abc import Iterator

from .ids import SEQ_MASK

DELETED = 1
SAME = 2


def put_varint(buf: bytearray, value: int) -> None:
    while value >= 0x80:
        buf.append((value & 0x7F) | 0x80)
        value >>= 7
    buf.append(value)


def get_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7


class Node:
    """A run of consecutive entries sharing a master ID and (mostly) a field schema."""

    __slots__ = ("master", "fields", "buf", "live", "total", "last")

    def __init__(self, master: int, fields: list[bytes]) -> None:
        self.master = master  # ID of the node's first entry: its key in the stream's index
        self.fields = fields
        self.buf: bytes | bytearray = bytearray()
        self.live = 0
        self.total = 0  # live + flagged deleted
        self.last = master  # last ID stored, deleted or not

    def append(self, stream_id: int, argv: list[bytes], start: int) -> None:
        """Store the entry whose field/value pairs are ``argv[start:]``."""
        buf = self.buf
        delta = (stream_id >> 64) - (self.master >> 64)
        seq = stream_id & SEQ_MASK
        if argv[start::2] == self.fields:
            buf.append(SAME)
            if delta < 0x80 and seq < 0x80:
                buf.append(delta)
                buf.append(seq)
            else:
                put_varint(buf, delta)
                put_varint(buf, seq)
            for value in argv[start + 1 :: 2]:
                n = len(value)
                if n < 0x80:
                    buf.append(n)
                else:
                    put_varint(buf, n)
                buf += value
        else:
            buf.append(0)
            put_varint(buf, delta)
            put_varint(buf, seq)
            put_varint(buf, (len(argv) - start) // 2)
            for i in range(start, len(argv)):
                put_varint(buf, len(argv[i]))
                buf += argv[i]
        self.live += 1
        self.total += 1
        self.last = stream_id

    def seal(self) -> None:
        """The node will not grow any more: drop the bytearray's spare capacity."""
        self.buf = bytes(self.buf)

    # -- reading -------------------------------------------------------------------------------

    def _decode(self, buf: bytes, pos: int, flags: int) -> tuple[list[bytes], int]:
        """The field/value list of the entry whose body starts at ``pos``, and where it ends."""
        out: list[bytes] = []
        if flags & SAME:
            for name in self.fields:
                n = buf[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = get_varint(buf, pos)
                out.append(name)
                out.append(buf[pos : pos + n])
                pos += n
        else:
            count, pos = get_varint(buf, pos)
            for _ in range(2 * count):
                n, pos = get_varint(buf, pos)
                out.append(buf[pos : pos + n])
                pos += n
        return out, pos

    def _skip(self, buf: bytes, pos: int, flags: int) -> int:
        if flags & SAME:
            for _ in range(len(self.fields)):
                n, pos = get_varint(buf, pos)
                pos += n
            return pos
        count, pos = get_varint(buf, pos)
        for _ in range(2 * count):
            n, pos = get_varint(buf, pos)
            pos += n
        return pos

    def _readable(self) -> bytes:
        buf = self.buf
        return bytes(buf) if type(buf) is bytearray else buf  # slices of bytes are bytes

    def headers(self) -> Iterator[tuple[int, int, int, int]]:
        """``(id, entry_start, flags, body_start)`` of every entry, deleted ones included."""
        buf = self._readable()
        base = self.master & ~SEQ_MASK
        pos = 0
        end = len(buf)
        while pos < end:
            start = pos
            flags = buf[pos]
            delta, pos = get_varint(buf, pos + 1)
            seq, pos = get_varint(buf, pos)
            body = pos
            pos = self._skip(buf, pos, flags)
            yield base + (delta << 64) + seq, start, flags, body

    def collect(self, lo: int, hi: int, limit: int, out: list[tuple[int, list[bytes]]]) -> bool:
        """Append live entries with ``lo <= id <= hi`` to ``out`` until it holds ``limit`` (0: all).

        Returns ``False`` once the range or the limit is exhausted (no later node can contribute).
        """
        buf = self._readable()
        base = self.master & ~SEQ_MASK
        pos = 0
        end = len(buf)
        while pos < end:
            flags = buf[pos]
            delta = buf[pos + 1]
            if delta < 0x80:
                pos += 2
            else:
                delta, pos = get_varint(buf, pos + 1)
            seq = buf[pos]
            if seq < 0x80:
                pos += 1
            else:
                seq, pos = get_varint(buf, pos)
            stream_id = base + (delta << 64) + seq
            if stream_id > hi:
                return False
            if flags & DELETED or stream_id < lo:
                pos = self._skip(buf, pos, flags)
                continue
            values, pos = self._decode(buf, pos, flags)
            out.append((stream_id, values))
            if len(out) == limit:
                return False
        return True

    def collect_reverse(self, lo: int, hi: int, limit: int, out: list[tuple[int, list[bytes]]]) -> bool:
        """Like :meth:`collect`, newest first."""
        buf = self._readable()
        for stream_id, _start, flags, body in reversed(list(self.headers())):
            if stream_id < lo:
                return False
            if flags & DELETED or stream_id > hi:
                continue
            out.append((stream_id, self._decode(buf, body, flags)[0]))
            if len(out) == limit:
                return False
        return True

    def entry(self, wanted: int) -> list[bytes] | None:
        """The fields of live entry ``wanted``, or ``None``."""
        for stream_id, _start, flags, body in self.headers():
            if stream_id == wanted:
                return None if flags & DELETED else self._decode(self._readable(), body, flags)[0]
            if stream_id > wanted:
                return None
        return None

    def first_live(self, reverse: bool = False) -> int | None:
        """ID of the oldest (or newest) live entry."""
        found = None
        for stream_id, _start, flags, _body in self.headers():
            if not flags & DELETED:
                if not reverse:
                    return stream_id
                found = stream_id
        return found

    # -- deleting ------------------------------------------------------------------------------

    def delete(self, wanted: int) -> bool:
        """Flag live entry ``wanted`` as deleted; ``True`` if it was there."""
        for stream_id, start, flags, _body in self.headers():
            if stream_id == wanted:
                if flags & DELETED:
                    return False
                self._flag(start)
                return True
            if stream_id > wanted:
                return False
        return False

    def delete_first(self, count: int, below: int | None = None) -> int:
        """Flag the oldest live entries: ``count`` of them, or those with ID < ``below``."""
        done = 0
        starts = []
        for stream_id, start, flags, _body in self.headers():
            if done == count or (below is not None and stream_id >= below):
                break
            if not flags & DELETED:
                starts.append(start)
                done += 1
        if starts:
            buf = bytearray(self.buf)
            for start in starts:
                buf[start] |= DELETED
            self._store(buf)
            self.live -= done
        return done

    def _flag(self, start: int) -> None:
        buf = self.buf if type(self.buf) is bytearray else bytearray(self.buf)
        buf[start] |= DELETED
        self._store(buf)
        self.live -= 1

    def _store(self, buf: bytearray) -> None:
        self.buf = buf if type(self.buf) is bytearray else bytes(buf)

    def compact(self) -> None:
        """Drop flagged entries from a sealed node (its master ID and schema stay)."""
        buf = self.buf
        spans = []
        previous = None
        for _id, start, flags, _body in self.headers():
            if previous is not None:
                spans.append((previous, start))
                previous = None
            if not flags & DELETED:
                previous = start
        if previous is not None:
            spans.append((previous, len(buf)))
        self.buf = b"".join(buf[a:b] for a, b in spans)
        self.total = self.live


__all__ = ["DELETED", "SAME", "Node", "get_varint", "put_varint"]
