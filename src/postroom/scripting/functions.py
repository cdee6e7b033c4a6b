"""Function libraries (``functions.c``, ``function_lua.c``): FUNCTION LOAD and the registry FCALL uses.

A library is Lua code starting with a ``#!lua name=<library>`` shebang. Loading runs the code
once, in a restricted environment where ``redis.register_function`` records its functions; a
library that registers none is refused. The registry keeps libraries by name and functions by
name (function names are global across libraries). FUNCTION DUMP/RESTORE use Redis's payload
format: one ``RDB_OPCODE_FUNCTION2`` record per library, the RDB version and a CRC64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.replies import ReplyError
from . import lzf
from .runtime import ScriptError

if TYPE_CHECKING:
    from .runtime import LuaEngine

FUNCTION_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
_NAME = re.compile(rb"[A-Za-z0-9_]+\Z")
_NAME_ERROR = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
_FUNCTION_NAME_ERROR = (
    "ERR Function names can only contain letters, numbers, or underscores(_) and must be at least one character long"
)
RDB_OPCODE_FUNCTION2 = 0xF5
RDB_ENC_LZF = 0xC3  # (RDB_ENCVAL << 6) | RDB_ENC_LZF
RDB_VERSION = 10


@dataclass(eq=False)
class Function:
    name: bytes
    callback: Any
    flags: tuple[str, ...]
    description: bytes | None
    library: Library | None = None


@dataclass(eq=False)
class Library:
    name: bytes
    code: bytes
    functions: dict[bytes, Function] = field(default_factory=dict)


def parse_shebang(code: bytes) -> dict[str, bytes]:
    """The ``#!lua name=<library>`` header of a library's code."""
    line = code.split(b"\n", 1)[0]
    if not line.startswith(b"#!"):
        raise ReplyError("ERR Missing library metadata")
    parts = line[2:].split()
    engine = parts[0] if parts else b""
    if engine.lower() != b"lua":
        raise ReplyError(f"ERR Engine '{engine.decode('utf-8', 'replace')}' not found")
    meta: dict[str, bytes] = {}
    for part in parts[1:]:
        key, sep, value = part.partition(b"=")
        if not sep or key != b"name":
            raise ReplyError(f"ERR Invalid metadata value given: {part.decode('utf-8', 'replace')}")
        meta[key.decode()] = value
    return meta


class FunctionRegistry:
    """The loaded libraries of one broker."""

    def __init__(self, engine: LuaEngine) -> None:
        self.engine = engine
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}

    def load(self, code: bytes, replace: bool) -> bytes:
        """FUNCTION LOAD: compile and run the library, then install it; returns its name."""
        meta = parse_shebang(code)
        name = meta.get("name")
        if name is None:
            raise ReplyError("ERR Library name was not given")
        if not _NAME.match(name):
            raise ReplyError(_NAME_ERROR)
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise ReplyError(f"ERR Library '{name.decode()}' already exists")
        library = Library(name, code)
        self._run_library(library)
        for function in library.functions.values():
            existing = self.functions.get(function.name)
            if existing is not None and existing.library is not old:
                raise ReplyError(f"ERR Function {function.name.decode()} already exists")
        if old is not None:
            self._remove(old)
        self._install(library)
        return name

    def _run_library(self, library: Library) -> None:
        engine = self.engine
        converter = engine.converter

        def register(*args: Any) -> None:
            try:
                function = _registration(args, converter.table_type)
                if function.name in library.functions:
                    raise ReplyError("ERR Function already exists in the library")
            except ReplyError as error:
                raise ScriptError(converter.table({b"err": error.message.encode()})) from None
            function.library = library
            library.functions[function.name] = function

        ok, error = engine.load_library(library.code, register)
        if not ok:
            message = error[b"err"] if type(error) is converter.table_type else error
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
            if error is not None and type(error) is converter.table_type and error[b"source"] is None \
                    and text.startswith("ERR user_function"):
                raise ReplyError(f"ERR Error compiling function: {text[4:]}")
            raise ReplyError(f"ERR Error registering functions: {text}")
        if not library.functions:
            raise ReplyError("ERR No functions registered")

    def _install(self, library: Library) -> None:
        self.libraries[library.name] = library
        for function in library.functions.values():
            self.functions[function.name] = function

    def _remove(self, library: Library) -> None:
        del self.libraries[library.name]
        for name in library.functions:
            if self.functions.get(name) is library.functions[name]:
                del self.functions[name]

    def delete(self, name: bytes) -> None:
        library = self.libraries.get(name)
        if library is None:
            raise ReplyError("ERR Library not found")
        self._remove(library)

    def flush(self) -> None:
        self.libraries.clear()
        self.functions.clear()

    # -- DUMP / RESTORE ---------------------------------------------------------------------

    def dump(self) -> bytes:
        body = b"".join(bytes([RDB_OPCODE_FUNCTION2]) + _rdb_string(lib.code) for lib in self.libraries.values())
        body += RDB_VERSION.to_bytes(2, "little")
        return body + crc64(body).to_bytes(8, "little")

    def restore(self, payload: bytes, policy: bytes) -> None:
        if len(payload) < 10 or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little") \
                or int.from_bytes(payload[-10:-8], "little") > RDB_VERSION:
            raise ReplyError("ERR DUMP payload version or checksum are wrong")
        codes: list[bytes] = []
        pos, end = 0, len(payload) - 10
        while pos < end:
            if payload[pos] != RDB_OPCODE_FUNCTION2:
                raise ReplyError("ERR given type is not a function")
            code, pos = _read_rdb_string(payload, pos + 1)
            codes.append(code)
        saved_libraries, saved_functions = dict(self.libraries), dict(self.functions)
        if policy == b"FLUSH":
            self.flush()
        try:
            for code in codes:
                name = parse_shebang(code).get("name", b"")
                if name in self.libraries and policy != b"REPLACE":
                    raise ReplyError(f"ERR Library {name.decode()} already exists")
                self.load(code, replace=True)
        except ReplyError:
            self.libraries, self.functions = saved_libraries, saved_functions
            raise


