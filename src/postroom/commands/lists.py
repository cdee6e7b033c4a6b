"""List commands (``t_list.c``), including the blocking pops.

Blocking pops follow Redis 7.0: the non-blocking path runs first; if every key is empty the
handler returns a :class:`~postroom.blocking.Block` and is re-executed when a key becomes ready.
On re-execution (``client.waiter`` is set) only the key being served is considered, and a key
holding another type keeps the client waiting instead of failing it, as Redis 7.0 does. Every
pop propagates as its non-blocking form (BLPOP -> LPOP key, BLMOVE -> LMOVE, BLMPOP -> LPOP key
count) so the AOF never replays a command that could block.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..blocking import Block
from ..keyspace.lists import ListValue
from ..protocol.replies import NULL_ARRAY, OK, ReplyError
from .args import (
    LLONG_MAX,
    MUST_BE_POSITIVE,
    NUMKEYS_ERROR,
    SYNTAX_ERROR,
    numkeys_key_finder,
    parse_int,
    parse_int_at_least,
    parse_timeout_seconds,
)
from .effects import delete_if_emptied
from .registry import command

if TYPE_CHECKING:
    from ..client import Client

NO_SUCH_KEY = ReplyError("ERR no such key")
INDEX_OUT_OF_RANGE = ReplyError("ERR index out of range")
COUNT_ERROR = ReplyError("ERR count should be greater than 0")
RANK_ZERO = ReplyError(
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
COUNT_NEGATIVE = ReplyError("ERR COUNT can't be negative")
MAXLEN_NEGATIVE = ReplyError("ERR MAXLEN can't be negative")

LEFT = b"LEFT"
RIGHT = b"RIGHT"
#: Keyspace events of a move, by end: (pushed onto it, popped from it).
_EVENTS = {LEFT: (b"lpush", b"lpop"), RIGHT: (b"rpush", b"rpop")}


def _side(arg: bytes) -> bytes:
    """A ``LEFT | RIGHT`` argument, upper-cased (the form propagated in LMOVE)."""
    side = arg.upper()
    if side != LEFT and side != RIGHT:
        raise SYNTAX_ERROR
    return side


# -- pushes ----------------------------------------------------------------------------------


def _push(client: Client, argv: list[bytes], left: bool, create: bool) -> int:
    """Push ``argv[2:]`` on one end; LPUSHX/RPUSHX (``create=False``) leave a missing key alone."""
    key = argv[1]
    db = client.db
    value = db.get_typed(key, ListValue)
    if value is None:
        if not create:
            return 0
        value = ListValue()
        db.add(key, value)
    if left:
        value.extendleft(argv[2:])
    else:
        value.extend(argv[2:])
    client.touch(key)
    client.notify(ev.LIST, b"lpush" if left else b"rpush", key)
    return len(value)


@command("lpush", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list",
         summary="Prepends one or more elements to a list. Creates the key if it doesn't exist.")
def lpush(client: Client, argv: list[bytes]) -> int:
    """LPUSH key element [element ...]"""
    return _push(client, argv, True, True)


@command("rpush", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list",
         summary="Appends one or more elements to a list. Creates the key if it doesn't exist.")
def rpush(client: Client, argv: list[bytes]) -> int:
    """RPUSH key element [element ...]"""
    return _push(client, argv, False, True)


@command("lpushx", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list",
         summary="Prepends one or more elements to a list only when the list exists.", since="2.2.0")
def lpushx(client: Client, argv: list[bytes]) -> int:
    """LPUSHX key element [element ...]"""
    return _push(client, argv, True, False)


@command("rpushx", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list",
         summary="Appends an element to a list only when the list exists.", since="2.2.0")
def rpushx(client: Client, argv: list[bytes]) -> int:
    """RPUSHX key element [element ...]"""
    return _push(client, argv, False, False)


# -- pops ------------------------------------------------------------------------------------


def _pop_count(client: Client, key: bytes, value: ListValue, left: bool, count: int) -> list[bytes]:
    """Pop up to ``count`` elements from one end, with the pop event and the empty-key delete."""
    if count >= len(value):
        popped = list(value)
        if not left:
            popped.reverse()
        value.clear()
    elif left:
        pop = value.popleft
        popped = [pop() for _ in range(count)]
    else:
        pop = value.pop
        popped = [pop() for _ in range(count)]
    client.touch(key)
    client.notify(ev.LIST, b"lpop" if left else b"rpop", key)
    delete_if_emptied(client, key, value)
    return popped


def _pop(client: Client, argv: list[bytes], left: bool) -> Any:
    """LPOP/RPOP: one element (null bulk when missing) or, with a count, a list (null array when missing)."""
    if len(argv) > 3:
        raise ReplyError(f"ERR wrong number of arguments for '{'lpop' if left else 'rpop'}' command")
    key = argv[1]
    if len(argv) == 3:
        count = parse_int_at_least(argv[2], 0, MUST_BE_POSITIVE)
        value = client.db.get_typed(key, ListValue)
        if value is None:
            return NULL_ARRAY
        if count == 0:
            return []
        return _pop_count(client, key, value, left, count)
    value = client.db.get_typed(key, ListValue)
    if value is None:
        return None
    element = value.popleft() if left else value.pop()
    client.touch(key)
    client.notify(ev.LIST, b"lpop" if left else b"rpop", key)
    if not value:  # delete_if_emptied inlined: the single-element pop is the benchmarked path
        client.db.delete(key)
        client.notify(ev.GENERIC, b"del", key)
    return element


@command("lpop", arity=-2, flags="write fast", keys=(1, 1, 1), group="list",
         summary="Returns the first elements in a list after removing it. Deletes the list if the last element was popped.")
def lpop(client: Client, argv: list[bytes]) -> Any:
    """LPOP key [count]"""
    return _pop(client, argv, True)


@command("rpop", arity=-2, flags="write fast", keys=(1, 1, 1), group="list",
         summary="Returns and removes the last elements of a list. Deletes the list if the last element was popped.")
def rpop(client: Client, argv: list[bytes]) -> Any:
    """RPOP key [count]"""
    return _pop(client, argv, False)


# -- reads -----------------------------------------------------------------------------------


@command("llen", arity=2, flags="readonly fast", keys=(1, 1, 1), group="list",
         summary="Returns the length of a list.")
def llen(client: Client, argv: list[bytes]) -> int:
    """LLEN key"""
    value = client.db.get_typed(argv[1], ListValue)
    return 0 if value is None else len(value)


def list_range(value: ListValue, start: int, stop: int) -> list[bytes]:
    """Elements ``start..stop`` (inclusive, negative from the end), walking from the nearer end."""
    size = len(value)
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    if start < 0:
        start = 0
    if start > stop or start >= size:
        return []
    if stop >= size:
        stop = size - 1
    if start == 0 and stop == size - 1:
        return list(value)
    if start <= size - 1 - stop:
        return list(islice(value, start, stop + 1))
    tail = list(islice(reversed(value), size - 1 - stop, size - start))
    tail.reverse()
    return tail


@command("lrange", arity=4, flags="readonly", keys=(1, 1, 1), group="list",
         summary="Returns a range of elements from a list.")
def lrange(client: Client, argv: list[bytes]) -> list[bytes]:
    """LRANGE key start stop"""
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    value = client.db.get_typed(argv[1], ListValue)
    if value is None:
        return []
    return list_range(value, start, stop)


@command("lindex", arity=3, flags="readonly", keys=(1, 1, 1), group="list",
         summary="Returns an element from a list by its index.")
def lindex(client: Client, argv: list[bytes]) -> bytes | None:
    """LINDEX key index"""
    value = client.db.get_typed(argv[1], ListValue)
    if value is None:
        return None
    index = parse_int(argv[2])
    if -len(value) <= index < len(value):
        return value[index]
    return None


@command("lpos", arity=-3, flags="readonly", keys=(1, 1, 1), group="list",
         summary="Returns the index of matching elements in a list.", since="6.0.6")
def lpos(client: Client, argv: list[bytes]) -> Any:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]"""
    rank, count, maxlen = 1, -1, 0
    i, n = 3, len(argv)
    while i < n:
        option = argv[i].upper()
        if i + 1 >= n:
            raise SYNTAX_ERROR
        if option == b"RANK":
            rank = parse_int(argv[i + 1])
            if rank == -LLONG_MAX - 1:
                rank = -1  # Redis 7.0 negates it to itself, which then matches the first hit from the tail
            if rank == 0:
                raise RANK_ZERO
        elif option == b"COUNT":
            count = parse_int_at_least(argv[i + 1], 0, COUNT_NEGATIVE)
        elif option == b"MAXLEN":
            maxlen = parse_int_at_least(argv[i + 1], 0, MAXLEN_NEGATIVE)
        else:
            raise SYNTAX_ERROR
        i += 2
    value = client.db.get_typed(argv[1], ListValue)
    if value is None:
        return [] if count != -1 else None
    element = argv[2]
    size = len(value)
    if rank > 0:
        indexes: Any = range(size)
        items: Any = value
        skip = rank - 1
    else:
        indexes = range(size - 1, -1, -1)
        items = reversed(value)
        skip = -rank - 1
    if maxlen:
        items = islice(items, maxlen)
    wanted = count if count > 0 else size + 1
    found: list[int] = []
    for index, item in zip(indexes, items, strict=False):
        if item == element:
            if skip:
                skip -= 1
                continue
            found.append(index)
            if len(found) >= wanted:
                break
    if count == -1:
        return found[0] if found else None
    return found


