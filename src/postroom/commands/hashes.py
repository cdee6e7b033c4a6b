"""Hash commands (``t_hash.c``): Redis 7.0's, field expiry from 7.4 and HGETDEL/HGETEX/HSETEX from 8.0.

Every access to a hash with volatile fields first deletes the due ones
(:func:`~postroom.keyspace.hashes.expire_fields`), so replies never show an expired field. Field
TTLs propagate in absolute form (HPEXPIREAT, HSETEX ... PXAT) and fields deleted by a deadline in
the past propagate as HDEL, so the AOF replays to the same state whenever it is loaded.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..keyspace.hashes import HashValue, expire_fields, field_expiry
from ..keyspace.scan import parse_scan_options
from ..protocol.replies import OK, ReplyError
from .args import (
    LLONG_MAX,
    LLONG_MIN,
    NOT_FLOAT,
    SYNTAX_ERROR,
    invalid_expire_time,
    parse_int,
    parse_int_at_least,
)
from .effects import delete_if_emptied
from .registry import command
from .strings import add_long_doubles, format_long_double, parse_long_double

if TYPE_CHECKING:
    from ..client import Client

NOT_INTEGER_VALUE = ReplyError("ERR hash value is not an integer")
NOT_FLOAT_VALUE = ReplyError("ERR hash value is not a float")
OVERFLOW = ReplyError("ERR increment or decrement would overflow")
NAN_OR_INFINITY = ReplyError("ERR value is NaN or Infinity")
WOULD_BE_NAN = ReplyError("ERR increment would produce NaN or Infinity")
COUNT_RANGE = ReplyError(f"ERR value is out of range, value must between {-LLONG_MAX} and {LLONG_MAX}")
FIELDS_MISSING = ReplyError("ERR Mandatory argument FIELDS is missing or not at the right position")
NUMFIELDS_ERROR = ReplyError("ERR Parameter `numFields` should be greater than 0")
NUMFIELDS_MISMATCH = ReplyError("ERR The `numfields` parameter must match the number of arguments")
NEGATIVE_EXPIRE = ReplyError("ERR invalid expire time, must be >= 0")
#: Latest deadline a field may get (Redis's EB_EXPIRE_TIME_MAX, 2**48 - 1 ms).
MAX_DEADLINE = (1 << 48) - 1


def _hash(client: Client, key: bytes) -> HashValue | None:
    """The live hash at ``key`` (WRONGTYPE for other types), its due fields expired first."""
    value = client.db.get_typed(key, HashValue)
    if value is not None and value.next_deadline <= client.broker.now_ms and expire_fields(
        client.broker, client.db, key, value
    ):
        return None
    return value


def _writable_hash(client: Client, key: bytes) -> HashValue:
    """The live hash at ``key``, created (and added to the keyspace) when missing."""
    value = _hash(client, key)
    if value is None:
        value = HashValue()
        client.db.add(key, value)
    return value


# -- setting fields --------------------------------------------------------------------------


def _set_pairs(client: Client, key: bytes, pairs: list[bytes]) -> int:
    """HSET, HMSET, HSETNX: store ``field value`` pairs; the number of fields that were new."""
    value = _writable_hash(client, key)
    if value.listpack:
        value.check_encoding(client.broker.config, map(len, pairs))
    if len(pairs) == 2 and value.scan_order is None and value.expires is None:
        field = pairs[0]  # the common single-field HSET, without the general path's calls
        created = 0 if field in value else 1
        value[field] = pairs[1]
    else:
        put = value.put
        created = 0
        for i in range(0, len(pairs), 2):
            created += put(pairs[i], pairs[i + 1])
    if value.listpack:
        value.check_size(client.broker.config)
    client.touch(key)
    client.notify(ev.HASH, b"hset", key)
    return created


@command("hset", arity=-4, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Creates or modifies the value of a field in a hash.", since="2.0.0")
def hset(client: Client, argv: list[bytes]) -> int:
    """HSET key field value [field value ...]"""
    if len(argv) % 2:
        raise ReplyError("ERR wrong number of arguments for 'hset' command")
    return _set_pairs(client, argv[1], argv[2:])


@command("hmset", arity=-4, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Sets the values of multiple fields.", since="2.0.0")
def hmset(client: Client, argv: list[bytes]) -> str:
    """HMSET key field value [field value ...]"""
    if len(argv) % 2:
        raise ReplyError("ERR wrong number of arguments for 'hmset' command")
    _set_pairs(client, argv[1], argv[2:])
    return OK


@command("hsetnx", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Sets the value of a field in a hash only when the field doesn't exist.", since="2.0.0")
def hsetnx(client: Client, argv: list[bytes]) -> int:
    """HSETNX key field value"""
    key, field = argv[1], argv[2]
    value = _hash(client, key)
    if value is not None and field in value:
        return 0
    _set_pairs(client, key, argv[2:4])
    return 1


# -- reading fields --------------------------------------------------------------------------


@command("hget", arity=3, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the value of a field in a hash.", since="2.0.0")
def hget(client: Client, argv: list[bytes]) -> bytes | None:
    """HGET key field"""
    value = _hash(client, argv[1])
    return None if value is None else value.get(argv[2])


@command("hmget", arity=-3, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the values of all fields in a hash.", since="2.0.0")
def hmget(client: Client, argv: list[bytes]) -> list[bytes | None]:
    """HMGET key field [field ...]"""
    value = _hash(client, argv[1])
    if value is None:
        return [None] * (len(argv) - 2)
    get = value.get
    return [get(field) for field in argv[2:]]


@command("hgetall", arity=2, flags="readonly", keys=(1, 1, 1), group="hash",
         summary="Returns all fields and values in a hash.", since="2.0.0")
def hgetall(client: Client, argv: list[bytes]) -> dict[bytes, bytes]:
    """HGETALL key"""
    value = _hash(client, argv[1])
    return {} if value is None else dict(value)  # a snapshot: EXEC encodes replies after later commands ran


@command("hkeys", arity=2, flags="readonly", keys=(1, 1, 1), group="hash",
         summary="Returns all fields in a hash.", since="2.0.0")
def hkeys(client: Client, argv: list[bytes]) -> list[bytes]:
    """HKEYS key"""
    value = _hash(client, argv[1])
    return [] if value is None else list(value)


@command("hvals", arity=2, flags="readonly", keys=(1, 1, 1), group="hash",
         summary="Returns all values in a hash.", since="2.0.0")
def hvals(client: Client, argv: list[bytes]) -> list[bytes]:
    """HVALS key"""
    value = _hash(client, argv[1])
    return [] if value is None else list(value.values())


@command("hlen", arity=2, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the number of fields in a hash.", since="2.0.0")
def hlen(client: Client, argv: list[bytes]) -> int:
    """HLEN key"""
    value = _hash(client, argv[1])
    return 0 if value is None else len(value)


@command("hexists", arity=3, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Determines whether a field exists in a hash.", since="2.0.0")
def hexists(client: Client, argv: list[bytes]) -> int:
    """HEXISTS key field"""
    value = _hash(client, argv[1])
    return 1 if value is not None and argv[2] in value else 0


@command("hstrlen", arity=3, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the length of the value of a field.", since="3.2.0")
def hstrlen(client: Client, argv: list[bytes]) -> int:
    """HSTRLEN key field"""
    value = _hash(client, argv[1])
    if value is None:
        return 0
    return len(value.get(argv[2], b""))


@command("hdel", arity=-3, flags="write fast", keys=(1, 1, 1), group="hash",
         summary="Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
         since="2.0.0")
def hdel(client: Client, argv: list[bytes]) -> int:
    """HDEL key field [field ...]"""
    key = argv[1]
    value = _hash(client, key)
    if value is None:
        return 0
    remove = value.remove
    deleted = 0
    for field in argv[2:]:
        deleted += remove(field)
    if deleted:
        client.touch(key)
        client.notify(ev.HASH, b"hdel", key)
        delete_if_emptied(client, key, value)
    return deleted


# -- counters --------------------------------------------------------------------------------


@command("hincrby", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
         since="2.0.0")
def hincrby(client: Client, argv: list[bytes]) -> int:
    """HINCRBY key field increment"""
    increment = parse_int(argv[3])
    key, field = argv[1], argv[2]
    value = _writable_hash(client, key)
    old = value.get(field)
    current = 0 if old is None else parse_int(old, NOT_INTEGER_VALUE)
    result = current + increment
    if not LLONG_MIN <= result <= LLONG_MAX:
        raise OVERFLOW
    text = b"%d" % result
    _store_counter(client, key, value, field, text)
    client.notify(ev.HASH, b"hincrby", key)
    return result


@command("hincrbyfloat", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
         since="2.6.0")
def hincrbyfloat(client: Client, argv: list[bytes]) -> bytes:
    """HINCRBYFLOAT key field increment"""
    increment = parse_long_double(argv[3], NOT_FLOAT)
    if increment is None:
        raise NAN_OR_INFINITY
    key, field = argv[1], argv[2]
    value = _writable_hash(client, key)
    old = value.get(field)
    current = 0 if old is None else parse_long_double(old, NOT_FLOAT_VALUE)
    text = format_long_double(add_long_doubles(current, increment))  # type: ignore[arg-type]
    if text is None:
        raise WOULD_BE_NAN
    _store_counter(client, key, value, field, text)
    client.propagate_as([b"HSET", key, field, text])
    client.notify(ev.HASH, b"hincrbyfloat", key)
    return text


def _store_counter(client: Client, key: bytes, value: HashValue, field: bytes, text: bytes) -> None:
    """Write a counter's new value; its TTL stays, as Redis keeps it for in-place updates."""
    config = client.broker.config
    if value.listpack:
        value.check_encoding(config, (len(field), len(text)))
    if field in value:
        value[field] = text
    else:
        value.put(field, text)
        value.check_size(config)
    client.touch(key)


