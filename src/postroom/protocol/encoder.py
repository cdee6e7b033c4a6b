"""Reply encoders: reply values (see :mod:`postroom.protocol.replies`) to RESP2 or RESP3 bytes.

Each encoder is a type-keyed dispatch table rather than an ``isinstance`` chain: the reply's exact
type selects the writer in one dict lookup, which matters because every reply goes through here.
Writers append byte fragments to a list that the connection joins once per read batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .replies import NULL_ARRAY, BigNumber, Encoded, Push, Replies, ReplyError, Verbatim, _NullArray

Writer = Callable[[Any, list[bytes]], None]

_CRLF = b"\r\n"
# Small integers and bulk length headers are the most frequent fragments: cache their encodings.
_INT_CACHE = [b":%d\r\n" % i for i in range(1024)]
_BULK_HDR = [b"$%d\r\n" % i for i in range(1024)]
_ARRAY_HDR = [b"*%d\r\n" % i for i in range(1024)]


def format_double(value: float) -> bytes:
    """Redis 7.0's double text: ``%.17g``, with ``inf``/``-inf`` spelled out."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if math.isnan(value):
        return b"nan"
    return b"%.17g" % value


def _bulk(value: bytes, out: list[bytes]) -> None:
    n = len(value)
    out.append(_BULK_HDR[n] if n < 1024 else b"$%d\r\n" % n)
    out.append(value)
    out.append(_CRLF)


_STATUS_CACHE: dict[str, bytes] = {}


def _status(value: str, out: list[bytes]) -> None:
    # A handful of statuses (OK, QUEUED, PONG, type names) make up nearly all of them.
    encoded = _STATUS_CACHE.get(value)
    if encoded is None:
        encoded = b"+" + value.encode() + _CRLF
        if len(_STATUS_CACHE) < 256:
            _STATUS_CACHE[value] = encoded
    out.append(encoded)


def _error(value: ReplyError, out: list[bytes]) -> None:
    # Newlines would break the framing; Redis replaces them with spaces.
    out.append(b"-" + value.message.replace("\r", " ").replace("\n", " ").encode() + _CRLF)


def _integer(value: int, out: list[bytes]) -> None:
    out.append(_INT_CACHE[value] if 0 <= value < 1024 else b":%d\r\n" % value)


class Encoder:
    """Encodes reply values for one protocol version; one shared instance per version."""

    def __init__(self, version: int) -> None:
        self.version = version
        table: dict[type, Writer] = {
            bytes: _bulk,
            bytearray: _bulk,
            str: _status,
            int: _integer,
            ReplyError: _error,
            list: self._array,
            tuple: self._array,
            Encoded: lambda v, out: out.append(v),
            Replies: self._sequence,
        }
        if version == 2:
            table.update(
                {
                    type(None): lambda v, out: out.append(b"$-1\r\n"),
                    _NullArray: lambda v, out: out.append(b"*-1\r\n"),
                    bool: lambda v, out: out.append(b":1\r\n" if v else b":0\r\n"),
                    float: lambda v, out: _bulk(format_double(v), out),
                    dict: self._map_as_array,
                    set: self._array,
                    frozenset: self._array,
                    Verbatim: _bulk,
                    BigNumber: lambda v, out: _bulk(b"%d" % v, out),
                    Push: self._array,
                }
            )
        else:
            table.update(
                {
                    type(None): lambda v, out: out.append(b"_\r\n"),
                    _NullArray: lambda v, out: out.append(b"_\r\n"),
                    bool: lambda v, out: out.append(b"#t\r\n" if v else b"#f\r\n"),
                    float: lambda v, out: out.append(b"," + format_double(v) + _CRLF),
                    dict: self._map,
                    set: self._set,
                    frozenset: self._set,
                    Verbatim: self._verbatim,
                    BigNumber: lambda v, out: out.append(b"(%d\r\n" % v),
                    Push: self._push,
                }
            )
        self._table = table

    def write(self, value: Any, out: list[bytes]) -> None:
        """Append the encoding of ``value`` to ``out``."""
        try:
            writer = self._table[type(value)]
        except KeyError:
            writer = self._fallback(value)
        writer(value, out)

    def encode(self, value: Any) -> bytes:
        """The encoding of ``value`` as one bytes object."""
        out: list[bytes] = []
        self.write(value, out)
        return b"".join(out)

    def _fallback(self, value: Any) -> Writer:
        # Subclasses (e.g. an exception subclass of ReplyError) resolve through the MRO once.
        for base in type(value).__mro__:
            if base in self._table:
                self._table[type(value)] = self._table[base]
                return self._table[base]
        raise TypeError(f"cannot encode reply of type {type(value).__name__}")

    def _array(self, value: list | tuple | set, out: list[bytes]) -> None:
        n = len(value)
        out.append(_ARRAY_HDR[n] if n < 1024 else b"*%d\r\n" % n)
        write = self.write
        for item in value:
            write(item, out)

    def _map_as_array(self, value: dict, out: list[bytes]) -> None:
        out.append(b"*%d\r\n" % (2 * len(value)))
        write = self.write
        for k, v in value.items():
            write(k, out)
            write(v, out)

    def _map(self, value: dict, out: list[bytes]) -> None:
        out.append(b"%%%d\r\n" % len(value))
        write = self.write
        for k, v in value.items():
            write(k, out)
            write(v, out)

    def _set(self, value: set | frozenset, out: list[bytes]) -> None:
        out.append(b"~%d\r\n" % len(value))
        write = self.write
        for item in value:
            write(item, out)

    def _sequence(self, value: Replies, out: list[bytes]) -> None:
        write = self.write
        for item in value:
            write(item, out)

    def _push(self, value: Push, out: list[bytes]) -> None:
        out.append(b">%d\r\n" % len(value))
        write = self.write
        for item in value:
            write(item, out)

    @staticmethod
    def _verbatim(value: Verbatim, out: list[bytes]) -> None:
        out.append(b"=%d\r\ntxt:" % (len(value) + 4))
        out.append(bytes(value))
        out.append(_CRLF)


RESP2 = Encoder(2)
RESP3 = Encoder(3)
ENCODERS = {2: RESP2, 3: RESP3}

__all__ = ["ENCODERS", "RESP2", "RESP3", "Encoder", "NULL_ARRAY", "format_double"]
