"""String commands (``t_string.c``): GET, SET and friends, counters, ranges, LCS.

A string value is a plain ``bytes`` object (see :mod:`postroom.keyspace.database`); counters are
parsed from and stored back as their decimal text, which is what Redis replies anyway. GET, SET,
INCR, MGET and MSET are benchmarked against redis-server, so their common forms take short paths
with no option parsing and as few lookups as possible.

Writes propagate in deterministic form: a relative expiry becomes ``SET key value PXAT <ms>`` or
``PEXPIREAT``, INCRBYFLOAT becomes ``SET key <result> KEEPTTL``, GETDEL a ``DEL``, GETSET a ``SET``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from itertools import islice
from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..keyspace.database import WRONGTYPE
from ..protocol.replies import OK, ReplyError
from .args import LLONG_MAX, LLONG_MIN, NOT_FLOAT, NOT_INTEGER, SYNTAX_ERROR, invalid_expire_time, parse_int
from .effects import delete_key
from .registry import command

if TYPE_CHECKING:
    from ..client import Client
    from ..keyspace.database import Database

OVERFLOW = ReplyError("ERR increment or decrement would overflow")
TOO_LONG = ReplyError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")

# SET/GETEX option flags (Redis's OBJ_SET_* bits).
_NX, _XX, _GET, _KEEPTTL, _PERSIST, _EX, _PX, _EXAT, _PXAT = (1 << i for i in range(9))
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT
_EXPIRE_FLAGS = {b"EX": _EX, b"PX": _PX, b"EXAT": _EXAT, b"PXAT": _PXAT}


def get_string(db: Database, key: bytes) -> bytes | None:
    """The string at ``key`` or ``None``; WRONGTYPE for other types."""
    value = db.get(key)
    if value is None or type(value) is bytes:
        return value
    raise WRONGTYPE


def _parse_extended(argv: list[bytes], start: int, is_set: bool) -> tuple[int, bytes | None]:
    """SET/GETEX options (``parseExtendedStringArgumentsOrReply``): (flags, expire argument)."""
    flags = 0
    expire = None
    i = start
    n = len(argv)
    while i < n:
        opt = argv[i].upper()
        if opt == b"NX" and is_set and not flags & _XX:
            flags |= _NX
        elif opt == b"XX" and is_set and not flags & _NX:
            flags |= _XX
        elif opt == b"GET" and is_set:
            flags |= _GET
        elif opt == b"KEEPTTL" and is_set and not flags & (_PERSIST | _ANY_EXPIRE):
            flags |= _KEEPTTL
        elif opt == b"PERSIST" and not is_set and not flags & (_ANY_EXPIRE | _KEEPTTL):
            flags |= _PERSIST
        elif opt in _EXPIRE_FLAGS and i + 1 < n and not flags & (
            _KEEPTTL | _PERSIST | (_ANY_EXPIRE & ~_EXPIRE_FLAGS[opt])
        ):
            flags |= _EXPIRE_FLAGS[opt]
            i += 1
            expire = argv[i]
        else:
            raise SYNTAX_ERROR
        i += 1
    return flags, expire


def _deadline_ms(client: Client, expire: bytes, flags: int, name: str) -> int:
    """The absolute deadline an EX/PX/EXAT/PXAT argument means (``getExpireMillisecondsOrReply``)."""
    ms = parse_int(expire)
    seconds = flags & (_EX | _EXAT)
    if ms <= 0 or (seconds and ms > LLONG_MAX // 1000):
        raise invalid_expire_time(name)
    if seconds:
        ms *= 1000
    if flags & (_EX | _PX):
        ms += client.broker.now_ms
        if ms > LLONG_MAX:
            raise invalid_expire_time(name)
    return ms


# -- GET / SET ---------------------------------------------------------------------------------


@command("get", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string",
         summary="Get the value of a key", since="1.0.0", complexity="O(1)")
def get(client: Client, argv: list[bytes]) -> Any:
    """GET key"""
    value = client.db.get(argv[1])  # get_string inlined: GET is the most benchmarked command
    if value is None or type(value) is bytes:
        return value
    raise WRONGTYPE


@command("set", arity=-3, flags="write denyoom", keys=(1, 1, 1), group="string",
         summary="Set the string value of a key", since="1.0.0", complexity="O(1)")
def set_(client: Client, argv: list[bytes]) -> Any:
    """SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"""
    key = argv[1]
    if len(argv) == 3:
        client.db.set(key, argv[2])
        client.touch(key)
        client.notify(ev.STRING, b"set", key)
        return OK
    flags, expire = _parse_extended(argv, 3, True)
    reply = _set_generic(client, key, argv[2], flags, expire, "set", OK, None)
    if flags & _GET and expire is None:
        client.propagate_as([arg for i, arg in enumerate(argv) if i < 3 or arg.upper() != b"GET"])
    return reply


def _set_generic(
    client: Client, key: bytes, value: bytes, flags: int, expire: bytes | None, name: str, ok: Any, abort: Any
) -> Any:
    """The shared body of SET, SETNX, SETEX and PSETEX (``setGenericCommand``)."""
    deadline = _deadline_ms(client, expire, flags, name) if expire is not None else 0
    db = client.db
    if flags & _GET:
        reply = get_string(db, key)
        found = reply is not None
    else:
        reply = ok
        found = db.get(key) is not None
    if (flags & _NX and found) or (flags & _XX and not found):
        return reply if flags & _GET else abort
    db.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    client.touch(key)
    client.notify(ev.STRING, b"set", key)
    if expire is not None:
        db.set_expire(key, deadline)
        client.propagate_as([b"SET", key, value, b"PXAT", b"%d" % deadline])
        client.notify(ev.GENERIC, b"expire", key)
    return reply


@command("setnx", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Set the value of a key, only if the key does not exist", since="1.0.0", complexity="O(1)")
def setnx(client: Client, argv: list[bytes]) -> int:
    """SETNX key value"""
    return _set_generic(client, argv[1], argv[2], _NX, None, "setnx", 1, 0)


@command("setex", arity=4, flags="write denyoom", keys=(1, 1, 1), group="string",
         summary="Set the value and expiration of a key", since="2.0.0", complexity="O(1)")
def setex(client: Client, argv: list[bytes]) -> str:
    """SETEX key seconds value"""
    return _set_generic(client, argv[1], argv[3], _EX, argv[2], "setex", OK, None)


@command("psetex", arity=4, flags="write denyoom", keys=(1, 1, 1), group="string",
         summary="Set the value and expiration in milliseconds of a key", since="2.6.0", complexity="O(1)")
def psetex(client: Client, argv: list[bytes]) -> str:
    """PSETEX key milliseconds value"""
    return _set_generic(client, argv[1], argv[3], _PX, argv[2], "psetex", OK, None)


@command("getex", arity=-2, flags="write fast", keys=(1, 1, 1), group="string",
         summary="Get the value of a key and optionally set its expiration", since="6.2.0", complexity="O(1)")
def getex(client: Client, argv: list[bytes]) -> Any:
    """GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"""
    flags, expire = _parse_extended(argv, 2, False)
    key = argv[1]
    db = client.db
    value = get_string(db, key)
    if value is None:
        return None
    if expire is not None:
        deadline = _deadline_ms(client, expire, flags, "getex")
        if flags & (_EXAT | _PXAT) and deadline <= client.broker.now_ms:
            delete_key(client, key)
        else:
            db.set_expire(key, deadline)
            client.touch(key)
            client.propagate_as([b"PEXPIREAT", key, b"%d" % deadline])
            client.notify(ev.GENERIC, b"expire", key)
    elif flags & _PERSIST and db.persist(key):
        client.touch(key)
        client.propagate_as([b"PERSIST", key])
        client.notify(ev.GENERIC, b"persist", key)
    return value


@command("getdel", arity=2, flags="write fast", keys=(1, 1, 1), group="string",
         summary="Get the value of a key and delete the key", since="6.2.0", complexity="O(1)")
def getdel(client: Client, argv: list[bytes]) -> Any:
    """GETDEL key"""
    key = argv[1]
    db = client.db
    value = get_string(db, key)
    if value is not None:
        delete_key(client, key)
    return value


@command("getset", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Set the string value of a key and return its old value", since="1.0.0", complexity="O(1)")
def getset(client: Client, argv: list[bytes]) -> Any:
    """GETSET key value"""
    key = argv[1]
    db = client.db
    old = get_string(db, key)
    db.set(key, argv[2])
    client.touch(key)
    client.propagate_as([b"SET", key, argv[2]])
    client.notify(ev.STRING, b"set", key)
    return old


# -- several keys ------------------------------------------------------------------------------


@command("mget", arity=-2, flags="readonly fast", keys=(1, -1, 1), group="string",
         summary="Get the values of all the given keys", since="1.0.0",
         complexity="O(N) where N is the number of keys to retrieve.")
def mget(client: Client, argv: list[bytes]) -> list[Any]:
    """MGET key [key ...]"""
    return [value if type(value) is bytes else None for value in map(client.db.get, islice(argv, 1, None))]


@command("mset", arity=-3, flags="write denyoom", keys=(1, -1, 2), group="string",
         summary="Set multiple keys to multiple values", since="1.0.1",
         complexity="O(N) where N is the number of keys to set.")
def mset(client: Client, argv: list[bytes]) -> str:
    """MSET key value [key value ...]"""
    if not len(argv) & 1:
        raise ReplyError("ERR wrong number of arguments for 'mset' command")
    _set_pairs(client, argv)
    return OK


@command("msetnx", arity=-3, flags="write denyoom", keys=(1, -1, 2), group="string",
         summary="Set multiple keys to multiple values, only if none of the keys exist", since="1.0.1",
         complexity="O(N) where N is the number of keys to set.")
def msetnx(client: Client, argv: list[bytes]) -> int:
    """MSETNX key value [key value ...]"""
    if not len(argv) & 1:
        raise ReplyError("ERR wrong number of arguments for 'msetnx' command")
    get_value = client.db.get
    for i in range(1, len(argv), 2):
        if get_value(argv[i]) is not None:
            return 0
    _set_pairs(client, argv)
    return 1


def _set_pairs(client: Client, argv: list[bytes]) -> None:
    """MSET/MSETNX's writes. MSET is benchmarked, so the bound methods are fetched once and the
    notification flag tested once instead of per key (notifications are usually off)."""
    set_value = client.db.set
    touch = client.touch
    notify = client.notify if client.broker.notify_flags & ev.STRING else None
    for i in range(1, len(argv), 2):
        key = argv[i]
        set_value(key, argv[i + 1])
        touch(key)
        if notify is not None:
            notify(ev.STRING, b"set", key)


# -- counters ----------------------------------------------------------------------------------


def _incr(client: Client, key: bytes, delta: int) -> int:
    """INCR/DECR/INCRBY/DECRBY: add ``delta`` to the integer at ``key`` (0 if missing); TTL kept."""
    db = client.db
    old = db.get(key)
    if old is None:
        result = delta
        db.add(key, b"%d" % result)
    elif type(old) is bytes:
        if old.isdigit() and len(old) < 19 and (old[0] != 0x30 or len(old) == 1):
            current = int(old)  # the usual counter: plain digits, no leading zero, far inside 64 bits
        else:
            # string2ll's strict form is exactly "prints back the same" (no '+', spaces, '_' or leading zeros).
            try:
                current = int(old)
            except ValueError:
                raise NOT_INTEGER
            if b"%d" % current != old or not LLONG_MIN <= current <= LLONG_MAX:
                raise NOT_INTEGER
        result = current + delta
        if not LLONG_MIN <= result <= LLONG_MAX:
            raise OVERFLOW
        db.replace(key, b"%d" % result)
    else:
        raise WRONGTYPE
    client.touch(key)
    client.notify(ev.STRING, b"incrby", key)
    return result


@command("incr", arity=2, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Increment the integer value of a key by one", since="1.0.0", complexity="O(1)")
def incr(client: Client, argv: list[bytes]) -> int:
    """INCR key"""
    return _incr(client, argv[1], 1)


@command("decr", arity=2, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Decrement the integer value of a key by one", since="1.0.0", complexity="O(1)")
def decr(client: Client, argv: list[bytes]) -> int:
    """DECR key"""
    return _incr(client, argv[1], -1)


@command("incrby", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Increment the integer value of a key by the given amount", since="1.0.0", complexity="O(1)")
def incrby(client: Client, argv: list[bytes]) -> int:
    """INCRBY key increment"""
    return _incr(client, argv[1], parse_int(argv[2]))


@command("decrby", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Decrement the integer value of a key by the given number", since="1.0.0", complexity="O(1)")
def decrby(client: Client, argv: list[bytes]) -> int:
    """DECRBY key decrement"""
    delta = parse_int(argv[2])
    if delta == LLONG_MIN:
        raise ReplyError("ERR decrement would overflow")
    return _incr(client, argv[1], -delta)


@command("incrbyfloat", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Increment the float value of a key by the given amount", since="2.6.0", complexity="O(1)")
def incrbyfloat(client: Client, argv: list[bytes]) -> bytes:
    """INCRBYFLOAT key increment"""
    key = argv[1]
    db = client.db
    old = get_string(db, key)
    current = parse_long_double(old, NOT_FLOAT) if old is not None else Fraction(0)
    increment = parse_long_double(argv[2], NOT_FLOAT)
    text = format_long_double(add_long_doubles(current, increment))
    if text is None:
        raise ReplyError("ERR increment would produce NaN or Infinity")
    db.set(key, text, keep_ttl=True)
    client.touch(key)
    client.propagate_as([b"SET", key, text, b"KEEPTTL"])
    client.notify(ev.STRING, b"incrbyfloat", key)
    return text


# -- long doubles (INCRBYFLOAT) -------------------------------------------------------------------
# Redis computes INCRBYFLOAT in C ``long double`` (x87 80-bit: a 64-bit significand) and prints
# ``%.17Lf`` with trailing zeros removed, so 0.1 + 0.2 shows as 0.3 where a double would not.
# Values are kept as exact fractions rounded to that precision, which reproduces both the
# arithmetic and glibc's exactly rounded printing.

_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?")
_INFINITY = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
_LD_SIGNIFICAND = 64
_LD_MAX_EXPONENT = 16384  # |x| >= 2**16384 is infinite
_LD_MIN = Fraction(1, 2**16446)  # below half the smallest subnormal strtold underflows to 0 (ERANGE)
_LD_MAX_CHARS = 5 * 1024


def _round_long_double(x: Fraction) -> Fraction | None:
    """``x`` rounded to nearest-even with a 64-bit significand; ``None`` when that overflows."""
    if not x:
        return x
    num, den = abs(x.numerator), x.denominator
    exp = num.bit_length() - den.bit_length()
    if (num << max(-exp, 0)) < (den << max(exp, 0)):
        exp -= 1  # now 2**exp <= |x| < 2**(exp + 1)
    if exp >= _LD_MAX_EXPONENT:
        return None
    shift = _LD_SIGNIFICAND - 1 - exp
    if shift >= 0:
        q, r = divmod(num << shift, den)
        twice, whole = 2 * r, den
    else:
        q, r = divmod(num, den << -shift)
        twice, whole = 2 * r, den << -shift
    if twice > whole or (twice == whole and q & 1):
        q += 1
    result = Fraction(q, 1 << shift) if shift >= 0 else Fraction(q << -shift)
    if result >= 2**_LD_MAX_EXPONENT:
        return None
    return result if x > 0 else -result


def parse_long_double(text: bytes, error: ReplyError) -> Fraction | None:
    """A string as ``strtold`` reads it (``string2ld``): exact value rounded to long double; ``None`` is infinity."""
    if not text or len(text) >= _LD_MAX_CHARS or text[0] in b" \t\n\r\x0b\x0c":
        raise error
    if _INFINITY.fullmatch(text):
        return None
    match = _DECIMAL.fullmatch(text)
    base = 10
    if match is None or not (match[2] or match[3]):
        match = _HEX.fullmatch(text)
        base = 16
        if match is None or not (match[2] or match[3]):
            raise error
    sign, whole, fraction, exponent = match[1], match[2], match[3] or b"", match[4]
    digits = (whole + fraction).lstrip(b"0")
    if not digits:
        return Fraction(0)
    power = int(exponent) if exponent else 0
    if base == 10:
        magnitude = len(digits) - 1 + power - len(fraction)  # floor(log10(value))
        if magnitude > 4933 or magnitude < -4952:
            raise error  # strtold overflows (HUGE_VALL) or underflows to 0, both with ERANGE
        value = Fraction(int(whole + fraction)) * Fraction(10) ** (power - len(fraction))
    else:
        if abs(power) > 20000:
            raise error
        value = Fraction(int(whole + fraction, 16), 16 ** len(fraction)) * Fraction(2) ** power
    if value < _LD_MIN:
        raise error
    rounded = _round_long_double(value)
    if rounded is None:
        raise error
    return -rounded if sign == b"-" else rounded


def format_long_double(value: Fraction | None) -> bytes | None:
    """``%.17Lf`` with trailing zeros (and a bare point) removed; ``None`` for infinity."""
    if value is None:
        return None
    scaled = value * 10**17
    units = round(scaled)  # Fraction rounding is half-to-even on the exact value, as glibc's printf
    negative = units < 0 or (units == 0 and value < 0)
    text = b"%d.%017d" % divmod(abs(units), 10**17)
    text = text.rstrip(b"0").rstrip(b".")
    if negative and text != b"0":
        text = b"-" + text
    return text


def add_long_doubles(a: Fraction | None, b: Fraction | None) -> Fraction | None:
    """``a + b`` rounded to long double; infinity (``None``) absorbs everything, as callers reject it."""
    if a is None or b is None:
        return None
    return _round_long_double(a + b)


# -- parts of a string -------------------------------------------------------------------------


def _check_length(client: Client, length: int) -> None:
    """Refuse to grow a string past ``proto-max-bulk-len``: no client could read it back."""
    if length > client.broker.config["proto-max-bulk-len"]:
        raise TOO_LONG


@command("append", arity=3, flags="write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Append a value to a key", since="2.0.0",
         complexity="O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.")
def append(client: Client, argv: list[bytes]) -> int:
    """APPEND key value"""
    key = argv[1]
    db = client.db
    old = get_string(db, key)
    if old is None:
        value = argv[2]
        db.add(key, value)
    else:
        _check_length(client, len(old) + len(argv[2]))
        value = old + argv[2]
        db.set(key, value, keep_ttl=True)
    client.touch(key)
    client.notify(ev.STRING, b"append", key)
    return len(value)


@command("strlen", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string",
         summary="Get the length of the value stored in a key", since="2.2.0", complexity="O(1)")
def strlen(client: Client, argv: list[bytes]) -> int:
    """STRLEN key"""
    value = get_string(client.db, argv[1])
    return 0 if value is None else len(value)


@command("getrange", arity=4, flags="readonly", keys=(1, 1, 1), group="string",
         summary="Get a substring of the string stored at a key", since="2.4.0",
         complexity="O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.")
def getrange(client: Client, argv: list[bytes]) -> bytes:
    """GETRANGE key start end"""
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    value = get_string(client.db, argv[1])
    if value is None:
        return b""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(length + start, 0)
    if end < 0:
        end = max(length + end, 0)
    end = min(end, length - 1)
    if start > end or length == 0:
        return b""
    return value[start : end + 1]


@command("substr", arity=4, flags="readonly", keys=(1, 1, 1), group="string",
         summary="Get a substring of the string stored at a key", since="1.0.0",
         complexity="O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.")
def substr(client: Client, argv: list[bytes]) -> bytes:
    """SUBSTR key start end"""
    return getrange(client, argv)


@command("setrange", arity=4, flags="write denyoom", keys=(1, 1, 1), group="string",
         summary="Overwrite part of a string at key starting at the specified offset", since="2.2.0",
         complexity="O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.")
def setrange(client: Client, argv: list[bytes]) -> int:
    """SETRANGE key offset value"""
    key = argv[1]
    patch = argv[3]
    offset = parse_int(argv[2])
    if offset < 0:
        raise ReplyError("ERR offset is out of range")
    db = client.db
    old = get_string(db, key)
    if not patch:
        return 0 if old is None else len(old)
    _check_length(client, offset + len(patch))
    base = old or b""
    if len(base) < offset:
        base += bytes(offset - len(base))
    value = base[:offset] + patch + base[offset + len(patch) :]
    db.set(key, value, keep_ttl=True)
    client.touch(key)
    client.notify(ev.STRING, b"setrange", key)
    return len(value)


# -- LCS ---------------------------------------------------------------------------------------


@command("lcs", arity=-3, flags="readonly", keys=(1, 2, 1), group="string",
         summary="Find longest common substring", since="7.0.0",
         complexity="O(N*M) where N and M are the lengths of s1 and s2, respectively")
def lcs(client: Client, argv: list[bytes]) -> Any:
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]"""
    db = client.db
    a, b = db.get(argv[1]), db.get(argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise ReplyError("ERR The specified keys must contain string values")
    a = a or b""
    b = b or b""
    want_idx = want_len = with_match_len = False
    min_match_len = 0
    i = 3
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"IDX":
            want_idx = True
        elif opt == b"LEN":
            want_len = True
        elif opt == b"WITHMATCHLEN":
            with_match_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(argv):
            i += 1
            min_match_len = max(parse_int(argv[i]), 0)
        else:
            raise SYNTAX_ERROR
        i += 1
    if want_idx and want_len:
        raise ReplyError("ERR If you want both the length and indexes, please just use IDX.")
    table = _LcsTable(a, b)
    length = table.length(len(a), len(b))
    if want_len:
        return length
    common, ranges = _lcs_walk(a, b, table, length)
    if not want_idx:
        return common
    matches = []
    for a_start, a_end, b_start, b_end in ranges:
        match_len = a_end - a_start + 1
        if min_match_len == 0 or match_len >= min_match_len:
            match: list[Any] = [[a_start, a_end], [b_start, b_end]]
            if with_match_len:
                match.append(match_len)
            matches.append(match)
    return {b"matches": matches, b"len": length}


class _LcsTable:
    """LCS lengths of every prefix pair, one bit-vector row per prefix of ``a`` (bit-parallel LCS).

    Row ``i`` has a zero bit at ``j`` for each step up of ``LCS(a[:i], b[:j+1])`` over ``b[:j]``, so
    ``LCS(a[:i], b[:j])`` is ``j`` minus the set bits below ``j``. Building all rows costs
    O(len(a) * len(b) / 64) word operations instead of the classic table's Python-level
    O(len(a) * len(b)), which keeps LCS on long strings from stalling the event loop.
    """

    __slots__ = ("rows",)

    def __init__(self, a: bytes, b: bytes) -> None:
        positions: dict[int, int] = {}
        for j, ch in enumerate(b):
            positions[ch] = positions.get(ch, 0) | (1 << j)
        full = (1 << len(b)) - 1
        row = full
        rows = [row]
        for ch in a:
            matches = row & positions.get(ch, 0)
            row = ((row + matches) | (row - matches)) & full
            rows.append(row)
        self.rows = rows

    def length(self, i: int, j: int) -> int:
        """``LCS(a[:i], b[:j])``."""
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()


def _lcs_walk(a: bytes, b: bytes, table: _LcsTable, length: int) -> tuple[bytes, list[tuple[int, ...]]]:
    """Walk the table back from the end: the LCS and its contiguous matched ranges, last first (as Redis)."""
    out = bytearray(length)
    ranges: list[tuple[int, ...]] = []
    current: list[int] | None = None  # [a_start, a_end, b_start, b_end] of the range being grown
    i, j, k = len(a), len(b), length
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1]:
            k -= 1
            out[k] = a[i - 1]
            if current is None:
                current = [i - 1, i - 1, j - 1, j - 1]
            else:
                current[0] -= 1
                current[2] -= 1
            i -= 1
            j -= 1
            if current[0] == 0 or current[2] == 0:
                ranges.append(tuple(current))
                current = None
        else:
            if table.length(i - 1, j) > table.length(i, j - 1):
                i -= 1
            else:
                j -= 1
            if current is not None:
                ranges.append(tuple(current))
                current = None
    return bytes(out), ranges
