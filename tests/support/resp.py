"""A raw RESP client for differential tests: sends commands, returns replies as tagged trees.

redis-py and hiredis both erase distinctions the tests must see (a status ``+OK`` and a bulk
``$2 OK`` both become ``b"OK"``), so replies are parsed here into ``(type_char, payload)``
tuples that keep every RESP2/RESP3 type apart.
"""

from __future__ import annotations

import socket
from typing import Any

Reply = tuple[str, Any]


class RawClient:
    """A blocking socket speaking RESP, one command at a time or pipelined."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0, sock: Any = None) -> None:
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            sock.settimeout(timeout)
        self.sock = sock  # a TCP socket, or an embedded channel with the same methods
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *args: Any) -> None:
        self.sock.sendall(encode_command(args))

    def call(self, *args: Any) -> Reply:
        self.send(*args)
        return self.read()

    def pipeline(self, commands: list[tuple]) -> list[Reply]:
        self.sock.sendall(b"".join(encode_command(c) for c in commands))
        return [self.read() for _ in commands]

    def read(self) -> Reply:
        while True:
            parsed = parse(self.buf, 0)
            if parsed is not None:
                reply, end = parsed
                self.buf = self.buf[end:]
                return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def read_closed(self) -> bool:
        """True if the peer closed the connection (after any buffered replies)."""
        try:
            return self.sock.recv(65536) == b""
        except (ConnectionResetError, TimeoutError):
            return True


def encode_command(args: tuple | list) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, (int, float)):
            arg = repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def parse(buf: bytes, pos: int) -> tuple[Reply, int] | None:
    """Parse one reply at ``pos``; ``None`` if incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    kind = chr(buf[pos])
    line = buf[pos + 1 : nl]
    pos = nl + 2
    if kind in "+-:(,#_":
        return (kind, line), pos
    if kind in "$=!":
        length = int(line)
        if length < 0:
            return (kind, None), pos
        if len(buf) < pos + length + 2:
            return None
        return (kind, buf[pos : pos + length]), pos + length + 2
    if kind in "*~>%|":
        count = int(line)
        if count < 0:
            return (kind, None), pos
        if kind in "%|":
            count *= 2
        items = []
        for _ in range(count):
            parsed = parse(buf, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return (kind, items), pos
    raise ValueError(f"bad reply type {kind!r} in {buf[pos - 1 - len(line) - 1:][:80]!r}")


def unordered(reply: Reply) -> Reply:
    """Sort an array/set/map reply's elements (for commands whose order is unspecified)."""
    kind, payload = reply
    if kind in "*~" and payload is not None:
        return kind, sorted(payload, key=repr)
    if kind == "%" and payload is not None:
        pairs = sorted(zip(payload[::2], payload[1::2], strict=True), key=repr)
        return kind, [x for pair in pairs for x in pair]
    return reply
