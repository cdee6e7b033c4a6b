"""Reply values: what command handlers return, before any protocol version is chosen.

Handlers never build bytes. They return plain Python values and the encoder for the client's
protocol (RESP2 or RESP3) turns them into bytes. The mapping is fixed:

=================  ==========================  ===========================
value              RESP2                       RESP3
=================  ==========================  ===========================
``bytes``          bulk string                 bulk string
``str``            simple string (``+OK``)     simple string
``int``            integer                     integer
``bool``           integer 1/0                 boolean
``float``          bulk string (``%.17g``)     double (``%.17g``, as Redis 7.0)
``None``           null bulk (``$-1``)         null (``_``)
``NULL_ARRAY``     null array (``*-1``)        null (``_``)
``list``/``tuple`` array                       array
``dict``           flat array of pairs         map
``set``            array                       set
``ReplyError``     error                       error
``Verbatim``       bulk string                 verbatim string
``BigNumber``      bulk string                 big number
``Push``           array                       push
``Replies``        each item, one after another
=================  ==========================  ===========================

The types below exist only where Python has no natural value for a RESP type.
"""

from __future__ import annotations

from typing import Any


class ReplyError(Exception):
    """An error reply. Raised by handlers to abort a command, or returned inside arrays (EXEC).

    ``message`` is the full text after the ``-``, starting with the error code
    (``ERR``, ``WRONGTYPE``, ...), exactly as Redis prints it.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The first word, which INFO errorstats counts by."""
        return self.message.split(" ", 1)[0]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplyError) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)

    def __repr__(self) -> str:
        return f"ReplyError({self.message!r})"


class _NullArray:
    """The RESP2 ``*-1`` null (BLPOP timeout, EXEC aborted by WATCH); ``_`` in RESP3."""

    __slots__ = ()
    _instance: _NullArray | None = None

    def __new__(cls) -> _NullArray:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NULL_ARRAY"

    def __bool__(self) -> bool:
        return False


NULL_ARRAY = _NullArray()


class Verbatim(bytes):
    """A verbatim string (RESP3 ``=``), e.g. INFO and CLIENT LIST; a bulk string in RESP2."""

    __slots__ = ()
    format = b"txt"


class BigNumber(int):
    """A RESP3 big number (``(``); a bulk string in RESP2."""

    __slots__ = ()


class OrderedSet(set):
    """A RESP3 set reply whose elements keep the order given (and may be unhashable, like maps).

    The encoders look reply types up through the MRO, so this encodes as a set (``~``) in RESP3
    and an array in RESP2, iterating :attr:`items` in order.
    """

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        super().__init__()
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Any:
        return iter(self.items)


class Push(list):
    """An out-of-band message (pub/sub, invalidation): RESP3 ``>``; an ordinary array in RESP2."""

    __slots__ = ()


class Replies(list):
    """Several replies to one command, written one after the other with no header.

    SUBSCRIBE a b answers one confirmation per channel; inside EXEC they follow each other within
    the array, which counts commands, not replies, exactly as Redis writes them.
    """

    __slots__ = ()


class Encoded(bytes):
    """A reply element already encoded, identical in RESP2 and RESP3 (stream entries): written as is.

    Only for replies that go straight to a connection: scripts convert reply *values* to Lua, so
    a handler returns encoded elements only when it runs as a top-level command.
    """

    __slots__ = ()


#: Replies used on hot paths, shared to avoid re-allocating them.
OK = "OK"
QUEUED = "QUEUED"
PONG = "PONG"
