"""Unit tests of the sans-IO protocol layer: ``RequestReader`` (bytes -> requests) and ``Encoder``.

Every reader case is fed three ways, as h11's tests do: all at once, one byte at a time, and
followed by a well-formed request that must still come out (or, after an error, must not).
Error texts are Redis's (``networking.c``), which the connection sends as ``-ERR <text>``.
"""

from __future__ import annotations

import math

import pytest

from postroom.protocol import (
    NULL_ARRAY,
    RESP2,
    RESP3,
    BigNumber,
    ProtocolError,
    Push,
    QueryBufferLimit,
    ReplyError,
    RequestReader,
    Verbatim,
    split_inline_args,
)

PING = b"*1\r\n$4\r\nPING\r\n"


def run(chunks: list[bytes], reader: RequestReader | None = None) -> tuple[list[list[bytes]], str | None]:
    """Feed ``chunks`` one by one, draining requests after each; stop at the first protocol error."""
    reader = reader or RequestReader()
    requests: list[list[bytes]] = []
    for chunk in chunks:
        reader.feed(chunk)
        try:
            while (request := reader.next_request()) is not None:
                requests.append(request)
        except ProtocolError as error:
            return requests, error.message
    return requests, None


def three_ways(data: bytes) -> list[tuple[str, list[bytes], bool]]:
    """(label, chunks, with_trailing_ping) for the three feeding strategies."""
    return [
        ("whole", [data], False),
        ("bytewise", [data[i : i + 1] for i in range(len(data))], False),
        ("trailing", [data + PING], True),
    ]


VALID = [
    (b"*1\r\n$4\r\nPING\r\n", [[b"PING"]]),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", [[b"SET", b"k", b""]]),
    (b"*2\r\n$4\r\nECHO\r\n$6\r\na\r\nb\x00c\r\n", [[b"ECHO", b"a\r\nb\x00c"]]),
    (b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [[b"PING"], [b"GET", b"k"]]),
    (b"*0\r\n", []),
    (b"*-1\r\n", []),
    (b"*-5\r\n*1\r\n$4\r\nPING\r\n", [[b"PING"]]),
    (b"PING\r\n", [[b"PING"]]),
    (b"PING\n", [[b"PING"]]),
    (b"SET k 'a b' \"c\\nd\"\r\n", [[b"SET", b"k", b"a b", b"c\nd"]]),
    (b"\r\n", []),
    (b"   \r\n", []),
    (b"ECHO \"\\x41\\x42\"\r\n", [[b"ECHO", b"AB"]]),
    (b"*2\r\n$4\r\nECHO\r\n$" + b"%d" % 70000 + b"\r\n" + b"x" * 70000 + b"\r\n", [[b"ECHO", b"x" * 70000]]),
]


@pytest.mark.parametrize("data, expected", VALID, ids=[repr(v[0][:24]) for v in VALID])
def test_valid_requests(data, expected):
    for label, chunks, trailing in three_ways(data):
        requests, error = run(chunks)
        assert error is None, label
        assert requests == expected + ([[b"PING"]] if trailing else []), label


