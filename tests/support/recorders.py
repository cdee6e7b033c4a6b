"""Recorders for what a command does besides its reply: keyspace events and propagated writes.

:class:`KeyEvents` captures the keyevent notifications postroom emits (by hooking the broker) and
those the oracle publishes (through a PSUBSCRIBE connection), so a test can assert that the same
commands produce the same events in the same order. :class:`Propagation` captures what postroom
hands to its propagation sinks (the AOF).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Self

from postroom import notifications

from .resp import RawClient

Event = tuple[bytes, bytes, int]  # (event, key, db index)
_SENTINEL = b"__recorders_sentinel__"


class _Recorder:
    """A recorder hooks into a running server; ``with`` guarantees the hooks are removed again."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class KeyEvents(_Recorder):
    """Keyevent notifications of every class (``notify-keyspace-events KEA``) on both servers."""

    def __init__(self, postroom_server, oracle_server) -> None:
        self.server = postroom_server
        self.ours: list[Event] = []
        broker = postroom_server.broker

        def record(kind: int, event: bytes, key: bytes, db_index: int) -> None:
            self.ours.append((event, key, db_index))

        def install() -> None:
            broker.notify = record
            broker.notify_flags = notifications.ALL | notifications.KEYEVENT

        postroom_server.call_in_loop(install)
        self.admin = RawClient(oracle_server.port)
        self.admin.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        self.sub = RawClient(oracle_server.port)
        self.sub.call("PSUBSCRIBE", "__keyevent@*__:*")
        self.sub.call("SUBSCRIBE", _SENTINEL)

    def theirs(self) -> list[Event]:
        """Every oracle event since the last call (waits for all of them with a sentinel message)."""
        self.admin.call("PUBLISH", _SENTINEL, "x")
        events: list[Event] = []
        while True:
            _, items = self.sub.read()
            payload = [item[1] for item in items]
            if payload[0] == b"message":
                return events
            channel, key = payload[2], payload[3]
            prefix, event = channel.split(b":", 1)
            events.append((event, key, int(prefix[len(b"__keyevent@"):-2])))

    def take(self) -> tuple[list[Event], list[Event]]:
        """(postroom's, oracle's) events since the last call."""
        ours, self.ours = self.ours, []
        return ours, self.theirs()

    def close(self) -> None:
        broker = self.server.broker

        def uninstall() -> None:
            del broker.notify
            broker._set_notify_flags(broker.config["notify-keyspace-events"])

        self.server.call_in_loop(uninstall)
        self.admin.call("CONFIG", "SET", "notify-keyspace-events", "")
        self.admin.close()
        self.sub.close()


class Propagation(_Recorder):
    """Commands postroom propagates, as (db index, argv) pairs in order."""

    def __init__(self, postroom_server) -> None:
        self.server = postroom_server
        self.entries: list[tuple[int, list[bytes]]] = []
        self._arrived = threading.Condition()  # the sink runs on the server's loop thread
        postroom_server.call_in_loop(postroom_server.broker.propagation_sinks.append, self._sink)

    def _sink(self, db_index: int, argvs: list[list[bytes]]) -> None:
        with self._arrived:
            self.entries.extend((db_index, list(argv)) for argv in argvs)
            self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[list[bytes]], bool], timeout: float = 5.0) -> bool:
        """Wait until some argv propagated since the last :meth:`take` satisfies ``predicate``, for
        writes the server makes on its own (blocked clients served, fields expired by the cron)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: any(predicate(argv) for _, argv in self.entries), timeout)

    def take(self) -> list[list[bytes]]:
        """The argvs propagated since the last call."""
        with self._arrived:
            entries, self.entries = self.entries, []
        return [argv for _, argv in entries]

    def close(self) -> None:
        self.server.call_in_loop(self.server.broker.propagation_sinks.remove, self._sink)
