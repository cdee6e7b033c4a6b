"""Server administration commands: CONFIG, INFO, TIME, LASTSAVE, SHUTDOWN, SLOWLOG, LATENCY, MEMORY,
MONITOR, DEBUG SLEEP. Differential against redis-server wherever the reply is deterministic."""

from __future__ import annotations

import re
import sys
import time

import pytest

from postroom.broker import load_command_modules
from postroom.commands.registry import COMMANDS

from .support.resp import RawClient
from .support.servers import PostroomProcess

load_command_modules()

SHARED_PARAMS = [
    "hz", "maxclients", "timeout", "tcp-keepalive", "databases", "maxmemory", "maxmemory-policy",
    "proto-max-bulk-len", "client-query-buffer-limit", "slowlog-log-slower-than", "slowlog-max-len",
    "latency-monitor-threshold", "list-max-listpack-size", "list-compress-depth", "set-max-intset-entries",
    "stream-node-max-bytes", "stream-node-max-entries", "lfu-log-factor", "lfu-decay-time",
    "notify-keyspace-events", "appendfsync", "lazyfree-lazy-expire", "active-expire-effort", "busy-reply-threshold",
]


def _text(reply) -> str:
    kind, payload = reply
    return (payload[4:] if kind == "=" else payload).decode()  # verbatim strings start with "txt:"


def _sections(info: str) -> list[str]:
    return re.findall(r"^# (\w+)", info, flags=re.M)


def _fields(info: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in info.split("\r\n") if line and not line.startswith("#"))


# -- CONFIG --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARED_PARAMS)
def test_config_get_shared_parameters(diff, name):
    diff.check("CONFIG", "GET", name)


def test_config_get_patterns_and_several_arguments(diff):
    diff.check("CONFIG", "GET", "hz", "maxmemory", sort=True)
    diff.check("CONFIG", "GET", "hz", "hz")
    diff.check("CONFIG", "GET", "no-such-parameter")
    diff.check("CONFIG", "GET", "lfu-*", sort=True)
    diff.check("CONFIG", "GET", "HZ")
    diff.check("CONFIG", "GET")


def test_config_set_errors(diff):
    diff.check("CONFIG", "SET", "hz")
    diff.check("CONFIG", "SET", "hz", "10", "maxmemory")
    diff.check("CONFIG", "SET", "no-such-parameter", "1")
    diff.check("CONFIG", "SET", "databases", "4")
    diff.check("CONFIG", "SET", "maxmemory", "lots")
    diff.check("CONFIG", "SET", "hz", "abc")
    diff.check("CONFIG", "SET", "maxmemory-policy", "sometimes")
    diff.check("CONFIG", "SET", "maxmemory", "1", "maxmemory", "2")
    diff.check("CONFIG", "SET", "hz", "15", "no-such-parameter", "1")


def test_config_set_is_all_or_nothing(diff):
    diff.check("CONFIG", "SET", "hz", "15", "maxmemory", "bad")
    diff.check("CONFIG", "GET", "hz")
    try:
        diff.check("CONFIG", "SET", "hz", "15", "maxmemory", "1mb")
        diff.check("CONFIG", "GET", "hz", "maxmemory", sort=True)
        diff.check("CONFIG", "SET", "MaxMemory", "2MB")
        diff.check("CONFIG", "GET", "maxmemory")
    finally:
        diff.check("CONFIG", "SET", "hz", "10", "maxmemory", "0")


def test_config_help_and_unknown_subcommand(diff):
    diff.check("CONFIG", "HELP")
    diff.check("CONFIG", "NOPE")
    diff.check("CONFIG")
    diff.check("CONFIG", "RESETSTAT", "extra")


def test_config_rewrite_without_file(diff):
    diff.check("CONFIG", "REWRITE")


def test_config_rewrite_writes_the_startup_file(r, postroom_server, tmp_path):
    path = tmp_path / "postroom.conf"
    path.write_text("# kept comment\nhz 10\n")
    config = postroom_server.broker.config
    config.file = str(path)
    try:
        r.config_set("hz", 25)
        assert r.execute_command("CONFIG", "REWRITE") in (b"OK", "OK", True)
        text = path.read_text()
        assert "# kept comment" in text and "hz 25" in text and "hz 10" not in text
    finally:
        config.file = None
        r.config_set("hz", 10)


