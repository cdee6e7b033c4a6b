"""Set commands (``t_set.c``).

Random picks (SPOP, SRANDMEMBER) are not reproducible, so SPOP propagates as SREM of the members
it popped (DEL when it popped them all, as Redis 7.0 does) and replicas and the AOF stay exact.
"""

from __future__ import annotations

import random
from itertools import islice
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..keyspace.database import WRONGTYPE
from ..keyspace.scan import ScanOrder, parse_scan_options
from ..keyspace.sets import SetValue
from ..protocol.replies import ReplyError
from .args import (
    LLONG_MAX,
    MUST_BE_POSITIVE,
    NUMKEYS_ERROR,
    SYNTAX_ERROR,
    numkeys_key_finder,
    parse_int,
    parse_int_at_least,
)
from .effects import delete_if_emptied
from .registry import command

if TYPE_CHECKING:
    from ..client import Client

TOO_MANY_KEYS = ReplyError("ERR Number of keys can't be greater than number of args")
LIMIT_NEGATIVE = ReplyError("ERR LIMIT can't be negative")
COUNT_RANGE = ReplyError(f"ERR value is out of range, value must between {-LLONG_MAX} and {LLONG_MAX}")
EMPTY: frozenset[bytes] = frozenset()
RANDOM_PICK_LIMIT = 65536


def _max_intset(client: Client) -> int:
    """The intset size limit a set created or grown now must respect (it can change at runtime)."""
    return client.broker.config["set-max-intset-entries"]


@command("sadd", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="set",
         summary="Adds one or more members to a set. Creates the key if it doesn't exist.")
def sadd(client: Client, argv: list[bytes]) -> int:
    """SADD key member [member ...]"""
    key = argv[1]
    db = client.db
    value = db.get_typed(key, SetValue)
    if value is None:
        value = SetValue(argv[2:], _max_intset(client))
        db.add(key, value)
        added = len(value)
    else:
        added = value.add_members(argv[2:], _max_intset(client) if value.intset else 0)
        if not added:
            return 0
    client.touch(key)
    client.notify(ev.SET, b"sadd", key)
    return added


@command("srem", arity=-3, flags="write fast", keys=(1, 1, 1), group="set",
         summary="Removes one or more members from a set. Deletes the set if the last member was removed.")
def srem(client: Client, argv: list[bytes]) -> int:
    """SREM key member [member ...]"""
    key = argv[1]
    value = client.db.get_typed(key, SetValue)
    if value is None:
        return 0
    removed = value.remove_members(argv[2:])
    if removed:
        client.touch(key)
        client.notify(ev.SET, b"srem", key)
        delete_if_emptied(client, key, value)
    return removed


@command("smembers", arity=2, flags="readonly", keys=(1, 1, 1), group="set",
         summary="Returns all members of a set.")
def smembers(client: Client, argv: list[bytes]) -> Any:
    """SMEMBERS key"""
    value = client.db.get_typed(argv[1], SetValue)
    return EMPTY if value is None else value.copy()  # a snapshot: EXEC encodes replies after later commands ran


@command("sismember", arity=3, flags="readonly fast", keys=(1, 1, 1), group="set",
         summary="Determines whether a member belongs to a set.")
def sismember(client: Client, argv: list[bytes]) -> int:
    """SISMEMBER key member"""
    value = client.db.get_typed(argv[1], SetValue)
    return 1 if value is not None and argv[2] in value else 0


@command("smismember", arity=-3, flags="readonly fast", keys=(1, 1, 1), group="set",
         summary="Determines whether multiple members belong to a set.", since="6.2.0")
def smismember(client: Client, argv: list[bytes]) -> list[int]:
    """SMISMEMBER key member [member ...]"""
    value = client.db.get_typed(argv[1], SetValue) or EMPTY
    return [1 if member in value else 0 for member in argv[2:]]


@command("scard", arity=2, flags="readonly fast", keys=(1, 1, 1), group="set",
         summary="Returns the number of members in a set.")
def scard(client: Client, argv: list[bytes]) -> int:
    """SCARD key"""
    value = client.db.get_typed(argv[1], SetValue)
    return 0 if value is None else len(value)


@command("spop", arity=-2, flags="write fast", keys=(1, 1, 1), group="set",
         summary="Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.")
