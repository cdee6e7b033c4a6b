"""CLIENT TRACKING (server-assisted client-side caching) against redis-server 7.0, raw bytes compared.

Each scenario runs the same commands on both servers over two raw RESP3 connections (a tracking
reader and a writer, or a RESP2 redirect target) and compares every reply and every invalidation
push the reader receives. (redis-py's own cache refuses servers older than Redis 7.4, and postroom
reports the 7.0 it follows, so it is not exercised here.)
"""

from __future__ import annotations

import pytest

from .support.resp import RawClient


def _pair(port: int) -> tuple[RawClient, RawClient]:
    reader, writer = RawClient(port), RawClient(port)
    reader.call("HELLO", "3")
    reader.call("FLUSHALL")
    return reader, writer


def _run(port: int, scenario) -> list:
    reader, writer = _pair(port)
    try:
        return scenario(reader, writer)
    finally:
        reader.close()
        writer.close()


@pytest.fixture
def both(postroom_server, oracle_server):
    def check(scenario):
        ours, theirs = (_run(port, scenario) for port in (postroom_server.port, oracle_server.port))
        assert ours == theirs
        return ours
    return check


def _steps(*steps: tuple) -> object:
    """A scenario as data: ``("r", cmd...)`` the reader runs a command (its reply is kept),
    ``("w", cmd...)`` the writer runs one (reply dropped), ``("push",)`` the reader's next push."""
    def scenario(reader, writer):
        seen = []
        for who, *args in steps:
            if who == "r":
                seen.append(reader.call(*args))
            elif who == "w":
                writer.call(*args)
            else:
                seen.append(reader.read())
        return seen
    return scenario


def test_default_mode_invalidates_what_was_read_once(both):
    replies = both(_steps(
        ("r", "CLIENT", "TRACKING", "ON"), ("r", "GET", "a"), ("r", "MGET", "b", "c"),
        ("w", "SET", "a", "1"), ("push",),
        ("w", "SET", "a", "2"),  # "a" was forgotten: no second push until it is read again
        ("w", "DEL", "b"),  # b did not exist: nothing changed, nothing sent
        ("w", "SET", "c", "x"), ("push",),
        ("r", "PING"),  # nothing else was queued before this reply
        ("r", "CLIENT", "TRACKINGINFO"), ("r", "CLIENT", "GETREDIR"),
    ))
    assert replies[3] == (">", [("$", b"invalidate"), ("*", [("$", b"a")])])


def test_flush_sends_a_null_invalidation_and_noloop_hides_own_writes(both):
    both(_steps(
        ("r", "CLIENT", "TRACKING", "ON", "NOLOOP"), ("r", "GET", "k"),
        ("r", "SET", "k", "mine"),  # NOLOOP: no push for the reader's own write
        ("r", "GET", "k"), ("w", "FLUSHALL"), ("push",), ("r", "PING"),
    ))


def test_bcast_prefixes_and_errors(both):
    both(_steps(
        ("r", "CLIENT", "TRACKING", "ON", "PREFIX", "user:"),
        ("r", "CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"),
        ("r", "CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"),
        ("r", "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"),
        ("r", "CLIENT", "TRACKING", "MAYBE"),
        ("r", "CLIENT", "TRACKING", "ON", "REDIRECT", "999999"),
        ("r", "CLIENT", "CACHING", "YES"),
        ("r", "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:"),
        ("r", "CLIENT", "TRACKING", "ON"),  # switching BCAST off needs OFF first
        ("r", "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:x"),  # overlaps the one it has
        ("w", "SET", "user:1", "x"), ("w", "SET", "other", "x"), ("push",), ("r", "PING"),
        ("r", "CLIENT", "TRACKINGINFO"), ("r", "CLIENT", "TRACKING", "OFF"),
        ("w", "SET", "user:2", "x"), ("r", "PING"),
    ))


def test_optin_tracks_only_after_caching_yes(both):
    both(_steps(
        ("r", "CLIENT", "TRACKING", "ON", "OPTIN"), ("r", "GET", "plain"),
        ("r", "CLIENT", "CACHING", "YES"), ("r", "GET", "cached"), ("r", "CLIENT", "CACHING", "NO"),
        ("w", "SET", "plain", "1"), ("w", "SET", "cached", "1"), ("push",), ("r", "PING"),
    ))


def test_redirect_to_a_resp2_subscriber(both):
    def scenario(reader, writer):
        target = writer  # RESP2, subscribed to the invalidation channel
        target_id = target.call("CLIENT", "ID")[1]
        seen = [target.call("SUBSCRIBE", "__redis__:invalidate"),
                reader.call("CLIENT", "TRACKING", "ON", "REDIRECT", target_id.decode()), reader.call("GET", "r")]
        helper = RawClient(reader.sock.getpeername()[1])
        try:
            helper.call("SET", "r", "1")
            seen.append(target.read())
            helper.call("FLUSHDB")
            seen.append(target.read())
        finally:
            helper.close()
        seen.append(reader.call("CLIENT", "GETREDIR") == (":", target_id))
        return seen
    both(scenario)
