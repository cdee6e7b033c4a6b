"""Protocol robustness against a live server: random and truncated bytes, huge declared lengths.

Whatever a peer sends, postroom must answer with valid RESP (or wait for more bytes, or close
the connection after a protocol error) and every other connection must carry on. Where the
input is deterministic enough, what postroom sends back is compared byte for byte with
redis-server's answer to the same bytes.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support.resp import RawClient, encode_command, parse

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and end our side; everything the server sent until it
    closed (``<closed>`` appended). Both servers run what is complete, then close on EOF, so no
    timing is involved."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(timeout)
    out = b""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            out += chunk
        out += b"<closed>"
    except (ConnectionResetError, BrokenPipeError):
        out += b"<closed>"
    finally:
        sock.close()
    return out


def both(ports: tuple[int, int], data: bytes) -> list[bytes]:
    """:func:`exchange` with both servers at once."""
    results: list[bytes] = [b"", b""]

    def run(i: int) -> None:
        results[i] = exchange(ports[i], data)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_valid_resp(output: bytes) -> None:
    """Every reply in ``output`` parses as RESP; a protocol error is the last thing before the close."""
    data = output.removesuffix(b"<closed>")
    pos = 0
    while pos < len(data):
        parsed = parse(data, pos)
        assert parsed is not None, f"truncated reply in {output!r}"
        reply, pos = parsed
        if reply[0] == "-" and reply[1].startswith(b"ERR Protocol error"):
            assert pos == len(data) and output.endswith(b"<closed>"), output


@pytest.fixture(scope="module")
def control(postroom_server):
    """A connection that must keep working whatever the fuzzed connections do."""
    client = RawClient(postroom_server.port)
    yield client
    client.close()


@FUZZ
@given(data=st.binary(min_size=1, max_size=300))
def test_random_bytes_never_hurt_the_server(postroom_server, control, data):
    assert_valid_resp(exchange(postroom_server.port, data))
    assert control.call("PING") == ("+", b"PONG")


TOKENS = [b"*", b"$", b"0", b"1", b"2", b"3", b"4", b"-1", b"\r\n", b"PING", b"ECHO", b"x", b" ", b"\"", b"'",
          b":", b"+", b"99999999999"]


# Multibulk counts of 10^5..2^32 are left out: hiredis allocates such arrays whole (see test_connections).
HUGE_COUNT = re.compile(rb"\*\d{6,10}(?!\d)")


@FUZZ
@given(parts=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).filter(
    lambda parts: HUGE_COUNT.search(b"".join(parts)) is None))
def test_protocol_like_garbage_is_answered_as_redis_does(postroom_server, oracle_server, control, parts):
    data = b"".join(parts)
    ours, theirs = both((postroom_server.port, oracle_server.port), data)
    assert ours == theirs, data
    assert control.call("PING") == ("+", b"PONG")


REQUESTS = [("SET", "k", "v" * 50), ("GET", "k"), ("ECHO", "a\r\nb"), ("PING",), ("DEL", "k"), ("GET", "k")]


@FUZZ
@given(cuts=st.lists(st.integers(min_value=0, max_value=sum(len(encode_command(r)) for r in REQUESTS)),
                     max_size=8))
def test_requests_cut_anywhere_give_the_same_replies(postroom_server, cuts):
    data = b"".join(encode_command(r) for r in REQUESTS)
    client = RawClient(postroom_server.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    previous = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        client.send_raw(data[previous:cut])
        previous = cut
        time.sleep(0.0005)
    replies = [client.read() for _ in REQUESTS]
    client.close()
    assert replies == [("+", b"OK"), ("$", b"v" * 50), ("$", b"a\r\nb"), ("+", b"PONG"), (":", b"1"), ("$", None)]


KNOWN_ERRORS = [
    b"*\r\n", b"*-\r\n", b"*x\r\n", b"* 1\r\n", b"*1 \r\n", b"*1\r\n$\r\n", b"*1\r\n$ 4\r\nPING\r\n", b"*1\r\n*1\r\n",
    b"*1\r\n:1\r\n", b"*1\r\n$99999999999999999999\r\n", b"*99999999999999999999\r\n", b"*1\r\n$536870913\r\n",
    b"*1\r\n$2147483648\r\n", b"PING \"a\r\n", b"PING 'a\r\n", b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n",
    b"$4\r\nPING\r\n", b":1\r\n", b"+PING\r\n", b"\r\n\r\nPING\r\n", b"*1\r\n$4\r\nPI\r\nG\r\n",
    b"*1\r\n$4\r\nPINGxx\r\n",
]


@pytest.mark.parametrize("data", KNOWN_ERRORS, ids=[repr(d)[:32] for d in KNOWN_ERRORS])
def test_protocol_errors_match_redis(postroom_server, oracle_server, data):
    ours, theirs = both((postroom_server.port, oracle_server.port), data)
    assert ours == theirs


def test_negative_zero_bulk_length_matches_redis(postroom_server, oracle_server):
    ours, theirs = both((postroom_server.port, oracle_server.port), b"*1\r\n$-0\r\n")
    assert ours == theirs