# -- random fields ---------------------------------------------------------------------------


@command("hrandfield", arity=-2, flags="readonly", keys=(1, 1, 1), group="hash",
         summary="Returns one or more random fields from a hash.", since="6.2.0")
def hrandfield(client: Client, argv: list[bytes]) -> Any:
    """HRANDFIELD key [count [WITHVALUES]]"""
    if len(argv) == 2:
        value = _hash(client, argv[1])
        return None if value is None else random.choice(list(value))
    if len(argv) > 4 or (len(argv) == 4 and argv[3].upper() != b"WITHVALUES"):
        raise SYNTAX_ERROR
    with_values = len(argv) == 4
    count = parse_int(argv[2])
    if count == LLONG_MIN:
        raise COUNT_RANGE
    value = _hash(client, argv[1])
    if value is None or count == 0:
        return []
    fields = list(value)
    if count < 0:
        picked = random.choices(fields, k=-count)
    elif count >= len(fields):
        picked = fields
    else:
        picked = random.sample(fields, count)
    if not with_values:
        return picked
    if client.resp == 2:
        return [item for field in picked for item in (field, value[field])]
    return [[field, value[field]] for field in picked]


@command("hscan", arity=-3, flags="readonly", keys=(1, 1, 1), group="hash",
         summary="Iterates over fields and values of a hash.", since="2.8.0")
