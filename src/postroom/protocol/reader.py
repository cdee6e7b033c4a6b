"""Request reader: bytes in, argument lists out. No sockets, no clock (h11 style).

Two parsers cooperate:

* **hiredis** (C) parses well-formed multibulk requests, the overwhelming majority of traffic.
  A read that ends on a request boundary never touches Python parsing code.
* **:class:`_Scanner`** (Python) walks the framing byte by byte only where hiredis cannot be
  trusted alone: a request split across reads (its declared lengths must be checked against the
  limits *before* the rest of it is buffered), inline (telnet) commands, and malformed input,
  where it produces Redis's exact ``Protocol error: ...`` text.

Invariant: every segment handed to hiredis starts on a request boundary, so when hiredis stops
early the scanner can find where the unfinished or bad request starts by skipping the requests
hiredis already returned.

Limits (Redis's ``networking.c``): a count or inline line may not exceed 64 KiB, a multibulk count
may not exceed ``INT_MAX``, a bulk may not exceed ``proto-max-bulk-len``, and the whole unread
input may not exceed ``client-query-buffer-limit``. Before AUTH (when a password is required) a
request may have at most 10 elements of at most 16 KiB each, so an anonymous peer cannot make the
server allocate much.
"""

from __future__ import annotations

import re
from collections import deque

import hiredis

INLINE_MAX_SIZE = 64 * 1024
#: Requests declaring this many arguments or more are parsed in Python, never by hiredis.
HIREDIS_MAX_COUNT = 1_000_000
_HUGE_COUNT = re.compile(rb"\*[0-9]{7}")
MULTIBULK_MAX_COUNT = 2**31 - 1
UNAUTHENTICATED_MAX_ARGS = 10
UNAUTHENTICATED_MAX_BULK = 16384


class ProtocolError(Exception):
    """The peer broke the protocol. ``message`` is the error text Redis replies with."""

    def __init__(self, detail: str) -> None:
        self.message = f"Protocol error: {detail}"
        super().__init__(self.message)


class QueryBufferLimit(Exception):
    """Unread input passed ``client-query-buffer-limit``: Redis closes such clients without a reply."""


class _Scanner:
    """Incremental walk over one multibulk or inline request, checking limits as headers appear.

    With ``collect`` it also gathers the arguments (the slow path); without it, it only finds
    where the request ends, so it can validate what hiredis is buffering.
    """

    __slots__ = ("reader", "collect", "args", "count", "args_left", "remaining", "line", "bulk", "inline")

    def __init__(self, reader: RequestReader, collect: bool) -> None:
        self.reader = reader
        self.collect = collect
        self.args: list[bytes] = []
        self.count = -1  # -1 until the ``*N`` line is read
        self.args_left = 0
        self.remaining = 0  # payload bytes (plus CRLF) still to come for the current bulk
        self.line = bytearray()
        self.bulk = bytearray()
        self.inline: bool | None = None

    def advance(self, data: bytes | memoryview, pos: int) -> int:
        """Consume ``data[pos:]``; return the offset just past the request, or -1 if it is unfinished."""
        n = len(data)
        if self.inline is None:
            if pos >= n:
                return -1
            self.inline = data[pos] != 0x2A  # '*'
        if self.inline:
            return self._advance_inline(data, pos)
        while True:
            if self.remaining:
                take = min(self.remaining, n - pos)
                if self.collect:
                    self.bulk += data[pos : pos + take]
                self.remaining -= take
                pos += take
                if self.remaining:
                    return -1
                if self.collect:
                    self.args.append(bytes(self.bulk[:-2]))
                    self.bulk.clear()
                self.args_left -= 1
                if self.args_left == 0:
                    return pos
            nl = data.find(b"\n", pos) if isinstance(data, bytes) else bytes(data[pos:]).find(b"\n")
            if nl >= 0 and not isinstance(data, bytes):
                nl += pos
            if nl < 0:
                self.line += data[pos:]
                if len(self.line) > INLINE_MAX_SIZE:
                    raise ProtocolError("too big mbulk count string" if self.count < 0 else "too big bulk count string")
                return -1
            if self.line:
                self.line += data[pos:nl]
                line = bytes(self.line)
                self.line.clear()
            else:
                line = bytes(data[pos:nl])
            if line.endswith(b"\r"):
                line = line[:-1]
            pos = nl + 1
            if self.count < 0:
                self.count = self._number(line[1:], "invalid multibulk length")
                if self.count > MULTIBULK_MAX_COUNT:
                    raise ProtocolError("invalid multibulk length")
                if self.count > UNAUTHENTICATED_MAX_ARGS and not self.reader.authenticated:
                    raise ProtocolError("unauthenticated multibulk length")
                if self.count <= 0:
                    return pos
                self.args_left = self.count
            else:
                if line[:1] != b"$":
                    raise ProtocolError(f"expected '$', got '{line[:1].decode('latin-1')}'")
                length = self._number(line[1:], "invalid bulk length")
                if length < 0 or length > self.reader.max_bulk_len:
                    raise ProtocolError("invalid bulk length")
                if length > UNAUTHENTICATED_MAX_BULK and not self.reader.authenticated:
                    raise ProtocolError("unauthenticated bulk length")
                self.remaining = length + 2

    def _advance_inline(self, data: bytes | memoryview, pos: int) -> int:
        data = bytes(data)
        nl = data.find(b"\n", pos)
        if nl < 0:
            self.line += data[pos:]
            if len(self.line) > INLINE_MAX_SIZE:
                raise ProtocolError("too big inline request")
            return -1
        self.line += data[pos:nl]
        line = bytes(self.line)
        self.line.clear()
        if len(line) > INLINE_MAX_SIZE:
            raise ProtocolError("too big inline request")
        if line.endswith(b"\r"):
            line = line[:-1]
        args = split_inline_args(line)
        if args is None:
            raise ProtocolError("unbalanced quotes in request")
        self.args = args
        return nl + 1

    @staticmethod
    def _number(text: bytes, error: str) -> int:
        # string2ll: optional '-', digits, no spaces, no '+', no leading zeros beyond "0".
        if not text or len(text) > 20:
            raise ProtocolError(error)
        body = text[1:] if text[:1] == b"-" else text
        if not body.isdigit() or (body[:1] == b"0" and (len(body) > 1 or body is not text)):
            raise ProtocolError(error)  # "-0" is rejected too
        return int(text)


