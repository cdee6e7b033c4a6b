"""Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, WAITAOF.

They drive :class:`postroom.persistence.Persistence` (``broker.persistence``, installed when the
server starts); replies and errors are Redis's texts. A broker without a persistence layer (a
bare :class:`~postroom.broker.Broker` in unit tests) answers them with an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol.replies import OK, ReplyError
from .args import SYNTAX_ERROR, parse_int
from .registry import command

if TYPE_CHECKING:
    from ..client import Client
    from ..persistence import Persistence


def _persistence(client: Client) -> Persistence:
    persistence: Persistence | None = getattr(client.broker, "persistence", None)
    if persistence is None:
        raise ReplyError("ERR persistence is not available in this broker")
    return persistence


@command("save", arity=1, flags="admin noscript no_async_loading no_multi", group="server",
         acl="admin dangerous", summary="Synchronously saves the database(s) to disk.",
         complexity="O(N) where N is the total number of keys in all databases")
def save(client: Client, argv: list[bytes]) -> str:
    """SAVE"""
    persistence = _persistence(client)
    if persistence.children.kind() == "rdb":
        raise ReplyError("ERR Background save already in progress")
    try:
        persistence.saver.save()
    except OSError:
        raise ReplyError("ERR")  # Redis answers a bare ERR and logs the reason
    return OK


@command("bgsave", arity=-1, flags="admin noscript no_async_loading", group="server", acl="admin dangerous",
         summary="Asynchronously saves the database(s) to disk.",
         complexity="O(N) where N is the total number of keys in all databases")
def bgsave(client: Client, argv: list[bytes]) -> str:
    """BGSAVE [SCHEDULE]"""
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise SYNTAX_ERROR
    return _persistence(client).saver.bgsave(len(argv) == 2, client.in_exec)


@command("bgrewriteaof", arity=1, flags="admin noscript no_async_loading", group="server",
         acl="admin dangerous", summary="Asynchronously rewrites the append-only file to disk.",
         complexity="O(1)")
def bgrewriteaof(client: Client, argv: list[bytes]) -> str:
    """BGREWRITEAOF"""
    persistence = _persistence(client)
    kind = persistence.children.kind()
    if kind == "aof":
        raise ReplyError("ERR Background append only file rewriting already in progress")
    if kind is not None or client.in_exec:
        persistence.rewriter.scheduled = True
        return "Background append only file rewriting scheduled"
    try:
        persistence.rewriter.start()
    except OSError:
        raise ReplyError("ERR Can't execute an AOF background rewriting. Please check the server logs for more "
                         "information.")
    return "Background append only file rewriting started"


@command("waitaof", arity=4, flags="noscript", group="generic", acl="slow connection",
         summary="Blocks until all of the preceding write commands sent by the connection are written to the "
                 "append-only file of the master and/or replicas.", since="7.2.0", complexity="O(1)")
def waitaof(client: Client, argv: list[bytes]) -> list[Any]:
    """WAITAOF numlocal numreplicas timeout

    Without replicas, the local AOF is all there is: flush and fsync it, then answer ``[1, 0]``.
    """
    numlocal = parse_int(argv[1])
    numreplicas = parse_int(argv[2])
    timeout = parse_int(argv[3])
    if numlocal < 0 or numreplicas < 0:
        raise ReplyError("ERR value is out of range, must be positive")
    if timeout < 0:
        raise ReplyError("ERR timeout is negative")
    persistence = _persistence(client)
    if numlocal and persistence.aof is None:
        raise ReplyError("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
    if persistence.aof is None:
        return [0, 0]
    if not persistence.flush_and_sync():
        raise ReplyError("ERR Errors writing to the AOF file. Check logs.")
    return [1, 0]