def hscan(client: Client, argv: list[bytes]) -> list[Any]:
    """HSCAN key cursor [MATCH pattern] [COUNT count]"""
    options = parse_scan_options(argv, 2, False)
    value = _hash(client, argv[1])
    if value is None:
        return [b"0", []]
    cursor, fields = value.scan(options.cursor, options.count)
    items = []
    for field in options.matching(fields):
        items.append(field)
        items.append(value[field])
    return [b"%d" % cursor, items]


# -- field expiry (Redis 7.4) ----------------------------------------------------------------


def _fields(argv: list[bytes], at: int) -> list[bytes]:
    """``FIELDS numfields field [field ...]`` starting at ``argv[at]``, running to the end."""
    if at >= len(argv) or argv[at].upper() != b"FIELDS":
        raise FIELDS_MISSING
    if at + 1 >= len(argv):
        raise NUMFIELDS_ERROR
    numfields = parse_int_at_least(argv[at + 1], 1, NUMFIELDS_ERROR)
    if numfields != len(argv) - at - 2:
        raise NUMFIELDS_MISMATCH
    return argv[at + 2 :]


def _deadline(client: Client, arg: bytes, unit_ms: int, relative: bool, name: str) -> int:
    """An expire-time argument as an absolute unix-ms deadline, with Redis 7.4's checks."""
    number = parse_int(arg)
    if number < 0:
        raise NEGATIVE_EXPIRE
    base = client.broker.now_ms if relative else 0
    if number > MAX_DEADLINE // unit_ms or number * unit_ms > MAX_DEADLINE - base:
        raise invalid_expire_time(name)
    return number * unit_ms + base


