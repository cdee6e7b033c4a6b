"""Keyspace notification classes (``notify-keyspace-events``), as bit flags like Redis's NOTIFY_*.

Handlers emit with ``client.notify(GENERIC, b"del", key)``; the broker publishes to
``__keyspace@<db>__:<key>`` and/or ``__keyevent@<db>__:<event>`` when the configured flags
include the class and K and/or E. Redis publishes nothing unless K or E is set, whatever classes
are selected, so :func:`parse_flags` keeps the class bits and the broker checks both.
"""

from __future__ import annotations

KEYSPACE = 1 << 0  # K
KEYEVENT = 1 << 1  # E
GENERIC = 1 << 2  # g
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x
EVICTED = 1 << 9  # e
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m
MODULE = 1 << 13  # d
NEW = 1 << 14  # n
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE  # A

_BY_LETTER = {
    "A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET, "x": EXPIRED,
    "e": EVICTED, "K": KEYSPACE, "E": KEYEVENT, "t": STREAM, "m": KEY_MISS, "d": MODULE, "n": NEW,
}
# The order Redis's keyspaceEventsFlagsToString prints classes in when not all of A is set.
_CLASS_ORDER = (("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET), ("h", HASH), ("z", ZSET),
                ("x", EXPIRED), ("e", EVICTED), ("t", STREAM), ("d", MODULE), ("n", NEW))

#: What CONFIG SET answers for a character that is not a class.
INVALID_CLASS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse_flags(text: str) -> int | None:
    """Flags from the config string (``"KEA"``); ``None`` if a character is not a class."""
    flags = 0
    for char in text:
        bit = _BY_LETTER.get(char)
        if bit is None:
            return None
        flags |= bit
    return flags


def format_flags(flags: int) -> str:
    """The canonical string CONFIG GET prints (Redis's keyspaceEventsFlagsToString).

    ``A`` replaces its classes and, as in Redis 7.0, also hides ``n``; ``K``, ``E``, ``m`` follow.
    """
    out = ["A"] if flags & ALL == ALL else [letter for letter, bit in _CLASS_ORDER if flags & bit]
    for letter, bit in (("K", KEYSPACE), ("E", KEYEVENT), ("m", KEY_MISS)):
        if flags & bit:
            out.append(letter)
    return "".join(out)
