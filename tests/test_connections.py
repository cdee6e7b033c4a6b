"""Many connections at once, misbehaving peers, connection limits, unix sockets, inline commands, QUIT."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import tempfile
import time

import pytest
import redis

from .support.resp import RawClient, encode_command
from .support.servers import OracleServer, PostroomThread
from .support.waiting import wait_until


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


async def _busy(port: int, index: int, rounds: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    batch = b"".join(
        encode_command(("SET", f"busy:{index}:{i}", f"value-{index}-{i}")) + encode_command(("GET", f"busy:{index}:{i}"))
        for i in range(rounds)
    )
    writer.write(batch)
    await writer.drain()
    expected = b"".join(
        b"+OK\r\n$%d\r\nvalue-%d-%d\r\n" % (len(f"value-{index}-{i}"), index, i) for i in range(rounds)
    )
    got = await reader.readexactly(len(expected))
    assert got == expected
    writer.close()
    await writer.wait_closed()


async def _many(port: int, idle_count: int, busy_count: int) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(idle_count)]
    await asyncio.gather(*(_busy(port, i, 20) for i in range(busy_count)))
    for _, writer in idle:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
    for reader, _ in idle:
        assert await reader.readexactly(7) == b"+PONG\r\n"
    for _, writer in idle:
        writer.close()


def _connected_clients(client: RawClient) -> int:
    return int(client.call("INFO", "clients")[1].split(b"connected_clients:")[1].split(b"\r\n")[0])


def test_a_thousand_idle_and_two_hundred_busy_connections(postroom_server):
    client = RawClient(postroom_server.port)
    before = _connected_clients(client)
    asyncio.run(asyncio.wait_for(_many(postroom_server.port, 1000, 200), timeout=90))
    wait_until(lambda: _connected_clients(client) <= before, 20, "closed connections were not forgotten")
    client.close()


@pytest.mark.parametrize("data, reply", [
    (b"*1\r\n$2147483648\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\nGARBAGE\r\n", b"-ERR Protocol error: expected '$', got 'G'\r\n"),
    (b"\x16\x03\x01\x02\xfc\x03\x03\"\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
])
def test_bad_peer_is_answered_and_closed_while_others_carry_on(postroom_server, oracle_server, data, reply):
    for port in (postroom_server.port, oracle_server.port):
        neighbour = RawClient(port)
        neighbour.call("SET", "neighbour", "1")
        bad = socket.create_connection(("127.0.0.1", port))
        bad.sendall(data)
        assert read_until_closed(bad) == reply
        bad.close()
        assert neighbour.call("INCR", "neighbour") == (":", b"2")
        neighbour.call("DEL", "neighbour")
        neighbour.close()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_huge_multibulk_count_costs_no_memory():
    """A 14-byte header declaring 10^8 arguments must not make the server allocate for them."""
    server = PostroomThread()
    try:
        before = _rss_bytes()
        bad = socket.create_connection(("127.0.0.1", server.port))
        bad.sendall(b"*100000000\r\n$4\r\nPING\r\n")
        neighbour = RawClient(server.port)
        time.sleep(0.2)  # no event tells when the server has read the header: give it time
        assert neighbour.call("PING") == ("+", b"PONG")
        assert _rss_bytes() - before < 50 * 1024 * 1024  # hiredis would preallocate 800 MB here
        bad.close()
        server.call_in_loop(gc.collect)
        assert neighbour.call("PING") == ("+", b"PONG")
        neighbour.close()
    finally:
        server.stop()


def test_http_requests_are_dropped_like_redis(postroom_server, oracle_server):
    request = b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    replies = []
    for port in (postroom_server.port, oracle_server.port):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(request)
        replies.append(read_until_closed(sock, timeout=1.0))
        sock.close()
    assert replies[0] == replies[1] == b""


def test_maxclients_matches_redis():
    ours = PostroomThread(maxclients="3")
    theirs = OracleServer("--maxclients", "3")
    try:
        replies = []
        for port in (ours.port, theirs.port):
            held = [RawClient(port) for _ in range(3)]
            for client in held:
                assert client.call("PING") == ("+", b"PONG")
            extra = socket.create_connection(("127.0.0.1", port))
            replies.append(read_until_closed(extra))
            extra.close()
            held[0].close()
            time.sleep(0.1)
            again = RawClient(port)
            assert again.call("PING") == ("+", b"PONG")
            again.close()
            for client in held[1:]:
                client.close()
        assert replies[0] == replies[1] == b"-ERR max number of clients reached\r\n"
    finally:
        ours.stop()
        theirs.stop()


def test_unix_socket():
    directory = tempfile.mkdtemp(prefix="postroom-unix-")
    path = os.path.join(directory, "postroom.sock")
    server = PostroomThread(unixsocket=path, unixsocketperm="700")
    try:
        client = redis.Redis(unix_socket_path=path)
        assert client.ping()
        client.set("over-unix", "yes")
        assert client.get("over-unix") == b"yes"
        assert oct(os.stat(path).st_mode & 0o777) == "0o700"
        info = client.client_info()
        assert info["addr"] == info["laddr"] == f"{path}:0"
        assert info["flags"] == "U"
        client.config_set("slowlog-log-slower-than", 0)
        client.ping()
        assert client.slowlog_get(1)[0]["client_address"] == f"{path}:0".encode()
        client.close()
    finally:
        server.stop()
        os.rmdir(directory) if not os.listdir(directory) else None


def test_inline_commands_match_redis(diff):
    inline = b"SET inline 'a b'\r\nGET inline\r\nECHO \"x\\ty\"\r\n\r\nPING\nDEL inline\r\n   \r\nGET inline\r\n"
    for raw in (diff.ours, diff.theirs):
        raw.send_raw(inline)
    replies = [[raw.read() for _ in range(6)] for raw in (diff.ours, diff.theirs)]
    assert replies[0] == replies[1]
    assert replies[0][1] == ("$", b"a b")


def test_quit_replies_then_closes_and_ignores_the_rest(diff, postroom_server, oracle_server):
    for raw in (diff.ours, diff.theirs):
        raw.send_raw(encode_command(("QUIT",)) + encode_command(("SET", "after-quit", "1")))
    replies = [(raw.read(), raw.read_closed()) for raw in (diff.ours, diff.theirs)]
    assert replies[0] == replies[1] == (("+", b"OK"), True)
    fresh_ours, fresh_theirs = RawClient(postroom_server.port), RawClient(oracle_server.port)
    assert fresh_ours.call("EXISTS", "after-quit") == fresh_theirs.call("EXISTS", "after-quit") == (":", b"0")
    fresh_ours.close()
    fresh_theirs.close()


def test_query_buffer_limit_closes_the_connection_without_reply():
    ours = PostroomThread(client_query_buffer_limit="1mb")
    theirs = OracleServer("--client-query-buffer-limit", "1mb")
    try:
        for port in (ours.port, theirs.port):
            neighbour = RawClient(port)
            big = socket.create_connection(("127.0.0.1", port))
            try:
                big.sendall(b"*2\r\n$4\r\nECHO\r\n$3000000\r\n" + b"x" * 1_500_000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert read_until_closed(big) == b""
            big.close()
            assert neighbour.call("PING") == ("+", b"PONG")
            neighbour.close()
    finally:
        ours.stop()
        theirs.stop()