# -- in-place edits --------------------------------------------------------------------------


@command("lset", arity=4, flags="write denyoom", keys=(1, 1, 1), group="list",
         summary="Sets the value of an element in a list by its index.")
def lset(client: Client, argv: list[bytes]) -> str:
    """LSET key index element"""
    key = argv[1]
    value = client.db.get_typed(key, ListValue)
    if value is None:
        raise NO_SUCH_KEY
    index = parse_int(argv[2])
    if not -len(value) <= index < len(value):
        raise INDEX_OUT_OF_RANGE
    value[index] = argv[3]
    client.touch(key)
    client.notify(ev.LIST, b"lset", key)
    return OK


@command("linsert", arity=5, flags="write denyoom", keys=(1, 1, 1), group="list",
         summary="Inserts an element before or after another element in a list.", since="2.2.0")
def linsert(client: Client, argv: list[bytes]) -> int:
    """LINSERT key <BEFORE | AFTER> pivot element"""
    where = argv[2].upper()
    if where != b"BEFORE" and where != b"AFTER":
        raise SYNTAX_ERROR
    key = argv[1]
    value = client.db.get_typed(key, ListValue)
    if value is None:
        return 0
    try:
        index = value.index(argv[3])
    except ValueError:
        return -1
    value.insert(index if where == b"BEFORE" else index + 1, argv[4])
    client.touch(key)
    client.notify(ev.LIST, b"linsert", key)
    return len(value)


