"""Client output buffer limits (``client-output-buffer-limit``): drop clients that stop reading.

asyncio transports buffer whatever is written to them without bound, so a subscriber that stops
reading would make the server's memory grow with every message published. Redis's rule bounds it:
each client class (normal, replica, pubsub) has a hard limit, which closes the client as soon as
its pending output passes it, and a soft limit, which closes it once pending output has stayed
above it for the configured number of seconds. 0 disables a limit.

The connection calls :func:`over_limit` after handing a batch of replies to the transport, only
when output is actually pending (or the client was already above its soft limit), so a client
that keeps up costs nothing. Between two checks a client's pending output can grow by at most
one event-loop iteration's worth of replies, so memory stays bounded by the limit plus that.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger("postroom.server")


def client_class(client: Client) -> str:
    """The limit class Redis's getClientType gives the client (subscribers are ``pubsub``)."""
    if client.channels or client.patterns or client.shard_channels:
        return "pubsub"
    return "normal"


def over_limit(client: Client, pending: int) -> bool:
    """Whether ``client``, with ``pending`` bytes not yet sent, must be disconnected now.

    Tracks how long the client has been above its soft limit in ``client.obuf_soft_since``.
    """
    hard, soft, seconds = client.broker.config["client-output-buffer-limit"][client_class(client)]
    if hard and pending >= hard:
        return _disconnect(client, pending)
    if soft and pending >= soft:
        now = time.monotonic()
        if not client.obuf_soft_since:
            client.obuf_soft_since = now
        elif now - client.obuf_soft_since >= seconds:
            return _disconnect(client, pending)
    else:
        client.obuf_soft_since = 0.0
    return False


def _disconnect(client: Client, pending: int) -> bool:
    log.warning("Client id=%d addr=%s name=%s omem=%d scheduled to be closed ASAP for overcoming of output "
                "buffer limits.", client.id, client.addr, client.name.decode("utf-8", "replace"), pending)
    client.broker.disconnect(client)  # no more deliveries: the transport is aborted by the caller
    return True
