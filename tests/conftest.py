"""Shared fixtures: a postroom server, the oracle redis-server, redis-py clients over RESP2 and RESP3,
and ``diff``, which sends the same commands to both servers and asserts identical raw replies."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio

from .support.resp import RawClient, Reply, unordered
from .support.servers import REDIS_SERVER, OracleServer, PostroomThread


@pytest.fixture(scope="session")
def postroom_server():
    server = PostroomThread()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oracle_server():
    if REDIS_SERVER is None:
        pytest.skip("redis-server (the oracle) is not installed: apt-get install redis-server")
    server = OracleServer()
    yield server
    server.stop()


#: (protocol, transport) combinations every client-level suite runs over: both protocols over TCP,
#: and RESP3 (redis-py's default) over the in-process embedded transport, on the same broker.
VARIANTS = [(2, "tcp"), (3, "tcp"), (3, "embedded")]
VARIANT_IDS = ["resp2", "resp3", "resp3-embedded"]


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def variant(request) -> tuple[int, str]:
    return request.param


@pytest.fixture
def protocol(variant) -> int:
    return variant[0]


@pytest.fixture
def transport(variant) -> str:
    return variant[1]


@pytest.fixture
def r(postroom_server, protocol, transport):
    """A redis-py client on a flushed postroom: RESP2 and RESP3 over TCP, RESP3 in-process."""
    if transport == "tcp":
        client = redis.Redis(port=postroom_server.port, protocol=protocol)
    else:
        client = postroom_server.embedded.client(protocol=protocol)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
async def ar(postroom_server, protocol, transport):
    if transport == "tcp":
        client = redis.asyncio.Redis(port=postroom_server.port, protocol=protocol)
    else:
        client = postroom_server.embedded.async_client(protocol=protocol)
    await client.flushall()
    yield client
    await client.aclose()


class Differential:
    """Runs the same commands on postroom and on redis-server and compares the raw replies."""

    def __init__(self, ours: RawClient, theirs: RawClient) -> None:
        self.ours = ours
        self.theirs = theirs
        self.protocol = 2
        self.transport = "tcp"

    def hello(self, version: int) -> None:
        self.ours.call("HELLO", version)
        self.theirs.call("HELLO", version)

    def both(self, *args) -> tuple[Reply, Reply]:
        return self.ours.call(*args), self.theirs.call(*args)

    def check(self, *args, sort: bool = False) -> Reply:
        """Assert both servers give the same reply to ``args``; return it."""
        ours, theirs = self.both(*args)
        if sort:
            ours, theirs = unordered(ours), unordered(theirs)
        assert ours == theirs, f"{args!r}: postroom {ours!r} != redis {theirs!r}"
        return ours

    def check_all(self, commands: list[tuple], sort: bool = False) -> None:
        for command in commands:
            self.check(*command, sort=sort)


@pytest.fixture
def diff(postroom_server, oracle_server, protocol, transport):
    """A :class:`Differential` over flushed servers (RESP2/RESP3 over TCP, RESP3 in-process)."""
    if transport == "tcp":
        ours = RawClient(postroom_server.port)
    else:
        ours = RawClient(0, sock=postroom_server.raw_channel())
    theirs = RawClient(oracle_server.port)
    d = Differential(ours, theirs)
    d.protocol = protocol
    d.transport = transport
    d.check("FLUSHALL")
    if protocol == 3:
        ours.call("HELLO", 3)
        theirs.call("HELLO", 3)
    yield d
    ours.close()
    theirs.close()
