"""Per-client state, independent of how the client is connected (TCP, unix socket, embedded).

A :class:`Client` holds what Redis keeps in ``struct client``: selected database, protocol
version, authentication, MULTI queue, watched keys, subscriptions, blocking state and the reply
fragments not yet written. The transport owning the client sets :attr:`Client.flush_soon` so that
replies produced on behalf of another client (pub/sub messages, a blocked client served by
someone else's push) get written without that client sending anything.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .protocol.encoder import ENCODERS, RESP2

if TYPE_CHECKING:
    from .blocking import Waiter
    from .broker import Broker
    from .keyspace.database import Database

_ids = itertools.count(1)


class Client:
    """One client of the broker."""

    __slots__ = (
        "id", "broker", "db", "resp", "encoder", "name", "lib_name", "lib_ver", "authenticated", "user",
        "out", "flush_soon", "close_connection", "kind", "addr", "laddr", "fd",
        "multi", "multi_error", "watched", "watch_dirty", "channels", "patterns", "shard_channels",
        "waiter", "created_ms", "last_active_ms", "last_command", "reply_mode", "close_after_reply",
        "no_evict", "no_touch", "propagation", "closed", "in_exec", "monitor", "pending_input",
        "obuf_soft_since", "write_buffer_size", "tracking", "__weakref__",
    )

    def __init__(self, broker: Broker, kind: str = "tcp", addr: str = "", laddr: str = "", fd: int = -1) -> None:
        self.id = next(_ids)
        self.broker = broker
        self.db: Database = broker.dbs[0]
        self.resp = 2
        self.encoder = RESP2
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = not broker.config["requirepass"]
        self.user = "default"
        self.out: list[bytes] = []
        self.flush_soon: Callable[[], None] = lambda: None
        self.close_connection: Callable[[], None] = lambda: None
        self.kind = kind
        self.addr = addr
        self.laddr = laddr
        self.fd = fd
        self.multi: list[tuple[Any, list[bytes]]] | None = None
        self.multi_error = False
        self.watched: set[tuple[int, bytes]] = set()
        self.watch_dirty = False
        # Subscriptions, as insertion-ordered sets: (P|S)UNSUBSCRIBE without arguments walks them in order.
        self.channels: dict[bytes, None] = {}
        self.tracking: Any = None  # CLIENT TRACKING ON: a postroom.tracking.TrackingState
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}
        self.waiter: Waiter | None = None
        self.created_ms = int(time.time() * 1000)
        self.last_active_ms = self.created_ms
        self.last_command = "NULL"
        self.reply_mode = "on"
        self.close_after_reply = False
        self.no_evict = False
        self.no_touch = False
        self.propagation: list[list[bytes]] | None = None
        self.closed = False
        self.in_exec = False
        self.monitor = False
        self.pending_input = 0
        self.obuf_soft_since = 0.0  # monotonic time the output passed the soft limit (server/output_limits.py)
        self.write_buffer_size: Callable[[], int] = lambda: 0  # bytes the transport holds unsent

    # -- replies -------------------------------------------------------------------------------

    def set_protocol(self, version: int) -> None:
        self.resp = version
        self.encoder = ENCODERS[version]

    def send(self, value: Any) -> None:
        """Queue an out-of-band reply (pub/sub message, unblocked reply) and make sure it is flushed."""
        if self.closed:
            return
        self.encoder.write(value, self.out)
        self.flush_soon()

    @property
    def out_bytes(self) -> int:
        """Reply bytes not yet sent: queued fragments plus the transport's buffer (CLIENT LIST omem)."""
        return sum(map(len, self.out)) + self.write_buffer_size()

    def send_raw(self, data: bytes) -> None:
        """Queue already-encoded bytes (a message encoded once for many subscribers)."""
        if self.closed:
            return
        self.out.append(data)
        self.flush_soon()

    @property
    def in_pubsub_context(self) -> bool:
        """RESP2 clients with subscriptions may only run (P|S)(UN)SUBSCRIBE, PING, QUIT, RESET."""
        return self.resp == 2 and bool(self.channels or self.patterns or self.shard_channels)

    # -- side effects of writes ----------------------------------------------------------------

    def touch(self, key: bytes, db: Database | None = None) -> None:
        """Record that ``key`` was modified: invalidates WATCH, counts a change for persistence."""
        self.broker.signal_modified(db or self.db, key)

    def notify(self, kind: int, event: bytes, key: bytes, db: Database | None = None) -> None:
        """Emit a keyspace notification of class ``kind`` (see :mod:`postroom.notifications`)."""
        broker = self.broker
        if broker.notify_flags & kind:
            broker.notify(kind, event, key, (db or self.db).index)

    def propagate_as(self, *argvs: list[bytes]) -> None:
        """Replace what this command propagates to the AOF (deterministic form, e.g. concrete IDs)."""
        self.propagation = list(argvs)
