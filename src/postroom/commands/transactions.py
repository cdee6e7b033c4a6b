"""Transactions (``multi.c``): MULTI, EXEC, DISCARD, WATCH, UNWATCH.

The dispatcher does the queueing: inside MULTI every command except those in
``broker.MULTI_IMMEDIATE`` is checked (existence, arity, ``no_multi``) and appended to
``client.multi``; a check failure sets ``client.multi_error`` so that EXEC answers EXECABORT.
WATCH bookkeeping lives in the broker: any write (``client.touch``), expiry or FLUSHDB of a
watched key sets ``client.watch_dirty``.

EXEC runs the queue through ``Broker.call`` one command at a time with ``client.in_exec`` set, so
blocking commands answer their timeout reply, a failing command does not stop the others, and the
broker propagates every write of the transaction as one unit (wrapped in MULTI/EXEC when there is
more than one) once EXEC returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol.replies import NULL_ARRAY, OK, ReplyError
from .registry import command

if TYPE_CHECKING:
    from ..client import Client

EXECABORT = ReplyError("EXECABORT Transaction discarded because of previous errors.")


@command("multi", arity=1, flags="noscript loading stale fast allow_busy", group="transactions",
         summary="Starts a transaction.", since="1.2.0", complexity="O(1)")
def multi(client: Client, argv: list[bytes]) -> str:
    """MULTI"""
    if client.multi is not None:
        raise ReplyError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_error = False
    return OK


def _discard(client: Client) -> None:
    client.multi = None
    client.multi_error = False
    client.broker.unwatch_all(client)


def _watched_key_expired(client: Client) -> bool:
    """Redis 7 aborts EXEC when a watched key has logically expired since WATCH (``isWatchedKeyExpired``)."""
    broker = client.broker
    now = broker.now_ms
    for index, key in client.watched:
        deadline = broker.dbs[index].expires.get(key)
        if deadline is not None and deadline <= now:
            return True
    return False


@command("exec", arity=1, flags="noscript loading stale skip_slowlog", group="transactions",
         summary="Executes all commands in a transaction.", since="1.2.0", complexity="Depends on commands in the transaction")
def exec_(client: Client, argv: list[bytes]) -> Any:
    """EXEC"""
    queue = client.multi
    if queue is None:
        raise ReplyError("ERR EXEC without MULTI")
    if client.multi_error:
        _discard(client)
        raise EXECABORT
    if client.watch_dirty or (client.watched and _watched_key_expired(client)):
        _discard(client)
        return NULL_ARRAY
    client.multi = None
    if client.watched:
        client.broker.unwatch_all(client)
    call = client.broker.call
    replies: list[Any] = []
    client.in_exec = True
    try:
        for cmd, args in queue:
            replies.append(call(client, cmd, args))
    finally:
        client.in_exec = False
    return replies


@command("discard", arity=1, flags="noscript loading stale fast allow_busy", group="transactions",
         summary="Discards a transaction.", since="2.0.0", complexity="O(N), when N is the number of queued commands")
def discard(client: Client, argv: list[bytes]) -> str:
    """DISCARD"""
    if client.multi is None:
        raise ReplyError("ERR DISCARD without MULTI")
    _discard(client)
    return OK


@command("watch", arity=-2, flags="noscript loading stale fast allow_busy", keys=(1, -1, 1), group="transactions",
         summary="Monitors changes to keys to determine the execution of a transaction.", since="2.2.0",
         complexity="O(1) for every key.")
def watch(client: Client, argv: list[bytes]) -> str:
    """WATCH key [key ...]"""
    if client.multi is not None:
        raise ReplyError("ERR WATCH inside MULTI is not allowed")
    db = client.db
    broker = client.broker
    for key in argv[1:]:
        # A key already expired at WATCH time must not abort EXEC when it is reclaimed later:
        # reclaim it now, before the watch exists.
        deadline = db.expires.get(key)
        if deadline is not None and deadline <= broker.now_ms:
            db.get(key)
        broker.watch(client, key)
    return OK


@command("unwatch", arity=1, flags="noscript loading stale fast allow_busy", group="transactions",
         summary="Forgets about watched keys of a transaction.", since="2.2.0", complexity="O(1)")
def unwatch(client: Client, argv: list[bytes]) -> str:
    """UNWATCH"""
    client.broker.unwatch_all(client)
    return OK
