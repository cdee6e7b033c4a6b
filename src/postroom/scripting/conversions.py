"""Type conversions between Redis replies and Lua values, as ``script_lua.c`` does them.

Redis → Lua (what ``redis.call`` returns) depends on the protocol the script selected with
``redis.setresp`` (2 by default):

=====================  ==========================  ==================================
reply                  RESP2                       RESP3
=====================  ==========================  ==================================
integer                number                      number
bulk string            string                      string
null bulk / array      ``false``                   ``nil``
status                 ``{ok=...}``                ``{ok=...}``
error                  ``{err=...}``               ``{err=...}``
array                  table                       table
map                    flat table                  ``{map={k=v}}``
set                    table                       ``{set={k=true}}``
double                 string                      ``{double=n}``
boolean                number 1/0                  ``true``/``false``
big number             string                      ``{big_number='...'}``
verbatim string        string                      ``{verbatim_string={format=, string=}}``
=====================  ==========================  ==================================

Lua → Redis (what a script returns): numbers are truncated to integers (out-of-range values and
NaN give LLONG_MIN, like the C cast), strings are bulk strings, ``true`` is 1 (``#t`` after
``setresp(3)``), ``false``/``nil`` are null (``#f`` for ``false`` after ``setresp(3)``), and tables
are arrays (up to the first ``nil``) unless they carry one of the fields ``err``, ``ok``,
``double``, ``big_number``, ``map``, ``set`` or ``verbatim_string``.
"""

from __future__ import annotations

import math
from typing import Any

from ..protocol.encoder import format_double
from ..protocol.replies import BigNumber, ReplyError, Verbatim, _NullArray

LLONG_MIN = -(2**63)
LLONG_MAX = 2**63 - 1


class LuaConverter:
    """Converts in both directions for one Lua runtime (tables are created through ``lua``)."""

    def __init__(self, lua: Any) -> None:
        self.lua = lua
        self.table = lua.table_from
        self.table_type = type(lua.table())

    # -- Redis -> Lua ------------------------------------------------------------------------

    def to_lua(self, reply: Any, resp: int) -> Any:
        """The Lua value for a command's reply, in the protocol ``resp`` selected by the script."""
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        if reply is None or kind is _NullArray:
            return None if resp == 3 else False
        if kind is str:
            return self.table({b"ok": reply.encode()})
        if kind is list or kind is tuple:
            return self.table([self.to_lua(item, resp) for item in reply])
        if isinstance(reply, ReplyError):
            return self.table({b"err": reply.message.encode()})
        if kind is bool:
            return reply if resp == 3 else int(reply)
        if kind is float:
            return self.table({b"double": reply}) if resp == 3 else format_double(reply)
        if kind is dict:
            if resp == 3:
                return self.table({b"map": self.table({self.to_lua(k, 3): self.to_lua(v, 3) for k, v in reply.items()})})
            flat: list[Any] = []
            for k, v in reply.items():
                flat.append(self.to_lua(k, resp))
                flat.append(self.to_lua(v, resp))
            return self.table(flat)
        if kind is set or kind is frozenset:
            if resp == 3:
                return self.table({b"set": self.table({self.to_lua(item, 3): True for item in reply})})
            return self.table([self.to_lua(item, resp) for item in reply])
        if isinstance(reply, BigNumber):
            text = b"%d" % reply
            return self.table({b"big_number": text}) if resp == 3 else text
        if isinstance(reply, Verbatim):
            if resp == 3:
                return self.table({b"verbatim_string": self.table({b"format": b"txt", b"string": bytes(reply)})})
            return bytes(reply)
        if isinstance(reply, bytes | bytearray):
            return bytes(reply)
        if isinstance(reply, int):
            return int(reply)
        if isinstance(reply, list):
            return self.table([self.to_lua(item, resp) for item in reply])
        raise TypeError(f"cannot convert reply of type {kind.__name__} to Lua")

    # -- Lua -> Redis ------------------------------------------------------------------------

    def to_reply(self, value: Any, resp: int) -> Any:
        """The reply for a scalar a script returned; ``resp`` is the script's ``setresp`` protocol.

        Tables are encoded to RESP inside Lua (``encode_reply`` in ``sandbox.lua``), with the same rules.
        """
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int:
            return value if LLONG_MIN <= value <= LLONG_MAX else LLONG_MIN
        if value is None:
            return None
        if kind is float:
            return _truncate(value)
        if kind is bool:
            if resp == 3:
                return value
            return 1 if value else None
        return None  # functions, userdata, threads: Redis answers nil


def _truncate(number: float) -> int:
    """C's ``(long long)`` cast as x86 does it: NaN and out-of-range values become LLONG_MIN."""
    if math.isnan(number) or not -9.223372036854775808e18 <= number < 9.223372036854775808e18:
        return LLONG_MIN
    return int(number)


def lua_argument(value: Any) -> bytes | None:
    """A ``redis.call`` argument as Redis formats it (numbers with ``%.17g``); ``None`` if not allowed."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is int:
        if -(2**53) <= value <= 2**53:
            return b"%d" % value
        return format_double(float(value))
    if kind is float:
        if value == 0:
            return b"-0" if math.copysign(1.0, value) < 0 else b"0"
        return b"%.17g" % value
    return None