class RequestReader:
    """Turns a connection's byte stream into requests (lists of ``bytes``).

    ``feed(data)`` only queues bytes; ``next_request()`` returns the next request, ``None`` when more
    bytes are needed, or raises :class:`ProtocolError` / :class:`QueryBufferLimit`. Requests are
    parsed lazily so that a blocked client's input simply waits in the queue.
    """

    def __init__(
        self,
        max_bulk_len: int = 512 * 1024 * 1024,
        max_query_buffer: int = 1024 * 1024 * 1024,
        authenticated: bool = True,
    ) -> None:
        self.max_bulk_len = max_bulk_len
        self.max_query_buffer = max_query_buffer
        self.authenticated = authenticated
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._hiredis = hiredis.Reader()
        self._segment: bytes | None = None  # what hiredis was last fed, starting on a boundary
        self._produced = 0  # requests hiredis returned from the current segment
        self._partial: _Scanner | None = None  # request hiredis holds the start of
        self._partial_bytes = 0
        self._slow: _Scanner | None = None  # request being parsed by the Python scanner
        self._python_bytes = 0  # input that must be parsed by the scanner (holds a huge count)
        self._inline_ready: deque[list[bytes]] = deque()  # inline requests split from one read
        #: The segment is the tail of a request begun in earlier reads (not boundary-aligned).
        self._completing = False

    def feed(self, data: bytes) -> None:
        """Queue bytes received from the peer."""
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes + self._partial_bytes > self.max_query_buffer:
            raise QueryBufferLimit()

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as requests (CLIENT LIST ``qbuf``)."""
        return self._pending_bytes + self._partial_bytes

    @property
    def may_have_requests(self) -> bool:
        """Whether :meth:`next_request` may return something without more input (hiredis may
        still hold complete requests of the current segment, which :attr:`buffered` does not count)."""
        return self._segment is not None or bool(self._pending) or bool(self._inline_ready)

    def next_request(self) -> list[bytes] | None:
        """The next complete request, or ``None`` if more bytes are needed."""
        while True:
            if self._inline_ready:
                return self._inline_ready.popleft()
            if self._segment is not None:
                try:
                    request = self._hiredis.gets()
                except hiredis.ProtocolError:
                    self._recover()
                    continue
                if request is not False:
                    self._produced += 1
                    if request.__class__ is list and request and self.authenticated:
                        for arg in request:
                            if arg.__class__ is not bytes:
                                break
                        else:
                            return request
                    if not request:  # ``*0`` and ``*-1`` are skipped, as Redis does
                        continue
                    if type(request) is not list or not self._plain(request):
                        self._recover(back=1)
                        continue
                    return request
                if self._hiredis.has_data():  # unparsed bytes: the segment ends inside a request
                    self._start_partial()
                elif not self._at_boundary():
                    self._hiredis = hiredis.Reader()  # the probe went into the unfinished request
                    self._start_partial(refeed=True)
                self._segment = None
            if not self._pending:
                return None
            data = self._pending.popleft()
            self._pending_bytes -= len(data)
            if self._slow is not None:
                request = self._continue_slow(data)
                if request is not None:
                    return request
            elif self._partial is not None:
                self._continue_partial(data)
            elif data[0] != 0x2A:  # not '*': inline commands (telnet, redis-benchmark's PING_INLINE)
                self._inline_lines(data)
            elif self._python_bytes > 0 or _has_huge_count(data):
                # hiredis preallocates a list as long as the declared count: a 14-byte
                # "*2147483647" would cost gigabytes. Such requests are parsed in Python, which
                # grows the argument list as arguments actually arrive (Redis caps at 1024).
                if self._python_bytes <= 0:
                    self._python_bytes = len(data)
                self._slow = _Scanner(self, collect=True)
                request = self._continue_slow(data)
                if request is not None:
                    return request
            else:
                self._segment = data
                self._completing = False
                self._produced = 0
                self._hiredis.feed(data)

    def _inline_lines(self, data: bytes) -> None:
        """Split every complete inline line of ``data`` at once (one C-level split, not per byte).

        Stops at a line starting with ``*`` (a multibulk request follows: requeued for hiredis);
        an unfinished last line is left to the scanner, which enforces the 64 KiB line limit.
        """
        lines = data.split(b"\n")
        tail = lines.pop()
        consumed = 0
        for line in lines:
            if line[:1] == b"*":
                self._requeue(data[consumed:])
                return
            consumed += len(line) + 1
            if len(line) > INLINE_MAX_SIZE:
                raise ProtocolError("too big inline request")
            if b'"' in line or b"'" in line:
                args = split_inline_args(line[:-1] if line.endswith(b"\r") else line)
                if args is None:
                    raise ProtocolError("unbalanced quotes in request")
            else:
                args = line.split()
            if args:  # empty lines are skipped, as Redis does
                self._inline_ready.append(args)
        if tail[:1] == b"*":
            self._requeue(tail)
        elif tail:
            self._slow = _Scanner(self, collect=True)
            self._slow.advance(tail, 0)  # no newline in it: buffers the partial line (64 KiB cap)

    def _plain(self, request: list) -> bool:
        for arg in request:
            if type(arg) is not bytes:
                return False
        if not self.authenticated and (
            len(request) > UNAUTHENTICATED_MAX_ARGS or any(len(a) > UNAUTHENTICATED_MAX_BULK for a in request)
        ):
            return False
        return True

    def _requeue(self, data: bytes) -> None:
        if data:
            self._pending.appendleft(data)
            self._pending_bytes += len(data)

    def _skip(self, segment: bytes, count: int) -> int:
        """Offset in ``segment`` just past its first ``count`` requests (all complete)."""
        pos = 0
        for _ in range(count):
            end = _Scanner(self, collect=False).advance(segment, pos)
            if end < 0:
                raise ProtocolError("unexpected end of request")
            pos = end
        return pos

    def _recover(self, back: int = 0) -> None:
        """hiredis rejected the segment: re-parse from the offending request with the scanner."""
        segment = self._segment
        assert segment is not None
        if self._completing:
            # The segment is the tail of a request whose headers the scanner already accepted;
            # hiredis refused what followed the payload (Redis would not even look there).
            raise ProtocolError("invalid bulk format")
        offset = self._skip(segment, self._produced - back)
        self._segment = None
        self._hiredis = hiredis.Reader()
        self._slow = _Scanner(self, collect=True)
        self._requeue(segment[offset:])

    def _at_boundary(self) -> bool:
        """Whether hiredis, having consumed the whole segment, stopped between two requests.

        hiredis does not say where it stopped, and an empty buffer is not enough: it also consumes
        the complete lines (``*3``, ``$3 SET``) of a request whose rest has not arrived. So it is
        asked with a probe, the empty request ``*0``: at a boundary hiredis returns it as ``[]``
        and is left clean; inside a request the probe became part of that request, and hiredis
        must be replaced (the caller does so and re-feeds the unfinished request). One feed and
        one parse per segment cost a fraction of re-encoding the last request to compare it with
        the segment's tail. Before AUTH the answer is always "no", so the segment is scanned and
        the unauthenticated limits are checked on any unfinished request.
        """
        if self._completing:
            return True  # the segment was cut exactly at the end of the request it completes
        if not self.authenticated:
            return False
        hiredis_reader = self._hiredis
        hiredis_reader.feed(b"*0\r\n")
        try:
            return hiredis_reader.gets() == []
        except hiredis.ProtocolError:
            return False

    def _start_partial(self, refeed: bool = False) -> None:
        """hiredis holds an unfinished request: find it and check the headers it has so far.

        With ``refeed`` hiredis was replaced by an empty reader, which is given the unfinished
        request from its start.
        """
        segment = self._segment
        assert segment is not None
        offset = self._skip(segment, self._produced)
        if offset >= len(segment):
            return
        if refeed:
            self._hiredis.feed(segment, offset)
        scanner = _Scanner(self, collect=False)
        scanner.advance(segment, offset)
        self._partial = scanner
        self._partial_bytes = len(segment) - offset

    def _continue_partial(self, data: bytes) -> None:
        scanner = self._partial
        assert scanner is not None
        held = bytes(scanner.line) if scanner.count < 0 else None  # a count line cut by the read
        end = scanner.advance(data, 0)
        if held is not None and scanner.count >= HIREDIS_MAX_COUNT:
            # The count completed in this read and is huge: hiredis holds only its first digits,
            # so start this request over in Python (see next_request).
            self._partial = None
            self._partial_bytes = 0
            self._hiredis = hiredis.Reader()
            self._requeue(held + data)
            self._python_bytes = len(held) + len(data)
            return
        if end < 0:
            self._hiredis.feed(data)
            self._partial_bytes += len(data)
            if self._pending_bytes + self._partial_bytes > self.max_query_buffer:
                raise QueryBufferLimit()
            return
        self._partial = None
        self._partial_bytes = 0
        self._requeue(data[end:])
        if scanner.count <= 0:  # "*0" / "*-5": Redis skips it; hiredis would refuse negative counts
            self._hiredis = hiredis.Reader()
            return
        self._segment = data[:end]
        self._completing = True
        self._produced = 0
        self._hiredis.feed(data, 0, end)

    def _continue_slow(self, data: bytes) -> list[bytes] | None:
        scanner = self._slow
        assert scanner is not None
        end = scanner.advance(data, 0)
        self._python_bytes -= len(data) if end < 0 else end
        if end < 0:
            return None
        self._slow = None
        self._requeue(data[end:])
        return scanner.args or None


def _has_huge_count(data: bytes) -> bool:
    """Whether ``data`` holds a ``*`` followed by 7 digits (see :data:`HIREDIS_MAX_COUNT`).

    Most reads hold one request, whose only ``*`` is its first byte: then a slice and
    ``isdigit`` decide, several times cheaper than a regex search.
    """
    if data.find(b"*", 1) < 0:
        return len(data) >= 8 and data[1:8].isdigit()
    return _HUGE_COUNT.search(data) is not None


def split_inline_args(line: bytes) -> list[bytes] | None:
    """Split an inline command line like Redis's ``sdssplitargs``; ``None`` on unbalanced quotes."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\r\n\v\f":
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if in_double:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 3 < n and line[i + 1] == 0x78 and _is_hex(line[i + 2]) and _is_hex(line[i + 3]):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in b" \t\r\n\v\f":
                        return None
                    in_double = False
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in b" \t\r\n\v\f":
                        return None
                    in_single = False
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \t\r\n\v\f":
                    break
                if c == 0x22:
                    in_double = True
                elif c == 0x27:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def _is_hex(c: int) -> bool:
    return c in b"0123456789abcdefABCDEF"
