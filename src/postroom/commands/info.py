"""INFO: the server's state as ``# Section`` blocks of ``field:value`` lines, as Redis 7.

Sections and their selection follow Redis 7.0: no argument or ``default`` gives the default
sections, ``all`` adds commandstats (and everything but module-generated ones), ``everything``
is ``all`` plus modules, and several section names may be given at once. Numbers are real
(see :mod:`postroom.stats` for how memory and rates are measured); the persistence section
reports "no persistence" unless the persistence layer installs ``broker.persistence_info``.
"""

from __future__ import annotations

import itertools
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import REDIS_VERSION, __version__
from ..protocol.replies import Verbatim
from ..stats import human_bytes, iter_commands, rss_bytes, total_commands_processed
from .registry import command
from .scripting import memory_fields
from .server import persistence_fields

if TYPE_CHECKING:
    from ..broker import Broker
    from ..client import Client

Lines = list[tuple[str, Any]]


def _bound_port(client: Client) -> int:
    """With ``port 0`` the OS chose the port: the asking client's local address shows it."""
    _, _, port = client.laddr.rpartition(":")
    return int(port) if client.kind == "tcp" and port.isdigit() else 0


def _server(broker: Broker, client: Client) -> Lines:
    uptime = int(time.time() - broker.start_time)
    uname = platform.uname()
    return [
        ("redis_version", REDIS_VERSION),
        ("postroom_version", __version__),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("python_version", platform.python_version()),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", broker.server_stats.run_id),
        ("tcp_port", broker.config["port"] or _bound_port(client)),
        ("server_time_usec", time.time_ns() // 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", broker.config["hz"]),
        ("configured_hz", broker.config["hz"]),
        ("executable", os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""),
        ("config_file", broker.config.file or ""),
        ("io_threads_active", 0),
    ]


def _clients(broker: Broker) -> Lines:
    return [
        ("connected_clients", len(broker.clients)),
        ("cluster_connections", 0),
        ("maxclients", broker.config["maxclients"]),
        ("blocked_clients", broker.blocking.blocked_clients - _postponed(broker)),
        ("tracking_clients", 0),
        ("clients_in_timeout_table",
         sum(1 for c in broker.clients.values() if c.waiter is not None and c.waiter.block.timeout_ms > 0)),
    ]


def _postponed(broker: Broker) -> int:
    """Clients held by CLIENT PAUSE: parked like blocked ones, but Redis does not count them as blocked."""
    pause = broker.client_pause
    return len(pause.postponed) if pause is not None else 0


def _memory(broker: Broker) -> Lines:
    rss = rss_bytes()
    peak = max(broker.server_stats.peak_memory, rss)
    broker.server_stats.peak_memory = peak
    maxmemory = broker.config["maxmemory"]
    return [
        ("used_memory", rss),
        ("used_memory_human", human_bytes(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", human_bytes(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", human_bytes(peak)),
        ("used_memory_peak_perc", f"{100 * rss / peak if peak else 100:.2f}%"),
        ("used_memory_startup", broker.server_stats.startup_memory),
        ("total_system_memory", _SYSTEM_MEMORY),
        ("total_system_memory_human", human_bytes(_SYSTEM_MEMORY)),
        *memory_fields(broker),
        ("maxmemory", maxmemory),
        ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", broker.config["maxmemory-policy"]),
        ("mem_fragmentation_ratio", "1.00"),
        ("mem_allocator", "pymalloc"),
        ("lazyfree_pending_objects", 0),
    ]


def _system_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


_SYSTEM_MEMORY = _system_memory()


def _persistence(broker: Broker, client: Client) -> Lines:
    fields: dict[str, Any] = {
        "loading": 0,
        "async_loading": 0,
        "rdb_changes_since_last_save": broker.changes_since_save,
        "rdb_bgsave_in_progress": 0,
        "rdb_last_save_time": int(broker.start_time),
        "rdb_last_bgsave_status": "ok",
        "rdb_last_bgsave_time_sec": -1,
        "rdb_current_bgsave_time_sec": -1,
        "rdb_saves": 0,
        "aof_enabled": 0,
        "aof_rewrite_in_progress": 0,
        "aof_rewrite_scheduled": 0,
        "aof_last_rewrite_time_sec": -1,
        "aof_current_rewrite_time_sec": -1,
        "aof_last_bgrewrite_status": "ok",
        "aof_rewrites": 0,
        "aof_last_write_status": "ok",
    }
    fields.update(persistence_fields(client))
    for stat in _FORK_STATS:
        fields.pop(stat, None)  # reported under Stats, where Redis puts them
    return list(fields.items())


_FORK_STATS = ("latest_fork_usec", "total_forks")


def _stats(broker: Broker, client: Client) -> Lines:
    """Redis 7.0's fields in its order. Replication, eviction, defragmentation, client-side
    tracking and I/O threads do not exist here, so their counters are truly zero."""
    stats = broker.stats
    server = broker.server_stats
    pubsub = broker.pubsub
    forks = persistence_fields(client)
    hits, misses = broker.keyspace_hits, broker.keyspace_misses
    return [
        ("total_connections_received", stats["total_connections_received"]),
        ("total_commands_processed", total_commands_processed()),
        ("instantaneous_ops_per_sec", server.instantaneous_ops_per_sec),
        ("total_net_input_bytes", server.net_input_bytes),
        ("total_net_output_bytes", server.net_output_bytes),
        ("total_net_repl_input_bytes", 0),
        ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", f"{server.instantaneous_input_kbps:.2f}"),
        ("instantaneous_output_kbps", f"{server.instantaneous_output_kbps:.2f}"),
        ("instantaneous_input_repl_kbps", "0.00"),
        ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", server.rejected_connections),
        ("sync_full", 0),
        ("sync_partial_ok", 0),
        ("sync_partial_err", 0),
        ("expired_keys", stats["expired_keys"]),
        ("expired_stale_perc", "0.00"),
        ("expired_time_cap_reached_count", 0),
        ("expire_cycle_cpu_milliseconds", broker.expire_cycle_ns // 1_000_000),
        ("evicted_keys", 0),
        ("evicted_clients", 0),
        ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", hits),
        ("keyspace_misses", misses),
        ("pubsub_channels", len(pubsub.channels)),
        ("pubsub_patterns", len(pubsub.patterns)),
        ("pubsubshard_channels", len(pubsub.shard_channels)),
        ("latest_fork_usec", forks.get("latest_fork_usec", 0)),
        ("total_forks", forks.get("total_forks", 0)),
        ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        ("tracking_total_keys", 0),
        ("tracking_total_items", 0),
        ("tracking_total_prefixes", 0),
        ("unexpected_error_replies", 0),
        ("total_error_replies", stats["total_error_replies"]),
        ("dump_payload_sanitizations", 0),
        ("total_reads_processed", server.reads_processed),
        ("total_writes_processed", server.writes_processed),
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
        ("reply_buffer_shrinks", 0),
        ("reply_buffer_expands", 0),
    ]


def _replication(broker: Broker) -> Lines:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", broker.server_stats.run_id),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", 1048576),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu(broker: Broker) -> Lines:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread_usage = getattr(resource, "RUSAGE_THREAD", None)
    main = resource.getrusage(thread_usage) if thread_usage is not None else own
    return [
        ("used_cpu_sys", f"{own.ru_stime:.6f}"),
        ("used_cpu_user", f"{own.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
        ("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
        ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}"),
    ]


def _commandstats(broker: Broker) -> Lines:
    lines: Lines = []
    for record in iter_commands():
        if record.calls or record.rejected_calls or record.failed_calls:
            per_call = record.usec / record.calls if record.calls else 0.0
            lines.append((
                f"cmdstat_{record.name}",
                f"calls={record.calls},usec={record.usec},usec_per_call={per_call:.2f},"
                f"rejected_calls={record.rejected_calls},failed_calls={record.failed_calls}",
            ))
    return lines


def _errorstats(broker: Broker) -> Lines:
    return [(f"errorstat_{code}", f"count={count}") for code, count in sorted(broker.error_stats.items())]


#: Keys with a TTL looked at to estimate ``avg_ttl`` (Redis also estimates it from a sample).
AVG_TTL_SAMPLE = 1000


def average_ttl(db: Any, now_ms: int) -> int:
    """Mean remaining TTL in ms of up to :data:`AVG_TTL_SAMPLE` keys; ``db.avg_ttl`` if the keyspace
    layer maintains its own estimate."""
    if db.avg_ttl or not db.expires:
        return db.avg_ttl
    remaining = [max(0, deadline - now_ms) for deadline in itertools.islice(db.expires.values(), AVG_TTL_SAMPLE)]
    return sum(remaining) // len(remaining)


def _keyspace(broker: Broker) -> Lines:
    lines: Lines = []
    now_ms = int(time.time() * 1000)
    for db in broker.dbs:
        if db.data:
            lines.append((
                f"db{db.index}",
                f"keys={len(db.data)},expires={len(db.expires)},avg_ttl={average_ttl(db, now_ms)}",
            ))
    return lines


SectionBuilder = Callable[["Broker", "Client"], Lines]

#: Section name -> (title, builder), in the order Redis prints them.
SECTIONS: dict[str, tuple[str, SectionBuilder]] = {
    "server": ("Server", _server),
    "clients": ("Clients", lambda b, c: _clients(b)),
    "memory": ("Memory", lambda b, c: _memory(b)),
    "persistence": ("Persistence", _persistence),
    "stats": ("Stats", _stats),
    "replication": ("Replication", lambda b, c: _replication(b)),
    "cpu": ("CPU", lambda b, c: _cpu(b)),
    "modules": ("Modules", lambda b, c: []),
    "commandstats": ("Commandstats", lambda b, c: _commandstats(b)),
    "errorstats": ("Errorstats", lambda b, c: _errorstats(b)),
    "cluster": ("Cluster", lambda b, c: [("cluster_enabled", 0)]),
    "keyspace": ("Keyspace", lambda b, c: _keyspace(b)),
}
DEFAULT_SECTIONS = frozenset(SECTIONS) - {"commandstats"}


def select_sections(args: list[bytes]) -> set[str]:
    """Section names requested by INFO's arguments (unknown names are ignored, as Redis does)."""
    if not args:
        return set(DEFAULT_SECTIONS)
    chosen: set[str] = set()
    for arg in args:
        name = arg.decode("utf-8", "replace").lower()
        if name == "default":
            chosen |= DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            chosen |= set(SECTIONS)
        elif name in SECTIONS:
            chosen.add(name)
    return chosen


def render(broker: Broker, client: Client, sections: set[str]) -> bytes:
    """The chosen ``sections`` in Redis's order, blank-line separated, with CRLF line ends."""
    blocks = []
    for name, (title, build) in SECTIONS.items():
        if name in sections:
            lines = "".join(f"{key}:{value}\r\n" for key, value in build(broker, client))
            blocks.append(f"# {title}\r\n{lines}")
    return "\r\n".join(blocks).encode()


@command("info", arity=-1, flags="loading stale", group="server", acl="dangerous",
         tips="nondeterministic_output request_policy:all_shards response_policy:special",
         summary="Returns information and statistics about the server.")
def info(client: Client, argv: list[bytes]) -> Verbatim:
    """INFO [section [section ...]]"""
    return Verbatim(render(client.broker, client, select_sections(argv[1:])))