@command("lrem", arity=4, flags="write", keys=(1, 1, 1), group="list",
         summary="Removes elements from a list. Deletes the list if the last element was removed.")
def lrem(client: Client, argv: list[bytes]) -> int:
    """LREM key count element"""
    count = parse_int(argv[2])
    key = argv[1]
    value = client.db.get_typed(key, ListValue)
    if value is None:
        return 0
    element = argv[3]
    if count == 1 or (count == -1 and len(value) == 1):
        try:
            value.remove(element)  # the common queue acknowledgement, done in C
        except ValueError:
            return 0
        removed = 1
    else:
        limit = abs(count) or len(value)
        kept: list[bytes] = []
        removed = 0
        for item in (value if count >= 0 else reversed(value)):
            if removed < limit and item == element:
                removed += 1
            else:
                kept.append(item)
        if not removed:
            return 0
        if count < 0:
            kept.reverse()
        value.clear()
        value.extend(kept)
    client.touch(key)
    client.notify(ev.LIST, b"lrem", key)
    delete_if_emptied(client, key, value)
    return removed


@command("ltrim", arity=4, flags="write", keys=(1, 1, 1), group="list",
         summary="Removes elements from both ends a list. Deletes the list if all elements were trimmed.")
def ltrim(client: Client, argv: list[bytes]) -> str:
    """LTRIM key start stop"""
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    key = argv[1]
    value = client.db.get_typed(key, ListValue)
    if value is None:
        return OK
    size = len(value)
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    if start < 0:
        start = 0
    if start > stop or start >= size:
        left, right = size, 0
    else:
        stop = min(stop, size - 1)
        left, right = start, size - stop - 1
    if left + right >= size:
        value.clear()
    elif left + right > size // 2:
        kept = list(islice(value, left, size - right))  # keeping less than half: rebuild
        value.clear()
        value.extend(kept)
    else:
        popleft = value.popleft
        for _ in range(left):
            popleft()
        pop = value.pop
        for _ in range(right):
            pop()
    client.touch(key)
    client.notify(ev.LIST, b"ltrim", key)
    delete_if_emptied(client, key, value)
    return OK


