"""Runaway scripts: BUSY for other clients after busy-reply-threshold, SCRIPT/FUNCTION KILL, UNKILLABLE,
SHUTDOWN NOSAVE, and the server serving normally afterwards; each reply compared with redis-server's."""

from __future__ import annotations

import time

import pytest

from .support.resp import RawClient
from .support.servers import OracleServer, PostroomThread

THRESHOLD_MS = 200
LOOP = "local i = 0 while true do i = i + 1 end"
WRITE_THEN_LOOP = "redis.call('set', KEYS[1], 'x') while true do end"
FUNCTIONS = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)"


@pytest.fixture(params=["postroom", "oracle"])
def server(request):
    if request.param == "postroom":
        instance = PostroomThread(busy_reply_threshold=str(THRESHOLD_MS))
    else:
        instance = OracleServer("--busy-reply-threshold", str(THRESHOLD_MS))
    yield instance
    instance.stop()


def start_busy(port: int, *command) -> RawClient:
    runner = RawClient(port)
    runner.send(*command)
    return runner


def wait_busy(client: RawClient) -> tuple[tuple, float]:
    """PING until the server answers BUSY; the reply and how long the first answer took."""
    start = time.monotonic()
    reply = client.call("PING")
    elapsed = time.monotonic() - start
    while reply[0] != "-":
        reply = client.call("PING")
    return reply, elapsed


def test_busy_then_script_kill(server):
    watcher = RawClient(server.port)
    runner = start_busy(server.port, "EVAL", LOOP, 0)
    reply, elapsed = wait_busy(watcher)
    assert reply == ("-", b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    assert elapsed < THRESHOLD_MS / 1000 + 2
    newcomer = RawClient(server.port)  # connections accepted while busy are served too
    assert newcomer.call("GET", "x") == reply
    assert newcomer.call("FUNCTION", "KILL") == (
        "-", b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    assert watcher.call("SCRIPT", "KILL") == ("+", b"OK")
    killed = runner.read()
    assert killed[0] == "-"
    assert killed[1].startswith(b"ERR Script killed by user with SCRIPT KILL...")
    assert watcher.call("SCRIPT", "KILL") == ("-", b"NOTBUSY No scripts in execution right now.")
    assert watcher.call("PING") == ("+", b"PONG")
    assert newcomer.call("SET", "after", "1") == ("+", b"OK")
    assert runner.call("GET", "after") == ("$", b"1")
    for client in (watcher, runner, newcomer):
        client.close()


def test_pipeline_during_busy(server):
    watcher = RawClient(server.port)
    runner = start_busy(server.port, "EVAL", LOOP, 0)
    wait_busy(watcher)
    replies = watcher.pipeline([("SCRIPT", "KILL"), ("PING",), ("ECHO", "x")])
    busy = ("-", b"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    assert replies == [("+", b"OK"), busy, busy]  # the script dies only once the hook runs again
    assert runner.read()[1].startswith(b"ERR Script killed")
    assert watcher.call("PING") == ("+", b"PONG")
    watcher.close()
    runner.close()


def test_transaction_during_busy_is_aborted(server):
    watcher = RawClient(server.port)
    runner = start_busy(server.port, "EVAL", LOOP, 0)
    wait_busy(watcher)
    assert watcher.call("MULTI") == ("+", b"OK")  # MULTI is allowed while busy
    assert watcher.call("SET", "k", "v")[0] == "-"
    assert watcher.call("SCRIPT", "KILL") == ("+", b"QUEUED")  # inside MULTI even SCRIPT KILL is queued
    killer = RawClient(server.port)
    assert killer.call("SCRIPT", "KILL") == ("+", b"OK")
    runner.read()
    assert watcher.call("EXEC") == ("-", b"EXECABORT Transaction discarded because of previous errors.")
    for client in (watcher, runner, killer):
        client.close()


def test_function_kill(server):
    admin = RawClient(server.port)
    admin.call("FUNCTION", "LOAD", "REPLACE", FUNCTIONS)
    runner = start_busy(server.port, "FCALL", "spin", 0)
    reply, _ = wait_busy(admin)
    assert reply == ("-", b"BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
    assert admin.call("SCRIPT", "KILL") == reply
    stats = admin.call("FUNCTION", "STATS")
    running = stats[1][1][1]
    assert running[:4] == [("$", b"name"), ("$", b"spin"), ("$", b"command"), ("*", [("$", b"FCALL"), ("$", b"spin"), ("$", b"0")])]
    assert admin.call("FUNCTION", "KILL") == ("+", b"OK")
    assert runner.read() == ("-", b"ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.")
    assert admin.call("FUNCTION", "FLUSH") == ("+", b"OK")
    admin.close()
    runner.close()


def test_pcall_cannot_swallow_the_kill(server):
    watcher = RawClient(server.port)
    runner = start_busy(server.port, "EVAL", "while true do pcall(function() while true do end end) end", 0)
    wait_busy(watcher)
    assert watcher.call("SCRIPT", "KILL") == ("+", b"OK")
    assert runner.read()[0] == "-"
    assert watcher.call("PING") == ("+", b"PONG")
    watcher.close()
    runner.close()


def test_unkillable_then_shutdown_nosave(server):
    watcher = RawClient(server.port)
    runner = start_busy(server.port, "EVAL", WRITE_THEN_LOOP, 1, "k")
    wait_busy(watcher)
    assert watcher.call("SCRIPT", "KILL") == ("-", (
        b"UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the "
        b"script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."))
    watcher.send("SHUTDOWN", "NOSAVE")
    assert watcher.read_closed()
    runner.sock.settimeout(10)
    try:
        while runner.sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    watcher.close()
    runner.close()
