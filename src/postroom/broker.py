"""The broker: the data, the clients, and the one place every command runs through.

:class:`Broker` owns everything the event loop owns: databases, configuration, clients, the
blocking manager, pub/sub, statistics. It does no I/O; transports (the TCP/unix server, the
embedded mode) hand it requests with :meth:`Broker.execute` and write out what lands in
``client.out``.

Execution model (Redis's ``processCommand`` + ``call``): checks driven by the command table run
first (existence, arity, authentication, pub/sub context, MULTI queueing); then the handler runs
to completion; then, once per top-level command, the writes it made are propagated to the sinks
(the AOF) as one unit in deterministic form, and clients blocked on keys it made ready are
served. Nothing else can interleave, so every command is atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from . import notifications
from .blocking import Block, BlockingManager
from .client import Client
from .commands import registry
from .commands.registry import COMMANDS, Command
from .config import Config
from .keyspace.database import Database
from .keyspace.hashes import HashValue, field_expiry
from .monitor import feed_monitors
from .protocol.replies import QUEUED, ReplyError
from .slowlog import NEVER as SLOW_NEVER
from .slowlog import SlowOps
from .stats import ServerStats
from .tracking import Tracking

#: Commands a RESP2 client with subscriptions may still run.
PUBSUB_CONTEXT_ALLOWED = frozenset(
    (b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe", b"ping",
     b"quit", b"reset")
)
#: Commands that run immediately inside MULTI instead of being queued.
MULTI_IMMEDIATE = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))

log = logging.getLogger("postroom")

# Module-level names for the hot path: a global load is cheaper than ``time.perf_counter_ns``
# (two lookups) and this runs twice per command.
_clock_ns = time.perf_counter_ns
_KEY_MISS = notifications.KEY_MISS

PropagationSink = Callable[[int, list[list[bytes]]], None]


def load_command_modules() -> None:
    """Import every module of :mod:`postroom.commands` so their ``@command`` declarations register."""
    from . import commands

    for info in pkgutil.iter_modules(commands.__path__):
        if info.name != "registry":
            importlib.import_module(f"{commands.__name__}.{info.name}")


class Broker:
    """All state of one postroom instance and the command dispatcher."""

    def __init__(self, config: Config | None = None) -> None:
        load_command_modules()
        self.config = config or Config()
        self.dbs = [Database(i, self) for i in range(self.config["databases"])]
        self.clients: dict[int, Client] = {}
        self.blocking = BlockingManager(self)
        self._ready = self.blocking.ready  # the same dict for the manager's lifetime (execute reads it)
        self.now_ms = int(time.time() * 1000)
        self.start_time = time.time()
        #: Changes to the data, counted up and never reset: a command that moved it is a write to
        #: propagate. ``dirty_at_save`` is its value when the last successful snapshot began.
        self.dirty = 0
        self.dirty_at_save = 0
        #: INFO stats counted where they happen: lookups by read-only commands (Redis's
        #: ``lookupKeyRead``), and the time active expiry took.
        self.reading = False
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.expire_cycle_ns = 0
        #: CLIENT TRACKING (see postroom/tracking.py); ``writer`` is the client whose command runs,
        #: kept only while some client tracks (NOLOOP needs it).
        self.tracking = Tracking(self)
        self.writer: Client | None = None
        self.notify_flags = 0
        self.watchers: dict[tuple[int, bytes], set[Client]] = {}
        self.propagation_sinks: list[PropagationSink] = []
        self._lookup: dict[bytes, Command] = {}  # command name as sent -> record (see execute)
        #: Held by every entry into the engine. A no-op for the server, where one thread does
        #: everything; embedded mode swaps in an RLock because callers run commands in their threads.
        self.lock: AbstractContextManager[Any] = contextlib.nullcontext()
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop that owns timers (set on start)
        #: Set by persistence: writes are refused with this error while the AOF cannot be written.
        self.deny_writes: str | None = None
        #: Set by persistence under ``appendfsync always``: transports hold replies while it is pending.
        self.durability: Any = None
        self.persistence_info: Callable[[], dict[str, Any]] | None = None
        self.loop_thread: int | None = None
        self._propagating: list[tuple[int, list[bytes]]] = []
        self._depth = 0  # nesting of call(): EXEC and scripts call commands from inside a command
        self.stats: defaultdict[str, int] = defaultdict(int)
        self.error_stats: defaultdict[str, int] = defaultdict(int)
        self.hooks_after_command: list[Callable[[], None]] = []
        #: ``(save, force)``: set by the network server (SHUTDOWN, signals); ``force`` ignores a failed save.
        self.shutdown_requested: Callable[[bool, bool], None] | None = None
        self.cron_hooks: list[Callable[[], None]] = []  # run at the end of every cron tick
        self.monitors: list[Client] = []  # MONITOR clients, fed by call() only when non-empty
        self.client_pause: Any = None  # CLIENT PAUSE state (commands/client_cmd.py) while paused
        self.slow_threshold_ns = SLOW_NEVER  # set by SlowOps from the slowlog/latency thresholds
        self.slow_ops = SlowOps(self)
        self.server_stats = ServerStats(self)
        from .pubsub import PubSubHub

        self.pubsub = PubSubHub(self)
        self.config.on_change("notify-keyspace-events", self._set_notify_flags)
        self._set_notify_flags(self.config["notify-keyspace-events"])

    # -- clients -------------------------------------------------------------------------------

    def connect(self, kind: str = "tcp", addr: str = "", laddr: str = "", fd: int = -1) -> Client:
        client = Client(self, kind, addr, laddr, fd)
        self.clients[client.id] = client
        self.stats["total_connections_received"] += 1
        return client

    def disconnect(self, client: Client) -> None:
        """Forget a client whose transport closed: unblock, unsubscribe, unwatch."""
        if client.closed:
            return
        client.closed = True
        self.blocking.drop(client)
        self.pubsub.drop(client)
        self.unwatch_all(client)
        self.tracking.forget(client)
        self.clients.pop(client.id, None)

    def resume(self, client: Client) -> None:
        """A blocked client was served: let its transport process the input that waited."""
        client.flush_soon()

    # -- the dispatcher ------------------------------------------------------------------------

    def reset_dispatch_cache(self) -> None:
        """Send every command through the full checks again (after a change that affects them)."""
        self._lookup.clear()

    def refresh_clock(self) -> None:
        """Update the cached wall clock; transports call this once per batch of requests they run.

        Commands read ``now_ms`` (expiry, stream IDs, idle times) instead of asking the OS each
        time: a pipelined batch runs in microseconds, so one reading per batch is exact enough,
        and a command sees one consistent time, as Redis's command time snapshot gives.
        """
        self.now_ms = time.time_ns() // 1_000_000  # integer arithmetic: cheaper than int(time() * 1000)

    @property
    def changes_since_save(self) -> int:
        """INFO's ``rdb_changes_since_last_save`` and what save points count."""
        return self.dirty - self.dirty_at_save

    def execute(self, client: Client, argv: list[bytes]) -> None:
        """Run one request from ``client``; the reply is appended to ``client.out``.

        The caller refreshes the clock (:meth:`refresh_clock`) before a batch of requests.
        This is the hottest function of the server: the common case (a known command with the
        right arity from an authenticated client outside MULTI and pub/sub) costs a dict lookup
        and a few attribute reads before the handler runs.
        """
        cmd = self._lookup.get(argv[0])
        if (
            cmd is None
            or cmd.subcommands
            or not cmd.min_args <= len(argv) <= cmd.max_args
            or client.multi is not None
            or not client.authenticated
            or (client.resp == 2 and (client.channels or client.patterns or client.shard_channels))
        ):
            cmd = self._checked_command(client, argv)
            if cmd is None:
                return
        reply = self.call(client, cmd, argv)
        if reply.__class__ is Block:
            self.blocking.park(client, cmd, argv, reply)
        elif client.reply_mode == "on":
            client.encoder.write(reply, client.out)
        else:
            self._reply(client, reply)
        if self._ready:  # the blocking manager's ready set: one load instead of two
            self.blocking.serve_ready()
        if self.hooks_after_command:
            for hook in self.hooks_after_command:
                hook()

    def _checked_command(self, client: Client, argv: list[bytes]) -> Command | None:
        """The generic checks of ``processCommand``; ``None`` when the request was answered here."""
        name = argv[0].lower()
        cmd = COMMANDS.get(name)
        try:
            if cmd is None:
                if name in (b"post", b"host:"):
                    # An HTTP request sent to the broker (cross-protocol scripting): drop it unanswered.
                    log.warning("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or "
                                "Host: commands to the broker. Connection from %s aborted.", client.addr)
                    client.close_after_reply = True
                    return None
                raise self._unknown_command(argv)
            if len(self._lookup) < 4096 and self.deny_writes is None:
                self._lookup[argv[0]] = cmd  # cache the spelling clients use (GET, get, Get)
            if cmd.subcommands:
                cmd = self._subcommand(cmd, argv)
            if not cmd.min_args <= len(argv) <= cmd.max_args:
                raise ReplyError(f"ERR wrong number of arguments for '{cmd.name}' command")
            if not client.authenticated and not cmd.no_auth:
                raise ReplyError("NOAUTH Authentication required.")
            if self.deny_writes is not None and cmd.is_write:
                raise ReplyError(self.deny_writes)
            if client.multi is not None and name not in MULTI_IMMEDIATE:
                if "no_multi" in cmd.flags:
                    raise ReplyError("ERR Command not allowed inside a transaction")
                client.multi.append((cmd, argv))
                self._reply(client, QUEUED)
                return None
            if client.resp == 2 and (client.channels or client.patterns or client.shard_channels) and (
                name not in PUBSUB_CONTEXT_ALLOWED
            ):
                raise ReplyError(
                    f"ERR Can't execute '{cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
                    "/ RESET are allowed in this context"
                )
        except ReplyError as error:
            if cmd is not None:
                cmd.rejected_calls += 1
            if client.multi is not None:
                client.multi_error = True
            if name == b"exec":  # a rejected EXEC discards the transaction (Redis's execCommandAbort)
                client.multi = None
                client.multi_error = False
                self.unwatch_all(client)
                text = error.message[4:] if error.message.startswith("ERR ") else error.message
                error = ReplyError(f"EXECABORT Transaction discarded because of: {text}")
            self._count_error(error)
            self._reply(client, error)
            return None
        return cmd

    def call(self, client: Client, cmd: Command, argv: list[bytes]) -> Any:
        """Run a command's handler with statistics and propagation; return its reply value.

        Used directly by EXEC and scripts for the commands they run. Errors come back as
        :class:`ReplyError` values, never raised.
        """
        dirty_before = self.dirty
        client.propagation = None
        if self.notify_flags & _KEY_MISS:
            notifications.announce_key_misses(client, cmd, argv)
        # ``depth`` is this call's nesting level; ``self._depth`` is only read by nested calls and
        # propagate(), so it is restored with a plain store rather than read-modify-write twice.
        depth = self._depth
        self._depth = depth + 1
        # Not restored afterwards: every lookup happens inside some call, which sets its own.
        self.reading = cmd.is_readonly
        tracking = self.tracking.clients
        if tracking:
            self.writer = client
        start = _clock_ns()
        try:
            reply = cmd.handler(client, argv)  # type: ignore[misc]
        except ReplyError as error:
            reply = error
            cmd.failed_calls += 1
            self._count_error(error)
        except Exception as exc:  # a bug in a handler must not take the connection or the server down
            log.exception("Internal error running %r", argv[:2])
            reply = ReplyError(f"ERR internal error running '{cmd.name}': {type(exc).__name__}")
            cmd.failed_calls += 1
            self._count_error(reply)
        finally:
            self._depth = depth
        elapsed = _clock_ns() - start
        if tracking and client.tracking is not None:
            if cmd.is_readonly and reply.__class__ is not ReplyError:
                self.tracking.read(client, cmd, argv)
            elif cmd.name != "client|caching":
                client.tracking.caching = None  # CLIENT CACHING covers the next command only
        cmd.calls += 1
        cmd.usec += elapsed // 1000
        client.last_command = cmd.name
        if elapsed >= self.slow_threshold_ns:
            self.slow_ops.record(client, cmd, argv, elapsed)
        if self.monitors:
            feed_monitors(self, client, cmd, argv)
        if self.dirty != dirty_before and cmd.is_write and self.propagation_sinks:
            db_index = client.db.index  # with no sink (no AOF) there is nobody to propagate to
            if client.propagation is None:
                self._propagating.append((db_index, argv))
            else:
                self._propagating.extend((db_index, a) for a in client.propagation)
        if reply.__class__ is Block and (client.in_exec or depth > 0):
            reply = reply.timeout_reply  # blocking commands never block inside MULTI or scripts
        if depth == 0 and self._propagating:
            self._flush_propagation(cmd)
        return reply

    def call_for_waiter(self, client: Client, cmd: Command, argv: list[bytes]) -> Any:
        """Re-execute a parked command (see :mod:`postroom.blocking`)."""
        self.refresh_clock()
        return self.call(client, cmd, argv)

    def _reply(self, client: Client, reply: Any) -> None:
        mode = client.reply_mode
        if mode == "on":
            client.encoder.write(reply, client.out)
        elif mode == "skip":
            client.reply_mode = "on"
        elif mode == "skip_next":  # CLIENT REPLY SKIP: its own reply and the next one are dropped
            client.reply_mode = "skip"

    def _unknown_command(self, argv: list[bytes]) -> ReplyError:
        # Redis quotes arguments while the list is shorter than 128 characters, each cut to fit.
        shown = ""
        for arg in argv[1:]:
            if len(shown) >= 128:
                break
            shown += f"'{_preview(arg[: 128 - len(shown)])}' "
        return ReplyError(f"ERR unknown command '{_preview(argv[0])}', with args beginning with: {shown}")

    def _subcommand(self, cmd: Command, argv: list[bytes]) -> Command:
        if len(argv) < 2 and cmd.handler is not None:
            return cmd  # a container with a handler of its own (COMMAND) runs it when called bare
        if len(argv) < 2:
            raise ReplyError(f"ERR wrong number of arguments for '{cmd.name}' command")
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is None:
            raise ReplyError(
                f"ERR unknown subcommand '{_preview(argv[1])}'. Try {cmd.name.upper()} HELP."
            )
        return sub

    def _count_error(self, error: ReplyError) -> None:
        self.stats["total_error_replies"] += 1
        self.error_stats[error.code] += 1

    # -- propagation ---------------------------------------------------------------------------

    def _flush_propagation(self, cmd: Command) -> None:
        entries = self._propagating
        if not self.propagation_sinks:
            entries.clear()  # nothing to hand over (no AOF): reuse the list instead of a new one per write
            return
        self._propagating = []
        by_db: list[list[bytes]] = []
        db_index = entries[0][0]
        wrap = len(entries) > 1
        if wrap:
            by_db.append([b"MULTI"])
        for index, argv in entries:
            if index != db_index:
                by_db.append([b"SELECT", str(index).encode()])
                db_index = index
            by_db.append(argv)
        if wrap:
            by_db.append([b"EXEC"])
        for sink in self.propagation_sinks:
            sink(entries[0][0], by_db)

    def propagate(self, db_index: int, argv: list[bytes]) -> None:
        """Propagate a write that no command made (key expiry, eviction)."""
        self._propagating.append((db_index, argv))
        if self._depth == 0:
            self._flush_propagation(COMMANDS[b"del"])

    # -- timers ----------------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Callable[[], None]:
        """Schedule ``callback`` on the broker's loop from any thread; returns a canceller.

        The callback runs in the loop thread and must take :attr:`lock` itself. Cancelling may
        be late when done from another thread, so callbacks re-check their state.
        """
        loop = self.loop
        assert loop is not None, "the broker is not running"
        if threading.get_ident() == self.loop_thread:
            handle = loop.call_later(delay, callback, *args)
            return handle.cancel
        box: list[asyncio.TimerHandle] = []
        loop.call_soon_threadsafe(lambda: box.append(loop.call_later(delay, callback, *args)))

        def cancel() -> None:
            loop.call_soon_threadsafe(lambda: box and box[0].cancel())

        return cancel

    # -- signals from the keyspace -------------------------------------------------------------

    def signal_modified(self, db: Database, key: bytes) -> None:
        """A key changed: invalidate WATCHes on it and count a change for persistence."""
        self.dirty += 1
        if self.watchers:
            watchers = self.watchers.get((db.index, key))
            if watchers:
                for client in watchers:
                    client.watch_dirty = True
        if self.tracking.clients:
            self.tracking.changed(key, self.writer)

    def signal_ready(self, db: Database, key: bytes) -> None:
        """A key may now serve blocked clients (list/zset push, stream append, deletion)."""
        if self.blocking.waiting:
            self.blocking.signal_ready(db.index, key)

    def key_created(self, db: Database, key: bytes, value: Any) -> None:
        if type(value) is HashValue and value.expires:
            field_expiry(self).schedule(db, key, value)  # renamed/moved/copied: expire at the new key
        if self.notify_flags & notifications.NEW:
            self.notify(notifications.NEW, b"new", key, db.index)  # Redis's dbAdd announces every new key
        if self.blocking.waiting:
            self.blocking.signal_ready(db.index, key)

    def key_deleted(self, db: Database, key: bytes, value: Any) -> None:
        if self.blocking.waiting:
            self.blocking.signal_ready(db.index, key)  # XREADGROUP waiters learn their stream is gone

    def key_expired(self, db: Database, key: bytes, value: Any) -> None:
        self.stats["expired_keys"] += 1
        writer, self.writer = self.writer, None  # an expiry is nobody's write (NOLOOP does not hide it)
        self.signal_modified(db, key)
        self.writer = writer
        self.notify(notifications.EXPIRED, b"expired", key, db.index)
        self.propagate(db.index, [b"DEL", key])

    def database_cleared(self, db: Database, old: dict[bytes, Any]) -> None:
        if self.tracking.clients:
            self.tracking.flushed()
        if self.watchers:
            for index, key in list(self.watchers):
                if index == db.index and key in old:
                    for client in self.watchers[(index, key)]:
                        client.watch_dirty = True

    def watch(self, client: Client, key: bytes) -> None:
        slot = (client.db.index, key)
        if slot not in client.watched:
            client.watched.add(slot)
            self.watchers.setdefault(slot, set()).add(client)

    def unwatch_all(self, client: Client) -> None:
        for slot in client.watched:
            watchers = self.watchers.get(slot)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self.watchers[slot]
        client.watched.clear()
        client.watch_dirty = False

    # -- keyspace notifications ----------------------------------------------------------------

    def _set_notify_flags(self, flags: int) -> None:
        self.notify_flags = flags

    def notify(self, kind: int, event: bytes, key: bytes, db_index: int) -> None:
        """Publish a keyspace and/or keyevent message if the configuration asks for class ``kind``."""
        flags = self.notify_flags
        if not flags & kind:
            return
        if flags & notifications.KEYSPACE:
            self.pubsub.publish(b"__keyspace@%d__:%s" % (db_index, key), event)
        if flags & notifications.KEYEVENT:
            self.pubsub.publish(b"__keyevent@%d__:%s" % (db_index, event), key)

    # -- periodic work -------------------------------------------------------------------------

    def cron(self) -> None:
        """Run ``hz`` times a second: active expiry within a time budget (25% of the period, as Redis)."""
        self.now_ms = int(time.time() * 1000)
        hz = max(1, self.config["hz"])
        started = time.perf_counter_ns()
        budget = time.perf_counter() + 0.25 / hz
        for db in self.dbs:
            if db.expires:
                db.active_expire(lambda: time.perf_counter() > budget)
        self.expire_cycle_ns += time.perf_counter_ns() - started
        if self.blocking.ready:
            self.blocking.serve_ready()
        for hook in self.cron_hooks:
            hook()


def _preview(arg: bytes) -> str:
    text = arg[:128].decode("utf-8", "replace")
    return text


__all__ = ["Broker", "load_command_modules", "registry"]