def test_config_rewrite_with_the_file_given_on_the_command_line(tmp_path):
    path = tmp_path / "postroom.conf"
    path.write_text("hz 12\nappendonly no\nsave \"\"\n")
    server = PostroomProcess(tmp_path, None, "--config", str(path))
    try:
        client = RawClient(server.port)
        assert client.call("CONFIG", "GET", "hz") == ("*", [("$", b"hz"), ("$", b"12")])
        assert client.call("CONFIG", "SET", "hz", "31") == ("+", b"OK")
        assert client.call("CONFIG", "REWRITE") == ("+", b"OK")
        assert "hz 31" in path.read_text()
        assert client.call("INFO", "server")[1].decode().count(f"config_file:{path}\r\n") == 1
        client.close()
    finally:
        server.stop()


def test_config_resetstat_resets_command_statistics(diff):
    diff.check("SET", "k", "v")
    diff.check("CONFIG", "RESETSTAT")
    diff.check("GET", "k")
    diff.check("GET", "k")
    diff.check("NOSUCHCOMMAND")
    ours, theirs = (_fields(_text(reply)) for reply in diff.both("INFO", "commandstats"))
    calls = {key: value.split(",")[0] for key, value in ours.items()}
    assert calls == {key: value.split(",")[0] for key, value in theirs.items()}
    assert calls["cmdstat_get"] == "calls=2"
    ours, theirs = (_fields(_text(reply)) for reply in diff.both("INFO", "errorstats"))
    assert ours == theirs == {"errorstat_ERR": "count=1"}


# -- INFO ----------------------------------------------------------------------------------------


def test_info_default_sections_match_redis(diff):
    ours, theirs = diff.both("INFO")
    assert _sections(_text(ours)) == _sections(_text(theirs))
    ours, theirs = diff.both("INFO", "default")
    assert _sections(_text(ours)) == _sections(_text(theirs))


def test_info_everything_and_section_selection(diff):
    ours, theirs = diff.both("INFO", "everything")
    assert _sections(_text(ours)) == [s for s in _sections(_text(theirs)) if s != "Latencystats"]
    for args in (("server",), ("CLIENTS", "memory"), ("keyspace", "server", "keyspace"), ("all",),
                 ("commandstats",), ("cpu", "nosuchsection")):
        ours, theirs = diff.both("INFO", *args)
        assert _sections(_text(ours)) == [s for s in _sections(_text(theirs)) if s != "Latencystats"], args
    diff.check("INFO", "nosuchsection")


def test_info_fields_shared_with_redis(diff):
    ours, theirs = (_fields(_text(reply)) for reply in diff.both("INFO", "everything"))
    for section_field in ("redis_version", "redis_mode", "role", "maxclients", "connected_slaves",
                          "aof_enabled", "loading", "cluster_enabled", "maxmemory_policy", "blocked_clients"):
        assert ours[section_field] == theirs[section_field], section_field
    shared = set(theirs) - {"executable"}
    missing = {"used_memory", "uptime_in_seconds", "total_commands_processed", "instantaneous_ops_per_sec",
               "used_cpu_sys", "connected_clients", "rdb_changes_since_last_save", "run_id", "process_id"}
    assert missing <= set(ours) and missing <= shared


def test_info_stats_has_redis_fields_in_redis_order(diff):
    ours, theirs = (list(_fields(_text(reply))) for reply in diff.both("INFO", "stats"))
    assert ours == theirs


def test_info_memory_follows_redis_order(diff):
    """The memory fields we report are Redis's, in its order (allocator internals are not reported)."""
    ours, theirs = (list(_fields(_text(reply))) for reply in diff.both("INFO", "memory"))
    assert set(ours) <= set(theirs)
    assert ours == [name for name in theirs if name in ours]
    for name in ("used_memory_lua", "number_of_cached_scripts", "number_of_functions", "number_of_libraries",
                 "used_memory_scripts", "total_system_memory", "used_memory_startup"):
        assert name in ours


