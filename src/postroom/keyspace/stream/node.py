"""Packed entry nodes: the storage unit of a stream, like Redis's listpacks.

A node holds up to ``stream-node-max-entries`` entries in one byte buffer. The field names of
the node's first entry are kept once per node (``fields``); entries with exactly those names store
only their values. Each entry is::

    flags | ms - master_ms | seq | body length | values...            (SAME flag set)
    flags | ms - master_ms | seq | body length | n | field, value ...  (otherwise)

with unsigned varints for the numbers and every string as a varint length followed by its bytes.
The body length lets a seek skip an entry without parsing it. ``flags`` bit 0 marks a deleted
entry (XDEL, trimming inside a node): deletion flips one byte and never moves data; a sealed node
whose deleted entries outnumber the live ones is compacted. The tail node's buffer is a
``bytearray`` that appends grow in place; it becomes immutable ``bytes`` when the next node
starts. Readers decode only the entries they return, either to values or directly to RESP.
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


_BYTE = [bytes((i,)) for i in range(0x80)]


def _header(flags: int, *numbers: int) -> bytes:
    out = [flags]
    for value in numbers:
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _strings(items: list[bytes]) -> bytes:
    """Each item as its varint length and its bytes."""
    out = bytearray()
    for item in items:
        put_varint(out, len(item))
        out += item
    return bytes(out)


def _varint_bytes(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    put_varint(out, value)
    return bytes(out)


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
        parts: list[bytes] = [b""]  # the header goes first, once the body's size is known
        if argv[start::2] == self.fields:
            flags = SAME
            size = 0
            for value in argv[start + 1 :: 2]:
                n = len(value)
                if n < 0x80:
                    parts.append(_BYTE[n])
                    size += n + 1
                else:
                    prefix = _varint_bytes(n)
                    parts.append(prefix)
                    size += n + len(prefix)
                parts.append(value)
        else:
            flags = 0
            body = _varint_bytes((len(argv) - start) // 2) + _strings(argv[start:])
            parts.append(body)
            size = len(body)
        delta = (stream_id >> 64) - (self.master >> 64)
        seq = stream_id & SEQ_MASK
        if seq < 0x80 and size < 0x80 and delta < 0x4000:
            if delta < 0x80:
                parts[0] = bytes((flags, delta, seq, size))
            else:
                parts[0] = bytes((flags, (delta & 0x7F) | 0x80, delta >> 7, seq, size))
        else:
            parts[0] = _header(flags, delta, seq, size)
        self.buf += b"".join(parts)
        self.live += 1
        self.total += 1
        self.last = stream_id

    def seal(self) -> None:
        """The node will not grow any more: drop the bytearray's spare capacity."""
        self.buf = bytes(self.buf)

    # -- walking -------------------------------------------------------------------------------

    def _readable(self) -> bytes:
        buf = self.buf
        return bytes(buf) if type(buf) is bytearray else buf  # slices of bytes are bytes

    def headers(self, buf: bytes | None = None) -> Iterator[tuple[int, int, int, int, int]]:
        """``(id, entry_start, flags, body_start, body_end)`` of every entry, deleted ones included."""
        if buf is None:
            buf = self._readable()
        base = self.master & ~SEQ_MASK
        pos = 0
        end = len(buf)
        while pos < end:
            start = pos
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
            size = buf[pos]
            if size < 0x80:
                pos += 1
            else:
                size, pos = get_varint(buf, pos)
            yield base + (delta << 64) + seq, start, flags, pos, pos + size
            pos += size

    def decode(self, buf: bytes, pos: int, flags: int) -> list[bytes]:
        """The field/value list of the entry whose body starts at ``pos``."""
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
            return out
        count, pos = get_varint(buf, pos)
        for _ in range(2 * count):
            n, pos = get_varint(buf, pos)
            out.append(buf[pos : pos + n])
            pos += n
        return out

    def collect(self, lo: int, hi: int, limit: int, out: list[tuple[int, list[bytes]]]) -> bool:
        """Append live entries with ``lo <= id <= hi`` to ``out`` until it holds ``limit`` (0: all).

        Returns ``False`` once the range or the limit is exhausted (no later node can contribute).
        """
        buf = self._readable()
        decode = self.decode
        for stream_id, _start, flags, body, _end in self.headers(buf):
            if stream_id > hi:
                return False
            if flags & DELETED or stream_id < lo:
                continue
            out.append((stream_id, decode(buf, body, flags)))
            if len(out) == limit:
                return False
        return True

    def collect_resp(self, lo: int, hi: int, limit: int, ids: list[int], out: list[bytes]) -> bool:
        """Like :meth:`collect`, but each entry is appended to ``out`` already encoded as the RESP
        array ``[id, [field, value, ...]]`` (identical in RESP2 and RESP3) and its ID to ``ids``."""
        buf = self._readable()
        names = [b"$%d\r\n%b\r\n" % (len(name), name) for name in self.fields]
        pairs = 2 * len(names)
        append = out.append
        base = self.master & ~SEQ_MASK
        pos = 0
        end = len(buf)
        while pos < end:  # the header walk of :meth:`headers`, inlined: this is the delivery hot path
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
            size = buf[pos]
            if size < 0x80:
                pos += 1
            else:
                size, pos = get_varint(buf, pos)
            stream_id = base + (delta << 64) + seq
            if stream_id > hi:
                return False
            if flags & DELETED or stream_id < lo:
                pos += size
                continue
            text = b"%d-%d" % (stream_id >> 64, seq)
            if flags & SAME:
                append(b"*2\r\n$%d\r\n%b\r\n*%d\r\n" % (len(text), text, pairs))
                for name in names:
                    n = buf[pos]
                    if n < 0x80:
                        pos += 1
                    else:
                        n, pos = get_varint(buf, pos)
                    append(name)
                    append(b"$%d\r\n%b\r\n" % (n, buf[pos : pos + n]))
                    pos += n
            else:
                values = self.decode(buf, pos, flags)
                pos += size
                append(b"*2\r\n$%d\r\n%b\r\n*%d\r\n" % (len(text), text, len(values)))
                for value in values:
                    append(b"$%d\r\n%b\r\n" % (len(value), value))
            ids.append(stream_id)
            if len(ids) == limit:
                return False
        return True

    def collect_reverse(self, lo: int, hi: int, limit: int, out: list[tuple[int, list[bytes]]]) -> bool:
        """Like :meth:`collect`, newest first."""
        buf = self._readable()
        for stream_id, _start, flags, body, _end in reversed(list(self.headers(buf))):
            if stream_id < lo:
                return False
            if flags & DELETED or stream_id > hi:
                continue
            out.append((stream_id, self.decode(buf, body, flags)))
            if len(out) == limit:
                return False
        return True

    def entry(self, wanted: int) -> list[bytes] | None:
        """The fields of live entry ``wanted``, or ``None``."""
        buf = self._readable()
        for stream_id, _start, flags, body, _end in self.headers(buf):
            if stream_id == wanted:
                return None if flags & DELETED else self.decode(buf, body, flags)
            if stream_id > wanted:
                return None
        return None

    def first_live(self, reverse: bool = False) -> int | None:
        """ID of the oldest (or newest) live entry."""
        found = None
        for stream_id, _start, flags, _body, _end in self.headers():
            if not flags & DELETED:
                if not reverse:
                    return stream_id
                found = stream_id
        return found

    # -- deleting ------------------------------------------------------------------------------

    def delete(self, wanted: int) -> bool:
        """Flag live entry ``wanted`` as deleted; ``True`` if it was there."""
        for stream_id, start, flags, _body, _end in self.headers():
            if stream_id == wanted:
                if flags & DELETED:
                    return False
                self._flag([start])
                return True
            if stream_id > wanted:
                return False
        return False

    def delete_first(self, count: int, below: int | None = None) -> int:
        """Flag the oldest live entries: ``count`` of them, or those with ID < ``below``."""
        starts = []
        for stream_id, start, flags, _body, _end in self.headers():
            if len(starts) == count or (below is not None and stream_id >= below):
                break
            if not flags & DELETED:
                starts.append(start)
        if starts:
            self._flag(starts)
        return len(starts)

    def _flag(self, starts: list[int]) -> None:
        sealed = type(self.buf) is bytes
        buf = bytearray(self.buf) if sealed else self.buf
        for start in starts:
            buf[start] |= DELETED
        if sealed:
            self.buf = bytes(buf)
        self.live -= len(starts)

    def compact(self) -> None:
        """Drop flagged entries from a sealed node (its master ID and schema stay)."""
        buf = self._readable()
        self.buf = b"".join(buf[start:end] for _id, start, flags, _body, end in self.headers(buf)
                            if not flags & DELETED)
        self.total = self.live


__all__ = ["DELETED", "SAME", "Node", "get_varint", "put_varint"]
