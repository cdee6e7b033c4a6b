"""Pub/Sub delivery: channel, pattern and shard-channel subscriptions and message fan-out.

A published message is encoded once per protocol version (RESP2 array, RESP3 push: the same bytes
but for the first one) and the same ``bytes`` object is queued on every subscriber, so fan-out
costs one encoding, not one per subscriber. Subscribers of a channel are kept in subscription
order (Redis delivers in that order); a client's own subscriptions are kept in its ``channels``,
``patterns`` and ``shard_channels`` sets.

Patterns are compiled once, when first subscribed, into a matcher chosen by shape: equality for a
pattern without wildcards, ``startswith`` for ``prefix*``, and otherwise a regular expression
that cannot backtrack (see :func:`compile_pattern`), so a publish costs one cheap test per
subscribed pattern whatever the patterns look like.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .glob import _compile as glob_tokens

if TYPE_CHECKING:
    from .broker import Broker
    from .client import Client

Matcher = Callable[[bytes], bool]
Subscribers = dict["Client", None]  # an insertion-ordered set

_WILDCARDS = frozenset(b"*?[\\")


def compile_pattern(pattern: bytes) -> Matcher:
    """A predicate equivalent to ``glob_match(pattern, channel)``, in time linear in the channel.

    The pattern's tokens are split at ``*`` into fixed-length segments. A channel matches when the
    first segment matches at the start, the last at the end, and each middle segment somewhere in
    between, in order; taking each middle segment's leftmost occurrence is always optimal, so the
    regular expression commits to it with an atomic group and never backtracks across segments.
    """
    if not _WILDCARDS.intersection(pattern):
        return pattern.__eq__
    if pattern.endswith(b"*") and not _WILDCARDS.intersection(pattern[:-1]):
        prefix = pattern[:-1]
        return lambda channel: channel.startswith(prefix)
    segments: list[list[bytes]] = [[]]
    for kind, arg in glob_tokens(pattern, False):
        if kind == 0:  # '*'
            segments.append([])
        elif kind == 1:  # '?'
            segments[-1].append(b".")
        elif kind == 2:  # literal byte
            segments[-1].append(re.escape(bytes((arg,))))  # type: ignore[arg-type]
        else:  # [class]
            negate, members = arg  # type: ignore[misc]
            if not members:
                segments[-1].append(b"(?s:.)" if negate else b"(?!)")
            else:
                body = b"".join(b"\\x%02x" % m for m in sorted(members))
                segments[-1].append(b"[^" + body + b"]" if negate else b"[" + body + b"]")
    parts = [b"".join(segment) for segment in segments]
    if len(parts) == 1:
        expression = parts[0] + b"\\Z"
    else:
        middle = b"".join(b"(?>.*?" + part + b")" for part in parts[1:-1])
        expression = parts[0] + middle + b".*" + parts[-1] + b"\\Z"
    match = re.compile(expression, re.DOTALL).match
    return lambda channel: match(channel) is not None


def _frame(kind: bytes, *fields: bytes) -> bytes:
    """The body of a pub/sub message after the array/push marker: ``3\\r\\n$7\\r\\nmessage...``."""
    parts = [b"%d\r\n" % (len(fields) + 1), b"$%d\r\n%s\r\n" % (len(kind), kind)]
    parts.extend(b"$%d\r\n%s\r\n" % (len(field), field) for field in fields)
    return b"".join(parts)


def _deliver(subscribers: Iterable[Client], body: bytes) -> None:
    """Queue one message on every subscriber, encoding it at most once per protocol version.

    This is :meth:`Client.send_raw` inlined, the inner loop of fan-out. A client whose output list
    is not empty already has a flush coming (the first fragment queued since its last flush asked
    for one, or it is running its own requests and flushes when done), so only the first message
    per flush schedules one.
    """
    resp2 = resp3 = None
    for client in subscribers:
        if client.closed:
            continue
        if client.resp == 2:
            data = resp2 if resp2 is not None else (resp2 := b"*" + body)
        else:
            data = resp3 if resp3 is not None else (resp3 := b">" + body)
        out = client.out
        if out:
            out.append(data)
        else:
            out.append(data)
            client.flush_soon()


class PubSubHub:
    """Who is subscribed to what, and delivery of published messages."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.channels: dict[bytes, Subscribers] = {}
        self.patterns: dict[bytes, Subscribers] = {}
        self.shard_channels: dict[bytes, Subscribers] = {}
        self._matchers: dict[bytes, Matcher] = {}

    # -- delivery ------------------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver ``message`` to subscribers of ``channel`` and of matching patterns; return how many."""
        receivers = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            _deliver(subscribers, _frame(b"message", channel, message))
            receivers = len(subscribers)
        if self.patterns:
            matchers = self._matchers
            for pattern, clients in self.patterns.items():
                if matchers[pattern](channel):
                    _deliver(clients, _frame(b"pmessage", pattern, channel, message))
                    receivers += len(clients)
        return receivers

    def publish_shard(self, channel: bytes, message: bytes) -> int:
        """SPUBLISH: deliver to the shard channel's subscribers only (patterns never see it)."""
        subscribers = self.shard_channels.get(channel)
        if not subscribers:
            return 0
        _deliver(subscribers, _frame(b"smessage", channel, message))
        return len(subscribers)

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, client: Client, channel: bytes) -> None:
        if channel not in client.channels:
            client.channels[channel] = None
            self.channels.setdefault(channel, {})[client] = None

    def unsubscribe(self, client: Client, channel: bytes) -> None:
        if channel in client.channels:
            del client.channels[channel]
            _remove(self.channels, channel, client)

    def psubscribe(self, client: Client, pattern: bytes) -> None:
        if pattern not in client.patterns:
            client.patterns[pattern] = None
            if pattern not in self.patterns:
                self._matchers[pattern] = compile_pattern(pattern)
                self.patterns[pattern] = {}
            self.patterns[pattern][client] = None

    def punsubscribe(self, client: Client, pattern: bytes) -> None:
        if pattern in client.patterns:
            del client.patterns[pattern]
            if _remove(self.patterns, pattern, client):
                del self._matchers[pattern]

    def ssubscribe(self, client: Client, channel: bytes) -> None:
        if channel not in client.shard_channels:
            client.shard_channels[channel] = None
            self.shard_channels.setdefault(channel, {})[client] = None

    def sunsubscribe(self, client: Client, channel: bytes) -> None:
        if channel in client.shard_channels:
            del client.shard_channels[channel]
            _remove(self.shard_channels, channel, client)

    def drop(self, client: Client) -> None:
        """Remove every subscription of a disconnecting (or RESET) client, silently."""
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)
        for channel in list(client.shard_channels):
            self.sunsubscribe(client, channel)

    # -- introspection (PUBSUB) ----------------------------------------------------------------

    def pattern_count(self) -> int:
        """PUBSUB NUMPAT: distinct patterns with at least one subscriber (Redis 7 semantics)."""
        return len(self.patterns)


def _remove(table: dict[bytes, Subscribers], name: bytes, client: Client) -> bool:
    """Forget ``client`` as a subscriber of ``name``; ``True`` if nobody is left."""
    subscribers = table.get(name)
    if subscribers is None:
        return False
    subscribers.pop(client, None)
    if subscribers:
        return False
    del table[name]
    return True
