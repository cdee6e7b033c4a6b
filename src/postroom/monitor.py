"""The MONITOR feed: every executed command, as a status line, to every monitoring client.

``Broker.call`` calls :func:`feed_monitors` only while some client is monitoring. The line is
Redis's (``replicationFeedMonitors``): ``+<sec>.<usec> [<db> <peer>] "arg" "arg"...``, encoded once
and sent raw to every monitor in both protocols. Administrative commands and those flagged
``skip_monitor`` are never shown, and neither are re-executions of a parked blocking command.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client
    from .commands.registry import Command

_ESCAPES = {0x5C: b"\\\\", 0x22: b'\\"', 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x07: b"\\a", 0x08: b"\\b"}
_REPR = [
    _ESCAPES.get(c, bytes((c,)) if 0x20 <= c < 0x7F else b"\\x%02x" % c) for c in range(256)
]


def quote(arg: bytes) -> bytes:
    """Redis's ``sdscatrepr``: a double-quoted, escaped rendering of ``arg``."""
    return b'"' + b"".join(_REPR[c] for c in arg) + b'"'


def peer_id(client: Client) -> str:
    """Redis's ``getClientPeerId``: ``ip:port``, or ``<unixsocket>:0`` for a unix socket client
    (MONITOR, SLOWLOG and CLIENT LIST/KILL all name clients this way)."""
    if client.kind == "unix":
        return f"{client.broker.config['unixsocket']}:0"
    return client.addr


def feed_monitors(broker: Broker, client: Client, cmd: Command, argv: list[bytes]) -> None:
    """Send one executed command to every monitor, dropping monitors that closed meanwhile."""
    if client.waiter is not None or "admin" in cmd.flags or "skip_monitor" in cmd.flags:
        return
    now = time.time()
    # Not peer_id: Redis's MONITOR line names a unix socket client "unix:<path>", not "<path>:0".
    peer = f"unix:{broker.config['unixsocket']}" if client.kind == "unix" else client.addr
    line = b"+%d.%06d [%d %s] %s\r\n" % (
        int(now), int(now * 1_000_000) % 1_000_000, client.db.index, peer.encode(), b" ".join(map(quote, argv))
    )
    monitors = broker.monitors
    for monitor in list(monitors):
        if monitor.closed or not monitor.monitor:
            monitors.remove(monitor)
        else:
            monitor.send_raw(line)
