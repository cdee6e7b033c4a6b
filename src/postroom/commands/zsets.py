"""Sorted set commands (``t_zset.c``): ZADD and friends, ranges, set algebra, pops and blocking pops.

Replies follow Redis 7.0: scores are doubles (``float``, printed with ``%.17g``); WITHSCORES gives
a flat member/score array in RESP2 and an array of ``[member, score]`` pairs in RESP3. Arguments
are validated in Redis's order (options, then ranges, then the key's type) so that a command
with several faults reports the same one Redis does.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..blocking import Block
from ..keyspace.database import WRONGTYPE, type_name
from ..keyspace.scan import parse_cursor, parse_scan_options
from ..keyspace.zsets import LEX_MAX, LEX_MIN, LexRange, ZSet, lex_span
from ..protocol.encoder import format_double
from ..protocol.replies import NULL_ARRAY, ReplyError
from .args import (
    LLONG_MAX,
    MUST_BE_POSITIVE,
    NOT_FLOAT,
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

NAN_SCORE = ReplyError("ERR resulting score is not a number (NaN)")
WEIGHT_NOT_FLOAT = ReplyError("ERR weight value is not a float")
LIMIT_NEGATIVE = ReplyError("ERR LIMIT can't be negative")
COUNT_NOT_POSITIVE = ReplyError("ERR count should be greater than 0")
GROUP = "sorted_set"

_ZADD_FLAGS = {b"nx": 1, b"xx": 2, b"gt": 4, b"lt": 8, b"ch": 16, b"incr": 32}
NX, XX, GT, LT, CH, INCR = 1, 2, 4, 8, 16, 32


# -- argument parsing ----------------------------------------------------------------------------


_SPACE = b" \t\n\r\x0b\x0c"
RANGE_NOT_FLOAT = ReplyError("ERR min or max is not a float")
RANGE_NOT_LEX = ReplyError("ERR min or max not valid string range item")


def _strtod(text: bytes) -> float | None:
    """C's ``strtod`` where it must consume all of ``text`` (no leading space); ``None`` if it can't."""
    try:
        value = float(text)
    except ValueError:
        value = _hex_float(text)
    if value is None or value != value or text[0] in _SPACE or text[-1] in _SPACE or b"_" in text:
        return None  # float() also takes surrounding spaces and digit underscores; strtod does not
    return value


def _hex_float(text: bytes) -> float | None:
    """strtod also reads C99 hexadecimal floats (``0x1.8p1``); Python's float() does not."""
    body = text[1:] if text[:1] in (b"+", b"-") else text
    if body[:2].lower() != b"0x":
        return None
    try:
        return float.fromhex(text.decode("ascii"))
    except (ValueError, OverflowError, UnicodeDecodeError):
        return None


def parse_double(arg: bytes, error: ReplyError = NOT_FLOAT) -> float:
    """A double as Redis's getDoubleFromObject reads it: all of ``strtod``, no NaN, no ERANGE."""
    try:
        value = float(arg)
        if value - value == 0 and value and arg[0] not in _SPACE and arg[-1] not in _SPACE and b"_" not in arg:
            return value  # finite and non-zero, the common case: no range error possible
    except ValueError:
        pass
    value = _strtod(arg)
    if value is None:
        raise error
    if value - value != 0 and b"inf" not in arg.lower():
        raise error  # overflow to infinity
    if value:
        return value
    text = arg.lower().lstrip(b"+-")
    if text[:2] == b"0x":
        mantissa, digits = text[2:].split(b"p")[0], b"123456789abcdef"
    else:
        mantissa, digits = text.split(b"e")[0], b"123456789"
    if any(c in digits for c in mantissa):
        raise error  # underflow to zero
    return value


def _range_end(arg: bytes) -> tuple[float, bool]:
    """One end of a score range, as zslParseRange reads it: ``(`` for exclusive, then strtod."""
    exclusive = arg[:1] == b"("
    text = arg[exclusive:]
    if b"\0" in text:
        text = text[:text.index(b"\0")]  # strtod stops at a NUL byte, and Redis checks for one there
    value = _strtod(text.lstrip(_SPACE)) if text else 0.0  # "" converts nothing: 0, and no error
    if value is None:
        raise RANGE_NOT_FLOAT
    return value, exclusive


def parse_score_range(low: bytes, high: bytes) -> tuple[float, bool, float, bool]:
    """``min max`` of ZRANGEBYSCORE and friends -> (min, min exclusive, max, max exclusive)."""
    return (*_range_end(low), *_range_end(high))


