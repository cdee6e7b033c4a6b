"""pytest fixtures for code that talks to Redis: a real postroom broker, in-process.

Installed with the package (entry point ``pytest11``), so any project that depends on postroom
gets them without configuration::

    def test_enqueue(postroom_client):
        postroom_client.lpush("jobs", "1")
        assert postroom_client.llen("jobs") == 1

Each test gets its own broker by default (isolation at the cost of a thread start, about a
millisecond). Mark a test, module or session ``@pytest.mark.postroom_shared`` to use one broker
for the whole session instead, flushed before each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from .embedded import Embedded


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postroom_shared: use one session-wide postroom broker (flushed per test) instead of one per test"
    )


@pytest.fixture(scope="session")
def postroom_session_broker() -> Iterator[Embedded]:
    """One in-process broker for the whole session."""
    with Embedded() as broker:
        yield broker


@pytest.fixture
def postroom_broker(request: pytest.FixtureRequest) -> Iterator[Embedded]:
    """An in-process broker: a fresh one per test, or the shared one under ``postroom_shared``."""
    if request.node.get_closest_marker("postroom_shared") is not None:
        shared: Embedded = request.getfixturevalue("postroom_session_broker")
        client = shared.client()
        client.flushall()
        client.close()
        yield shared
        return
    with Embedded() as broker:
        yield broker


@pytest.fixture
def postroom_client(postroom_broker: Embedded) -> Iterator[redis.Redis]:
    """A ``redis.Redis`` connected to :func:`postroom_broker`."""
    client = postroom_broker.client()
    yield client
    client.close()


@pytest.fixture
async def postroom_async_client(postroom_broker: Embedded) -> AsyncIterator[redis.asyncio.Redis]:
    """A ``redis.asyncio.Redis`` connected to :func:`postroom_broker` (needs an asyncio test runner)."""
    client = postroom_broker.async_client()
    yield client
    await client.aclose()