_CONDITIONS = (b"NX", b"XX", b"GT", b"LT")


def _condition_met(condition: bytes | None, current: int | None, deadline: int) -> bool:
    """Whether NX/XX/GT/LT allows replacing a field's ``current`` deadline (``None``: no TTL)."""
    if condition is None:
        return True
    if condition == b"NX":
        return current is None
    if condition == b"XX":
        return current is not None
    if condition == b"GT":
        return current is not None and deadline > current  # no TTL counts as infinite
    return current is None or deadline < current


def _hexpire(client: Client, argv: list[bytes], unit_ms: int, relative: bool) -> list[int]:
    key = argv[1]
    name = argv[0].decode().lower()
    value = _hash(client, key)
    deadline = _deadline(client, argv[2], unit_ms, relative, name)
    condition: bytes | None = argv[3].upper()
    if condition not in _CONDITIONS:
        condition = None
    fields = _fields(argv, 3 if condition is None else 4)
    if value is None:
        return [-2] * len(fields)
    results = []
    changed: list[bytes] = []
    past = deadline <= client.broker.now_ms
    for field in fields:
        if field not in value:
            results.append(-2)
        elif not _condition_met(condition, value.ttl_of(field), deadline):
            results.append(0)
        else:
            changed.append(field)
            if past:
                value.remove(field)
                results.append(2)
            else:
                value.set_ttl(field, deadline)
                results.append(1)
    if changed:
        _fields_expiry_changed(client, key, value, changed, deadline, past)
    return results


def _fields_expiry_changed(client: Client, key: bytes, value: HashValue, fields: list[bytes], deadline: int,
                           past: bool) -> None:
    """The effects of giving ``fields`` a ``deadline`` (HEXPIRE family, HGETEX): when it had already
    ``past`` they were deleted and propagate as HDEL, else as HPEXPIREAT, so a replay never depends
    on the clock; future deadlines are handed to active field expiry."""
    client.touch(key)
    if past:
        client.propagate_as([b"HDEL", key, *fields])
        client.notify(ev.HASH, b"hdel", key)
        delete_if_emptied(client, key, value)
    else:
        client.propagate_as([b"HPEXPIREAT", key, b"%d" % deadline, b"FIELDS", b"%d" % len(fields), *fields])
        client.notify(ev.HASH, b"hexpire", key)
        field_expiry(client.broker).schedule(client.db, key, value)