def _lex_end(arg: bytes) -> tuple[bytes | object, bool]:
    head = arg[:1]
    if head == b"+" and len(arg) == 1:
        return LEX_MAX, True
    if head == b"-" and len(arg) == 1:
        return LEX_MIN, True
    if head == b"(":
        return arg[1:], True
    if head == b"[":
        return arg[1:], False
    raise RANGE_NOT_LEX


def parse_lex_range(low: bytes, high: bytes) -> LexRange:
    """``min max`` of ZRANGEBYLEX and friends: ``[a`` inclusive, ``(a`` exclusive, ``-`` and ``+``."""
    return LexRange(*_lex_end(low), *_lex_end(high))  # type: ignore[arg-type]


def _with_destination(numkeys_index: int) -> Any:
    """Key positions of ``destination numkeys key [key ...] ...`` (ZUNIONSTORE and friends)."""
    sources = numkeys_key_finder(numkeys_index)
    return lambda argv: [1, *sources(argv)]


# -- replies -------------------------------------------------------------------------------------


def _entries_reply(client: Client, entries: Iterable[tuple[float, bytes]], withscores: bool) -> list:
    """Members, or members with scores: flat in RESP2, ``[member, score]`` pairs in RESP3."""
    if not withscores:
        return [member for _, member in entries]
    if client.resp == 2:
        return _flat(entries)
    return [[member, score] for score, member in entries]


def _flat(entries: Iterable[tuple[float, bytes]]) -> list:
    """member, score, member, score, ..."""
    flat: list = []
    append = flat.append
    for score, member in entries:
        append(member)
        append(score)
    return flat


def _zset_or_none(client: Client, key: bytes) -> ZSet | None:
    return client.db.get_typed(key, ZSet)


# -- ZADD / ZINCRBY ------------------------------------------------------------------------------


def _zadd(client: Client, key: bytes, pairs: list[tuple[float, bytes]], flags: int) -> Any:
    """zaddGenericCommand after parsing: apply every pair, reply per CH/INCR."""
    db = client.db
    zset = db.get_typed(key, ZSet)
    incr = flags & INCR
    if zset is None:
        if flags & XX:
            return None if incr else 0
        zset = ZSet()
        db.add(key, zset)
        created = True
    else:
        created = False
    scores = zset.scores
    nx, xx, gt, lt = flags & NX, flags & XX, flags & GT, flags & LT
    added = updated = processed = 0
    score = 0.0
    for score, member in pairs:
        current = scores.get(member)
        if current is not None:
            if nx:
                continue
            if incr:
                score += current
                if score != score:
                    raise NAN_SCORE  # INCR takes one pair: nothing was changed before this
            if (lt and score >= current) or (gt and score <= current):
                continue
            processed += 1
            if score != current:
                zset.update(member, current, score)
                updated += 1
        elif not xx:
            if not zset.skiplist:
                zset.before_insert(member, client.broker.config)
            zset.insert(member, score)
            added += 1
            processed += 1
    if added or updated:
        client.touch(key)
        client.notify(ev.ZSET, b"zincr" if incr else b"zadd", key)
        if added and not created:
            client.broker.signal_ready(db, key)
    if incr:
        return score if processed else None
    return added + updated if flags & CH else added


