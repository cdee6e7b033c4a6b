"""The worker registry: one hash of heartbeats saying who runs what."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import codec
from .keys import registry_key

if TYPE_CHECKING:
    from .app import App


def publish(app: App, worker_id: str, info: dict[str, Any]) -> None:
    app.client.hset(registry_key(app.prefix), worker_id, codec.dumps({**info, "seen": time.time()}))


def remove(app: App, worker_id: str) -> None:
    app.client.hdel(registry_key(app.prefix), worker_id)


def live_workers(app: App) -> list[dict[str, Any]]:
    """Workers heard from within a lease; older entries (killed workers, which
    could not remove themselves) are dropped from the hash as a side effect."""
    key = registry_key(app.prefix)
    now = time.time()
    live, stale = [], []
    for worker_id, raw in app.client.hgetall(key).items():
        info = codec.loads(raw)
        if now - info["seen"] > app.lease:
            stale.append(worker_id)
        else:
            live.append({"id": worker_id.decode(), **info})
    if stale:
        app.client.hdel(key, *stale)
    return sorted(live, key=lambda w: w["id"])