def _registration(args: tuple, table_type: type) -> Function:
    """The function ``redis.register_function`` describes, positional or named arguments."""
    if len(args) == 1 and type(args[0]) is table_type:
        spec = args[0]
        for key in spec:
            if key not in (b"function_name", b"callback", b"flags", b"description"):
                raise ReplyError("ERR unknown argument given to redis.register_function")
        name, callback = spec[b"function_name"], spec[b"callback"]
        if type(name) is not bytes:
            raise ReplyError("ERR redis.register_function must get a function name argument")
        if callback is None:
            raise ReplyError("ERR redis.register_function must get a callback argument")
        flags: list[str] = []
        raw_flags = spec[b"flags"]
        if raw_flags is not None:
            for flag in (raw_flags.values() if type(raw_flags) is table_type else [raw_flags]):
                text = flag.decode() if isinstance(flag, bytes) else str(flag)
                if text not in FUNCTION_FLAGS:
                    raise ReplyError("ERR unknown flag given")
                flags.append(text)
        description = spec[b"description"]
    elif len(args) == 2:
        name, callback = args
        flags, description = [], None
        if type(name) is not bytes:
            raise ReplyError("ERR first argument to redis.register_function must be a string")
    else:
        raise ReplyError("ERR wrong number of arguments to redis.register_function")
    if not _NAME.match(name):
        raise ReplyError(_NAME_ERROR if len(args) == 2 else _FUNCTION_NAME_ERROR)
    if not callable(callback):
        raise ReplyError("ERR second argument to redis.register_function must be a function")
    return Function(name, callback, tuple(flags), description if isinstance(description, bytes) else None)


def _rdb_length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _rdb_string(data: bytes) -> bytes:
    """An RDB string as Redis saves it with ``rdbcompression yes``: LZF when longer than 20 bytes and smaller."""
    if len(data) > 20:
        packed = lzf.compress(data, len(data) - 4)
        if packed is not None:
            return bytes([RDB_ENC_LZF]) + _rdb_length(len(packed)) + _rdb_length(len(data)) + packed
    return _rdb_length(len(data)) + data


def _read_rdb_length(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, pos + 1
    if kind == 1:
        return ((first & 0x3F) << 8) | data[pos + 1], pos + 2
    if first == 0x80:
        return int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
    if first == 0x81:
        return int.from_bytes(data[pos + 1:pos + 9], "big"), pos + 9
    raise ValueError("bad RDB length")


def _read_rdb_string(data: bytes, pos: int) -> tuple[bytes, int]:
    try:
        if data[pos] == RDB_ENC_LZF:
            packed_len, pos = _read_rdb_length(data, pos + 1)
            length, pos = _read_rdb_length(data, pos)
            return lzf.decompress(data[pos:pos + packed_len], length), pos + packed_len
        length, pos = _read_rdb_length(data, pos)
    except (ValueError, IndexError):
        raise ReplyError("ERR DUMP payload version or checksum are wrong") from None
    return data[pos:pos + length], pos + length


def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5  # Jones polynomial 0xad93d23594c935a9, reflected
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64(data: bytes) -> int:
    """Redis's CRC-64 (Jones polynomial, reflected, init 0) of DUMP payloads."""
    crc = 0
    table = _CRC64
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc
