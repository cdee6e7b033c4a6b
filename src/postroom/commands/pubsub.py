"""Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB introspection.

Subscription commands answer one confirmation per channel, as Redis does, as a
:class:`~postroom.protocol.replies.Replies` sequence (inside EXEC too). Confirmations are pushes
(``>`` in RESP3, arrays in RESP2) carrying the client's subscription count after the change:
channels plus patterns for (P)SUBSCRIBE, shard channels only for SSUBSCRIBE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..glob import glob_match
from ..protocol.replies import Push, Replies, ReplyError
from .registry import command, container

if TYPE_CHECKING:
    from ..client import Client
    from ..pubsub import PubSubHub

_SUBSCRIBE_FLAGS = "pubsub noscript loading stale"
_PUBLISH_FLAGS = "pubsub loading stale fast may_replicate"


def _confirm(kind: bytes, names: Iterable[bytes | None], change: Callable[[bytes], None],
             count: Callable[[], int]) -> Replies:
    """Apply ``change`` to each name and answer one ``[kind, name, count]`` push per name."""
    replies = Replies()
    for name in names:
        if name is not None:
            change(name)
        replies.append(Push([kind, name, count()]))
    return replies


def _channel_count(client: Client) -> Callable[[], int]:
    return lambda: len(client.channels) + len(client.patterns)


def _shard_count(client: Client) -> Callable[[], int]:
    return lambda: len(client.shard_channels)


def _hub(client: Client) -> PubSubHub:
    return client.broker.pubsub


@command("subscribe", arity=-2, flags=_SUBSCRIBE_FLAGS, group="pubsub",
         summary="Listens for messages published to channels.", since="2.0.0")
def subscribe(client: Client, argv: list[bytes]) -> Replies:
    """SUBSCRIBE channel [channel ...]"""
    hub = _hub(client)
    return _confirm(b"subscribe", argv[1:], lambda name: hub.subscribe(client, name),
                    _channel_count(client))


@command("unsubscribe", arity=-1, flags=_SUBSCRIBE_FLAGS, group="pubsub",
         summary="Stops listening to messages posted to channels.", since="2.0.0")
def unsubscribe(client: Client, argv: list[bytes]) -> Replies:
    """UNSUBSCRIBE [channel [channel ...]]"""
    hub = _hub(client)
    names: list[bytes | None] = list(argv[1:] or client.channels or [None])
    return _confirm(b"unsubscribe", names, lambda name: hub.unsubscribe(client, name),
                    _channel_count(client))


@command("psubscribe", arity=-2, flags=_SUBSCRIBE_FLAGS, group="pubsub",
         summary="Listens for messages published to channels that match one or more patterns.", since="2.0.0")
def psubscribe(client: Client, argv: list[bytes]) -> Replies:
    """PSUBSCRIBE pattern [pattern ...]"""
    hub = _hub(client)
    return _confirm(b"psubscribe", argv[1:], lambda name: hub.psubscribe(client, name),
                    _channel_count(client))


@command("punsubscribe", arity=-1, flags=_SUBSCRIBE_FLAGS, group="pubsub",
         summary="Stops listening to messages published to channels that match one or more patterns.",
         since="2.0.0")
def punsubscribe(client: Client, argv: list[bytes]) -> Replies:
    """PUNSUBSCRIBE [pattern [pattern ...]]"""
    hub = _hub(client)
    names: list[bytes | None] = list(argv[1:] or client.patterns or [None])
    return _confirm(b"punsubscribe", names, lambda name: hub.punsubscribe(client, name),
                    _channel_count(client))


@command("ssubscribe", arity=-2, flags=_SUBSCRIBE_FLAGS, keys=(1, -1, 1), group="pubsub",
         summary="Listens for messages published to shard channels.", since="7.0.0")
def ssubscribe(client: Client, argv: list[bytes]) -> Replies:
    """SSUBSCRIBE shardchannel [shardchannel ...]"""
    hub = _hub(client)
    return _confirm(b"ssubscribe", argv[1:], lambda name: hub.ssubscribe(client, name),
                    _shard_count(client))


@command("sunsubscribe", arity=-1, flags=_SUBSCRIBE_FLAGS, keys=(1, -1, 1), group="pubsub",
         summary="Stops listening to messages posted to shard channels.", since="7.0.0")
def sunsubscribe(client: Client, argv: list[bytes]) -> Replies:
    """SUNSUBSCRIBE [shardchannel [shardchannel ...]]"""
    hub = _hub(client)
    names: list[bytes | None] = list(argv[1:] or client.shard_channels or [None])
    return _confirm(b"sunsubscribe", names, lambda name: hub.sunsubscribe(client, name),
                    _shard_count(client))


@command("publish", arity=3, flags=_PUBLISH_FLAGS, group="pubsub", summary="Posts a message to a channel.",
         since="2.0.0")
def publish(client: Client, argv: list[bytes]) -> int:
    """PUBLISH channel message"""
    return client.broker.pubsub.publish(argv[1], argv[2])


@command("spublish", arity=3, flags=_PUBLISH_FLAGS, keys=(1, 1, 1), group="pubsub",
         summary="Post a message to a shard channel", since="7.0.0")
def spublish(client: Client, argv: list[bytes]) -> int:
    """SPUBLISH shardchannel message"""
    return client.broker.pubsub.publish_shard(argv[1], argv[2])


container("pubsub", group="pubsub", summary="A container for Pub/Sub commands.", since="2.8.0")

_HELP = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]


def _matching(names: Iterable[bytes], argv: list[bytes]) -> list[bytes]:
    if len(argv) == 2:
        return list(names)
    if len(argv) > 3:
        subcommand = argv[1][:128].decode("utf-8", "replace")
        raise ReplyError(f"ERR unknown subcommand or wrong number of arguments for '{subcommand}'. Try PUBSUB HELP.")
    pattern = argv[2]
    return [name for name in names if glob_match(pattern, name)]


def _counts(table: dict[bytes, dict], names: list[bytes]) -> list[bytes | int]:
    reply: list[bytes | int] = []
    for name in names:
        reply.append(name)
        reply.append(len(table.get(name, ())))
    return reply


@command("pubsub|channels", arity=-2, flags="pubsub loading stale", group="pubsub",
         summary="Returns the active channels.", since="2.8.0")
def pubsub_channels(client: Client, argv: list[bytes]) -> list[bytes]:
    """PUBSUB CHANNELS [pattern]"""
    return _matching(_hub(client).channels, argv)


@command("pubsub|shardchannels", arity=-2, flags="pubsub loading stale", group="pubsub",
         summary="Returns the active shard channels.", since="7.0.0")
def pubsub_shardchannels(client: Client, argv: list[bytes]) -> list[bytes]:
    """PUBSUB SHARDCHANNELS [pattern]"""
    return _matching(_hub(client).shard_channels, argv)


@command("pubsub|numsub", arity=-2, flags="pubsub loading stale", group="pubsub",
         summary="Returns a count of subscribers to channels.", since="2.8.0")
def pubsub_numsub(client: Client, argv: list[bytes]) -> list[bytes | int]:
    """PUBSUB NUMSUB [channel [channel ...]]"""
    return _counts(_hub(client).channels, argv[2:])


@command("pubsub|shardnumsub", arity=-2, flags="pubsub loading stale", group="pubsub",
         summary="Returns the count of subscribers of shard channels.", since="7.0.0")
def pubsub_shardnumsub(client: Client, argv: list[bytes]) -> list[bytes | int]:
    """PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]"""
    return _counts(_hub(client).shard_channels, argv[2:])


@command("pubsub|numpat", arity=2, flags="pubsub loading stale", group="pubsub",
         summary="Returns a count of unique pattern subscriptions.", since="2.8.0")
def pubsub_numpat(client: Client, argv: list[bytes]) -> int:
    """PUBSUB NUMPAT"""
    return _hub(client).pattern_count()


@command("pubsub|help", arity=2, flags="loading stale", group="pubsub", summary="Returns helpful text about the different subcommands.",
         since="6.2.0")
def pubsub_help(client: Client, argv: list[bytes]) -> list[str]:
    """PUBSUB HELP"""
    return _HELP
