"""Generic key commands (``db.c``, ``expire.c``, ``object.c``): DEL, EXISTS, TYPE, RENAME, COPY, KEYS,
SCAN, RANDOMKEY, TOUCH, the EXPIRE family, TTL family, PERSIST and OBJECT.

Expiry arguments become absolute deadlines at once and propagate as ``PEXPIREAT`` (or ``DEL`` when
the deadline has already passed), so replaying the AOF later gives the same keyspace.

OBJECT reports what Redis would for the value as it is now: a string's encoding is derived from
its content (``int`` for a canonical 64-bit integer, ``embstr`` up to 44 bytes, else ``raw``), so a
short string grown by APPEND or SETRANGE reports ``embstr`` where Redis says ``raw``. Access times
are kept per key in milliseconds and reported in whole seconds (see
:meth:`postroom.keyspace.database.Database.idle_seconds`).
"""

from __future__ import annotations

import random
from itertools import islice
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..glob import glob_match
from ..keyspace.database import type_name
from ..keyspace.scan import parse_scan_options
from ..protocol.replies import OK, ReplyError
from .args import LLONG_MAX, LLONG_MIN, SYNTAX_ERROR, invalid_expire_time, parse_int
from .databases import SAME_OBJECT, database_at
from .effects import delete_key
from .registry import command, container

if TYPE_CHECKING:
    from ..client import Client
    from ..keyspace.database import Database

NO_SUCH_KEY = ReplyError("ERR no such key")

# -- existence and deletion --------------------------------------------------------------------


def _delete(client: Client, argv: list[bytes]) -> int:
    """DEL/UNLINK: expired keys vanish first (``expired``), live ones are deleted (``del``)."""
    db = client.db
    get_value = db.get
    deleted = 0
    for key in islice(argv, 1, None):
        if get_value(key) is not None and db.delete(key):
            client.touch(key)
            client.notify(ev.GENERIC, b"del", key)
            deleted += 1
    return deleted


@command("del", arity=-2, flags="write", keys=(1, -1, 1), group="generic", summary="Delete a key",
         since="1.0.0",
         complexity="O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).")
def del_(client: Client, argv: list[bytes]) -> int:
    """DEL key [key ...]"""
    return _delete(client, argv)


@command("unlink", arity=-2, flags="write fast", keys=(1, -1, 1), group="generic",
         summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
         since="4.0.0",
         complexity="O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.")
def unlink(client: Client, argv: list[bytes]) -> int:
    """UNLINK key [key ...]"""
    return _delete(client, argv)


@command("exists", arity=-2, flags="readonly fast", keys=(1, -1, 1), group="generic",
         summary="Determine if a key exists", since="1.0.0",
         complexity="O(N) where N is the number of keys to check.")
def exists(client: Client, argv: list[bytes]) -> int:
    """EXISTS key [key ...]"""
    peek = client.db.peek
    return sum(1 for key in islice(argv, 1, None) if peek(key) is not None)


@command("touch", arity=-2, flags="readonly fast", keys=(1, -1, 1), group="generic",
         summary="Alters the last access time of a key(s). Returns the number of existing keys specified.",
         since="3.2.1", complexity="O(N) where N is the number of keys that will be touched.")
def touch(client: Client, argv: list[bytes]) -> int:
    """TOUCH key [key ...]"""
    db = client.db
    count = 0
    for key in islice(argv, 1, None):
        if db.get(key) is not None:  # a lookup is an access (OBJECT IDLETIME)
            count += 1
    return count


@command("type", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic",
         summary="Determine the type stored at key", since="1.0.0", complexity="O(1)")
def type_(client: Client, argv: list[bytes]) -> str:
    """TYPE key"""
    value = client.db.peek(argv[1])
    return "none" if value is None else type_name(value)


# -- renaming and copying ----------------------------------------------------------------------


def _rename(client: Client, argv: list[bytes], nx: bool) -> Any:
    """RENAME/RENAMENX: the value object and its TTL move to the new name (no copy)."""
    source, target = argv[1], argv[2]
    db = client.db
    value = db.get(source)
    if value is None:
        raise NO_SUCH_KEY
    if source == target:
        return 0 if nx else OK
    deadline = db.expires.get(source)
    if db.get(target) is not None:
        if nx:
            return 0
        db.delete(target)
    db.delete(source)
    db.add(target, value)
    if deadline is not None:
        db.set_expire(target, deadline)
    client.touch(source)
    client.touch(target)
    client.notify(ev.GENERIC, b"rename_from", source)
    client.notify(ev.GENERIC, b"rename_to", target)
    return 1 if nx else OK


