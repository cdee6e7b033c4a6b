"""The snapshot format: the whole keyspace in one versioned, checksummed file (writer and reader).

Used for SAVE/BGSAVE (``<dir>/<dbfilename>``) and as the base file of a rewritten AOF
(``<appendfilename>.<seq>.base.snapshot``). Layout, documented in ``docs/PERSISTENCE.md``::

    POSTROOM-SNAPSHOT <version>\\n        header line (ASCII)
    {"created_ms": ..., "dbs": ...}       msgpack map: metadata
    [db, key, type, expire_ms|nil, body]  msgpack array per key, any number
    nil                                   msgpack nil: end of records
    crc32                                 4 bytes big-endian, CRC-32 of every byte before it

Bodies are plain msgpack values per type, independent of in-memory encodings (node buffers,
listpack flags), so the format survives changes to the value classes. Reading checks the
header, the version and the checksum before anything is applied, so a damaged file never loads
halfway. Redis's RDB format can later get its own writer/reader beside this one.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

from ..keyspace.hashes import HashValue, field_expiry
from ..keyspace.lists import ListValue
from ..keyspace.sets import SetValue
from ..keyspace.stream import Stream
from ..keyspace.stream.groups import Group, Nack
from ..keyspace.stream.idmp import Producers
from ..keyspace.stream.ids import MAX_ID
from ..keyspace.stream.node import Node
from ..keyspace.zsets import ZSet
from .aof import fsync_directory

if TYPE_CHECKING:
    from ..broker import Broker

MAGIC = b"POSTROOM-SNAPSHOT"
VERSION = 1
HEADER = MAGIC + b" %d\n" % VERSION

STRING, LIST, SET, ZSET_, HASH, STREAM = range(6)

_FLUSH_AT = 1 << 20
_MAX_BUFFER = 2**31 - 1


class SnapshotError(Exception):
    """A snapshot file that cannot be loaded; the message names the file and the reason."""


def _id(stream_id: int) -> bytes:
    return stream_id.to_bytes(16, "big")


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


# -- encoding values -------------------------------------------------------------------------


def _encode_stream(stream: Stream) -> list[Any]:
    nodes = []
    for node in stream.nodes:
        entries: list[tuple[int, list[bytes]]] = []
        node.collect(0, MAX_ID, 0, entries)
        if entries:
            nodes.append([_id(node.master), node.fields, [[_id(i), fields] for i, fields in entries]])
    groups = []
    for group in stream.groups.values():
        consumers = [[c.name, c.seen_time, c.active_time] for c in group.consumers.values()]
        pel = [[_id(i), None if n.consumer is None else n.consumer.name, n.delivery_time, n.delivery_count]
               for i, n in ((i, group.pel.map[i]) for i in group.pel.sorted_ids())]
        groups.append([group.name, _id(group.last_id), group.entries_read, consumers, pel])
    producers = stream.producers
    idmp = None
    if producers is not None:
        pids = {pid: [[iid, _id(entry_id), added] for iid, (entry_id, added) in iids.items()]
                for pid, iids in producers.pids.items()}
        idmp = [producers.duration, producers.maxsize, producers.iids_added, producers.iids_duplicates, pids]
    return [nodes, _id(stream.last_id), _id(stream.first_id), _id(stream.max_deleted_id), stream.entries_added,
            groups, idmp]


def encode_value(value: Any) -> tuple[int, Any]:
    """``(type code, msgpack-able body)`` of a stored value."""
    kind = type(value)
    if kind is bytes:
        return STRING, value
    if kind is ListValue:
        return LIST, list(value)
    if kind is SetValue:
        return SET, list(set.__iter__(value))
    if kind is ZSet:
        return ZSET_, [[member, score] for score, member in value.order]
    if kind is HashValue:
        return HASH, [list(value.items()), value.expires or None]
    if kind is Stream:
        return STREAM, _encode_stream(value)
    raise TypeError(f"no snapshot encoding for {kind.__name__}")


# -- decoding values -------------------------------------------------------------------------


def _decode_stream(body: list[Any]) -> Stream:
    nodes, last_id, first_id, max_deleted_id, entries_added, groups, idmp = body
    stream = Stream()
    for master, fields, entries in nodes:
        if stream.nodes:
            stream.nodes[-1].seal()
        node = Node(_int(master), fields)
        for entry_id, pairs in entries:
            node.append(_int(entry_id), pairs, 0)
        stream.nodes.append(node)
        stream.keys.append(node.master)
        stream.length += node.live
    stream.last_id, stream.first_id = _int(last_id), _int(first_id)
    stream.max_deleted_id, stream.entries_added = _int(max_deleted_id), entries_added
    for name, group_last, entries_read, consumers, pel in groups:
        group = Group(name, _int(group_last), entries_read)
        for consumer_name, seen, active in consumers:
            group.add_consumer(consumer_name, seen).active_time = active
        for entry_id, owner_name, delivery_time, count in pel:
            owner = None if owner_name is None else group.consumers[owner_name]  # None: released with XNACK
            nack = Nack(owner, delivery_time, count)
            group.pel.add(_int(entry_id), nack)
            if owner is not None:
                owner.pel.add(_int(entry_id), nack)
        stream.groups[name] = group
    if idmp is not None:
        producers = stream.producers = Producers()
        producers.duration, producers.maxsize, producers.iids_added, producers.iids_duplicates, pids = idmp
        producers.pids = {pid: {iid: (_int(entry_id), added) for iid, entry_id, added in iids}
                          for pid, iids in pids.items()}
    return stream


def decode_value(kind: int, body: Any, broker: Broker, now_ms: int) -> Any:
    """The value class instance for a record; encodings are chosen as a fresh load in Redis does."""
    config = broker.config
    if kind == STRING:
        return body
    if kind == LIST:
        return ListValue(body)
    if kind == SET:
        return SetValue(body, config["set-max-intset-entries"])
    if kind == ZSET_:
        return ZSet.build(((m, float(s)) for m, s in body), config, one_by_one=False)
    if kind == HASH:
        pairs, expires = body
        value = HashValue()
        for field, item in pairs:
            deadline = expires.get(field) if expires else None
            if deadline is not None and deadline <= now_ms:
                continue  # a field that expired while the server was down
            value[field] = item
            if deadline is not None:
                value.set_ttl(field, deadline)
        value.check_encoding(config, (len(x) for pair in value.items() for x in pair))
        value.check_size(config)
        return value
    if kind == STREAM:
        return _decode_stream(body)
    raise SnapshotError(f"unknown value type {kind}")


# -- writing ---------------------------------------------------------------------------------


def temp_path(path: Path, pid: int) -> Path:
    """Where process ``pid`` writes ``path`` before renaming it (so a failed writer's leftovers can go)."""
    return path.with_name(f"temp-{pid}-{path.name}")


def write_snapshot(broker: Broker, path: Path, key_delay_us: int = 0) -> int:
    """Write the keyspace to ``path`` atomically (temporary file, fsync, rename); returns keys written.

    ``key_delay_us`` sleeps after each key (the ``rdb-key-save-delay`` test knob).
    """
    tmp = temp_path(path, os.getpid())
    now = int(time.time() * 1000)
    packer = msgpack.Packer(use_bin_type=True)
    crc = 0
    written = 0
    try:
        with open(tmp, "wb") as handle:
            out = bytearray(HEADER)
            out += packer.pack({"created_ms": now, "dbs": len(broker.dbs)})
            for db in broker.dbs:
                expires = db.expires
                for key, value in db.data.items():
                    deadline = expires.get(key)
                    if deadline is not None and deadline <= now:
                        continue
                    kind, body = encode_value(value)
                    out += packer.pack([db.index, key, kind, deadline, body])
                    written += 1
                    if len(out) >= _FLUSH_AT:
                        crc = zlib.crc32(out, crc)
                        handle.write(out)
                        out = bytearray()
                    if key_delay_us:
                        time.sleep(key_delay_us / 1e6)
            out += packer.pack(None)
            crc = zlib.crc32(out, crc)
            out += crc.to_bytes(4, "big")
            handle.write(out)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


# -- reading ---------------------------------------------------------------------------------


def verify(path: Path) -> int:
    """Check header, version and checksum; returns the size of the part before the checksum."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.readline(64)
        if not header.startswith(MAGIC + b" ") or not header.endswith(b"\n"):
            raise SnapshotError(f"{path} is not a postroom snapshot (bad header)")
        version = header[len(MAGIC) + 1 : -1]
        if version != b"%d" % VERSION:
            raise SnapshotError(f"{path} has snapshot format version {version.decode(errors='replace')}; "
                                f"this postroom reads version {VERSION}")
        if size < len(header) + 5:
            raise SnapshotError(f"{path} is truncated")
        crc = zlib.crc32(header)
        remaining = size - 4 - len(header)
        while remaining:
            chunk = handle.read(min(_FLUSH_AT, remaining))
            if not chunk:
                raise SnapshotError(f"{path} is truncated")
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
        stored = int.from_bytes(handle.read(4), "big")
    if crc != stored:
        raise SnapshotError(f"{path} is damaged: checksum mismatch (stored {stored:08x}, computed {crc:08x})")
    return size - 4


def read_records(path: Path) -> Iterator[list[Any]]:
    """Yield the metadata map, then each key record ``[db, key, type, expire_ms, body]``, of a verified file."""
    end = verify(path)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=_MAX_BUFFER)
    with open(path, "rb") as handle:
        remaining = end - len(handle.readline(64))
        finished = False
        while remaining and not finished:
            chunk = handle.read(min(_FLUSH_AT, remaining))
            remaining -= len(chunk)
            unpacker.feed(chunk)
            for record in unpacker:
                if record is None:
                    finished = True
                    break
                yield record
    if not finished:
        raise SnapshotError(f"{path} ends without its end-of-records marker")


def load_snapshot(broker: Broker, path: Path) -> tuple[int, int]:
    """Load ``path`` into the broker's (empty) databases; returns ``(keys loaded, keys already expired)``."""
    now = int(time.time() * 1000)
    loaded = expired = 0
    records = read_records(path)
    next(records)  # metadata: informational only
    dbs = broker.dbs
    for index, key, kind, deadline, body in records:
        if index >= len(dbs):
            raise SnapshotError(f"{path} holds database {index}, but 'databases' is {len(dbs)}")
        if deadline is not None and deadline <= now:
            expired += 1
            continue
        value = decode_value(kind, body, broker, now)
        if kind == HASH and not value:
            expired += 1
            continue
        db = dbs[index]
        db.add(key, value)
        if deadline is not None:
            db.set_expire(key, deadline)
        if kind == HASH and value.expires:
            field_expiry(broker).schedule(db, key, value)
        loaded += 1
    return loaded, expired


def is_snapshot(path: Path) -> bool:
    """Whether ``path`` starts like a snapshot (the AOF loader's choice between formats)."""
    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


__all__ = ["HEADER", "MAGIC", "VERSION", "SnapshotError", "decode_value", "encode_value", "is_snapshot",
           "load_snapshot", "read_records", "temp_path", "verify", "write_snapshot"]
