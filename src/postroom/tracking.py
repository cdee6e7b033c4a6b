"""Server-assisted client-side caching: CLIENT TRACKING (Redis's ``tracking.c``).

redis-py's client-side cache (``cache_config=...``, RESP3) turns tracking on at connect, caches
what it reads, and drops an entry when the server says the key changed.

* **Default mode.** The keys a tracking client reads (its read-only commands' keys) are
  remembered: key -> ids of the clients that read it. The first change to such a key (a write,
  a deletion, an expiry) sends each of them an invalidation and forgets the key: a client tracks
  it again when it reads it again. Key names are tracked across databases, as in Redis.
* **BCAST.** No table: the client is told of every change to a key starting with one of its
  prefixes (any key without a prefix).
* **Delivery.** A RESP3 push ``["invalidate", [key]]`` to the client itself, or with REDIRECT to
  another client: a push if it speaks RESP3, otherwise a message on ``__redis__:invalidate`` if
  it subscribed to that channel. FLUSHDB/FLUSHALL/SWAPDB send one invalidation with a null key
  list. NOLOOP skips changes made by the client itself; OPTIN/OPTOUT with CLIENT CACHING pick
  which reads are tracked.

Unlike Redis, BCAST invalidations are sent as the changes happen rather than batched per event
loop turn, and a broken redirection is not announced with ``tracking-redir-broken``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client
    from .commands.registry import Command

INVALIDATE_CHANNEL = b"__redis__:invalidate"


@dataclass(slots=True)
class TrackingState:
    """One client's CLIENT TRACKING ON options."""

    redirect: int = 0
    bcast: bool = False
    prefixes: list[bytes] = field(default_factory=list)
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    caching: bool | None = None  # CLIENT CACHING YES/NO for the next command (OPTIN / OPTOUT)


class Tracking:
    """The broker's tracking table and the clients that track."""

    __slots__ = ("broker", "table", "clients", "broadcast")

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.table: dict[bytes, set[int]] = {}  # default mode: key -> ids of clients that read it
        self.clients: dict[int, Client] = {}  # every client with tracking on
        self.broadcast: dict[int, Client] = {}  # those in BCAST mode: a write looks only at these

    def enable(self, client: Client, state: TrackingState) -> None:
        client.tracking = state
        self.clients[client.id] = client
        if state.bcast:
            self.broadcast[client.id] = client

    def disable(self, client: Client) -> None:
        client.tracking = None
        self.forget(client)  # its ids left in the table are skipped when met

    def read(self, client: Client, cmd: Command, argv: list[bytes]) -> None:
        """After a read-only command of a tracking client: remember its keys (default mode)."""
        state = client.tracking
        assert state is not None
        caching, state.caching = state.caching, None
        if state.bcast or (state.optin and caching is not True) or (state.optout and caching is False):
            return
        table = self.table
        for position in cmd.key_positions(argv):
            table.setdefault(argv[position], set()).add(client.id)

    def changed(self, key: bytes, writer: Client | None) -> None:
        """``key`` was written, deleted or expired: tell the clients that track it."""
        readers = self.table.pop(key, None)
        clients = self.clients
        if readers:
            for client_id in readers:
                client = clients.get(client_id)
                if client is not None and not client.tracking.bcast:  # type: ignore[union-attr]
                    self._send(client, key, writer)
        for client in list(self.broadcast.values()):
            prefixes = client.tracking.prefixes  # type: ignore[union-attr]
            if not prefixes or any(key.startswith(prefix) for prefix in prefixes):
                self._send(client, key, writer)

    def flushed(self) -> None:
        """FLUSHDB, FLUSHALL, SWAPDB: every tracking client forgets everything (a null key list)."""
        self.table.clear()
        for client in list(self.clients.values()):
            self._send(client, None, None)

    def _send(self, client: Client, key: bytes | None, writer: Client | None) -> None:
        state = client.tracking
        assert state is not None
        if state.noloop and writer is client:
            return
        target = client
        if state.redirect:
            target = self.broker.clients.get(state.redirect)  # type: ignore[assignment]
            if target is None:
                return
        keys = b"_\r\n" if key is None else b"*1\r\n$%d\r\n%s\r\n" % (len(key), key)
        if target.resp == 3:
            target.send_raw(b">2\r\n$10\r\ninvalidate\r\n" + keys)
        elif INVALIDATE_CHANNEL in target.channels:
            # A flush sends RESP3's null even to this RESP2 subscriber: redis-server 7.0 does.
            target.send_raw(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + keys)

    def forget(self, client: Client) -> None:
        """The client turned tracking off or disconnected."""
        self.clients.pop(client.id, None)
        self.broadcast.pop(client.id, None)


__all__ = ["INVALIDATE_CHANNEL", "Tracking", "TrackingState"]