@command("hexpire", arity=-6, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Set expiry for hash field using relative time to expire (seconds)", since="7.4.0")
def hexpire(client: Client, argv: list[bytes]) -> list[int]:
    """HEXPIRE key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]"""
    return _hexpire(client, argv, 1000, True)


@command("hpexpire", arity=-6, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Set expiry for hash field using relative time to expire (milliseconds)", since="7.4.0")
def hpexpire(client: Client, argv: list[bytes]) -> list[int]:
    """HPEXPIRE key milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]"""
    return _hexpire(client, argv, 1, True)


@command("hexpireat", arity=-6, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Set expiry for hash field using an absolute Unix timestamp (seconds)", since="7.4.0")
def hexpireat(client: Client, argv: list[bytes]) -> list[int]:
    """HEXPIREAT key unix-time-seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]"""
    return _hexpire(client, argv, 1000, False)


@command("hpexpireat", arity=-6, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Set expiry for hash field using an absolute Unix timestamp (milliseconds)", since="7.4.0")
def hpexpireat(client: Client, argv: list[bytes]) -> list[int]:
    """HPEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]"""
    return _hexpire(client, argv, 1, False)


def _ttl_query(client: Client, argv: list[bytes], convert: Any) -> list[int]:
    """HTTL family: ``convert(deadline, now_ms)`` per field; -2 for a missing field, -1 without TTL."""
    value = _hash(client, argv[1])
    fields = _fields(argv, 2)
    if value is None:
        return [-2] * len(fields)
    results = []
    for field in fields:
        if field not in value:
            results.append(-2)
        else:
            deadline = value.ttl_of(field)
            results.append(-1 if deadline is None else convert(deadline, client.broker.now_ms))
    return results


@command("httl", arity=-5, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the TTL in seconds of a hash field.", since="7.4.0")
def httl(client: Client, argv: list[bytes]) -> list[int]:
    """HTTL key FIELDS numfields field [field ...]"""
    return _ttl_query(client, argv, lambda deadline, now: (deadline - now + 500) // 1000)


@command("hpttl", arity=-5, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the TTL in milliseconds of a hash field.", since="7.4.0")
def hpttl(client: Client, argv: list[bytes]) -> list[int]:
    """HPTTL key FIELDS numfields field [field ...]"""
    return _ttl_query(client, argv, lambda deadline, now: deadline - now)


@command("hexpiretime", arity=-5, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the expiration time of a hash field as a Unix timestamp, in seconds.", since="7.4.0")
def hexpiretime(client: Client, argv: list[bytes]) -> list[int]:
    """HEXPIRETIME key FIELDS numfields field [field ...]"""
    return _ttl_query(client, argv, lambda deadline, now: (deadline + 500) // 1000)


@command("hpexpiretime", arity=-5, flags="readonly fast", keys=(1, 1, 1), group="hash",
         summary="Returns the expiration time of a hash field as a Unix timestamp, in msec.", since="7.4.0")
def hpexpiretime(client: Client, argv: list[bytes]) -> list[int]:
    """HPEXPIRETIME key FIELDS numfields field [field ...]"""
    return _ttl_query(client, argv, lambda deadline, now: deadline)


@command("hpersist", arity=-5, flags="write fast", keys=(1, 1, 1), group="hash",
         summary="Removes the expiration time for each specified field", since="7.4.0")
def hpersist(client: Client, argv: list[bytes]) -> list[int]:
    """HPERSIST key FIELDS numfields field [field ...]"""
    key = argv[1]
    value = _hash(client, key)
    fields = _fields(argv, 2)
    if value is None:
        return [-2] * len(fields)
    results = []
    for field in fields:
        if field not in value:
            results.append(-2)
        elif value.ttl_of(field) is None:
            results.append(-1)
        else:
            value.forget_ttl(field)
            results.append(1)
    if 1 in results:
        client.touch(key)
        client.notify(ev.HASH, b"hpersist", key)
    return results


# -- get-and-delete, get-and-expire, set-with-expiry (Redis 8.0) -----------------------------


@command("hgetdel", arity=-5, flags="write fast", keys=(1, 1, 1), group="hash",
         summary="Returns the value of a field and deletes it from the hash.", since="8.0.0")
def hgetdel(client: Client, argv: list[bytes]) -> list[bytes | None]:
    """HGETDEL key FIELDS numfields field [field ...]"""
    key = argv[1]
    value = _hash(client, key)
    fields = _fields(argv, 2)
    if value is None:
        return [None] * len(fields)
    results = []
    deleted = []
    for field in fields:
        item = value.get(field)
        results.append(item)
        if item is not None and value.remove(field):
            deleted.append(field)
    if deleted:
        client.touch(key)
        client.propagate_as([b"HDEL", key, *deleted])
        client.notify(ev.HASH, b"hdel", key)
        delete_if_emptied(client, key, value)
    return results


_EXPIRY_OPTIONS = {b"EX": (1000, True), b"PX": (1, True), b"EXAT": (1000, False), b"PXAT": (1, False)}


def _expiry_option(client: Client, argv: list[bytes], name: str, extra: tuple[bytes, ...]) -> tuple[Any, int]:
    """``[EX s | PX ms | EXAT s | PXAT ms | <extra>]`` at ``argv[2]``: (option, deadline) and the FIELDS index."""
    option = argv[2].upper() if len(argv) > 2 else b""
    if option in _EXPIRY_OPTIONS:
        if len(argv) < 4:
            raise SYNTAX_ERROR
        unit_ms, relative = _EXPIRY_OPTIONS[option]
        number = parse_int(argv[3])
        if number <= 0 and relative:
            raise invalid_expire_time(name)
        return (option, _deadline(client, argv[3], unit_ms, relative, name)), 4
    if option in extra:
        return (option, 0), 3
    return (None, 0), 2


@command("hgetex", arity=-5, flags="write fast", keys=(1, 1, 1), group="hash",
         summary="Get the value of one or more fields of a given hash key, and optionally set their expiration.",
         since="8.0.0")
def hgetex(client: Client, argv: list[bytes]) -> list[bytes | None]:
    """HGETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST] FIELDS numfields field [field ...]"""
    key = argv[1]
    value = _hash(client, key)
    (option, deadline), at = _expiry_option(client, argv, "hgetex", (b"PERSIST",))
    fields = _fields(argv, at)
    if value is None:
        return [None] * len(fields)
    results = [value.get(field) for field in fields]
    if option is None:
        return results
    present = [field for field in dict.fromkeys(fields) if field in value]
    if option == b"PERSIST":
        persisted = [field for field in present if value.ttl_of(field) is not None]
        for field in persisted:
            value.forget_ttl(field)
        if persisted:
            client.touch(key)
            client.propagate_as([b"HPERSIST", key, b"FIELDS", b"%d" % len(persisted), *persisted])
            client.notify(ev.HASH, b"hpersist", key)
        return results
    if not present:
        return results
    past = deadline <= client.broker.now_ms
    for field in present:
        if past:
            value.remove(field)
        else:
            value.set_ttl(field, deadline)
    _fields_expiry_changed(client, key, value, present, deadline, past)
    return results


@command("hsetex", arity=-6, flags="write denyoom fast", keys=(1, 1, 1), group="hash",
         summary="Set the value of one or more fields of a given hash key, and optionally set their expiration.",
         since="8.0.0")
def hsetex(client: Client, argv: list[bytes]) -> int:
    """HSETEX key [FNX | FXX] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL] FIELDS numfields field value [field value ...]"""
    key = argv[1]
    existence: bytes | None = argv[2].upper()
    if existence not in (b"FNX", b"FXX"):
        existence = None
    rest = argv[:2] + argv[3:] if existence else argv
    (option, deadline), at = _expiry_option(client, rest, "hsetex", (b"KEEPTTL",))
    if at >= len(rest) or rest[at].upper() != b"FIELDS":
        raise FIELDS_MISSING
    if at + 1 >= len(rest):
        raise NUMFIELDS_ERROR
    numfields = parse_int_at_least(rest[at + 1], 1, NUMFIELDS_ERROR)
    pairs = rest[at + 2 :]
    if len(pairs) != 2 * numfields:
        raise NUMFIELDS_MISMATCH
    value = _hash(client, key)
    names = pairs[::2]
    if existence == b"FNX" and value is not None and any(field in value for field in names):
        return 0
    if existence == b"FXX" and (value is None or not all(field in value for field in names)):
        return 0
    keep = {} if option != b"KEEPTTL" or value is None else {f: value.ttl_of(f) for f in names}
    _set_pairs(client, key, pairs)
    value = client.db.data[key]
    for field, kept in keep.items():
        if kept is not None:
            value.set_ttl(field, kept)
    if option is not None and option != b"KEEPTTL":
        if deadline <= client.broker.now_ms:
            for field in names:
                value.remove(field)
            client.notify(ev.HASH, b"hdel", key)
            client.propagate_as([b"HDEL", key, *dict.fromkeys(names)])
            delete_if_emptied(client, key, value)
            return 1
        for field in names:
            value.set_ttl(field, deadline)
        client.notify(ev.HASH, b"hexpire", key)
        client.propagate_as([b"HSETEX", key, b"PXAT", b"%d" % deadline, b"FIELDS", b"%d" % numfields, *pairs])
    if value.expires:
        field_expiry(client.broker).schedule(client.db, key, value)
    return 1
