"""The libraries Redis preloads into scripts: ``cjson``, ``cmsgpack``, ``bit`` and ``struct``.

Implemented in Python and exposed to Lua as tables of functions, with the behaviour of the C
libraries Redis bundles: lua-cjson (numbers with ``%.14g``, ``/`` escaped, ``cjson.null``),
lua-cmsgpack (tables with keys 1..n are arrays, integral numbers are integers), Lua BitOp
(32-bit two's complement results) and lua_struct (``pack``/``unpack``/``size``).
"""

from __future__ import annotations

import json
import math
import struct as pystruct
from typing import Any

import msgpack


def install_libraries(lua: Any, libs: Any) -> None:
    """Fill ``libs`` (a Lua table) with the four library tables."""
    table = lua.table_from
    table_type = type(lua.table())
    json_lib = _Json(table, table_type, JSON_NULL)
    libs[b"cjson"] = table({
        b"encode": json_lib.encode, b"decode": json_lib.decode, b"null": JSON_NULL,
        b"encode_keep_buffer": lambda *a: True, b"encode_max_depth": lambda *a: 1000,
        b"decode_max_depth": lambda *a: 1000, b"encode_number_precision": lambda *a: 14,
        b"encode_invalid_numbers": lambda *a: False, b"decode_invalid_numbers": lambda *a: True,
        b"encode_sparse_array": lambda *a: (False, 2, 10),
    })
    pack_lib = _MsgPack(table, table_type)
    libs[b"cmsgpack"] = table({b"pack": pack_lib.pack, b"unpack": pack_lib.unpack})
    libs[b"bit"] = table({
        b"tobit": lambda x: _tobit(x), b"tohex": _tohex, b"bnot": lambda x: _signed(~_u32(x)),
        b"band": lambda *a: _fold(a, lambda x, y: x & y), b"bor": lambda *a: _fold(a, lambda x, y: x | y),
        b"bxor": lambda *a: _fold(a, lambda x, y: x ^ y),
        b"lshift": lambda x, n: _signed(_u32(x) << (_u32(n) & 31)),
        b"rshift": lambda x, n: _signed(_u32(x) >> (_u32(n) & 31)),
        b"arshift": lambda x, n: _signed(_tobit(x) >> (_u32(n) & 31)),
        b"rol": lambda x, n: _signed(_rol(_u32(x), _u32(n) & 31)),
        b"ror": lambda x, n: _signed(_rol(_u32(x), (32 - (_u32(n) & 31)) & 31)),
        b"bswap": lambda x: _signed(int.from_bytes(_u32(x).to_bytes(4, "little"), "big")),
    })
    libs[b"struct"] = table({b"pack": _struct_pack, b"unpack": _struct_unpack, b"size": _struct_size})


class _JsonNull:
    """``cjson.null``: a light userdata in lua-cjson, a unique Python object (userdata to Lua) here."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "cjson.null"


JSON_NULL = _JsonNull()


# -- bit ---------------------------------------------------------------------------------------


def _u32(value: Any) -> int:
    """Lua BitOp's number normalisation: round to nearest (ties to even), keep the low 32 bits."""
    if isinstance(value, bytes):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return 0
        value = round(value)
    return int(value) & 0xFFFFFFFF


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _tobit(value: Any) -> int:
    return _signed(_u32(value))


def _fold(args: tuple, op: Any) -> int:
    result = _u32(args[0])
    for arg in args[1:]:
        result = op(result, _u32(arg))
    return _signed(result)


def _rol(value: int, n: int) -> int:
    return ((value << n) | (value >> (32 - n))) & 0xFFFFFFFF if n else value


def _tohex(value: Any, n: Any = 8) -> bytes:
    digits = int(n)
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = f"{_u32(value):08x}"
    text = text[8 - digits:] if digits else ""
    return (text.upper() if upper else text).encode()


# -- cjson -------------------------------------------------------------------------------------


def _format_number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value) if abs(value) < 10**14 else f"{value:.14g}"
    if math.isnan(value) or math.isinf(value):
        raise ValueError("Cannot serialise number: must not be NaN or Inf")
    return f"{value:.14g}"


_JSON_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_JSON_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("/"): "\\/", 8: "\\b", 12: "\\f", 10: "\\n",
                      13: "\\r", 9: "\\t", 127: "\\u007f"})