@command("rename", arity=3, flags="write", keys=(1, 2, 1), group="generic", summary="Rename a key",
         since="1.0.0", complexity="O(1)")
def rename(client: Client, argv: list[bytes]) -> str:
    """RENAME key newkey"""
    return _rename(client, argv, False)


@command("renamenx", arity=3, flags="write fast", keys=(1, 2, 1), group="generic",
         summary="Rename a key, only if the new key does not exist", since="1.0.0", complexity="O(1)")
def renamenx(client: Client, argv: list[bytes]) -> int:
    """RENAMENX key newkey"""
    return _rename(client, argv, True)


@command("copy", arity=-3, flags="write denyoom", keys=(1, 2, 1), group="generic", summary="Copy a key",
         since="6.2.0",
         complexity="O(N) worst case for collections, where N is the number of nested items. O(1) for string values.")
def copy(client: Client, argv: list[bytes]) -> int:
    """COPY source destination [DB destination-db] [REPLACE]"""
    src = dst = client.db
    replace = False
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and i + 1 < len(argv):
            dst = database_at(client, argv[i + 1])
            i += 1
        else:
            raise SYNTAX_ERROR
        i += 1
    source, target = argv[1], argv[2]
    if src is dst and source == target:
        raise SAME_OBJECT
    value = src.get(source)
    if value is None:
        return 0
    deadline = src.expires.get(source)
    if dst.get(target) is not None:
        if not replace:
            return 0
        dst.delete(target)
    dst.add(target, value if type(value) is bytes else value.copy())
    if deadline is not None:
        dst.set_expire(target, deadline)
    client.touch(target, dst)
    client.notify(ev.GENERIC, b"copy_to", target, dst)
    return 1


# -- listing -----------------------------------------------------------------------------------


@command("keys", arity=2, flags="readonly", group="generic", acl="keyspace dangerous",
         summary="Find all keys matching the given pattern", since="1.0.0",
         complexity="O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.")
def keys(client: Client, argv: list[bytes]) -> list[bytes]:
    """KEYS pattern"""
    pattern = argv[1]
    live = client.db.keys()
    if pattern == b"*":
        return list(live)
    return [key for key in live if glob_match(pattern, key)]


