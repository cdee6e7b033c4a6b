"""Blocking commands: parking clients on keys and serving them when the keys change.

The model is Redis 7's (``blocked.c``): a blocking command's handler returns a :class:`Block`
instead of a reply when it cannot be served now. The client is parked on the block's keys, in
FIFO order per key, and stops reading further requests. Any write that may serve a waiter calls
``broker.signal_ready(db, key)``; after the current command (or whole MULTI/EXEC, or script)
finishes, :meth:`BlockingManager.serve_ready` re-executes each waiting command, oldest first, with
the arguments the block recorded. A command that still cannot be served stays parked in its
place; one that produces a reply is unparked, its reply sent and its effects propagated exactly
as if it had run then. Serving runs to a fixed point, since serving one waiter (BLMOVE) may make
another key ready.

No element can be lost to a vanished client: disconnecting unparks the client synchronously, so
a command is only ever re-executed for a live client, within the same event-loop step that sends
its reply.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .protocol.replies import NULL_ARRAY, ReplyError

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client
    from .commands.registry import Command

UNBLOCKED_ERROR = ReplyError("UNBLOCKED client unblocked via CLIENT UNBLOCK")


@dataclass(slots=True)
class Block:
    """Returned by a handler that must wait: what to wait on and what to say on timeout."""

    keys: list[bytes]
    timeout_ms: int  # relative; 0 waits forever
    timeout_reply: Any = NULL_ARRAY
    #: Arguments to re-execute with when a key is ready (e.g. XREAD with ``$`` resolved).
    retry_argv: list[bytes] | None = None
    #: Re-execute even when the key is gone (XREADGROUP answers an error when its stream is deleted).
    wake_on_delete: bool = False


@dataclass(slots=True, eq=False)
class Waiter:
    """A parked client."""

    client: Client
    command: Command
    argv: list[bytes]
    block: Block
    db_index: int
    keys: list[tuple[int, bytes]] = field(default_factory=list)
    cancel_timer: Callable[[], None] | None = None


class BlockingManager:
    """Parks and serves clients blocked on keys."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.waiting: dict[tuple[int, bytes], deque[Waiter]] = {}
        self.ready: dict[tuple[int, bytes], None] = {}  # insertion-ordered set
        self.blocked_clients = 0
        #: The key a re-executed command is being served for: Redis 7.0 serves a client blocked on
        #: several keys from the key that became ready, not from the first of its keys.
        self.serving: bytes | None = None

    def park(self, client: Client, command: Command, argv: list[bytes], block: Block) -> None:
        """Block ``client`` on ``block.keys`` (or only on its timeout if it names no keys)."""
        waiter = Waiter(client, command, block.retry_argv or argv, block, client.db.index)
        for key in dict.fromkeys(block.keys):
            slot = (client.db.index, key)
            waiter.keys.append(slot)
            self.waiting.setdefault(slot, deque()).append(waiter)
        if block.timeout_ms > 0:
            waiter.cancel_timer = self.broker.call_later(block.timeout_ms / 1000, self._timeout, waiter)
        client.waiter = waiter
        self.blocked_clients += 1

    def signal_ready(self, db_index: int, key: bytes) -> None:
        slot = (db_index, key)
        if slot in self.waiting:
            self.ready[slot] = None

    def serve_ready(self) -> None:
        """Re-execute waiters on every ready key until nothing more can be served."""
        broker = self.broker
        while self.ready:
            slot = next(iter(self.ready))
            del self.ready[slot]
            queue = self.waiting.get(slot)
            if not queue:
                continue
            data = broker.dbs[slot[0]].data
            for waiter in list(queue):
                if slot[1] not in data and not waiter.block.wake_on_delete:
                    continue  # Redis 7.0 serves nobody from a key that no longer exists
                client = waiter.client
                if client.waiter is not waiter or client.close_after_reply:
                    continue  # a killed client must not take an element it will never receive
                self.serving = slot[1]
                try:
                    reply = broker.call_for_waiter(client, waiter.command, waiter.argv)
                finally:
                    self.serving = None
                if type(reply) is Block:
                    continue
                self._unpark(waiter)
                client.send(reply)
                broker.resume(client)

    def unblock(self, client: Client, reply: Any) -> bool:
        """Unpark ``client`` answering ``reply`` (CLIENT UNBLOCK, timeouts); ``False`` if not blocked."""
        waiter = client.waiter
        if waiter is None:
            return False
        self._unpark(waiter)
        client.send(reply)
        self.broker.resume(client)
        return True

    def unblock_with_timeout(self, client: Client) -> bool:
        waiter = client.waiter
        return waiter is not None and self.unblock(client, waiter.block.timeout_reply)

    def drop(self, client: Client) -> None:
        """Forget a disconnecting client without replying."""
        if client.waiter is not None:
            self._unpark(client.waiter)

    def _timeout(self, waiter: Waiter) -> None:
        with self.broker.lock:
            if waiter.client.waiter is waiter:
                self.unblock(waiter.client, waiter.block.timeout_reply)

    def _unpark(self, waiter: Waiter) -> None:
        for slot in waiter.keys:
            queue = self.waiting.get(slot)
            if queue is not None:
                try:
                    queue.remove(waiter)
                except ValueError:
                    pass
                if not queue:
                    del self.waiting[slot]
        if waiter.cancel_timer is not None:
            waiter.cancel_timer()
        waiter.client.waiter = None
        self.blocked_clients -= 1
