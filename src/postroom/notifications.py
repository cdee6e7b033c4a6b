"""Keyspace notification classes (``notify-keyspace-events``), as bit flags like Redis's NOTIFY_*.

Handlers emit with ``client.notify(GENERIC, b"del", key)``; the broker publishes to
``__keyspace@<db>__:<key>`` and/or ``__keyevent@<db>__:<event>`` when the configured flags
include the class and K and/or E.
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
LOADED = 1 << 12  # module key loaded
MODULE = 1 << 13  # d
NEW = 1 << 14  # n
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE  # A

_LETTERS = [
    ("A", ALL), ("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET), ("h", HASH), ("z", ZSET),
    ("x", EXPIRED), ("e", EVICTED), ("K", KEYSPACE), ("E", KEYEVENT), ("t", STREAM), ("m", KEY_MISS),
    ("d", MODULE), ("n", NEW),
]


def parse_flags(text: str) -> int | None:
    """Flags from the config string (``"KEA"``); ``None`` if a character is not a class."""
    flags = 0
    table = dict(_LETTERS)
    for char in text:
        if char not in table:
            return None
        flags |= table[char]
    return flags


def format_flags(flags: int) -> str:
    """The canonical string CONFIG GET prints (Redis's keyspaceEventsFlagsToString)."""
    out = []
    if flags & ALL == ALL:
        out.append("A")
    else:
        for letter, bit in _LETTERS[1:10]:
            if letter in "KE":
                continue
            if flags & bit:
                out.append(letter)
    for letter in "KEtmdn":
        bit = dict(_LETTERS)[letter]
        if letter == "t" and flags & ALL == ALL:
            continue
        if letter == "d" and flags & ALL == ALL:
            continue
        if flags & bit:
            out.append(letter)
    return "".join(out)
