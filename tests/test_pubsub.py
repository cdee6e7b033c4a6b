"""Differential tests of Pub/Sub: every command, reply shape and error against redis-server.

Each test opens the same set of raw connections on postroom and on the oracle, drives them with
the same commands (including messages published from another connection) and compares every raw
reply and every delivered message, in RESP2 and in RESP3.
"""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.glob import glob_match
from postroom.pubsub import compile_pattern

from .support.resp import RawClient, Reply, unordered

_names = itertools.count()


class Twin:
    """One connection to postroom and one to the oracle, driven identically."""

    def __init__(self, ours_port: int, theirs_port: int, protocol: int) -> None:
        self.ours = RawClient(ours_port)
        self.theirs = RawClient(theirs_port)
        if protocol == 3:
            self.check("HELLO", 3, compare=False)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()

    def check(self, *args, compare: bool = True, sort: bool = False) -> Reply:
        ours, theirs = self.ours.call(*args), self.theirs.call(*args)
        if sort:
            ours, theirs = unordered(ours), unordered(theirs)
        if compare:
            assert ours == theirs, f"{args!r}: postroom {ours!r} != redis {theirs!r}"
        return ours

    def send(self, *args) -> None:
        self.ours.send(*args)
        self.theirs.send(*args)

    def read(self, count: int = 1, sort: bool = False) -> list[Reply]:
        """Read ``count`` replies/messages from both sides and assert they are the same."""
        ours = [self.ours.read() for _ in range(count)]
        theirs = [self.theirs.read() for _ in range(count)]
        if sort:
            ours, theirs = sorted(ours, key=repr), sorted(theirs, key=repr)
        assert ours == theirs, f"postroom {ours!r} != redis {theirs!r}"
        return ours

    def check_multi(self, count: int, *args, sort: bool = False) -> list[Reply]:
        """A command answering ``count`` replies (SUBSCRIBE a b c answers three)."""
        self.send(*args)
        return self.read(count, sort)


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request) -> int:
    """Raw connections over TCP in both protocols (the embedded transport has its own suites)."""
    return request.param


def _twin_factory(postroom_server, oracle_server, default: int):
    opened: list[Twin] = []

    def make(resp: int | None = None) -> Twin:
        twin = Twin(postroom_server.port, oracle_server.port, resp or default)
        opened.append(twin)
        return twin

    yield make
    for twin in opened:
        twin.close()


@pytest.fixture
def twins(postroom_server, oracle_server, protocol):
    """A factory of :class:`Twin` connections in the test's protocol, all closed at the end."""
    yield from _twin_factory(postroom_server, oracle_server, protocol)


@pytest.fixture
def fixed_twins(postroom_server, oracle_server):
    """Like ``twins``, for tests that name each connection's protocol themselves."""
    yield from _twin_factory(postroom_server, oracle_server, 2)


def unique(prefix: str = "ch") -> str:
    """A channel name no other test uses (the servers live for the whole session)."""
    return f"{prefix}:{next(_names)}:{time.monotonic_ns()}"


# -- subscribe / unsubscribe confirmations ---------------------------------------------------


def test_subscribe_counts_and_duplicates(twins):
    sub = twins()
    a, b = unique(), unique()
    sub.check_multi(2, "SUBSCRIBE", a, b)
    sub.check_multi(2, "SUBSCRIBE", a, a)  # already subscribed: count unchanged
    sub.check_multi(1, "PSUBSCRIBE", a + "*")  # patterns share the count with channels
    sub.check_multi(1, "SSUBSCRIBE", unique())  # shard channels have their own count
    sub.check_multi(2, "UNSUBSCRIBE", a, unique())  # unknown channel: still one reply
    sub.check_multi(1, "PUNSUBSCRIBE", a + "*")
    sub.check_multi(1, "PUNSUBSCRIBE", a + "*")
    sub.check_multi(1, "UNSUBSCRIBE", b)


def test_unsubscribe_without_subscriptions_answers_nil(twins):
    sub = twins()
    sub.check_multi(1, "UNSUBSCRIBE")
    sub.check_multi(1, "PUNSUBSCRIBE")
    sub.check_multi(1, "SUNSUBSCRIBE")
    sub.check("PING")


def check_unsubscribe_all(twin: Twin, command: str, count: int) -> None:
    """Redis walks a hash table for channels: same names and same decreasing counts, in any order."""
    twin.send(command)
    ours = [twin.ours.read() for _ in range(count)]
    theirs = [twin.theirs.read() for _ in range(count)]
    assert sorted(m[1][1] for m in ours) == sorted(m[1][1] for m in theirs)
    assert [(m[0], m[1][0], m[1][2]) for m in ours] == [(m[0], m[1][0], m[1][2]) for m in theirs]


