"""The worker registry: one hash of heartbeats saying who runs what.

Workers publish themselves with every heartbeat and remove themselves when
they stop.  A worker that is killed cannot remove itself, so entries not
heard from for a lease are dropped: by :func:`live_workers` (``app.workers()``)
and, so that they never pile up when nobody looks, by the heartbeats of the
other workers (:func:`publish`, at most once per lease per process).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from . import codec
from .keys import registry_key

if TYPE_CHECKING:
    from .app import App

# When this process last pruned each app's registry, on the monotonic clock.
# Heartbeats come every lease/3 or faster; a prune reads the whole hash, so it
# is done far less often.
_last_prune: weakref.WeakKeyDictionary[App, float] = weakref.WeakKeyDictionary()
_prune_lock = threading.Lock()


def publish(app: App, worker_id: str, info: dict[str, Any]) -> None:
    key = registry_key(app.prefix)
    app.client.hset(key, worker_id, codec.dumps({**info, "seen": time.time()}))
    if _prune_due(app):
        _scan(app, key)


def remove(app: App, worker_id: str) -> None:
    app.client.hdel(registry_key(app.prefix), worker_id)


def live_workers(app: App) -> list[dict[str, Any]]:
    """Workers heard from within a lease; older entries (killed workers, which
    could not remove themselves) are dropped from the hash as a side effect."""
    return sorted(_scan(app, registry_key(app.prefix)), key=lambda w: w["id"])


def _prune_due(app: App) -> bool:
    """True at most once per lease for one app in this process."""
    now = time.monotonic()
    with _prune_lock:
        last = _last_prune.get(app)
        if last is not None and now - last < app.lease:
            return False
        _last_prune[app] = now
        return True


def _scan(app: App, key: str) -> list[dict[str, Any]]:
    """The live entries of the registry; stale ones are deleted on the way.

    An entry is stale when its worker has not published for more than a lease
    (the time after which its jobs are taken over), or when it cannot be read
    at all (it could never be shown as live).
    """
    now = time.time()
    live, stale = [], []
    for worker_id, raw in app.client.hgetall(key).items():
        try:
            info = codec.loads(raw)
            seen = float(info["seen"])
        except Exception:  # a foreign or corrupt entry: drop it rather than fail a heartbeat
            stale.append(worker_id)
            continue
        if now - seen > app.lease:
            stale.append(worker_id)
        else:
            live.append({"id": worker_id.decode(), **info})
    if stale:
        app.client.hdel(key, *stale)
    return live