class _Json:
    def __init__(self, table: Any, table_type: type, null: Any) -> None:
        self.table = table
        self.table_type = table_type
        self.null = null

    def encode(self, value: Any) -> bytes:
        parts: list[str] = []
        self._encode(value, parts, 0)
        return "".join(parts).encode("latin-1")

    def _encode(self, value: Any, out: list[str], depth: int) -> None:
        if value is None or value is self.null:
            out.append("null")
        elif value is True:
            out.append("true")
        elif value is False:
            out.append("false")
        elif isinstance(value, int | float):
            out.append(_format_number(value))
        elif isinstance(value, bytes):
            out.append('"' + value.decode("latin-1").translate(_JSON_ESCAPES) + '"')
        elif type(value) is self.table_type:
            if depth >= 1000:
                raise ValueError("Cannot serialise, excessive nesting (1001)")
            items = list(value.items())
            length = _array_length(items)
            if length is not None and (length > 0 or not items):
                if not items:
                    out.append("{}")
                    return
                out.append("[")
                for i in range(1, length + 1):
                    if i > 1:
                        out.append(",")
                    item = value[i]
                    self._encode(item, out, depth + 1)
                out.append("]")
                return
            out.append("{")
            first = True
            for key, item in items:
                if isinstance(key, bytes):
                    name = key
                elif isinstance(key, int | float):
                    name = _format_number(key).encode()
                else:
                    raise ValueError("Cannot serialise table: table key must be a number or string")
                if not first:
                    out.append(",")
                first = False
                out.append('"' + name.decode("latin-1").translate(_JSON_ESCAPES) + '":')
                self._encode(item, out, depth + 1)
            out.append("}")
        else:
            raise ValueError(f"Cannot serialise {_lua_type_name(value)}: type not supported")

    def decode(self, text: bytes) -> Any:
        try:
            value = json.loads(text.decode("utf-8", "surrogateescape"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"Expected value but found invalid token: {exc}") from None
        return self._to_lua(value)

    def _to_lua(self, value: Any) -> Any:
        if value is None:
            return self.null
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return _lua_number(value)
        if isinstance(value, list):
            return self.table([self._to_lua(item) for item in value])
        if isinstance(value, dict):
            return self.table({k.encode("utf-8", "surrogateescape"): self._to_lua(v) for k, v in value.items()})
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid token '{name}'")


def _array_length(items: list[tuple[Any, Any]]) -> int | None:
    """The array length if every key is a positive integer and the array is not too sparse."""
    biggest = 0
    for key, _ in items:
        if type(key) is not int or key < 1:
            return None
        biggest = max(biggest, key)
    if biggest > 10 and biggest > 2 * len(items):
        raise ValueError("Cannot serialise table: excessively sparse array")
    return biggest


# -- cmsgpack ----------------------------------------------------------------------------------


class _MsgPack:
    """lua-cmsgpack: integral numbers as the smallest integer, floats as float32 when exact."""

    def __init__(self, table: Any, table_type: type) -> None:
        self.table = table
        self.table_type = table_type

    def pack(self, *values: Any) -> bytes:
        if not values:
            raise ValueError("bad argument #0 to 'pack' (MessagePack pack needs input.)")
        out = bytearray()
        for value in values:
            self._pack(value, out, 0)
        return bytes(out)

    def _pack(self, value: Any, out: bytearray, depth: int) -> None:
        if value is None:
            out.append(0xC0)
        elif value is True or value is False:
            out.append(0xC3 if value else 0xC2)
        elif isinstance(value, int):
            out += msgpack.packb(value)
        elif isinstance(value, float):
            try:
                single = pystruct.pack(">f", value)
            except OverflowError:  # beyond float32's range
                single = b""
            if single and (pystruct.unpack(">f", single)[0] == value or math.isnan(value)):
                out += b"\xca" + single
            else:
                out += b"\xcb" + pystruct.pack(">d", value)
        elif isinstance(value, bytes):
            n = len(value)
            if n < 32:
                out.append(0xA0 | n)
            elif n < 256:
                out += bytes((0xD9, n))
            elif n < 65536:
                out += b"\xda" + n.to_bytes(2, "big")
            else:
                out += b"\xdb" + n.to_bytes(4, "big")
            out += value
        elif type(value) is self.table_type and depth < 16:
            items = list(value.items())
            n = len(items)
            if all(type(k) is int for k, _ in items) and {k for k, _ in items} == set(range(1, n + 1)):
                out += _container_header(n, 0x90, 0xDC)
                for i in range(1, n + 1):
                    self._pack(value[i], out, depth + 1)
            else:
                out += _container_header(n, 0x80, 0xDE)
                for k, v in items:
                    self._pack(k, out, depth + 1)
                    self._pack(v, out, depth + 1)
        else:
            out.append(0xC0)

    def unpack(self, data: bytes) -> Any:
        unpacker = msgpack.Unpacker(raw=True, strict_map_key=False)
        unpacker.feed(data)
        return tuple(self._to_lua(v) for v in unpacker)

    def _to_lua(self, value: Any) -> Any:
        if isinstance(value, list):
            return self.table([self._to_lua(v) for v in value])
        if isinstance(value, dict):
            return self.table({self._to_lua(k): self._to_lua(v) for k, v in value.items()})
        if type(value) is int:
            return _lua_number(value)
        return value


def _lua_number(value: int) -> int | float:
    """Lua 5.1 numbers are doubles: integers beyond 2^53 lose precision as they would in C."""
    return value if -(2**53) <= value <= 2**53 else float(value)


def _container_header(n: int, fix: int, wide: int) -> bytes:
    if n < 16:
        return bytes((fix | n,))
    if n < 65536:
        return bytes((wide,)) + n.to_bytes(2, "big")
    return bytes((wide + 1,)) + n.to_bytes(4, "big")


def _lua_type_name(value: Any) -> str:
    name = type(value).__name__
    if "Function" in name or callable(value):
        return "function"
    if "Thread" in name:
        return "thread"
    return "userdata"


# -- struct ------------------------------------------------------------------------------------

_INT_SIZES = {"b": 1, "h": 2, "l": 8, "i": 4, "t": 8}
_FLOAT_FORMATS = {"f": "f", "d": "d", "n": "d"}


def _parse_format(fmt: bytes) -> list[tuple[str, int, str]]:
    """(kind, size, byte order) items of a lua_struct format string."""
    text = fmt.decode("latin-1")
    order = "<"
    items: list[tuple[str, int, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        count = ""
        while i < len(text) and text[i].isdigit():
            count += text[i]
            i += 1
        if ch in " ":
            continue
        if ch in "<=":
            order = "<"
        elif ch == ">":
            order = ">"
        elif ch == "!":
            continue
        elif ch.lower() in _INT_SIZES:
            size = int(count) if ch.lower() == "i" and count else _INT_SIZES[ch.lower()]
            if not 1 <= size <= 8:
                raise ValueError(f"integral size {size} is larger than limit of 8")
            items.append(("u" if ch.isupper() else "i", size, order))
        elif ch in _FLOAT_FORMATS:
            items.append((_FLOAT_FORMATS[ch], 4 if ch == "f" else 8, order))
        elif ch == "c":
            items.append(("c", int(count) if count else 1, order))
        elif ch == "s":
            items.append(("s", 0, order))
        elif ch == "x":
            items.append(("x", 1, order))
        else:
            raise ValueError(f"invalid format option '{ch}'")
    return items


def _struct_pack(fmt: bytes, *values: Any) -> bytes:
    out = bytearray()
    args = list(values)
    for kind, size, order in _parse_format(fmt):
        if kind == "x":
            out.append(0)
            continue
        if not args:
            raise ValueError("bad argument to 'pack' (no value)")
        value = args.pop(0)
        if kind in ("i", "u"):
            number = int(float(value)) & ((1 << (8 * size)) - 1)
            out += number.to_bytes(size, "little" if order == "<" else "big")
        elif kind in ("f", "d"):
            out += pystruct.pack(order + kind, float(value))
        elif kind == "c":
            data = value if isinstance(value, bytes) else str(value).encode()
            out += data[:size].ljust(size, b"\0") if size else data
        elif kind == "s":
            data = value if isinstance(value, bytes) else str(value).encode()
            out += data + b"\0"
    return bytes(out)


def _struct_unpack(fmt: bytes, data: bytes, init: Any = 1) -> tuple:
    pos = int(init) - 1
    results: list[Any] = []
    for kind, size, order in _parse_format(fmt):
        if kind == "s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise ValueError("unfinished string in data")
            results.append(data[pos:end])
            pos = end + 1
            continue
        if pos + size > len(data):
            raise ValueError("data string too short")
        chunk = data[pos:pos + size]
        pos += size
        if kind == "x":
            continue
        if kind in ("i", "u"):
            results.append(_lua_number(int.from_bytes(chunk, "little" if order == "<" else "big", signed=kind == "i")))
        elif kind in ("f", "d"):
            results.append(pystruct.unpack(order + kind, chunk)[0])
        elif kind == "c":
            results.append(chunk)
    results.append(pos + 1)
    return tuple(results)


def _struct_size(fmt: bytes) -> int:
    total = 0
    for kind, size, _ in _parse_format(fmt):
        if kind == "s" or (kind == "c" and size == 0):
            raise ValueError("options 'c0' - 's' have undefined sizes")
        total += size
    return total