# -- moves -----------------------------------------------------------------------------------


def _move(client: Client, source: bytes, value: ListValue, destination: bytes, wherefrom: bytes,
          whereto: bytes) -> bytes:
    """Pop from ``source``'s ``wherefrom`` end and push on ``destination``'s ``whereto`` end."""
    db = client.db
    target = db.get_typed(destination, ListValue)  # WRONGTYPE before anything is popped
    element = value.popleft() if wherefrom == LEFT else value.pop()
    if target is None:
        target = ListValue()
        db.add(destination, target)
    if whereto == LEFT:
        target.appendleft(element)
    else:
        target.append(element)
    client.touch(destination)
    client.notify(ev.LIST, _EVENTS[whereto][0], destination)
    client.notify(ev.LIST, _EVENTS[wherefrom][1], source)
    delete_if_emptied(client, source, value)
    client.touch(source)
    return element


@command("lmove", arity=5, flags="write denyoom", keys=(1, 2, 1), group="list",
         summary="Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
         since="6.2.0")
def lmove(client: Client, argv: list[bytes]) -> bytes | None:
    """LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>"""
    wherefrom = _side(argv[3])
    whereto = _side(argv[4])
    value = client.db.get_typed(argv[1], ListValue)
    if value is None:
        return None
    return _move(client, argv[1], value, argv[2], wherefrom, whereto)


@command("rpoplpush", arity=3, flags="write denyoom", keys=(1, 2, 1), group="list",
         summary="Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
         since="1.2.0")
def rpoplpush(client: Client, argv: list[bytes]) -> bytes | None:
    """RPOPLPUSH source destination"""
    value = client.db.get_typed(argv[1], ListValue)
    if value is None:
        return None
    return _move(client, argv[1], value, argv[2], RIGHT, LEFT)


# -- multi-key pops --------------------------------------------------------------------------


def _parse_mpop(argv: list[bytes], numkeys_index: int) -> tuple[list[bytes], bool, int]:
    """``numkeys key [key ...] <LEFT | RIGHT> [COUNT count]`` -> (keys, left, count)."""
    numkeys = parse_int_at_least(argv[numkeys_index], 1, NUMKEYS_ERROR)
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(argv):
        raise SYNTAX_ERROR
    left = _side(argv[where_index]) == LEFT
    count = -1
    i = where_index + 1
    while i < len(argv):
        if count == -1 and argv[i].upper() == b"COUNT" and i + 1 < len(argv):
            count = parse_int_at_least(argv[i + 1], 1, COUNT_ERROR)
            i += 2
        else:
            raise SYNTAX_ERROR
    return argv[numkeys_index + 1 : where_index], left, max(count, 1)


def _mpop_from(client: Client, key: bytes, value: ListValue, left: bool, count: int) -> list[Any]:
    """LMPOP/BLMPOP's reply ``[key, elements]``; propagated as ``LPOP|RPOP key count``."""
    client.propagate_as([b"LPOP" if left else b"RPOP", key, b"%d" % count])
    return [key, _pop_count(client, key, value, left, count)]


@command("lmpop", arity=-4, flags="write", key_finder=numkeys_key_finder(1), group="list",
         summary="Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
         since="7.0.0")
def lmpop(client: Client, argv: list[bytes]) -> Any:
    """LMPOP numkeys key [key ...] <LEFT | RIGHT> [COUNT count]"""
    keys, left, count = _parse_mpop(argv, 1)
    get_typed = client.db.get_typed
    for key in keys:
        value = get_typed(key, ListValue)
        if value is not None:
            return _mpop_from(client, key, value, left, count)
    return NULL_ARRAY


