"""CLIENT subcommands, differential against redis-server where replies are deterministic."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from postroom.broker import load_command_modules
from postroom.commands.registry import COMMANDS

from .support.resp import RawClient
from .support.waiting import wait_blocked

load_command_modules()

LIST_FIELDS_7_0 = [
    "id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub", "ssub", "multi", "qbuf",
    "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl", "oll", "omem", "tot-mem", "events", "cmd", "user",
    "redir", "resp",
]


def _line_fields(line: bytes) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.decode().split(" "))


def _payload(reply) -> bytes:
    kind, payload = reply
    return payload[4:] if kind == "=" else payload


def test_id_name_and_getname(diff):
    ours, theirs = diff.both("CLIENT", "ID")
    assert ours[0] == theirs[0] == ":"
    diff.check("CLIENT", "GETNAME")
    diff.check("CLIENT", "SETNAME", "worker-1")
    diff.check("CLIENT", "GETNAME")
    diff.check("CLIENT", "SETNAME", "has space")
    diff.check("CLIENT", "SETNAME", "new\nline")
    diff.check("CLIENT", "GETNAME")
    diff.check("CLIENT", "SETNAME", "")
    diff.check("CLIENT", "GETNAME")
    diff.check("CLIENT", "ID", "extra")
    diff.check("CLIENT", "SETNAME")
    diff.check("CLIENT")
    diff.check("CLIENT", "NOPE")


def test_list_and_info_errors(diff):
    diff.check("CLIENT", "LIST", "TYPE", "sometimes")
    diff.check("CLIENT", "LIST", "TYPE")
    diff.check("CLIENT", "LIST", "ID", "abc")
    diff.check("CLIENT", "LIST", "ID", "0")
    diff.check("CLIENT", "LIST", "ID", "1", "-5")
    diff.check("CLIENT", "LIST", "ID", "1", "99999999999999999999")
    diff.check("CLIENT", "LIST", "NOPE", "x")
    diff.check("CLIENT", "LIST", "TYPE", "pubsub")
    diff.check("CLIENT", "LIST", "ID", "999999")
    diff.check("CLIENT", "INFO", "extra")


def test_list_line_format(diff):
    diff.check("CLIENT", "SETNAME", "me")
    # This connection's own line: other connections named "me" (an earlier variant's, not yet
    # reaped) may still be listed.
    own = [b"id=%s " % reply[1] for reply in diff.both("CLIENT", "ID")]
    for args in (("CLIENT", "LIST"), ("CLIENT", "INFO")):
        ours, theirs = diff.both(*args)
        assert ours[0] == theirs[0]  # bulk in RESP2, verbatim in RESP3
        mine = _payload(ours).split(b"\n")
        assert mine[-1] == b""
        line = next(line for line in mine if line.startswith(own[0]))
        fields = _line_fields(line)
        redis_fields = _line_fields(next(line for line in _payload(theirs).split(b"\n") if line.startswith(own[1])))
        assert list(fields)[: len(LIST_FIELDS_7_0)] == list(redis_fields)[: len(LIST_FIELDS_7_0)] == LIST_FIELDS_7_0
        assert list(fields)[len(LIST_FIELDS_7_0):] == ["lib-name", "lib-ver"]
        for same in ("name", "flags", "db", "sub", "psub", "ssub", "multi", "user", "redir", "resp", "events"):
            assert fields[same] == redis_fields[same], same
        assert fields["cmd"] == redis_fields["cmd"] == "client|" + args[1].lower()


def test_list_filters_and_flags(r, postroom_server):
    own_id = r.client_id()
    other = RawClient(postroom_server.port)
    other.call("CLIENT", "SETNAME", "other")
    other.call("SUBSCRIBE", "news")
    try:
        clients = r.client_list(_type="pubsub")
        assert [(c["name"], c["flags"], c["sub"], c["cmd"]) for c in clients] == [("other", "P", "1", "subscribe")]
        listed = r.client_list(client_id=[own_id])
        assert [int(c["id"]) for c in listed] == [own_id]
        assert "other" not in {c["name"] for c in r.client_list(_type="normal")}
    finally:
        other.close()


def test_info_flags_follow_state(r):
    r.execute_command("CLIENT", "NO-EVICT", "ON")
    r.execute_command("CLIENT", "NO-TOUCH", "ON")
    assert r.client_info()["flags"] == "eT"
    r.execute_command("CLIENT", "NO-EVICT", "OFF")
    r.execute_command("CLIENT", "NO-TOUCH", "off")
    assert r.client_info()["flags"] == "N"
    pipe = r.pipeline(transaction=True)
    pipe.execute_command("CLIENT", "INFO")
    line = pipe.execute()[0]
    text = line.decode() if isinstance(line, bytes) else str(line)
    assert "flags=x" in text and "multi=" in text


def test_no_evict_no_touch_errors(diff):
    diff.check("CLIENT", "NO-EVICT", "maybe")
    diff.check("CLIENT", "NO-EVICT", "on")
    diff.check("CLIENT", "NO-EVICT", "OFF")
    diff.check("CLIENT", "NO-EVICT")


def test_no_touch_and_setinfo_follow_redis_7_2(r):
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("CLIENT", "NO-TOUCH", "maybe")
    r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib")
    r.execute_command("CLIENT", "SETINFO", "lib-ver", "1.2.3")
    info = r.client_info()
    assert info["lib-name"] == "mylib" and info["lib-ver"] == "1.2.3"
    with pytest.raises(redis.ResponseError, match="^Unrecognized option 'lib-foo'$"):
        r.execute_command("CLIENT", "SETINFO", "lib-foo", "x")
    with pytest.raises(redis.ResponseError, match="^lib-name cannot contain spaces, newlines or special characters.$"):
        r.execute_command("CLIENT", "SETINFO", "lib-name", "my lib")


def test_kill_errors(diff):
    diff.check("CLIENT", "KILL", "1.2.3.4:5")
    diff.check("CLIENT", "KILL", "ID", "0")
    diff.check("CLIENT", "KILL", "ID", "abc")
    diff.check("CLIENT", "KILL", "ID", "999999")
    diff.check("CLIENT", "KILL", "TYPE", "sometimes")
    diff.check("CLIENT", "KILL", "SKIPME", "maybe")
    diff.check("CLIENT", "KILL", "USER", "nobody")
    diff.check("CLIENT", "KILL", "NOPE", "x")
    diff.check("CLIENT", "KILL", "ID", "1", "TYPE")
    diff.check("CLIENT", "KILL", "ADDR", "1.2.3.4:5")
    diff.check("CLIENT", "KILL", "LADDR", "1.2.3.4:5")
    diff.check("CLIENT", "KILL", "TYPE", "master")
    diff.check("CLIENT", "KILL")


def test_kill_by_address_id_and_type(postroom_server):
    port = postroom_server.port
    admin = RawClient(port)
    victims = [RawClient(port) for _ in range(3)]
    ids = [int(v.call("CLIENT", "ID")[1]) for v in victims]
    addr = next(
        _line_fields(line)["addr"]
        for line in _payload(admin.call("CLIENT", "LIST", "ID", str(ids[0]))).split(b"\n") if line
    )
    assert admin.call("CLIENT", "KILL", addr) == ("+", b"OK")
    assert victims[0].read_closed()
    assert admin.call("CLIENT", "KILL", "ID", str(ids[1])) == (":", b"1")
    assert victims[1].read_closed()
    victims[2].call("SUBSCRIBE", "chan")
    assert admin.call("CLIENT", "KILL", "TYPE", "pubsub") == (":", b"1")
    assert victims[2].read_closed()
    assert admin.call("PING") == ("+", b"PONG")
    admin.close()


def test_kill_self_only_with_skipme_no(postroom_server):
    client = RawClient(postroom_server.port)
    own = client.call("CLIENT", "ID")[1].decode()
    assert client.call("CLIENT", "KILL", "ID", own) == (":", b"0")
    assert client.call("CLIENT", "KILL", "ID", own, "SKIPME", "no") == (":", b"1")
    assert client.read_closed()


def test_pause_and_reply_errors(diff):
    diff.check("CLIENT", "PAUSE", "abc")
    diff.check("CLIENT", "PAUSE", "-1")
    diff.check("CLIENT", "PAUSE", "10", "sometimes")
    diff.check("CLIENT", "PAUSE", "10", "ALL", "extra")
    diff.check("CLIENT", "PAUSE")
    diff.check("CLIENT", "REPLY", "maybe")
    diff.check("CLIENT", "REPLY")
    diff.check("CLIENT", "UNBLOCK", "abc")
    diff.check("CLIENT", "UNBLOCK", "1", "maybe")
    diff.check("CLIENT", "UNBLOCK", "999999")
    diff.check("CLIENT", "UNBLOCK", "999999", "ERROR")
    diff.check("CLIENT", "UNBLOCK", "1", "TIMEOUT", "x")
    diff.check("CLIENT", "UNPAUSE")


def test_reply_off_skip_on(diff):
    for raw in (diff.ours, diff.theirs):
        raw.send_raw(
            b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n"
            b"*2\r\n$4\r\nECHO\r\n$6\r\nhidden\r\n"
            b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n"
            b"*2\r\n$4\r\nECHO\r\n$5\r\nshown\r\n"
            b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"
            b"*2\r\n$4\r\nECHO\r\n$7\r\nskipped\r\n"
            b"*2\r\n$4\r\nECHO\r\n$5\r\nafter\r\n"
        )
    replies = [[raw.read() for _ in range(3)] for raw in (diff.ours, diff.theirs)]
    assert replies[0] == replies[1] == [("+", b"OK"), ("$", b"shown"), ("$", b"after")]


def test_help_lists_what_postroom_implements(diff):
    ours, theirs = diff.both("CLIENT", "HELP")
    mine = [line for _, line in ours[1]]
    redis_lines = [line for _, line in theirs[1]]
    assert mine[0] == redis_lines[0] and mine[-2:] == redis_lines[-2:]
    unimplemented = {b"CACHING", b"GETREDIR", b"TRACKING", b"TRACKINGINFO"}
    for i, line in enumerate(redis_lines[1:-2], 1):
        word = line.split(b" ")[0]
        if not line.startswith(b" ") and word not in unimplemented:
            assert line in mine, line
            assert redis_lines[i + 1] in mine
    assert {line.split(b" ")[0] for line in mine if not line.startswith(b" ")} >= {b"NO-TOUCH", b"SETINFO"}


def _blocking_pop_available() -> bool:
    return b"blpop" in COMMANDS


def _send_in_thread(client: RawClient, *args) -> tuple[threading.Thread, list]:
    box: list = []
    thread = threading.Thread(target=lambda: box.append(client.call(*args)), daemon=True)
    thread.start()
    return thread, box


@pytest.mark.skipif(not _blocking_pop_available(), reason="BLPOP not implemented yet")
@pytest.mark.parametrize("reason, expected", [("TIMEOUT", ("*", None)), ("ERROR", ("-", b"UNBLOCKED client unblocked via CLIENT UNBLOCK"))])
def test_unblock_blocked_client_matches_redis(postroom_server, oracle_server, reason, expected):
    for port in (postroom_server.port, oracle_server.port):
        admin, blocked = RawClient(port), RawClient(port)
        blocked_id = blocked.call("CLIENT", "ID")[1].decode()
        thread, box = _send_in_thread(blocked, "BLPOP", "unblock-list", "0")
        wait_blocked(admin, 1)
        assert admin.call("CLIENT", "UNBLOCK", blocked_id, reason) == (":", b"1")
        thread.join(5)
        assert box == [expected]
        assert admin.call("CLIENT", "UNBLOCK", blocked_id) == (":", b"0")
        admin.close()
        blocked.close()


def test_pause_write_holds_writes_only(postroom_server):
    port = postroom_server.port
    admin, writer, reader = RawClient(port), RawClient(port), RawClient(port)
    writer.call("SET", "paused-key", "before")
    assert admin.call("CLIENT", "PAUSE", "10000", "WRITE") == ("+", b"OK")
    try:
        thread, box = _send_in_thread(writer, "SET", "paused-key", "after")
        thread.join(0.2)
        assert box == []  # held
        assert reader.call("GET", "paused-key") == ("$", b"before")  # reads go on
        assert admin.call("CLIENT", "UNPAUSE") == ("+", b"OK")
        thread.join(5)
        assert box == [("+", b"OK")]
        assert reader.call("GET", "paused-key") == ("$", b"after")
    finally:
        admin.call("CLIENT", "UNPAUSE")
        for c in (admin, writer, reader):
            c.close()


def test_pause_all_ends_after_timeout_and_keeps_order(postroom_server):
    port = postroom_server.port
    admin, client = RawClient(port), RawClient(port)
    start = time.monotonic()
    assert admin.call("CLIENT", "PAUSE", "150", "ALL") == ("+", b"OK")
    client.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\np\r\n*2\r\n$3\r\nGET\r\n$1\r\np\r\n")
    replies = [client.read() for _ in range(3)]
    assert time.monotonic() - start >= 0.14
    assert replies == [("+", b"OK"), (":", b"2"), ("$", b"2")]
    admin.close()
    client.close()


def test_pause_does_not_hold_errors_or_the_pausing_clients_unpause(postroom_server):
    port = postroom_server.port
    admin = RawClient(port)
    admin.call("CLIENT", "PAUSE", "5000", "ALL")
    try:
        other = RawClient(port)
        assert other.call("NOSUCHCOMMAND")[0] == "-"
        assert other.call("GET")[0] == "-"
        other.close()
    finally:
        unpauser = socket.create_connection(("127.0.0.1", port))
        unpauser.sendall(b"*2\r\n$6\r\nCLIENT\r\n$7\r\nUNPAUSE\r\n")
        # CLIENT UNPAUSE itself is paused under ALL: the timer or this request ends the pause.
        postroom_server.call_in_loop(lambda: postroom_server.broker.client_pause and postroom_server.broker.client_pause.end())
        assert unpauser.recv(100) == b"+OK\r\n"
        unpauser.close()
    assert admin.call("PING") == ("+", b"PONG")
    admin.close()
