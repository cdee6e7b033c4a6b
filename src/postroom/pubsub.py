"""Pub/Sub delivery: channel and pattern subscriptions and message fan-out.

A published message is encoded once per protocol version and the same bytes are queued on every
subscriber, so fan-out costs one encoding, not one per subscriber.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from .protocol.encoder import RESP2, RESP3
from .protocol.replies import Push

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client


class PubSubHub:
    """Who is subscribed to what, and delivery of published messages."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.channels: dict[bytes, dict[Client, None]] = {}
        self.patterns: dict[bytes, dict[Client, None]] = {}
        self.shard_channels: dict[bytes, dict[Client, None]] = {}

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver ``message`` to subscribers of ``channel`` and matching patterns; return the count."""
        delivered = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            encoded = {2: RESP2.encode([b"message", channel, message]),
                       3: RESP3.encode(Push([b"message", channel, message]))}
            for client in subscribers:
                client.send_raw(encoded[client.resp])
            delivered += len(subscribers)
        for pattern, clients in self.patterns.items():
            if fnmatch.fnmatchcase(channel.decode("latin-1"), pattern.decode("latin-1")):
                encoded = {2: RESP2.encode([b"pmessage", pattern, channel, message]),
                           3: RESP3.encode(Push([b"pmessage", pattern, channel, message]))}
                for client in clients:
                    client.send_raw(encoded[client.resp])
                delivered += len(clients)
        return delivered

    def drop(self, client: Client) -> None:
        """Remove every subscription of a disconnecting client."""
        for table, names in ((self.channels, client.channels), (self.patterns, client.patterns),
                             (self.shard_channels, client.shard_channels)):
            for name in names:
                subscribers = table.get(name)
                if subscribers is not None:
                    subscribers.pop(client, None)
                    if not subscribers:
                        del table[name]
            names.clear()