INVALID = [
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*1x\r\n", "invalid multibulk length"),
    (b"*+1\r\n", "invalid multibulk length"),
    (b"*01\r\n", "invalid multibulk length"),
    (b"*1\r\nfoo\r\n", "expected '$', got 'f'"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$abc\r\n", "invalid bulk length"),
    (b"*1\r\n$2147483648\r\n", "invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "invalid bulk length"),
    (b"SET k \"unbalanced\r\n", "unbalanced quotes in request"),
    (b"SET k 'a'b\r\n", "unbalanced quotes in request"),
]


@pytest.mark.parametrize("data, message", INVALID, ids=[repr(v[0][:24]) for v in INVALID])
def test_protocol_errors(data, message):
    for label, chunks, _ in three_ways(data):
        requests, error = run(chunks)
        assert error == f"Protocol error: {message}", label
        assert requests == [], label


def test_multibulk_count_above_int_max():
    # Fed byte by byte: hiredis never sees the whole header (whole, it would allocate a list of
    # 3e9 slots before the scanner rejects the count; see test_connections for that hazard).
    requests, error = run([bytes((c,)) for c in b"*3000000000\r\n"])
    assert error == "Protocol error: invalid multibulk length"


def test_error_after_good_requests_keeps_them():
    requests, error = run([PING + b"*1\r\n$x\r\n"])
    assert requests == [[b"PING"]]
    assert error == "Protocol error: invalid bulk length"


@pytest.mark.parametrize("prefix, message", [
    (b"*", "too big mbulk count string"),
    (b"*1\r\n$", "too big bulk count string"),
    (b"", "too big inline request"),
])
def test_overlong_lines(prefix, message):
    data = prefix + b"1" * (64 * 1024 + 10)
    for chunks in ([data], [data[i : i + 4096] for i in range(0, len(data), 4096)]):
        requests, error = run(chunks)
        assert error == f"Protocol error: {message}"


def test_unauthenticated_limits():
    reader = RequestReader(authenticated=False)
    requests, error = run([b"*11\r\n"], reader)
    assert error == "Protocol error: unauthenticated multibulk length"
    reader = RequestReader(authenticated=False)
    requests, error = run([b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"], reader)
    assert error == "Protocol error: unauthenticated bulk length"
    reader = RequestReader(authenticated=False)
    requests, error = run([b"*2\r\n$4\r\nAUTH\r\n$3\r\npwd\r\n"], reader)
    assert (requests, error) == ([[b"AUTH", b"pwd"]], None)


def test_declared_lengths_are_checked_before_the_payload_arrives():
    reader = RequestReader(max_bulk_len=1024 * 1024)
    requests, error = run([b"*2\r\n$4\r\nECHO\r\n$2000000\r\n"], reader)
    assert error == "Protocol error: invalid bulk length"


def test_query_buffer_limit():
    reader = RequestReader(max_query_buffer=1024 * 1024)
    reader.feed(b"*2\r\n$4\r\nECHO\r\n$1500000\r\n")
    assert reader.next_request() is None
    with pytest.raises(QueryBufferLimit):
        for _ in range(20):
            reader.feed(b"x" * 100_000)
            assert reader.next_request() is None


def test_requests_are_parsed_lazily():
    reader = RequestReader()
    reader.feed(PING * 3)
    assert reader.next_request() == [b"PING"]
    assert reader.may_have_requests
    assert reader.next_request() == [b"PING"]
    assert reader.next_request() == [b"PING"]
    assert reader.next_request() is None
    assert not reader.may_have_requests


def test_split_request_across_many_feeds_then_inline():
    reader = RequestReader()
    data = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nPING\r\n"
    requests, error = run([data[:7], data[7:19], data[19:33], data[33:]], reader)
    assert (requests, error) == ([[b"SET", b"key", b"value"], [b"PING"]], None)


@pytest.mark.parametrize("line, args", [
    (b"a b  c", [b"a", b"b", b"c"]),
    (b"\"a\\tb\" 'c\\'d'", [b"a\tb", b"c'd"]),
    (b"\"\\x4\"", [b"x4"]),
    (b"''", [b""]),
    (b"\"unterminated", None),
    (b"\"closed\"x", None),
])
def test_split_inline_args(line, args):
    assert split_inline_args(line) == args


# -- encoder -------------------------------------------------------------------------------------

ENCODINGS = [
    (b"bulk", b"$4\r\nbulk\r\n", b"$4\r\nbulk\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    ("OK", b"+OK\r\n", b"+OK\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-7, b":-7\r\n", b":-7\r\n"),
    (2**62, b":4611686018427387904\r\n", b":4611686018427387904\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (math.inf, b"$3\r\ninf\r\n", b",inf\r\n"),
    (-math.inf, b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
    ([b"a", 1], b"*2\r\n$1\r\na\r\n:1\r\n", b"*2\r\n$1\r\na\r\n:1\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ({b"k": b"v"}, b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n", b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n"),
    ({b"x"}, b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
    (ReplyError("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    (Verbatim(b"a:1\r\n"), b"$5\r\na:1\r\n\r\n", b"=9\r\ntxt:a:1\r\n\r\n"),
    (BigNumber(10**30), b"$31\r\n1000000000000000000000000000000\r\n", b"(1000000000000000000000000000000\r\n"),
    (Push([b"message", b"c", b"m"]), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
     b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
    ([[b"nested", None]], b"*1\r\n*2\r\n$6\r\nnested\r\n$-1\r\n", b"*1\r\n*2\r\n$6\r\nnested\r\n_\r\n"),
    (b"x" * 2000, b"$2000\r\n" + b"x" * 2000 + b"\r\n", b"$2000\r\n" + b"x" * 2000 + b"\r\n"),
]


@pytest.mark.parametrize("value, resp2, resp3", ENCODINGS, ids=[repr(v[0])[:30] for v in ENCODINGS])
def test_encoder(value, resp2, resp3):
    assert RESP2.encode(value) == resp2
    assert RESP3.encode(value) == resp3


def test_encoder_rejects_unknown_types():
    with pytest.raises(TypeError):
        RESP2.encode(object())


def test_encoder_handles_reply_error_subclasses():
    class Custom(ReplyError):
        pass

    assert RESP3.encode([Custom("WRONGTYPE x")]) == b"*1\r\n-WRONGTYPE x\r\n"


@pytest.mark.parametrize("chunk", [7, 1000, 65536])
def test_a_request_spanning_reads_is_followed_by_ordinary_requests(chunk):
    """Regression: the tail of a big request used to be mistaken for the start of a new one."""
    value = b"v" * 200_000
    data = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(value), value)
    reader = RequestReader()
    requests = []
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
        while (request := reader.next_request()) is not None:
            requests.append(request)
    reader.feed(b"*1\r\n$4\r\nPING\r\n")
    requests.append(reader.next_request())
    assert requests == [[b"SET", b"k", value], [b"PING"], [b"PING"]]


@pytest.mark.parametrize(
    "read, error",
    [
        # The unfinished request's first bytes repeat the request before it: the segment's tail
        # equals that request's encoding, which once passed for a request boundary.
        (b"*1\r\n$3\r\nGET\r\n*1\r\n$2000\r\n*1\r\n$3\r\nGET\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$3\r\nGET\r\n*3\r\n*1\r\n$3\r\nGET\r\n", "Protocol error: expected '$', got '*'"),
    ],
)
def test_unfinished_request_that_ends_like_the_previous_one_is_checked(read, error):
    reader = RequestReader(max_bulk_len=1000)
    reader.feed(read)
    assert reader.next_request() == [b"GET"]
    with pytest.raises(ProtocolError, match=error.replace("$", r"\$")):
        reader.next_request()
