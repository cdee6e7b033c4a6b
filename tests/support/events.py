"""Capture the keyspace notifications a sequence of commands publishes, to compare servers."""

from __future__ import annotations

from .recorders import Propagation
from .resp import RawClient


def keyspace_events(port: int, commands: list[tuple]) -> list[tuple[bytes, bytes]]:
    """Run ``commands`` on a flushed server with notify-keyspace-events KEA; the (channel, message) pairs seen."""
    admin = RawClient(port)
    sub = RawClient(port)
    try:
        admin.call("FLUSHALL")
        admin.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub.call("PSUBSCRIBE", "__key*__:*")
        admin.pipeline(commands)
        admin.call("CONFIG", "SET", "notify-keyspace-events", "")
        admin.call("PUBLISH", "__keyspace@0__:end", "end")
        seen = []
        while True:
            message = sub.read()
            channel, payload = message[1][2][1], message[1][3][1]
            if channel == b"__keyspace@0__:end":
                return seen
            seen.append((channel, payload))
    finally:
        admin.call("CONFIG", "SET", "notify-keyspace-events", "")
        admin.close()
        sub.close()


def propagated(server, commands: list[tuple]) -> list[list[bytes]]:
    """What running ``commands`` on the in-process postroom ``server`` hands to the AOF, in order.

    A command's propagation reaches the sinks before its reply is written, so once every reply
    is back the list is complete.
    """
    client = RawClient(server.port)
    try:
        client.call("FLUSHALL")
        with Propagation(server) as recorder:
            client.pipeline(commands)
        return recorder.take()
    finally:
        client.close()