def test_keyspace_hits_and_misses_count_as_redis_does(diff):
    """Lookups by read-only commands count (Redis's lookupKeyRead); writes' lookups do not."""
    diff.check("CONFIG", "RESETSTAT")
    for command in (("GET", "a"), ("SET", "a", "1"), ("GET", "a"), ("MGET", "a", "b", "c"), ("INCR", "n"),
                    ("HGET", "h", "f"), ("HSET", "h", "f", "v"), ("HGET", "h", "f"), ("LRANGE", "l", "0", "-1"),
                    ("LPUSH", "l", "x"), ("LLEN", "l"), ("SMEMBERS", "s"), ("ZSCORE", "z", "m"),
                    ("SET", "gone", "1", "PX", "1")):
        diff.check(*command)
    time.sleep(0.01)  # let "gone" expire: a read of an expired key is a miss
    diff.check("GET", "gone")
    ours, theirs = (_fields(_text(reply)) for reply in diff.both("INFO", "stats"))
    assert (ours["keyspace_hits"], ours["keyspace_misses"]) == (theirs["keyspace_hits"], theirs["keyspace_misses"])
    assert ours["keyspace_hits"] != "0" and ours["keyspace_misses"] != "0"


def test_network_traffic_is_counted(postroom_server):
    client = RawClient(postroom_server.port)
    try:
        client.call("CONFIG", "RESETSTAT")
        for _ in range(10):
            assert client.call("PING") == ("+", b"PONG")
        stats = _fields(_text(client.call("INFO", "stats")))
        assert int(stats["total_net_input_bytes"]) >= 10 * len(b"*1\r\n$4\r\nPING\r\n")
        assert int(stats["total_net_output_bytes"]) >= 10 * len(b"+PONG\r\n")
        assert int(stats["total_reads_processed"]) >= 11 and int(stats["total_writes_processed"]) >= 11
    finally:
        client.close()


def test_info_keyspace_is_exact(diff):
    diff.check("INFO", "keyspace")
    diff.check("SET", "a", "1")
    diff.check("SET", "b", "1")
    diff.check("SELECT", "3")
    diff.check("SET", "c", "1")
    diff.check("INFO", "keyspace")
    diff.check("SELECT", "0")


def test_info_keyspace_average_ttl(r):
    r.set("plain", 1)
    r.set("short", 1, px=100_000)
    r.set("long", 1, px=300_000)
    line = r.info("keyspace")["db0"]
    assert line["keys"] == 3 and line["expires"] == 2
    assert 190_000 <= line["avg_ttl"] <= 200_000


def test_info_numbers_are_live(r, postroom_server, transport):
    info = r.info()
    assert info["redis_version"] == "7.0.15"
    assert "postroom_version" in info
    assert info["used_memory"] > 1_000_000
    assert info["connected_clients"] >= 1
    before = r.info("stats")["total_commands_processed"]
    for _ in range(5):
        r.ping()
    assert r.info("stats")["total_commands_processed"] >= before + 6
    if transport == "tcp":
        assert r.info("server")["tcp_port"] == postroom_server.port


def test_instantaneous_ops_per_sec_is_sampled_by_the_cron(r, postroom_server):
    stats = postroom_server.broker.server_stats
    postroom_server.call_in_loop(stats.ops_samples.clear)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and r.info("stats")["instantaneous_ops_per_sec"] == 0:
        r.ping()
    assert r.info("stats")["instantaneous_ops_per_sec"] > 0


def test_info_is_verbatim_in_resp3(diff):
    ours, theirs = diff.both("INFO", "keyspace")
    assert ours[0] == theirs[0]


def test_info_persistence_reads_the_persistence_hook(r, postroom_server):
    broker = postroom_server.broker
    assert r.info("persistence")["aof_enabled"] == 0
    previous = getattr(broker, "persistence_info", None)
    broker.persistence_info = lambda: {"aof_enabled": 1, "rdb_last_save_time": 12345}
    try:
        assert r.info("persistence")["aof_enabled"] == 1
        assert r.lastsave().timestamp() == 12345
    finally:
        broker.persistence_info = previous


# -- TIME, LASTSAVE, SHUTDOWN --------------------------------------------------------------------


def test_time_and_lastsave(diff):
    ours, theirs = diff.both("TIME")
    assert ours[0] == theirs[0] == "*" and [kind for kind, _ in ours[1]] == ["$", "$"]
    assert abs(int(ours[1][0][1]) - time.time()) < 5 and 0 <= int(ours[1][1][1]) < 1_000_000
    ours, theirs = diff.both("LASTSAVE")
    assert ours[0] == theirs[0] == ":"
    diff.check("TIME", "x")
    diff.check("LASTSAVE", "x")


def test_shutdown_errors(diff):
    diff.check("SHUTDOWN", "ABORT")
    diff.check("SHUTDOWN", "SAVE", "NOSAVE")
    diff.check("SHUTDOWN", "NOSAVE", "ABORT")
    diff.check("SHUTDOWN", "PLEASE")
    diff.check("SHUTDOWN", "NOW", "PLEASE")
    diff.check("MULTI")
    diff.check("SHUTDOWN")
    diff.check("DISCARD")