def spop(client: Client, argv: list[bytes]) -> Any:
    """SPOP key [count]"""
    key = argv[1]
    if len(argv) == 2:
        value = client.db.get_typed(key, SetValue)
        if value is None:
            return None
        member = _random_member(value)
        value.remove_members((member,))
        client.propagate_as([b"SREM", key, member])
        client.touch(key)
        client.notify(ev.SET, b"spop", key)
        delete_if_emptied(client, key, value)
        return member
    if len(argv) > 3:
        raise SYNTAX_ERROR
    count = parse_int_at_least(argv[2], 0, MUST_BE_POSITIVE)
    value = client.db.get_typed(key, SetValue)
    if value is None or count == 0:
        return EMPTY
    client.notify(ev.SET, b"spop", key)
    client.touch(key)
    if count >= len(value):
        popped = value.copy()
        client.db.delete(key)
        client.notify(ev.GENERIC, b"del", key)
        client.propagate_as([b"DEL", key])
        return popped
    chosen = _random_sample(value, count)
    value.remove_members(chosen)
    client.propagate_as([b"SREM", key, *chosen])
    return set(chosen)


def _random_member(value: SetValue) -> bytes:
    """A uniformly random member.

    Python sets have no random access. Up to :data:`RANDOM_PICK_LIMIT` members a pick walks to a
    random position, O(n) at C speed; beyond it, the member at a random rank of the set's SCAN
    index (:class:`ScanOrder`: built once in O(n log n), then kept current by every add and
    remove, about 100 bytes a member), O(log n).
    """
    rank = random.randrange(len(value))
    if len(value) <= RANDOM_PICK_LIMIT:
        return next(islice(set.__iter__(value), rank, None))
    return _scan_order(value).nth(value, rank)


def _random_sample(value: SetValue, count: int) -> list[bytes]:
    """``count`` distinct members (``count < len(value)``), uniformly (SPOP and SRANDMEMBER count)."""
    if len(value) <= RANDOM_PICK_LIMIT:
        return random.sample(tuple(set.__iter__(value)), count)
    order = _scan_order(value)
    return [order.nth(value, rank) for rank in random.sample(range(len(value)), count)]


def _random_choices(value: SetValue, count: int) -> list[bytes]:
    """``count`` members drawn with replacement (SRANDMEMBER with a negative count)."""
    if len(value) <= RANDOM_PICK_LIMIT:
        return random.choices(tuple(set.__iter__(value)), k=count)
    order = _scan_order(value)
    return [order.nth(value, rank) for rank in random.choices(range(len(value)), k=count)]


def _scan_order(value: SetValue) -> ScanOrder:
    if value.scan_order is None:
        value.scan_order = ScanOrder()
    return value.scan_order


@command("srandmember", arity=-2, flags="readonly", keys=(1, 1, 1), group="set",
         summary="Get one or multiple random members from a set")
def srandmember(client: Client, argv: list[bytes]) -> Any:
    """SRANDMEMBER key [count]"""
    if len(argv) > 3:
        raise SYNTAX_ERROR
    if len(argv) == 2:
        value = client.db.get_typed(argv[1], SetValue)
        return None if value is None else _random_member(value)
    count = parse_int(argv[2])
    if count == -LLONG_MAX - 1:
        raise COUNT_RANGE
    value = client.db.get_typed(argv[1], SetValue)
    if value is None or count == 0:
        return []
    if count < 0:
        return _random_choices(value, -count)
    if count >= len(value):
        return list(value)
    return _random_sample(value, count)


@command("smove", arity=4, flags="write fast", keys=(1, 2, 1), group="set",
         summary="Moves a member from one set to another.")
def smove(client: Client, argv: list[bytes]) -> int:
    """SMOVE source destination member"""
    source, destination, member = argv[1], argv[2], argv[3]
    db = client.db
    src = db.get(source)
    dst = db.get(destination)
    if src is None:
        return 0
    if type(src) is not SetValue or (dst is not None and type(dst) is not SetValue):
        raise WRONGTYPE
    if src is dst:
        return 1 if member in src else 0
    if not src.remove_members((member,)):
        return 0
    client.notify(ev.SET, b"srem", source)
    delete_if_emptied(client, source, src)
    if dst is None:
        dst = SetValue((), _max_intset(client))
        db.add(destination, dst)
    client.touch(source)
    if dst.add_members([member], _max_intset(client) if dst.intset else 0):
        client.touch(destination)
        client.notify(ev.SET, b"sadd", destination)
    return 1


# -- algebra ---------------------------------------------------------------------------------


def _sets(client: Client, keys: list[bytes]) -> list[SetValue | None]:
    """The sets at ``keys`` (None where missing), every key type-checked as Redis does."""
    get_typed = client.db.get_typed
    return [get_typed(key, SetValue) for key in keys]


def _intersection(sets: list[SetValue | None], limit: int = 0) -> list[bytes]:
    """Members of every set, probing from the smallest; stops at ``limit`` members (0: no limit)."""
    if any(s is None or not s for s in sets):
        return []
    ordered = sorted(sets, key=len)  # type: ignore[arg-type]
    smallest, others = ordered[0], ordered[1:]
    result = []
    for member in smallest:
        for other in others:
            if member not in other:  # type: ignore[operator]
                break
        else:
            result.append(member)
            if limit and len(result) >= limit:
                break
    return result


