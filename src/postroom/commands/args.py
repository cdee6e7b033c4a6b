"""Argument parsing shared by every command family, with Redis's exact error texts."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..protocol.replies import ReplyError

SYNTAX_ERROR = ReplyError("ERR syntax error")
NOT_INTEGER = ReplyError("ERR value is not an integer or out of range")
NOT_FLOAT = ReplyError("ERR value is not a valid float")
OUT_OF_RANGE_TIMEOUT = ReplyError("ERR timeout is out of range")
NEGATIVE_TIMEOUT = ReplyError("ERR timeout is negative")
NOT_FLOAT_TIMEOUT = ReplyError("ERR timeout is not a float or out of range")
MUST_BE_POSITIVE = ReplyError("ERR value is out of range, must be positive")
NUMKEYS_ERROR = ReplyError("ERR numkeys should be greater than 0")

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


def parse_int(arg: bytes, error: ReplyError = NOT_INTEGER) -> int:
    """A signed 64-bit integer in Redis's strict form (no spaces, no '+', no leading zeros)."""
    try:
        value = int(arg)
    except ValueError:
        raise error
    # int() accepts ' 1', '+1', '1_000' and '01'; string2ll does not.
    if not arg or arg[0] in b" +\t\n\r\x0b\x0c" or arg[-1] in b" \t\n\r\x0b\x0c" or b"_" in arg:
        raise error
    if len(arg) > 1 and (arg[0] == 0x30 or (arg[0] == 0x2D and arg[1] == 0x30)):
        raise error
    if not LLONG_MIN <= value <= LLONG_MAX:
        raise error
    return value



def parse_timeout_seconds(arg: bytes) -> int:
    """Blocking-command timeout in seconds (float allowed) -> milliseconds; 0 waits forever."""
    try:
        value = float(arg)
    except ValueError:
        raise NOT_FLOAT_TIMEOUT
    if math.isnan(value) or b"_" in arg or arg[:1].isspace() or arg[-1:].isspace():
        raise NOT_FLOAT_TIMEOUT
    if value < 0 or value * 1000 >= 2**63:
        raise NEGATIVE_TIMEOUT  # Redis's (long long) cast of inf or a huge value yields LLONG_MIN
    # Rounded up, as Redis does (ceill): a timeout under a millisecond is 1 ms, not 0 (forever).
    ms = math.ceil(value * 1000)
    if ms > LLONG_MAX // 2:
        raise OUT_OF_RANGE_TIMEOUT
    return ms



def parse_int_at_least(arg: bytes, minimum: int, error: ReplyError) -> int:
    """An integer no smaller than ``minimum``; ``error`` covers both bad syntax and too small, as in
    Redis's getPositiveLongFromObjectOrReply / getRangeLongFromObjectOrReply callers."""
    value = parse_int(arg, error)
    if value < minimum:
        raise error
    return value


def numkeys_key_finder(numkeys_index: int) -> Callable[[list[bytes]], list[int]]:
    """Key positions of ``numkeys key [key ...]`` with ``numkeys`` at ``numkeys_index``.

    Used for COMMAND GETKEYS, WATCH and ACLs before the handler validates anything, so a malformed
    ``numkeys`` yields no keys rather than an error, and the count is clipped to the arguments present.
    """

    def find(argv: list[bytes]) -> list[int]:
        try:
            numkeys = int(argv[numkeys_index])
        except (IndexError, ValueError):
            return []
        first = numkeys_index + 1
        return list(range(first, min(first + max(numkeys, 0), len(argv))))

    return find


def invalid_expire_time(name: str) -> ReplyError:
    """The error for an expire time that is not positive or overflows, naming the command as Redis does."""
    return ReplyError(f"ERR invalid expire time in '{name}' command")