def test_shutdown_stops_the_server(tmp_path):
    server = PostroomProcess(tmp_path, None, "--appendonly", "no", "--save", "")
    try:
        client = RawClient(server.port)
        client.send("SHUTDOWN", "NOSAVE")
        assert client.read_closed()
        assert server.proc.wait(15) == 0
    finally:
        server.stop()


# -- SLOWLOG and LATENCY -------------------------------------------------------------------------


def test_slowlog_replies_and_errors(diff):
    diff.check("SLOWLOG", "RESET")
    diff.check("SLOWLOG", "LEN")
    diff.check("SLOWLOG", "GET")
    diff.check("SLOWLOG", "GET", "-1")
    diff.check("SLOWLOG", "GET", "-2")
    diff.check("SLOWLOG", "GET", "x")
    diff.check("SLOWLOG", "GET", "1", "2")
    diff.check("SLOWLOG", "HELP")
    diff.check("SLOWLOG", "NOPE")
    diff.check("SLOWLOG", "LEN", "x")


def test_slowlog_records_slow_commands(diff):
    diff.check("SLOWLOG", "RESET")
    try:
        diff.check("CONFIG", "SET", "slowlog-log-slower-than", "0")
        long_arg = "x" * 200
        diff.check("SET", "key", long_arg)
        many = [str(i) for i in range(40)]
        diff.check("MGET", *many)
        ours, theirs = diff.both("SLOWLOG", "GET", "2")
        # Entries: id, timestamp, duration, argv, peer, name; argv rendering must match exactly.
        assert [e[1][3] for e in ours[1]] == [e[1][3] for e in theirs[1]]
        assert [e[1][5] for e in ours[1]] == [e[1][5] for e in theirs[1]]
        if diff.transport == "tcp":
            assert ours[1][0][1][4][1].startswith(b"127.0.0.1:")
        diff.check("CLIENT", "SETNAME", "slowpoke")
        diff.check("PING")
        ours, theirs = diff.both("SLOWLOG", "GET", "1")
        assert ours[1][0][1][5] == theirs[1][0][1][5] == ("$", b"slowpoke")
    finally:
        diff.check("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        diff.check("SLOWLOG", "RESET")


def test_slowlog_max_len_and_disabled(r):
    r.slowlog_reset()
    try:
        r.config_set("slowlog-log-slower-than", 0)
        r.config_set("slowlog-max-len", 3)
        for i in range(10):
            r.set(f"k{i}", i)
        entries = r.slowlog_get(-1)
        assert len(entries) == 3
        assert entries[0]["id"] > entries[1]["id"] > entries[2]["id"]
        r.config_set("slowlog-log-slower-than", -1)
        r.slowlog_reset()
        r.set("a", 1)
        assert r.slowlog_len() == 0
    finally:
        r.config_set("slowlog-log-slower-than", 10000)
        r.config_set("slowlog-max-len", 128)
        r.slowlog_reset()


def test_slowlog_threshold_in_microseconds(r):
    r.slowlog_reset()
    try:
        r.config_set("slowlog-log-slower-than", 20000)
        r.ping()
        r.execute_command("DEBUG", "SLEEP", "0.03")
        entries = r.slowlog_get()
        assert entries[0]["command"] == b"DEBUG SLEEP 0.03"
        assert all(entry["duration"] >= 20000 for entry in entries)
    finally:
        r.config_set("slowlog-log-slower-than", 10000)
        r.slowlog_reset()


def test_latency_replies_and_errors(diff):
    diff.check("LATENCY", "RESET")
    diff.check("LATENCY", "LATEST")
    diff.check("LATENCY", "HISTORY", "command")
    diff.check("LATENCY", "HISTORY")
    diff.check("LATENCY", "RESET", "command", "fast-command")
    diff.check("LATENCY", "NOPE")


def test_latency_monitor_records_events(r):
    r.execute_command("LATENCY", "RESET")
    try:
        r.config_set("latency-monitor-threshold", 10)
        r.execute_command("DEBUG", "SLEEP", "0.02")
        latest = {event if isinstance(event, str) else event.decode(): rest
                  for event, *rest in r.execute_command("LATENCY", "LATEST")}
        timestamp, last_ms, max_ms = latest["command"]
        assert last_ms >= 10 and max_ms >= last_ms
        assert abs(timestamp - time.time()) < 5
        history = r.execute_command("LATENCY", "HISTORY", "command")
        assert history and history[-1][1] == last_ms  # a preempted command may add an earlier sample
        assert r.execute_command("LATENCY", "RESET", "command") == 1
        assert r.execute_command("LATENCY", "HISTORY", "command") == []
    finally:
        r.config_set("latency-monitor-threshold", 0)


# -- MEMORY, MONITOR, DEBUG ----------------------------------------------------------------------


def test_memory_usage(diff):
    diff.check("MEMORY", "USAGE", "missing")
    diff.check("MEMORY", "USAGE")
    diff.check("SET", "k", "v" * 100)
    diff.check("MEMORY", "USAGE", "k", "SAMPLES", "-1")
    diff.check("MEMORY", "USAGE", "k", "SAMPLES", "x")
    diff.check("MEMORY", "USAGE", "k", "SAMPLES")
    diff.check("MEMORY", "USAGE", "k", "NOPE", "1")
    ours, theirs = diff.both("MEMORY", "USAGE", "k", "SAMPLES", "0")
    assert ours[0] == theirs[0] == ":" and int(ours[1]) > 100
    diff.check("MEMORY", "NOPE")


def test_memory_usage_of_collections_scales_with_size(r):
    r.set("small", "x")
    r.set("large", "x" * 10000)
    assert r.memory_usage("large") > r.memory_usage("small") + 9000
    if b"rpush" in COMMANDS:
        r.rpush("list", *range(1000))
        assert r.memory_usage("list") > r.memory_usage("small") * 10
    if b"zadd" in COMMANDS:
        r.zadd("zset", {f"member-{i}": i for i in range(1000)})
        assert r.memory_usage("zset") > r.memory_usage("small") * 10


def _monitor_line(line: bytes) -> bytes:
    """Strip what differs between servers: the timestamp and the client port."""
    return re.sub(rb"^\+\d+\.\d{6} \[(\d+) [^\]]+\]", rb"+T [\1 ADDR]", line)


def test_monitor_feed_matches_redis(postroom_server, oracle_server):
    lines = []
    for port in (postroom_server.port, oracle_server.port):
        monitor = RawClient(port)
        assert monitor.call("MONITOR") == ("+", b"OK")
        other = RawClient(port)
        other.call("SELECT", "2")
        other.call("SET", "k", 'a "quoted"\n\x01 value')
        other.call("CONFIG", "GET", "hz")  # admin commands are not shown
        other.call("GET", "k")
        other.call("SELECT", "0")
        got = [monitor.read() for _ in range(4)]
        assert all(kind == "+" for kind, _ in got)
        lines.append([_monitor_line(b"+" + payload) for _, payload in got])
        monitor.close()
        other.close()
    assert lines[0] == lines[1]
    assert lines[0][1] == b'+T [2 ADDR] "SET" "k" "a \\"quoted\\"\\n\\x01 value"'


def test_monitor_stops_with_the_connection(postroom_server):
    monitor = RawClient(postroom_server.port)
    monitor.call("MONITOR")
    monitor.close()
    other = RawClient(postroom_server.port)
    for _ in range(3):
        assert other.call("PING") == ("+", b"PONG")
    deadline = time.monotonic() + 5
    while postroom_server.call_in_loop(lambda: len(postroom_server.broker.monitors)) and time.monotonic() < deadline:
        other.call("PING")
    assert postroom_server.call_in_loop(lambda: len(postroom_server.broker.monitors)) == 0
    other.close()


def test_debug_sleep(r):
    start = time.monotonic()
    assert r.execute_command("DEBUG", "SLEEP", "0.05") in (b"OK", "OK", True)
    assert time.monotonic() - start >= 0.05
    with pytest.raises(Exception, match="Try DEBUG HELP"):
        r.execute_command("DEBUG", "NOPE")
    with pytest.raises(Exception, match="not a valid float"):
        r.execute_command("DEBUG", "SLEEP", "soon")


def test_shutdown_refused_without_a_server():
    from postroom.broker import Broker

    broker = Broker()
    client = broker.connect("embedded")
    broker.execute(client, [b"SHUTDOWN"])
    assert b"".join(client.out) == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"


if sys.platform != "linux":  # RSS comes from /proc
    test_info_numbers_are_live = pytest.mark.skip(reason="needs /proc")(test_info_numbers_are_live)