def test_unsubscribe_all(twins):
    sub = twins()
    names = [unique() for _ in range(3)]
    sub.check_multi(3, "SUBSCRIBE", *names)
    sub.check_multi(2, "PSUBSCRIBE", "p1*", "p2*")
    check_unsubscribe_all(sub, "UNSUBSCRIBE", 3)
    sub.check_multi(2, "PUNSUBSCRIBE")  # patterns are a list in Redis: subscription order
    sub.check_multi(2, "SSUBSCRIBE", "s1", "s2")
    check_unsubscribe_all(sub, "SUNSUBSCRIBE", 2)
    sub.check_multi(1, "SUNSUBSCRIBE")


def test_arity_errors(twins):
    client = twins()
    for args in (("SUBSCRIBE",), ("PSUBSCRIBE",), ("SSUBSCRIBE",), ("PUBLISH", "a"), ("PUBLISH", "a", "b", "c"),
                 ("SPUBLISH", "a"), ("PUBSUB",), ("PUBSUB", "NUMPAT", "x"), ("PUBSUB", "HELP", "x"),
                 ("PUBSUB", "NOPE"), ("PUBSUB", "CHANNELS", "a", "b"), ("PUBSUB", "SHARDCHANNELS", "a", "b")):
        client.check(*args)


# -- delivery ------------------------------------------------------------------------------


def test_publish_reaches_channel_and_pattern_subscribers(twins):
    sub, other, pub = twins(), twins(), twins()
    channel = unique("news")
    sub.check_multi(1, "SUBSCRIBE", channel)
    sub.check_multi(1, "PSUBSCRIBE", "news:*")
    other.check_multi(1, "SUBSCRIBE", channel)
    assert pub.check("PUBLISH", channel, "hello") == (":", b"3")
    sub.read(2)  # message then pmessage
    other.read(1)
    pub.check("PUBLISH", channel, b"")
    sub.read(2)
    other.read(1)
    pub.check("PUBLISH", "elsewhere", "x")
    pub.check("PUBLISH", "news:other", b"\x00\r\nbinary")
    sub.read(1)
    sub.check("PING")
    other.check("PING")


def test_pattern_subscribers_of_one_pattern_all_receive(twins):
    first, second, pub = twins(), twins(), twins()
    pattern = unique("pp") + ":*"
    first.check_multi(1, "PSUBSCRIBE", pattern)
    second.check_multi(1, "PSUBSCRIBE", pattern)
    pub.check("PUBLISH", pattern[:-1] + "x", "m")
    first.read()
    second.read()


def test_shard_channels_are_separate(twins):
    sub, pub = twins(), twins()
    channel = unique("shard")
    sub.check_multi(1, "SSUBSCRIBE", channel)
    sub.check_multi(1, "PSUBSCRIBE", "*")
    pub.check("SPUBLISH", channel, "one")  # smessage to the shard subscriber, patterns never see it
    sub.read()
    pub.check("SPUBLISH", unique("shard"), "nobody")
    sub.check_multi(1, "PUNSUBSCRIBE")
    pub.check("PUBLISH", channel, "not shard")
    sub.check("PING")


def test_resp3_push_messages_mix_with_replies(fixed_twins):
    sub, pub = fixed_twins(3), fixed_twins(3)
    channel = unique()
    sub.check_multi(1, "SUBSCRIBE", channel)
    key = unique("key")
    sub.check("SET", key, "v")
    pub.check("PUBLISH", channel, "between")
    sub.read()
    sub.check("GET", key)
    sub.check_multi(2, "PUBLISH", channel, "to myself")  # the push comes before PUBLISH's own reply


def test_resp2_and_resp3_subscribers_on_one_channel(fixed_twins):
    old, new, pub = fixed_twins(2), fixed_twins(3), fixed_twins()
    channel = unique()
    old.check_multi(1, "SUBSCRIBE", channel)
    new.check_multi(1, "SUBSCRIBE", channel)
    pub.check("PUBLISH", channel, "both")
    old.read()
    new.read()


# -- the RESP2 subscribed context ----------------------------------------------------------


def test_resp2_subscribed_context_rules(fixed_twins):
    sub = fixed_twins(2)
    channel = unique()
    sub.check_multi(1, "SUBSCRIBE", channel)
    sub.check("GET", "x")
    sub.check("CLIENT", "LIST")
    sub.check("MULTI")
    sub.check("HELLO", 3)
    sub.check("PUBLISH", channel, "x")
    sub.check("PING")
    sub.check("PING", "hello")
    sub.check("PING", "a", "b")
    sub.check_multi(1, "UNSUBSCRIBE", channel)
    sub.check("PING")
    sub.check("GET", "x")


def test_resp2_context_with_only_shard_or_pattern_subscriptions(fixed_twins):
    sub = fixed_twins(2)
    sub.check_multi(1, "SSUBSCRIBE", unique())
    sub.check("GET", "x")
    sub.check_multi(1, "PSUBSCRIBE", "zz*")
    sub.check_multi(1, "SUNSUBSCRIBE")
    sub.check("GET", "x")
    sub.check_multi(1, "PUNSUBSCRIBE")
    sub.check("GET", "x")


def test_reset_leaves_the_subscribed_context(fixed_twins):
    sub, pub = fixed_twins(2), fixed_twins()
    channel = unique()
    sub.check_multi(1, "SUBSCRIBE", channel)
    sub.check("RESET")
    sub.check("GET", "x")
    pub.check("PUBLISH", channel, "nobody listens")
    sub.check("PING")