def _union(sets: list[SetValue | None]) -> set[bytes]:
    """Members of any set (``set.__iter__`` skips an intset's sorted iteration: order is irrelevant)."""
    result: set[bytes] = set()
    for s in sets:
        if s:
            result.update(set.__iter__(s))
    return result


def _difference(sets: list[SetValue | None]) -> set[bytes]:
    """Members of the first set that no other set holds; stops early once nothing is left."""
    first = sets[0]
    if not first:
        return set()
    result = set(set.__iter__(first))
    for s in sets[1:]:
        if s:
            result.difference_update(set.__iter__(s))
            if not result:
                break
    return result


def _as_reply(client: Client, members: Any) -> Any:
    """A result set listed as Redis would list the set it builds (intsets in numeric order)."""
    return SetValue(members, _max_intset(client)) if members else EMPTY


def _store(client: Client, destination: bytes, members: Any, event: bytes) -> int:
    """The *STORE forms: ``destination`` is replaced by the result, or deleted when it is empty."""
    db = client.db
    if members:
        db.set(destination, SetValue(members, _max_intset(client)))
        client.touch(destination)
        client.notify(ev.SET, event, destination)
        return len(members)
    if db.delete(destination):
        client.touch(destination)
        client.notify(ev.GENERIC, b"del", destination)
    return 0


@command("sinter", arity=-2, flags="readonly", keys=(1, -1, 1), group="set",
         summary="Returns the intersect of multiple sets.")
def sinter(client: Client, argv: list[bytes]) -> Any:
    """SINTER key [key ...]"""
    return _as_reply(client, _intersection(_sets(client, argv[1:])))


@command("sintercard", arity=-3, flags="readonly", key_finder=numkeys_key_finder(1), group="set",
         summary="Returns the number of members of the intersect of multiple sets.", since="7.0.0")
def sintercard(client: Client, argv: list[bytes]) -> int:
    """SINTERCARD numkeys key [key ...] [LIMIT limit]"""
    numkeys = parse_int_at_least(argv[1], 1, NUMKEYS_ERROR)
    if numkeys > len(argv) - 2:
        raise TOO_MANY_KEYS
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].upper() == b"LIMIT" and i + 1 < len(argv):
            limit = parse_int_at_least(argv[i + 1], 0, LIMIT_NEGATIVE)
            i += 2
        else:
            raise SYNTAX_ERROR
    return len(_intersection(_sets(client, argv[2 : 2 + numkeys]), limit))


@command("sinterstore", arity=-3, flags="write denyoom", keys=(1, -1, 1), group="set",
         summary="Stores the intersect of multiple sets in a key.")
def sinterstore(client: Client, argv: list[bytes]) -> int:
    """SINTERSTORE destination key [key ...]"""
    return _store(client, argv[1], _intersection(_sets(client, argv[2:])), b"sinterstore")


@command("sunion", arity=-2, flags="readonly", keys=(1, -1, 1), group="set",
         summary="Returns the union of multiple sets.")
def sunion(client: Client, argv: list[bytes]) -> Any:
    """SUNION key [key ...]"""
    return _as_reply(client, _union(_sets(client, argv[1:])))


@command("sunionstore", arity=-3, flags="write denyoom", keys=(1, -1, 1), group="set",
         summary="Stores the union of multiple sets in a key.")
def sunionstore(client: Client, argv: list[bytes]) -> int:
    """SUNIONSTORE destination key [key ...]"""
    return _store(client, argv[1], _union(_sets(client, argv[2:])), b"sunionstore")


@command("sdiff", arity=-2, flags="readonly", keys=(1, -1, 1), group="set",
         summary="Returns the difference of multiple sets.")
def sdiff(client: Client, argv: list[bytes]) -> Any:
    """SDIFF key [key ...]"""
    return _as_reply(client, _difference(_sets(client, argv[1:])))


@command("sdiffstore", arity=-3, flags="write denyoom", keys=(1, -1, 1), group="set",
         summary="Stores the difference of multiple sets in a key.")
def sdiffstore(client: Client, argv: list[bytes]) -> int:
    """SDIFFSTORE destination key [key ...]"""
    return _store(client, argv[1], _difference(_sets(client, argv[2:])), b"sdiffstore")


@command("sscan", arity=-3, flags="readonly", keys=(1, 1, 1), group="set",
         summary="Iterates over members of a set.", since="2.8.0")
def sscan(client: Client, argv: list[bytes]) -> list[Any]:
    """SSCAN key cursor [MATCH pattern] [COUNT count]"""
    options = parse_scan_options(argv, 2, False)
    value = client.db.get_typed(argv[1], SetValue)
    if value is None:
        return [b"0", []]
    cursor, members = value.scan(options.cursor, options.count)
    return [b"%d" % cursor, options.matching(members)]
