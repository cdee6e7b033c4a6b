"""Whole-database commands (``db.c``): FLUSHDB, FLUSHALL, DBSIZE, SWAPDB, MOVE.

FLUSHDB/FLUSHALL accept ASYNC and SYNC as Redis does; both free the old keys at once, since a
Python process has no background thread that could release objects without holding the GIL the
event loop needs anyway. Like Redis, flushes and SWAPDB always propagate, even when nothing changed,
so that a replica or the AOF ends in the same state.
"""

from __future__ import annotations

from collections import ChainMap
from typing import TYPE_CHECKING

from .. import notifications as ev
from ..keyspace.hashes import databases_swapped
from ..protocol.replies import OK, ReplyError
from .args import NOT_INTEGER, SYNTAX_ERROR, parse_int
from .registry import command

if TYPE_CHECKING:
    from ..client import Client
    from ..keyspace.database import Database

DB_OUT_OF_RANGE = ReplyError("ERR DB index is out of range")
SAME_OBJECT = ReplyError("ERR source and destination objects are the same")
INT_MAX = 2**31 - 1
INT_RANGE = ReplyError(f"ERR value is out of range, value must between {-INT_MAX - 1} and {INT_MAX}")


def parse_db_index(arg: bytes, error: ReplyError | None = None) -> int:
    """A C ``int`` as ``getIntFromObjectOrReply`` reads it; ``error`` replaces both of its messages."""
    value = parse_int(arg, error or NOT_INTEGER)
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise error or INT_RANGE
    return value


def database_at(client: Client, arg: bytes) -> Database:
    """The database a DB-index argument names (MOVE, COPY ... DB); an error past ``databases``."""
    index = parse_db_index(arg)
    dbs = client.broker.dbs
    if not 0 <= index < len(dbs):
        raise DB_OUT_OF_RANGE
    return dbs[index]


def _check_flush_flags(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"sync", b"async")):
        raise SYNTAX_ERROR


@command("flushdb", arity=-1, flags="write", group="server", acl="keyspace dangerous",
         summary="Remove all keys from the current database", since="1.0.0",
         complexity="O(N) where N is the number of keys in the selected database")
def flushdb(client: Client, argv: list[bytes]) -> str:
    """FLUSHDB [ASYNC | SYNC]"""
    _check_flush_flags(argv)
    broker = client.broker
    broker.dirty += client.db.clear() + 1
    return OK


@command("flushall", arity=-1, flags="write", group="server", acl="keyspace dangerous",
         summary="Remove all keys from all databases", since="1.0.0",
         complexity="O(N) where N is the total number of keys in all databases")
def flushall(client: Client, argv: list[bytes]) -> str:
    """FLUSHALL [ASYNC | SYNC]"""
    _check_flush_flags(argv)
    broker = client.broker
    removed = 0
    for db in broker.dbs:
        if db.data:
            removed += db.clear()
    broker.dirty += removed
    persistence = getattr(broker, "persistence", None)
    if persistence is not None:
        persistence.flushed_all()  # with save points: the empty dataset is saved at once
    broker.dirty += 1  # after that save: FLUSHALL is one change, and always propagates
    return OK


@command("dbsize", arity=1, flags="readonly fast", group="server", acl="keyspace",
         summary="Return the number of keys in the selected database", since="1.0.0", complexity="O(1)")
def dbsize(client: Client, argv: list[bytes]) -> int:
    """DBSIZE"""
    return len(client.db.data)


@command("swapdb", arity=3, flags="write fast", group="server", acl="keyspace dangerous",
         summary="Swaps two Redis databases", since="4.0.0",
         complexity="O(N) where N is the count of clients watching or blocking on keys from both databases.")
def swapdb(client: Client, argv: list[bytes]) -> str:
    """SWAPDB index1 index2"""
    first = parse_db_index(argv[1], ReplyError("ERR invalid first DB index"))
    second = parse_db_index(argv[2], ReplyError("ERR invalid second DB index"))
    broker = client.broker
    count = len(broker.dbs)
    if not (0 <= first < count and 0 <= second < count):
        raise DB_OUT_OF_RANGE
    broker.dirty += 1
    if first == second:
        return OK
    db1, db2 = broker.dbs[first], broker.dbs[second]
    # A WATCHed key in either db changes if it exists on either side of the swap.
    both = ChainMap(db1.data, db2.data)
    broker.database_cleared(db1, both)  # type: ignore[arg-type]
    broker.database_cleared(db2, both)  # type: ignore[arg-type]
    db1.swap_contents(db2)
    databases_swapped(broker, first, second)
    _signal_blocked_keys(client, db1)
    _signal_blocked_keys(client, db2)
    return OK


def _signal_blocked_keys(client: Client, db: Database) -> None:
    """Clients blocked on a key the swap brought into ``db`` may now be served."""
    broker = client.broker
    for index, key in list(broker.blocking.waiting):
        if index == db.index and db.exists(key):
            broker.signal_ready(db, key)


@command("move", arity=3, flags="write fast", keys=(1, 1, 1), group="generic",
         summary="Move a key to another database", since="1.0.0", complexity="O(1)")
def move(client: Client, argv: list[bytes]) -> int:
    """MOVE key db"""
    key = argv[1]
    dst = database_at(client, argv[2])
    src = client.db
    if src is dst:
        raise SAME_OBJECT
    value = src.get(key)
    if value is None or dst.get(key) is not None:
        return 0
    deadline = src.expires.get(key)
    # The value object itself changes database: nothing else refers to it, so no copy is needed.
    dst.add(key, value)
    if deadline is not None:
        dst.set_expire(key, deadline)
    src.delete(key)
    client.touch(key, src)
    client.touch(key, dst)
    client.notify(ev.GENERIC, b"move_from", key, src)
    client.notify(ev.GENERIC, b"move_to", key, dst)
    return 1
