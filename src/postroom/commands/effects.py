"""Side effects that several command families share, with the events Redis emits for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import notifications as ev

if TYPE_CHECKING:
    from ..client import Client


def delete_if_emptied(client: Client, key: bytes, value: Any) -> None:
    """Delete ``key`` once a write has emptied its collection ``value``: Redis never stores an empty
    list, set or hash, and announces the removal as a ``del`` keyspace event after the write's own."""
    if not value:
        client.db.delete(key)
        client.notify(ev.GENERIC, b"del", key)


def delete_key(client: Client, key: bytes) -> None:
    """Delete the live ``key`` as this command's write (GETDEL, an expiry already in the past). It
    propagates as ``DEL``, so replaying the AOF later does not depend on the clock."""
    client.db.delete(key)
    client.touch(key)
    client.propagate_as([b"DEL", key])
    client.notify(ev.GENERIC, b"del", key)
