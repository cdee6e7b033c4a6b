"""Server administration commands: CONFIG, TIME, LASTSAVE, SHUTDOWN, SLOWLOG, LATENCY, MEMORY,
MONITOR and DEBUG SLEEP. INFO lives in :mod:`postroom.commands.info`."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from ..protocol.replies import OK, ReplyError
from .args import NOT_FLOAT, SYNTAX_ERROR, parse_int
from .registry import command, container

if TYPE_CHECKING:
    from ..client import Client



def help_reply(name: str, lines: list[str]) -> list[str]:
    """Redis's ``addReplyHelp``: a header, the subcommand lines, then HELP's own entry."""
    return [
        f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        *lines,
        "HELP",
        "    Prints this help.",
    ]


def subcommand_syntax_error(argv: list[bytes]) -> ReplyError:
    """Redis's ``addReplySubcommandSyntaxError``: a known subcommand of a container (SLOWLOG GET,
    CLIENT PAUSE) was given arguments its arity allows but its syntax does not."""
    subcommand = argv[1].decode("utf-8", "replace")
    name = argv[0].decode("utf-8", "replace").upper()
    return ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{subcommand}'. Try {name} HELP.")


# -- CONFIG --------------------------------------------------------------------------------------

container("config", group="server", summary="A container for server configuration commands.", since="2.0.0")


@command("config|get", arity=-3, flags="admin noscript loading stale", group="server",
         summary="Returns the effective values of configuration parameters.", since="2.0.0")
def config_get(client: Client, argv: list[bytes]) -> dict:
    """CONFIG GET parameter [parameter ...]"""
    config = client.broker.config
    found: dict[bytes, bytes] = {}
    for pattern in argv[2:]:
        text = pattern.decode("utf-8", "replace")
        if not any(c in text for c in "*?[") and config.param(text) is not None:
            # An exact name is echoed as typed (``CONFIG GET HZ`` answers ``HZ``), as Redis does.
            found.setdefault(pattern, next(iter(config.get_matching(text.lower()).values())).encode())
            continue
        for name, value in config.get_matching(text).items():
            found.setdefault(name.encode(), value.encode())
    return found


@command("config|set", arity=-4, flags="admin noscript loading stale", group="server",
         tips="request_policy:all_nodes response_policy:all_succeeded",
         summary="Sets configuration parameters in-flight.", since="2.0.0")
def config_set(client: Client, argv: list[bytes]) -> str:
    """CONFIG SET parameter value [parameter value ...]

    All or nothing, as Redis 7: every name is checked (known, mutable, not repeated) and every
    value parsed before any is applied.
    """
    if len(argv) % 2:
        raise SYNTAX_ERROR
    config = client.broker.config
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i in range(2, len(argv), 2):
        typed = argv[i].decode("utf-8", "replace")
        param = config.param(typed)
        if param is None:
            raise ReplyError(f"ERR Unknown option or number of arguments for CONFIG SET - '{typed}'")
        if not param.mutable:
            raise _set_failed(typed, "can't set immutable config")
        if param.name in seen:
            raise _set_failed(typed, "duplicate parameter")
        seen.add(param.name)
        pairs.append((typed, argv[i + 1].decode("utf-8", "replace")))
    for typed, text in pairs:
        try:
            config.param(typed).parse(text)  # type: ignore[union-attr]
        except ConfigError as exc:
            raise _set_failed(typed, str(exc))
    for typed, text in pairs:
        config.set(typed, text)
    return OK


def _set_failed(name: str, reason: str) -> ReplyError:
    return ReplyError(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


@command("config|resetstat", arity=2, flags="admin noscript loading stale", group="server",
         summary="Resets the server's statistics.", since="2.0.0")
def config_resetstat(client: Client, argv: list[bytes]) -> str:
    """CONFIG RESETSTAT"""
    broker = client.broker
    broker.stats.clear()
    broker.error_stats.clear()
    broker.server_stats.reset()
    return OK


@command("config|rewrite", arity=2, flags="admin noscript loading stale", group="server",
         summary="Persists the effective configuration to file.", since="2.8.0")
def config_rewrite(client: Client, argv: list[bytes]) -> str:
    """CONFIG REWRITE"""
    config = client.broker.config
    if not config.file:
        raise ReplyError("ERR The server is running without a config file")
    try:
        config.rewrite(config.file)
    except OSError as exc:
        raise ReplyError(f"ERR Rewriting config file: {exc.strerror}")
    return OK


@command("config|help", arity=2, flags="loading stale", group="server",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def config_help(client: Client, argv: list[bytes]) -> list[str]:
    """CONFIG HELP"""
    return help_reply("CONFIG", [
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
    ])


# -- clock and persistence status ----------------------------------------------------------------


@command("time", arity=1, flags="loading stale fast", group="server",
         tips="nondeterministic_output",
         summary="Returns the server time.", since="2.6.0")
def time_(client: Client, argv: list[bytes]) -> list[bytes]:
    """TIME"""
    now_us = time.time_ns() // 1000
    return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]


def persistence_fields(client: Client) -> dict[str, Any]:
    """INFO persistence overrides reported by the persistence layer, if one is installed."""
    hook: Callable[[], dict[str, Any]] | None = getattr(client.broker, "persistence_info", None)
    return hook() if hook is not None else {}


@command("lastsave", arity=1, flags="loading stale fast", group="server", acl="admin dangerous",
         tips="nondeterministic_output",
         summary="Returns the Unix timestamp of the last successful save to disk.")
def lastsave(client: Client, argv: list[bytes]) -> int:
    """LASTSAVE"""
    return int(persistence_fields(client).get("rdb_last_save_time", client.broker.start_time))


@command("shutdown", arity=-1, flags="admin noscript loading stale no_multi allow_busy", group="server",
         summary="Synchronously saves the database(s) to disk and shuts down the Redis server.")
def shutdown(client: Client, argv: list[bytes]) -> Any:
    """SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]"""
    options = {arg.upper() for arg in argv[1:]}
    if not options <= {b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"}:
        raise SYNTAX_ERROR
    if {b"SAVE", b"NOSAVE"} <= options or (b"ABORT" in options and len(options) > 1):
        raise SYNTAX_ERROR
    if b"ABORT" in options:
        raise ReplyError("ERR No shutdown in progress.")
    broker = client.broker
    if broker.shutdown_requested is None:
        raise ReplyError("ERR Errors trying to SHUTDOWN. Check logs.")
    save = b"SAVE" in options or (b"NOSAVE" not in options and bool(broker.config["save"]))
    broker.shutdown_requested(save, b"FORCE" in options)  # NOW waits for no replica: there are none
    client.reply_mode = "skip"  # a successful SHUTDOWN closes the connection without a reply
    client.close_after_reply = True
    return OK


# -- SLOWLOG -------------------------------------------------------------------------------------

container("slowlog", group="server", summary="A container for slow log commands.", since="2.2.12")


@command("slowlog|get", arity=-2, flags="admin loading stale", group="server",
         tips="request_policy:all_nodes nondeterministic_output",
         summary="Returns the slow log's entries.", since="2.2.12")
def slowlog_get(client: Client, argv: list[bytes]) -> list[list[Any]]:
    """SLOWLOG GET [count]"""
    if len(argv) > 3:
        raise subcommand_syntax_error(argv)
    count = 10
    if len(argv) == 3:
        error = ReplyError("ERR count should be greater than or equal to -1")
        count = parse_int(argv[2], error)
        if count < -1:
            raise error
    entries = list(client.broker.slow_ops.entries)
    if count != -1:
        entries = entries[:count]
    return [[e.id, e.timestamp, e.duration_us, e.argv, e.peer, e.name] for e in entries]


@command("slowlog|len", arity=2, flags="admin loading stale", group="server",
         tips="request_policy:all_nodes response_policy:agg_sum nondeterministic_output",
         summary="Returns the number of entries in the slow log.", since="2.2.12")
def slowlog_len(client: Client, argv: list[bytes]) -> int:
    """SLOWLOG LEN"""
    return len(client.broker.slow_ops.entries)


@command("slowlog|reset", arity=2, flags="admin loading stale", group="server",
         tips="request_policy:all_nodes response_policy:all_succeeded",
         summary="Clears all entries from the slow log.", since="2.2.12")
def slowlog_reset(client: Client, argv: list[bytes]) -> str:
    """SLOWLOG RESET"""
    client.broker.slow_ops.entries.clear()
    return OK


@command("slowlog|help", arity=2, flags="loading stale", group="server",
         summary="Show helpful text about the different subcommands", since="6.2.0")
def slowlog_help(client: Client, argv: list[bytes]) -> list[str]:
    """SLOWLOG HELP"""
    return help_reply("SLOWLOG", [
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
    ])


# -- LATENCY -------------------------------------------------------------------------------------

container("latency", group="server", summary="A container for latency diagnostics commands.", since="2.8.13")


@command("latency|latest", arity=2, flags="admin noscript loading stale", group="server",
         tips="nondeterministic_output request_policy:all_nodes response_policy:special",
         summary="Returns the latest latency samples for all events.", since="2.8.13")
def latency_latest(client: Client, argv: list[bytes]) -> list[list[Any]]:
    """LATENCY LATEST"""
    return [
        [name.encode(), event.samples[-1][0], event.samples[-1][1], event.max_ms]
        for name, event in client.broker.slow_ops.events.items()
    ]


@command("latency|history", arity=3, flags="admin noscript loading stale", group="server",
         tips="nondeterministic_output request_policy:all_nodes response_policy:special",
         summary="Returns timestamp-latency samples for an event.", since="2.8.13")
def latency_history(client: Client, argv: list[bytes]) -> list[list[int]]:
    """LATENCY HISTORY event"""
    event = client.broker.slow_ops.events.get(argv[2].decode("utf-8", "replace"))
    return [] if event is None else [[ts, ms] for ts, ms in event.samples]


@command("latency|reset", arity=-2, flags="admin noscript loading stale", group="server",
         tips="request_policy:all_nodes response_policy:all_succeeded",
         summary="Resets the latency data for one or more events.", since="2.8.13")
def latency_reset(client: Client, argv: list[bytes]) -> int:
    """LATENCY RESET [event [event ...]]"""
    events = client.broker.slow_ops.events
    if len(argv) == 2:
        count = len(events)
        events.clear()
        return count
    return sum(events.pop(name.decode("utf-8", "replace"), None) is not None for name in argv[2:])


@command("latency|help", arity=2, flags="loading stale", group="server",
         summary="Returns helpful text about the different subcommands.", since="2.8.13")
def latency_help(client: Client, argv: list[bytes]) -> list[str]:
    """LATENCY HELP"""
    return help_reply("LATENCY", [
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
    ])


# -- MEMORY --------------------------------------------------------------------------------------

container("memory", group="server", summary="A container for memory diagnostics commands.", since="4.0.0")


@command("memory|usage", arity=-3, flags="readonly", keys=(2, 2, 1), group="server",
         summary="Estimates the memory usage of a key.", since="4.0.0")
def memory_usage(client: Client, argv: list[bytes]) -> int | None:
    """MEMORY USAGE key [SAMPLES count]

    Python object sizes (``sys.getsizeof``) of the key and value; a collection's elements are
    sampled (``count`` of them, default 5, 0 for all) and the mean scaled to its length, as
    Redis samples nested values.
    """
    samples = 5
    i = 3
    while i < len(argv):
        if argv[i].upper() == b"SAMPLES" and i + 1 < len(argv):
            samples = parse_int(argv[i + 1])
            if samples < 0:
                raise SYNTAX_ERROR
            i += 2
        else:
            raise SYNTAX_ERROR
    value = client.db.get(argv[2])
    if value is None:
        return None
    return sys.getsizeof(argv[2]) + estimate_size(value, samples)


def estimate_size(value: Any, samples: int, depth: int = 3) -> int:
    """Approximate bytes held by ``value``: its own size plus sampled elements.

    Value classes that are not themselves iterable (a sorted set's dict + ordered index, a
    stream's nodes) are measured through the containers they hold, a few levels deep.
    """
    size = sys.getsizeof(value)
    if isinstance(value, (bytes, str, int, float)) or depth == 0:
        return size
    try:
        items = value.items() if hasattr(value, "items") else iter(value)
        total = len(value)
    except TypeError:
        return size + sum(
            estimate_size(part, samples, depth - 1) for part in gc.get_referents(value) if not isinstance(part, type)
        )
    seen = 0
    element_bytes = 0
    for item in items:
        if samples and seen >= samples:
            break
        parts = item if isinstance(item, tuple) else (item,)
        element_bytes += sum(estimate_size(part, samples, depth - 1) for part in parts)
        seen += 1
    if seen:
        size += element_bytes * total // seen
    return size


@command("memory|help", arity=2, flags="loading stale", group="server",
         summary="Outputs helpful text about the different subcommands.", since="4.0.0")
def memory_help(client: Client, argv: list[bytes]) -> list[str]:
    """MEMORY HELP"""
    return help_reply("MEMORY", [
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
    ])


# -- MONITOR and DEBUG ---------------------------------------------------------------------------


@command("monitor", arity=1, flags="admin noscript loading stale", group="server", since="1.0.0",
         summary="Listens for all requests received by the server in real-time.")
def monitor(client: Client, argv: list[bytes]) -> Any:
    """MONITOR"""
    if client.monitor:
        client.reply_mode = "skip"  # Redis ignores a repeated MONITOR without replying
        return OK
    client.monitor = True
    client.broker.monitors.append(client)
    return OK


@command("debug", arity=-2, flags="admin noscript loading stale", group="server",
         summary="A container for debugging commands.")
def debug(client: Client, argv: list[bytes]) -> Any:
    """DEBUG <SLEEP seconds | RELOAD [MERGE] [NOFLUSH] [NOSAVE] | HELP>"""
    sub = argv[1].upper()
    if sub == b"SLEEP" and len(argv) == 3:
        try:
            seconds = float(argv[2])
        except ValueError:
            raise NOT_FLOAT
        time.sleep(max(0.0, seconds))  # blocks the whole server on purpose, as Redis does
        return OK
    if sub == b"RELOAD":
        options = {arg.upper() for arg in argv[2:]}
        if not options <= {b"MERGE", b"NOFLUSH", b"NOSAVE"}:
            raise ReplyError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
        persistence = getattr(client.broker, "persistence", None)
        if persistence is None:
            raise ReplyError("ERR persistence is not available in this broker")
        persistence.reload(save=b"NOSAVE" not in options, flush=b"NOFLUSH" not in options)
        return OK
    if sub == b"HELP" and len(argv) == 2:
        return help_reply("DEBUG", [
            "RELOAD [option ...]",
            "    Save the snapshot on disk and reload it back to memory. Options:",
            "    * MERGE: loaded keys replace existing ones (they always do here).",
            "    * NOFLUSH: do not empty the current dataset before loading.",
            "    * NOSAVE: do not save, load the snapshot already on disk.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ])
    raise ReplyError(f"ERR unknown subcommand '{argv[1].decode('utf-8', 'replace')}'. Try DEBUG HELP.")