@command("scan", arity=-2, flags="readonly", group="generic", acl="keyspace",
         summary="Incrementally iterate the keys space", since="2.8.0",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.")
def scan(client: Client, argv: list[bytes]) -> list[Any]:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]"""
    options = parse_scan_options(argv, 1, True)
    db = client.db
    cursor, batch = db.scan_order.scan(db.data.keys(), options.cursor, options.count)
    wanted_type = options.type_name.lower() if options.type_name is not None else None
    found = []
    for key in options.matching(batch):
        value = db.peek(key)  # expires the key if it is due, as Redis's scan does
        if value is None:
            continue
        if wanted_type is not None and type_name(value).encode() != wanted_type:
            continue
        found.append(key)
    return [b"%d" % cursor, found]


@command("randomkey", arity=1, flags="readonly", group="generic", acl="keyspace",
         summary="Return a random key from the keyspace", since="1.0.0", complexity="O(1)")
def randomkey(client: Client, argv: list[bytes]) -> bytes | None:
    """RANDOMKEY"""
    db = client.db
    data = db.data
    while data:
        key = db.scan_order.nth(data.keys(), random.randrange(len(data)))
        if db.get(key) is not None:  # an expired pick is deleted (``expired``) and another drawn
            return key
    return None


# -- expiry ------------------------------------------------------------------------------------

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_OPTIONS = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT}


def _expire(client: Client, argv: list[bytes], base_ms: int, unit_ms: int) -> int:
    """EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (``expireGenericCommand``)."""
    flags = 0
    for option in islice(argv, 3, None):
        bit = _EXPIRE_OPTIONS.get(option.lower())
        if bit is None:
            raise ReplyError(f"ERR Unsupported option {option.decode('utf-8', 'replace')}")
        flags |= bit
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise ReplyError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        raise ReplyError("ERR GT and LT options at the same time are not compatible")
    when = parse_int(argv[2])
    name = argv[0].lower().decode()
    if unit_ms == 1000:
        if when > LLONG_MAX // 1000 or when < -(LLONG_MIN // -1000):
            raise invalid_expire_time(name)
        when *= 1000
    if when > LLONG_MAX - base_ms:
        raise invalid_expire_time(name)
    when += base_ms
    key = argv[1]
    db = client.db
    if db.get(key) is None:
        return 0
    if flags:
        current = db.expires.get(key)
        if flags & _NX and current is not None:
            return 0
        if flags & _XX and current is None:
            return 0
        if flags & _GT and (current is None or when <= current):
            return 0
        if flags & _LT and current is not None and when >= current:
            return 0
    if when <= client.broker.now_ms:
        delete_key(client, key)
        return 1
    db.set_expire(key, when)
    client.touch(key)
    client.propagate_as([b"PEXPIREAT", key, b"%d" % when, *argv[3:]])
    client.notify(ev.GENERIC, b"expire", key)
    return 1


@command("expire", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic",
         summary="Set a key's time to live in seconds", since="1.0.0", complexity="O(1)")
def expire(client: Client, argv: list[bytes]) -> int:
    """EXPIRE key seconds [NX | XX | GT | LT]"""
    return _expire(client, argv, client.broker.now_ms, 1000)


@command("pexpire", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic",
         summary="Set a key's time to live in milliseconds", since="2.6.0", complexity="O(1)")
def pexpire(client: Client, argv: list[bytes]) -> int:
    """PEXPIRE key milliseconds [NX | XX | GT | LT]"""
    return _expire(client, argv, client.broker.now_ms, 1)


@command("expireat", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic",
         summary="Set the expiration for a key as a UNIX timestamp", since="1.2.0", complexity="O(1)")
def expireat(client: Client, argv: list[bytes]) -> int:
    """EXPIREAT key unix-time-seconds [NX | XX | GT | LT]"""
    return _expire(client, argv, 0, 1000)


@command("pexpireat", arity=-3, flags="write fast", keys=(1, 1, 1), group="generic",
         summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds", since="2.6.0",
         complexity="O(1)")
def pexpireat(client: Client, argv: list[bytes]) -> int:
    """PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]"""
    return _expire(client, argv, 0, 1)


def _ttl(db: Database, key: bytes, now_ms: int) -> int:
    """Milliseconds left, or the absolute deadline when ``now_ms`` is 0; -2 no key, -1 no expiry."""
    if db.peek(key) is None:
        return -2
    deadline = db.expires.get(key)
    if deadline is None:
        return -1
    return max(deadline - now_ms, 0) if now_ms else deadline


def _ttl_reply(client: Client, key: bytes, relative: bool, in_seconds: bool) -> int:
    """TTL, PTTL, EXPIRETIME, PEXPIRETIME; seconds are rounded to nearest, as Redis does."""
    value = _ttl(client.db, key, client.broker.now_ms if relative else 0)
    if value < 0 or not in_seconds:
        return value
    return (value + 500) // 1000


@command("ttl", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic",
         summary="Get the time to live for a key in seconds", since="1.0.0", complexity="O(1)")
def ttl(client: Client, argv: list[bytes]) -> int:
    """TTL key"""
    return _ttl_reply(client, argv[1], True, True)


@command("pttl", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic",
         summary="Get the time to live for a key in milliseconds", since="2.6.0", complexity="O(1)")
def pttl(client: Client, argv: list[bytes]) -> int:
    """PTTL key"""
    return _ttl_reply(client, argv[1], True, False)


@command("expiretime", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic",
         summary="Get the expiration Unix timestamp for a key", since="7.0.0", complexity="O(1)")
def expiretime(client: Client, argv: list[bytes]) -> int:
    """EXPIRETIME key"""
    return _ttl_reply(client, argv[1], False, True)


@command("pexpiretime", arity=2, flags="readonly fast", keys=(1, 1, 1), group="generic",
         summary="Get the expiration Unix timestamp for a key in milliseconds", since="7.0.0",
         complexity="O(1)")
def pexpiretime(client: Client, argv: list[bytes]) -> int:
    """PEXPIRETIME key"""
    return _ttl_reply(client, argv[1], False, False)


@command("persist", arity=2, flags="write fast", keys=(1, 1, 1), group="generic",
         summary="Remove the expiration from a key", since="2.2.0", complexity="O(1)")
def persist(client: Client, argv: list[bytes]) -> int:
    """PERSIST key"""
    key = argv[1]
    db = client.db
    if db.get(key) is None or not db.persist(key):
        return 0
    client.touch(key)
    client.notify(ev.GENERIC, b"persist", key)
    return 1


# -- OBJECT ------------------------------------------------------------------------------------

container("object", group="generic", summary="A container for object introspection commands", since="2.2.3")

_OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]
_POLICY_NOTE = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
#: Redis shares the objects of integers 0..9999 (OBJ_SHARED_INTEGERS) unless an LRU/LFU policy needs per-key data.
_SHARED_INTEGERS = 10000
_SHARED_REFCOUNT = 2**31 - 1
_LFU_INIT_VAL = 5


def _integer_value(value: bytes) -> int | None:
    """The integer a string holds if Redis would store it int-encoded (canonical, fits a long)."""
    if len(value) > 20:
        return None
    try:
        return parse_int(value)
    except ReplyError:
        return None


def string_encoding(value: bytes) -> str:
    """``int``, ``embstr`` (up to 44 bytes, one allocation with the header) or ``raw``."""
    if _integer_value(value) is not None:
        return "int"
    return "embstr" if len(value) <= 44 else "raw"


def _lfu_policy(client: Client) -> bool:
    """Whether maxmemory-policy is an LFU one: OBJECT FREQ and IDLETIME each need the other kind."""
    return "lfu" in client.broker.config["maxmemory-policy"]


@command("object|encoding", arity=3, flags="readonly", keys=(2, 2, 1), group="generic",
         summary="Inspect the internal encoding of a Redis object", since="2.2.3", complexity="O(1)")
def object_encoding(client: Client, argv: list[bytes]) -> bytes | None:
    """OBJECT ENCODING key"""
    value = client.db.peek(argv[2])
    if value is None:
        return None
    if type(value) is bytes:
        return string_encoding(value).encode()
    return value.object_encoding(client.broker.config).encode()


@command("object|refcount", arity=3, flags="readonly", keys=(2, 2, 1), group="generic",
         summary="Get the number of references to the value of the key", since="2.2.3", complexity="O(1)")
def object_refcount(client: Client, argv: list[bytes]) -> int | None:
    """OBJECT REFCOUNT key"""
    value = client.db.peek(argv[2])
    if value is None:
        return None
    if type(value) is bytes and not (client.broker.config["maxmemory"] and (
            "lru" in client.broker.config["maxmemory-policy"] or _lfu_policy(client))):
        number = _integer_value(value)
        if number is not None and 0 <= number < _SHARED_INTEGERS:
            return _SHARED_REFCOUNT
    return 1


@command("object|idletime", arity=3, flags="readonly", keys=(2, 2, 1), group="generic",
         summary="Get the time since a Redis object was last accessed", since="2.2.3", complexity="O(1)")
def object_idletime(client: Client, argv: list[bytes]) -> int | None:
    """OBJECT IDLETIME key"""
    db = client.db
    if db.peek(argv[2]) is None:
        return None
    if _lfu_policy(client):
        raise ReplyError(f"ERR An LFU maxmemory policy is selected, idle time not tracked. {_POLICY_NOTE}")
    return db.idle_seconds(argv[2])


@command("object|freq", arity=3, flags="readonly", keys=(2, 2, 1), group="generic",
         summary="Get the logarithmic access frequency counter of a Redis object", since="4.0.0",
         complexity="O(1)")
def object_freq(client: Client, argv: list[bytes]) -> int | None:
    """OBJECT FREQ key"""
    db = client.db
    if db.peek(argv[2]) is None:
        return None
    if not _lfu_policy(client):
        raise ReplyError(f"ERR An LFU maxmemory policy is not selected, access frequency not tracked. {_POLICY_NOTE}")
    return _lfu_counter(client, db.idle_seconds(argv[2]))


def _lfu_counter(client: Client, idle_seconds: int) -> int:
    """Redis's LFU counter for a key last accessed ``idle_seconds`` ago, starting from LFU_INIT_VAL.

    Keys do not carry a hit counter (that would cost every lookup a second store for a policy
    postroom does not evict by), so repeated hits do not raise the value; decay follows
    ``lfu-decay-time`` as Redis's ``LFUDecrAndReturn``.
    """
    decay_minutes = client.broker.config["lfu-decay-time"]
    periods = idle_seconds // 60 // decay_minutes if decay_minutes else 0
    return max(_LFU_INIT_VAL - periods, 0)


@command("object|help", arity=2, flags="loading stale", group="generic", acl="keyspace",
         summary="Show helpful text about the different subcommands", since="6.2.0", complexity="O(1)")
def object_help(client: Client, argv: list[bytes]) -> list[str]:
    """OBJECT HELP"""
    return _OBJECT_HELP
