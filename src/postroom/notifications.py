"""Keyspace notification classes (``notify-keyspace-events``), as bit flags like Redis's NOTIFY_*.

Handlers emit with ``client.notify(GENERIC, b"del", key)``; the broker publishes to
``__keyspace@<db>__:<key>`` and/or ``__keyevent@<db>__:<event>`` when the configured flags
include the class and K and/or E. Redis publishes nothing unless K or E is set, whatever classes
are selected, so :func:`parse_flags` keeps the class bits and the broker checks both.

``keymiss`` (class ``m``) is not emitted by handlers: Redis announces it from its read lookups, so
the broker calls :func:`announce_key_misses` before a command runs, with the keys that command
reads (a table of Redis's lookup kinds; readonly commands read all their keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client
    from .commands.registry import Command

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


# -- keymiss (m): Redis's lookupKeyRead announces every key it looks for and does not find --------

#: Commands that never announce a miss although they read (their lookups pass LOOKUP_NONOTIFY).
_SILENT_READERS = frozenset(("object", "memory"))
#: Writes whose first key is a destination and whose other keys are read as sources.
_SOURCES_AFTER_DESTINATION = frozenset((
    "sunionstore", "sinterstore", "sdiffstore", "zunionstore", "zinterstore", "zdiffstore", "zrangestore",
    "bitop", "geosearchstore",
))
#: Writes that read their first key before changing anything.
_FIRST_KEY_READERS = frozenset((
    "getdel", "getex", "getset", "copy", "xack", "xclaim", "xautoclaim", "sort", "bitfield", "georadius",
    "georadiusbymember",
))
#: Writes that read every key they name.
_ALL_KEYS_READERS = frozenset(("pfmerge",))


def key_miss_positions(cmd: Command, argv: list[bytes]) -> list[int]:
    """Indexes of the keys ``argv`` looks up for reading, as Redis's commands do."""
    parent = cmd.parent.name if cmd.parent is not None else cmd.name
    if parent in _SILENT_READERS:
        return []
    name = cmd.name
    if name in _SOURCES_AFTER_DESTINATION:
        return cmd.key_positions(argv)[1:]
    if name in _FIRST_KEY_READERS or (name == "set" and any(arg.upper() == b"GET" for arg in argv[3:])):
        return cmd.key_positions(argv)[:1]
    if name in _ALL_KEYS_READERS or "readonly" in cmd.flags:
        return cmd.key_positions(argv)
    return []


def announce_key_misses(client: Client, cmd: Command, argv: list[bytes]) -> None:
    """Publish ``keymiss`` for each key the command reads and will not find, before it runs.

    Looking the key up first also expires it if it is due, so the ``expired`` event comes first,
    as in Redis.
    """
    db = client.db
    for position in key_miss_positions(cmd, argv):
        key = argv[position]
        if db.get(key) is None:
            client.notify(KEY_MISS, b"keymiss", key)