def test_subscribe_inside_multi(twins):
    client = twins()
    channel = unique()
    client.check("MULTI")
    client.check("SUBSCRIBE", channel, channel + "x")
    client.check("PING")
    client.send("EXEC")
    client.read(2)  # the array counts commands, not replies: PONG follows it


def test_resp3_subscribe_inside_multi_after_subscribing(fixed_twins):
    client = fixed_twins(3)
    client.check_multi(1, "SUBSCRIBE", unique())
    client.check("MULTI")
    client.check("SUBSCRIBE", unique())
    client.check("EXEC")


def test_resp3_ping_while_subscribed(fixed_twins):
    sub = fixed_twins(3)
    sub.check_multi(1, "SUBSCRIBE", unique())
    sub.check("PING")
    sub.check("PING", "x")


# -- PUBSUB introspection ------------------------------------------------------------------


def test_pubsub_introspection(twins):
    first, second, query = twins(), twins(), twins()
    base = unique("intro")
    first.check_multi(2, "SUBSCRIBE", base + ":a", base + ":b")
    second.check_multi(1, "SUBSCRIBE", base + ":a")
    first.check_multi(1, "SSUBSCRIBE", base + ":s")
    query.check("PUBSUB", "CHANNELS", base + ":*", sort=True)
    query.check("PUBSUB", "CHANNELS", base + ":[a]")
    query.check("PUBSUB", "NUMSUB", base + ":a", base + ":b", base + ":none", base + ":s")
    query.check("PUBSUB", "NUMSUB")
    query.check("PUBSUB", "SHARDCHANNELS", base + "*")
    query.check("PUBSUB", "SHARDNUMSUB", base + ":s", base + ":a")
    query.check("PUBSUB", "SHARDNUMSUB")
    query.check("PUBSUB", "HELP")
    query.check("pubsub", "numsub", base + ":a")


def test_pubsub_numpat_counts_distinct_patterns(postroom_server, oracle_server, protocol):
    # NUMPAT is server-wide: run on dedicated connections and compare the changes, not totals.
    results = []
    for port in (postroom_server.port, oracle_server.port):
        query, first, second = RawClient(port), RawClient(port), RawClient(port)
        if protocol == 3:
            query.call("HELLO", 3)
        before = int(query.call("PUBSUB", "NUMPAT")[1])
        pattern = unique("numpat") + "*"
        first.call("PSUBSCRIBE", pattern)
        second.call("PSUBSCRIBE", pattern, pattern + "x")
        after = query.call("PUBSUB", "NUMPAT")
        results.append((after[0], int(after[1]) - before))
        for c in (query, first, second):
            c.close()
    assert results[0] == results[1] == (":", 2)


# -- pattern matching ----------------------------------------------------------------------

PATTERNS = ["*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", r"h\*llo", "*llo*",
            "a*b*c", "[", "[]", "[^]x", "x\\", "he[l", "*[", "\\?", "?*?", "hello", "h*l*o", "[\\]]*"]
CHANNELS = ["hello", "hallo", "hbllo", "hxllo", "heeeello", "h*llo", "hllo", "abc", "aXbYc", "ab", "[", "x\\",
            "he[l", "?", "]x", "", "llo", "a\nb"]


def test_pattern_matching_agrees_with_redis(twins):
    subs = twins()
    pub = twins()
    prefix = unique("glob") + "|"
    # One subscriber per pattern: PUBLISH's receiver count tells which patterns matched.
    for pattern in PATTERNS:
        subs.check_multi(1, "PSUBSCRIBE", prefix + pattern if not pattern.startswith("*") else pattern)
    for channel in CHANNELS:
        receivers = pub.check("PUBLISH", prefix + channel, "m")
        subs.read(int(receivers[1]), sort=True)  # Redis walks patterns in hash order


def test_hostile_pattern_is_fast(postroom_server):
    client = RawClient(postroom_server.port)
    publisher = RawClient(postroom_server.port)
    client.call("PSUBSCRIBE", "a*" * 40 + "b")
    start = time.perf_counter()
    for _ in range(20):
        assert publisher.call("PUBLISH", "a" * 4000, "x") == (":", b"0")
    assert time.perf_counter() - start < 1.0
    client.close()
    publisher.close()


def test_compiled_matchers_have_the_glob_semantics():
    for pattern in PATTERNS:
        matcher = compile_pattern(pattern.encode())
        for channel in CHANNELS:
            assert matcher(channel.encode()) == glob_match(pattern.encode(), channel.encode()), (pattern, channel)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?[]^-\\", max_size=8), st.binary(max_size=8).map(lambda b: b.replace(b"\xff", b"a"))
       | st.text(alphabet="ab]\\-^[", max_size=8).map(str.encode))
def test_compiled_matchers_agree_with_glob_match(pattern, channel):
    assert compile_pattern(pattern.encode())(channel) == glob_match(pattern.encode(), channel)
