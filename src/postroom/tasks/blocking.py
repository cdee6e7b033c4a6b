"""Dedicated connections for blocking reads that can be interrupted.

A worker blocks on XREADGROUP/BLPOP instead of polling, so new work starts
at once; to stop promptly it must also be able to cut such a wait short.
Each blocking reader owns one connection and remembers its CLIENT ID, so
another thread can end the wait with CLIENT UNBLOCK on a normal connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis

T = TypeVar("T")


class BlockingReader:
    """One connection, to the node that serves *key* (cluster or not)."""

    def __init__(self, client: Any, key: str) -> None:
        if isinstance(client, redis.Redis):
            node_client = client
        else:
            node_client = client.get_node_from_key(key).redis_connection
        pool = node_client.connection_pool
        self._control = node_client
        self.client = redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=pool.connection_class, max_connections=1, **pool.connection_kwargs
            )
        )
        self._client_id: int | None = None

    def call(self, fn: Callable[[redis.Redis], T]) -> T:
        """Run *fn* (a blocking command) on the dedicated connection."""
        if self._client_id is None:
            self._client_id = self.client.client_id()
        try:
            return fn(self.client)
        except redis.RedisError:
            self._client_id = None
            raise

    def unblock(self) -> None:
        """End the current blocking call, if any (best effort)."""
        if self._client_id is not None:
            try:
                self._control.client_unblock(self._client_id)
            except redis.RedisError:
                pass

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()