@command("zadd", arity=-4, flags="write denyoom fast", keys=(1, 1, 1), group=GROUP,
         summary="Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
         since="1.2.0", complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.")
def zadd(client: Client, argv: list[bytes]) -> Any:
    """ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]"""
    flags = 0
    i = 2
    n = len(argv)
    while i < n:
        flag = _ZADD_FLAGS.get(argv[i].lower())
        if flag is None:
            break
        flags |= flag
        i += 1
    elements = n - i
    if elements == 0 or elements % 2:
        raise SYNTAX_ERROR
    if flags & NX and flags & XX:
        raise ReplyError("ERR XX and NX options at the same time are not compatible")
    if (flags & NX and flags & (GT | LT)) or (flags & GT and flags & LT):
        raise ReplyError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if flags & INCR and elements > 2:
        raise ReplyError("ERR INCR option supports a single increment-element pair")
    pairs = [(parse_double(argv[j]), argv[j + 1]) for j in range(i, n, 2)]
    return _zadd(client, argv[1], pairs, flags)


@command("zincrby", arity=4, flags="write denyoom fast", keys=(1, 1, 1), group=GROUP,
         summary="Increments the score of a member in a sorted set.", since="1.2.0",
         complexity="O(log(N)) where N is the number of elements in the sorted set.")
def zincrby(client: Client, argv: list[bytes]) -> Any:
    """ZINCRBY key increment member"""
    return _zadd(client, argv[1], [(parse_double(argv[2]), argv[3])], INCR)


# -- removal -------------------------------------------------------------------------------------


@command("zrem", arity=-3, flags="write fast", keys=(1, 1, 1), group=GROUP,
         summary="Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
         since="1.2.0", complexity="O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.")
def zrem(client: Client, argv: list[bytes]) -> int:
    """ZREM key member [member ...]"""
    key = argv[1]
    zset = _zset_or_none(client, key)
    if zset is None:
        return 0
    remove = zset.remove
    deleted = sum(remove(member) for member in argv[2:])
    if deleted:
        client.notify(ev.ZSET, b"zrem", key)
        delete_if_emptied(client, key, zset)
        client.touch(key)
    return deleted


def _remove_span(client: Client, key: bytes, zset: ZSet, start: int, stop: int, event: bytes) -> int:
    deleted = zset.delete_ranks(start, stop) if start < stop else 0
    if deleted:
        client.touch(key)
        client.notify(ev.ZSET, event, key)
        delete_if_emptied(client, key, zset)
    return deleted


@command("zremrangebyrank", arity=4, flags="write", keys=(1, 1, 1), group=GROUP,
         summary="Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
         since="2.0.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.")
def zremrangebyrank(client: Client, argv: list[bytes]) -> int:
    """ZREMRANGEBYRANK key start stop"""
    start, end = parse_int(argv[2]), parse_int(argv[3])
    key = argv[1]
    zset = _zset_or_none(client, key)
    if zset is None:
        return 0
    span = _rank_span(len(zset), start, end)
    return _remove_span(client, key, zset, *span, b"zremrangebyrank")


@command("zremrangebyscore", arity=4, flags="write", keys=(1, 1, 1), group=GROUP,
         summary="Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
         since="1.2.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.")
def zremrangebyscore(client: Client, argv: list[bytes]) -> int:
    """ZREMRANGEBYSCORE key min max"""
    bounds = parse_score_range(argv[2], argv[3])
    key = argv[1]
    zset = _zset_or_none(client, key)
    if zset is None:
        return 0
    return _remove_span(client, key, zset, *zset.score_span(*bounds), b"zremrangebyscore")


@command("zremrangebylex", arity=4, flags="write", keys=(1, 1, 1), group=GROUP,
         summary="Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
         since="2.8.9", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.")
def zremrangebylex(client: Client, argv: list[bytes]) -> int:
    """ZREMRANGEBYLEX key min max"""
    spec = parse_lex_range(argv[2], argv[3])
    key = argv[1]
    zset = _zset_or_none(client, key)
    if zset is None:
        return 0
    return _remove_span(client, key, zset, *lex_span(zset, spec, False), b"zremrangebylex")


# -- point lookups -------------------------------------------------------------------------------


@command("zcard", arity=2, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the number of members in a sorted set.", since="1.2.0", complexity="O(1)")
def zcard(client: Client, argv: list[bytes]) -> int:
    """ZCARD key"""
    zset = _zset_or_none(client, argv[1])
    return 0 if zset is None else len(zset.scores)


@command("zscore", arity=3, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the score of a member in a sorted set.", since="1.2.0", complexity="O(1)")
def zscore(client: Client, argv: list[bytes]) -> float | None:
    """ZSCORE key member"""
    zset = _zset_or_none(client, argv[1])
    return None if zset is None else zset.scores.get(argv[2])


@command("zmscore", arity=-3, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the score of one or more members in a sorted set.", since="6.2.0",
         complexity="O(N) where N is the number of members being requested.")
def zmscore(client: Client, argv: list[bytes]) -> list:
    """ZMSCORE key member [member ...]"""
    zset = _zset_or_none(client, argv[1])
    if zset is None:
        return [None] * (len(argv) - 2)
    get = zset.scores.get
    return [get(member) for member in argv[2:]]


def _rank(client: Client, argv: list[bytes], reverse: bool) -> Any:
    """ZRANK/ZREVRANK, with Redis 7.2's WITHSCORE option."""
    withscore = False
    if len(argv) > 4:
        raise ReplyError(f"ERR wrong number of arguments for '{argv[0].decode(errors='replace').lower()}' command")
    if len(argv) == 4:
        if argv[3].lower() != b"withscore":
            raise SYNTAX_ERROR
        withscore = True
    missing = NULL_ARRAY if withscore else None
    zset = _zset_or_none(client, argv[1])
    if zset is None:
        return missing
    rank = zset.rank(argv[2])
    if rank is None:
        return missing
    if reverse:
        rank = len(zset.scores) - 1 - rank
    return [rank, zset.scores[argv[2]]] if withscore else rank


@command("zrank", arity=-3, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the index of a member in a sorted set ordered by ascending scores.", since="2.0.0",
         complexity="O(log(N))")
def zrank(client: Client, argv: list[bytes]) -> Any:
    """ZRANK key member [WITHSCORE]"""
    return _rank(client, argv, False)


@command("zrevrank", arity=-3, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the index of a member in a sorted set ordered by descending scores.", since="2.0.0",
         complexity="O(log(N))")
def zrevrank(client: Client, argv: list[bytes]) -> Any:
    """ZREVRANK key member [WITHSCORE]"""
    return _rank(client, argv, True)


@command("zcount", arity=4, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the count of members in a sorted set that have scores within a range.", since="2.0.0",
         complexity="O(log(N)) with N being the number of elements in the sorted set.")
def zcount(client: Client, argv: list[bytes]) -> int:
    """ZCOUNT key min max"""
    bounds = parse_score_range(argv[2], argv[3])
    zset = _zset_or_none(client, argv[1])
    if zset is None:
        return 0
    start, stop = zset.score_span(*bounds)
    return stop - start


@command("zlexcount", arity=4, flags="readonly fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the number of members in a sorted set within a lexicographical range.", since="2.8.9",
         complexity="O(log(N)) with N being the number of elements in the sorted set.")
def zlexcount(client: Client, argv: list[bytes]) -> int:
    """ZLEXCOUNT key min max"""
    spec = parse_lex_range(argv[2], argv[3])
    zset = _zset_or_none(client, argv[1])
    if zset is None:
        return 0
    start, stop = lex_span(zset, spec, False)
    return stop - start


# -- ranges --------------------------------------------------------------------------------------

RANK, SCORE, LEX = 0, 1, 2


def _rank_span(length: int, start: int, end: int) -> tuple[int, int]:
    """Redis's index sanitizing for rank ranges: ranks ``[start, stop)`` or an empty span."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return 0, 0
    return start, min(end, length - 1) + 1


def _limited(zset: ZSet, start: int, stop: int, reverse: bool, offset: int, limit: int) -> list:
    """Entries of ranks ``[start, stop)`` in traversal order after LIMIT offset count."""
    if start >= stop or offset < 0:
        return []  # Redis skips elements "while (offset--)": a negative offset skips them all
    order = zset.order
    if reverse:
        high = stop - offset
        low = start if limit < 0 else max(start, high - limit)
        return order[low:high][::-1] if low < high else []
    low = start + offset
    high = stop if limit < 0 else min(stop, low + limit)
    return order[low:high] if low < high else []


def _zrange(client: Client, argv: list[bytes], source: int, destination: bytes | None,
            kind: int | None, reverse: bool | None) -> Any:
    """zrangeGenericCommand: ``source min max`` then options; ``kind``/``reverse`` None = ZRANGE's own options."""
    withscores = False
    offset, limit = 0, -1
    n = len(argv)
    j = source + 3
    while j < n:
        option = argv[j].lower()
        if destination is None and option == b"withscores":
            withscores = True
        elif option == b"limit" and n - j - 1 >= 2:
            offset, limit = parse_int(argv[j + 1]), parse_int(argv[j + 2])
            j += 2
        elif reverse is None and option == b"rev":
            reverse = True
        elif kind is None and option == b"bylex":
            kind = LEX
        elif kind is None and option == b"byscore":
            kind = SCORE
        else:
            raise SYNTAX_ERROR
        j += 1
    reverse = bool(reverse)
    if kind is None:
        kind = RANK
    if limit != -1 and kind == RANK:
        raise ReplyError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if withscores and kind == LEX:
        raise ReplyError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    low, high = argv[source + 1], argv[source + 2]
    if reverse and kind != RANK:
        low, high = high, low
    if kind == RANK:
        start, end = parse_int(low), parse_int(high)
    elif kind == SCORE:
        bounds = parse_score_range(low, high)
    else:
        spec = parse_lex_range(low, high)
    zset = _zset_or_none(client, argv[source])
    if zset is None:
        entries: list = []
    elif kind == RANK:
        length = len(zset.scores)
        low, high = _rank_span(length, start, end)
        if reverse:  # ranks count from the highest score
            low, high = length - high, length - low
        entries = _limited(zset, low, high, reverse, 0, -1)
    elif kind == SCORE:
        if offset > 0 and offset >= len(zset.scores):
            entries = []
        else:
            entries = _limited(zset, *zset.score_span(*bounds), reverse, offset, limit)
    else:
        entries = _limited(zset, *lex_span(zset, spec, reverse), reverse, offset, limit)
    if destination is None:
        return _entries_reply(client, entries, withscores)
    return _store(client, destination, entries, b"zrangestore")


def _store(client: Client, destination: bytes, entries: Iterable[tuple[float, bytes]], event: bytes) -> int:
    """Replace ``destination`` with a set of ``entries`` (distinct members), or delete it if none."""
    pairs = ((member, score) for score, member in entries)
    zset = ZSet.build(pairs, client.broker.config, one_by_one=event == b"zrangestore")
    db = client.db
    if zset.scores:
        db.set(destination, zset)
        client.touch(destination)
        client.notify(ev.ZSET, event, destination)
        return len(zset.scores)
    if db.delete(destination):
        client.touch(destination)
        client.notify(ev.GENERIC, b"del", destination)
    return 0


@command("zrange", arity=-4, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns members in a sorted set within a range of indexes.", since="1.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.")
def zrange(client: Client, argv: list[bytes]) -> Any:
    """ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"""
    return _zrange(client, argv, 1, None, None, None)


@command("zrangestore", arity=-5, flags="write denyoom", keys=(1, 2, 1), group=GROUP,
         summary="Stores a range of members from sorted set in a key.", since="6.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.")
def zrangestore(client: Client, argv: list[bytes]) -> Any:
    """ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]"""
    return _zrange(client, argv, 2, argv[1], None, None)


@command("zrevrange", arity=-4, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns members in a sorted set within a range of indexes in reverse order.", since="1.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.")
def zrevrange(client: Client, argv: list[bytes]) -> Any:
    """ZREVRANGE key start stop [WITHSCORES]"""
    return _zrange(client, argv, 1, None, RANK, True)


@command("zrangebyscore", arity=-4, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns members in a sorted set within a range of scores.", since="1.0.5",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrangebyscore(client: Client, argv: list[bytes]) -> Any:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]"""
    return _zrange(client, argv, 1, None, SCORE, False)


@command("zrevrangebyscore", arity=-4, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns members in a sorted set within a range of scores in reverse order.", since="2.2.0",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrevrangebyscore(client: Client, argv: list[bytes]) -> Any:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]"""
    return _zrange(client, argv, 1, None, SCORE, True)


@command("zrangebylex", arity=-4, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns members in a sorted set within a lexicographical range.", since="2.8.9",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrangebylex(client: Client, argv: list[bytes]) -> Any:
    """ZRANGEBYLEX key min max [LIMIT offset count]"""
    return _zrange(client, argv, 1, None, LEX, False)


@command("zrevrangebylex", arity=-4, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns members in a sorted set within a lexicographical range in reverse order.", since="2.8.9",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrevrangebylex(client: Client, argv: list[bytes]) -> Any:
    """ZREVRANGEBYLEX key max min [LIMIT offset count]"""
    return _zrange(client, argv, 1, None, LEX, True)


# -- set algebra ---------------------------------------------------------------------------------

UNION, INTER, DIFF = "union", "inter", "diff"


def _aggregate(name: bytes) -> Any:
    if name == b"sum":
        return None  # summed inline (NaN from inf + -inf becomes 0, as Redis)
    if name == b"min":
        return min
    if name == b"max":
        return max
    raise SYNTAX_ERROR


def _sources(client: Client, keys: list[bytes]) -> list[dict[bytes, float]]:
    """Member -> score of each input; plain sets count as score 1 (ZUNION accepts SADD sets)."""
    db = client.db
    sources = []
    for key in keys:
        value = db.get(key)
        if value is None:
            sources.append({})
        elif type(value) is ZSet:
            sources.append(value.scores)
        elif type_name(value) == "set":
            sources.append(dict.fromkeys(value, 1.0))
        else:
            raise WRONGTYPE
    return sources


def _combine(sources: list[dict[bytes, float]], weights: list[float], op: str, aggregate: Any,
             limit: int = 0) -> dict[bytes, float]:
    """zunionInterDiffGenericCommand's algebra over member -> score dicts."""
    if op == DIFF:
        first, others = sources[0], sources[1:]
        return {m: s for m, s in first.items() if not any(m in other for other in others)}
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    if op == INTER:
        result: dict[bytes, float] = {}
        first = order[0]
        rest = [(sources[i], weights[i]) for i in order[1:]]
        for member, base in sources[first].items():
            score = weights[first] * base
            if score != score:
                score = 0.0
            for other, weight in rest:
                value = other.get(member)
                if value is None:
                    break
                score = _fold(score, value * weight, aggregate)
            else:
                result[member] = score
                if limit and len(result) >= limit:
                    break
        return result
    result = {}
    for i in order:
        weight = weights[i]
        for member, base in sources[i].items():
            score = weight * base
            if score != score:
                score = 0.0
            previous = result.get(member)
            result[member] = score if previous is None else _fold(previous, score, aggregate)
    return result


def _fold(target: float, value: float, aggregate: Any) -> float:
    if aggregate is None:
        total = target + value
        return 0.0 if total != total else total
    if aggregate is min:
        return value if value < target else target
    return value if value > target else target


def _setop(client: Client, argv: list[bytes], numkeys_index: int, op: str, destination: bytes | None,
           cardinality_only: bool = False) -> Any:
    setnum = parse_int(argv[numkeys_index])
    if setnum < 1:
        raise ReplyError(f"ERR at least 1 input key is needed for '{argv[0].decode(errors='replace').lower()}' command")
    if setnum > len(argv) - numkeys_index - 1:
        raise SYNTAX_ERROR
    j = numkeys_index + 1
    sources = _sources(client, argv[j:j + setnum])
    j += setnum
    weights = [1.0] * setnum
    aggregate = None
    withscores = False
    limit = 0
    n = len(argv)
    while j < n:
        remaining = n - j
        option = argv[j].lower()
        if op != DIFF and not cardinality_only and remaining >= setnum + 1 and option == b"weights":
            weights = [parse_double(arg, WEIGHT_NOT_FLOAT) for arg in argv[j + 1:j + 1 + setnum]]
            j += setnum + 1
        elif op != DIFF and not cardinality_only and remaining >= 2 and option == b"aggregate":
            aggregate = _aggregate(argv[j + 1].lower())
            j += 2
        elif destination is None and not cardinality_only and option == b"withscores":
            withscores = True
            j += 1
        elif cardinality_only and remaining >= 2 and option == b"limit":
            limit = parse_int_at_least(argv[j + 1], 0, LIMIT_NEGATIVE)
            j += 2
        else:
            raise SYNTAX_ERROR
    result = _combine(sources, weights, op, aggregate, limit if cardinality_only else 0)
    if cardinality_only:
        return len(result)
    entries = sorted((score, member) for member, score in result.items())
    if destination is not None:
        return _store(client, destination, entries, b"z%sstore" % op.encode())
    return _entries_reply(client, entries, withscores)


@command("zunionstore", arity=-4, flags="write denyoom", keys=(1, 1, 1), key_finder=_with_destination(2),
         group=GROUP, summary="Stores the union of multiple sorted sets in a key.", since="2.0.0",
         complexity="O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.")
def zunionstore(client: Client, argv: list[bytes]) -> Any:
    """ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]"""
    return _setop(client, argv, 2, UNION, argv[1])


@command("zinterstore", arity=-4, flags="write denyoom", keys=(1, 1, 1), key_finder=_with_destination(2),
         group=GROUP, summary="Stores the intersect of multiple sorted sets in a key.", since="2.0.0",
         complexity="O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.")
def zinterstore(client: Client, argv: list[bytes]) -> Any:
    """ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>]"""
    return _setop(client, argv, 2, INTER, argv[1])


@command("zdiffstore", arity=-4, flags="write denyoom", keys=(1, 1, 1), key_finder=_with_destination(2),
         group=GROUP, summary="Stores the difference of multiple sorted sets in a key.", since="6.2.0",
         complexity="O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.")
def zdiffstore(client: Client, argv: list[bytes]) -> Any:
    """ZDIFFSTORE destination numkeys key [key ...]"""
    return _setop(client, argv, 2, DIFF, argv[1])


@command("zunion", arity=-3, flags="readonly", key_finder=numkeys_key_finder(1), group=GROUP,
         summary="Returns the union of multiple sorted sets.", since="6.2.0",
         complexity="O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.")
def zunion(client: Client, argv: list[bytes]) -> Any:
    """ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]"""
    return _setop(client, argv, 1, UNION, None)


@command("zinter", arity=-3, flags="readonly", key_finder=numkeys_key_finder(1), group=GROUP,
         summary="Returns the intersect of multiple sorted sets.", since="6.2.0",
         complexity="O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.")
def zinter(client: Client, argv: list[bytes]) -> Any:
    """ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]"""
    return _setop(client, argv, 1, INTER, None)


@command("zdiff", arity=-3, flags="readonly", key_finder=numkeys_key_finder(1), group=GROUP,
         summary="Returns the difference between multiple sorted sets.", since="6.2.0",
         complexity="O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.")
def zdiff(client: Client, argv: list[bytes]) -> Any:
    """ZDIFF numkeys key [key ...] [WITHSCORES]"""
    return _setop(client, argv, 1, DIFF, None)


@command("zintercard", arity=-3, flags="readonly", key_finder=numkeys_key_finder(1), group=GROUP,
         summary="Returns the number of members of the intersect of multiple sorted sets.", since="7.0.0",
         complexity="O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.")
def zintercard(client: Client, argv: list[bytes]) -> Any:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]"""
    return _setop(client, argv, 1, INTER, None, cardinality_only=True)


# -- pops ----------------------------------------------------------------------------------------


def _pop(client: Client, key: bytes, zset: ZSet, maximum: bool, count: int, shape: str) -> Any:
    """genericZpopCommand on a non-empty set: pop ``count`` (-1: one, unwrapped) and build the reply.

    ``shape``: ``flat`` (ZPOPMIN in RESP2 or without COUNT), ``pairs`` (ZPOPMIN COUNT in RESP3),
    ``keyed`` (BZPOPMIN: key then member, score) or ``nested`` (ZMPOP: key then pairs).
    """
    if count == 0:
        return []
    wanted = 1 if count == -1 else count
    popped = [zset.pop(-1 if maximum else 0) for _ in range(min(wanted, len(zset.scores)))]
    client.notify(ev.ZSET, b"zpopmax" if maximum else b"zpopmin", key)
    client.touch(key)
    delete_if_emptied(client, key, zset)
    if shape == "flat":
        return _flat(popped)
    if shape == "keyed":
        return [key, *_flat(popped)]
    pairs = [[member, score] for score, member in popped]
    return pairs if shape == "pairs" else [key, pairs]


def _zpop(client: Client, argv: list[bytes], maximum: bool) -> Any:
    if len(argv) > 3:
        raise SYNTAX_ERROR
    count = parse_int_at_least(argv[2], 0, MUST_BE_POSITIVE) if len(argv) == 3 else -1
    key = argv[1]
    zset = client.db.get_typed(key, ZSet)
    if zset is None:
        return []
    if count == -1:  # the common single pop, kept short: redis-benchmark measures it
        score, member = zset.pop(-1 if maximum else 0)
        client.notify(ev.ZSET, b"zpopmax" if maximum else b"zpopmin", key)
        client.touch(key)
        delete_if_emptied(client, key, zset)
        return [member, score]
    return _pop(client, key, zset, maximum, count, "pairs" if client.resp > 2 else "flat")


@command("zpopmin", arity=-2, flags="write fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
         since="5.0.0", complexity="O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.")
def zpopmin(client: Client, argv: list[bytes]) -> Any:
    """ZPOPMIN key [count]"""
    return _zpop(client, argv, False)


@command("zpopmax", arity=-2, flags="write fast", keys=(1, 1, 1), group=GROUP,
         summary="Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
         since="5.0.0", complexity="O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.")
def zpopmax(client: Client, argv: list[bytes]) -> Any:
    """ZPOPMAX key [count]"""
    return _zpop(client, argv, True)


def _parse_mpop(argv: list[bytes], numkeys_index: int) -> tuple[list[bytes], bool, int]:
    """``numkeys key [key ...] <MIN | MAX> [COUNT count]`` -> (keys, maximum, count)."""
    numkeys = parse_int_at_least(argv[numkeys_index], 1, NUMKEYS_ERROR)
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(argv):
        raise SYNTAX_ERROR
    where = argv[where_index].lower()
    if where not in (b"min", b"max"):
        raise SYNTAX_ERROR
    count = -1
    j = where_index + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = parse_int_at_least(argv[j + 1], 1, COUNT_NOT_POSITIVE)
            j += 2
        else:
            raise SYNTAX_ERROR
    return argv[numkeys_index + 1:where_index], where == b"max", max(count, 1)


def _first_nonempty(client: Client, keys: list[bytes]) -> tuple[bytes, ZSet] | None:
    """The first sorted set among ``keys`` (WRONGTYPE on the way), or, when a blocked client is
    re-executed, the set at the key being served if it is one (other types keep it waiting)."""
    db = client.db
    if client.waiter is not None:
        key = client.broker.blocking.serving
        if key is None:
            return None
        value = db.get(key)
        return (key, value) if type(value) is ZSet else None
    get_typed = db.get_typed
    for key in keys:
        value = get_typed(key, ZSet)
        if value is not None:
            return key, value
    return None


def _pop_propagated(client: Client, key: bytes, zset: ZSet, maximum: bool, count: int, shape: str) -> Any:
    """Pop for ZMPOP and the blocking pops, replicated as ZPOPMIN/ZPOPMAX with the count served."""
    name = b"ZPOPMAX" if maximum else b"ZPOPMIN"
    if count == -1:
        client.propagate_as([name, key])
    else:
        client.propagate_as([name, key, b"%d" % min(count, len(zset.scores))])
    return _pop(client, key, zset, maximum, count, shape)


@command("zmpop", arity=-4, flags="write", key_finder=numkeys_key_finder(1), group=GROUP,
         summary="Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
         since="7.0.0", complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.")
def zmpop(client: Client, argv: list[bytes]) -> Any:
    """ZMPOP numkeys key [key ...] <MIN | MAX> [COUNT count]"""
    keys, maximum, count = _parse_mpop(argv, 1)
    found = _first_nonempty(client, keys)
    if found is None:
        return NULL_ARRAY
    return _pop_propagated(client, *found, maximum, count, "nested")


def _blocking_pop(client: Client, argv: list[bytes], maximum: bool) -> Any:
    timeout = parse_timeout_seconds(argv[-1])
    keys = argv[1:-1]
    found = _first_nonempty(client, keys)
    if found is None:
        return Block(keys, timeout, NULL_ARRAY)
    return _pop_propagated(client, *found, maximum, -1, "keyed")


@command("bzpopmin", arity=-3, flags="write noscript blocking fast", keys=(1, -2, 1), group=GROUP,
         summary="Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
         since="5.0.0", complexity="O(log(N)) with N being the number of elements in the sorted set.")
def bzpopmin(client: Client, argv: list[bytes]) -> Any:
    """BZPOPMIN key [key ...] timeout"""
    return _blocking_pop(client, argv, False)


@command("bzpopmax", arity=-3, flags="write noscript blocking fast", keys=(1, -2, 1), group=GROUP,
         summary="Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
         since="5.0.0", complexity="O(log(N)) with N being the number of elements in the sorted set.")
def bzpopmax(client: Client, argv: list[bytes]) -> Any:
    """BZPOPMAX key [key ...] timeout"""
    return _blocking_pop(client, argv, True)


@command("bzmpop", arity=-5, flags="write blocking", key_finder=numkeys_key_finder(2), group=GROUP,
         summary="Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
         since="7.0.0", complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.")
def bzmpop(client: Client, argv: list[bytes]) -> Any:
    """BZMPOP timeout numkeys key [key ...] <MIN | MAX> [COUNT count]"""
    keys, maximum, count = _parse_mpop(argv, 2)
    timeout = parse_timeout_seconds(argv[1])
    found = _first_nonempty(client, keys)
    if found is None:
        return Block(keys, timeout, NULL_ARRAY)
    return _pop_propagated(client, *found, maximum, count, "nested")


# -- random members and scanning -----------------------------------------------------------------


@command("zrandmember", arity=-2, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Returns one or more random members from a sorted set.", since="6.2.0",
         complexity="O(N) where N is the number of members returned")
def zrandmember(client: Client, argv: list[bytes]) -> Any:
    """ZRANDMEMBER key [count [WITHSCORES]]"""
    if len(argv) == 2:
        zset = _zset_or_none(client, argv[1])
        return None if zset is None else zset.order[random.randrange(len(zset.scores))][1]
    count = parse_int(argv[2])
    if count < -LLONG_MAX:
        raise ReplyError(f"ERR value is out of range, value must between {-LLONG_MAX} and {LLONG_MAX}")
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
        raise SYNTAX_ERROR
    withscores = len(argv) == 4
    if withscores and not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
        raise ReplyError("ERR value is out of range")  # the reply would hold twice as many items
    zset = _zset_or_none(client, argv[1])
    if zset is None or count == 0:
        return []
    order = zset.order
    size = len(zset.scores)
    if count < 0 or count == 1:
        picks = [order[random.randrange(size)] for _ in range(abs(count))]
    elif count >= size:
        picks = list(reversed(order))  # Redis's set iterator walks from the highest score
    else:
        picks = [order[i] for i in random.sample(range(size), count)]
    return _entries_reply(client, picks, withscores)


@command("zscan", arity=-3, flags="readonly", keys=(1, 1, 1), group=GROUP,
         summary="Iterates over members and scores of a sorted set.", since="2.8.0",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.")
def zscan(client: Client, argv: list[bytes]) -> Any:
    """ZSCAN key cursor [MATCH pattern] [COUNT count]"""
    parse_cursor(argv[2])
    zset = _zset_or_none(client, argv[1])
    if zset is None:
        return [b"0", []]
    options = parse_scan_options(argv, 2, False)
    if zset.skiplist:
        cursor, members = zset.scan_order.scan(zset.scores, options.cursor, options.count)
    else:
        cursor, members = 0, [member for _, member in zset.order]  # a listpack is returned whole
    scores = zset.scores
    reply: list = []
    for member in options.matching(members):
        reply.append(member)
        reply.append(format_double(scores[member]))
    return [b"%d" % cursor, reply]

