"""String commands (``t_string.c``): GET, SET and friends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import notifications as ev
from ..keyspace.database import WRONGTYPE
from ..protocol.replies import OK
from .registry import command

if TYPE_CHECKING:
    from ..client import Client


@command("get", arity=2, flags="readonly fast", keys=(1, 1, 1), group="string",
         summary="Returns the string value of a key.")
def get(client: Client, argv: list[bytes]) -> Any:
    """GET key"""
    value = client.db.get(argv[1])
    if value is None or type(value) is bytes:
        return value
    raise WRONGTYPE


@command("set", arity=-3, flags="write denyoom", keys=(1, 1, 1), group="string",
         summary="Sets the string value of a key, ignoring its type.")
def set_(client: Client, argv: list[bytes]) -> Any:
    """SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"""
    key = argv[1]
    db = client.db
    db.set(key, argv[2])
    client.touch(key)
    client.notify(ev.STRING, b"set", key)
    return OK