# -- blocking pops ---------------------------------------------------------------------------


def _served_list(client: Client, keys: list[bytes]) -> tuple[bytes, ListValue] | None:
    """The first non-empty list among ``keys`` (WRONGTYPE on the way), or, when a blocked client is
    re-executed, the list at the key being served if it is one (other types keep it waiting)."""
    db = client.db
    if client.waiter is not None:
        key = client.broker.blocking.serving
        if key is None:
            return None
        value = db.get(key)
        return (key, value) if type(value) is ListValue else None
    get_typed = db.get_typed
    for key in keys:
        value = get_typed(key, ListValue)
        if value is not None:
            return key, value
    return None


def _blocking_pop(client: Client, argv: list[bytes], left: bool) -> Any:
    """BLPOP/BRPOP: ``[key, element]`` from the first non-empty list, else block on all the keys."""
    timeout = parse_timeout_seconds(argv[-1])
    keys = argv[1:-1]
    found = _served_list(client, keys)
    if found is None:
        return Block(keys, timeout, NULL_ARRAY)
    key, value = found
    element = value.popleft() if left else value.pop()
    client.propagate_as([b"LPOP" if left else b"RPOP", key])
    client.touch(key)
    client.notify(ev.LIST, b"lpop" if left else b"rpop", key)
    delete_if_emptied(client, key, value)
    return [key, element]


@command("blpop", arity=-3, flags="write noscript blocking", keys=(1, -2, 1), group="list",
         summary="Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
         since="2.0.0")
def blpop(client: Client, argv: list[bytes]) -> Any:
    """BLPOP key [key ...] timeout"""
    return _blocking_pop(client, argv, True)


@command("brpop", arity=-3, flags="write noscript blocking", keys=(1, -2, 1), group="list",
         summary="Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
         since="2.0.0")
def brpop(client: Client, argv: list[bytes]) -> Any:
    """BRPOP key [key ...] timeout"""
    return _blocking_pop(client, argv, False)


def _blocking_move(client: Client, argv: list[bytes], wherefrom: bytes, whereto: bytes, timeout_arg: bytes,
                   propagated: list[bytes]) -> Any:
    """BLMOVE/BRPOPLPUSH: move one element, else block on the source; ``propagated`` is the
    non-blocking form the AOF records."""
    timeout = parse_timeout_seconds(timeout_arg)
    source = argv[1]
    found = _served_list(client, [source])
    if found is None:
        if client.in_exec:
            return None  # inside MULTI Redis answers a null bulk here, but a null array on timeout
        return Block([source], timeout, NULL_ARRAY)
    element = _move(client, source, found[1], argv[2], wherefrom, whereto)
    client.propagate_as(propagated)
    return element


@command("blmove", arity=6, flags="write denyoom noscript blocking", keys=(1, 2, 1), group="list",
         summary="Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
         since="6.2.0")
def blmove(client: Client, argv: list[bytes]) -> Any:
    """BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout"""
    wherefrom = _side(argv[3])
    whereto = _side(argv[4])
    return _blocking_move(client, argv, wherefrom, whereto, argv[5],
                          [b"LMOVE", argv[1], argv[2], wherefrom, whereto])


@command("brpoplpush", arity=4, flags="write denyoom noscript blocking", keys=(1, 2, 1), group="list",
         summary="Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
         since="2.2.0")
def brpoplpush(client: Client, argv: list[bytes]) -> Any:
    """BRPOPLPUSH source destination timeout"""
    return _blocking_move(client, argv, RIGHT, LEFT, argv[3], [b"RPOPLPUSH", argv[1], argv[2]])


@command("blmpop", arity=-5, flags="write blocking", key_finder=numkeys_key_finder(2), group="list",
         summary="Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
         since="7.0.0")
def blmpop(client: Client, argv: list[bytes]) -> Any:
    """BLMPOP timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]"""
    keys, left, count = _parse_mpop(argv, 2)
    timeout = parse_timeout_seconds(argv[1])
    found = _served_list(client, keys)
    if found is None:
        return Block(keys, timeout, NULL_ARRAY)
    return _mpop_from(client, found[0], found[1], left, count)

