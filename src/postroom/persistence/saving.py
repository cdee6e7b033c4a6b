"""Snapshots on demand and on schedule: SAVE, BGSAVE, save points, and their INFO fields.

SAVE writes ``<dir>/<dbfilename>`` in the event loop (clients wait, as in Redis). BGSAVE forks
(:mod:`.fork`) and the child writes the same file through a temporary name, fsync and rename,
so a reader never sees half a snapshot. Save points (``save 3600 1 300 100 60 10000``) start a
BGSAVE from the cron once ``seconds`` have passed since the last save with at least ``changes``
writes (``broker.changes_since_save``); after a failed BGSAVE they retry no sooner than 5 seconds later,
as Redis does. Changes made while a BGSAVE runs stay counted for the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol.replies import ReplyError
from .fork import ChildProcesses
from .snapshot import temp_path, write_snapshot

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("postroom.persistence")

#: Redis's CONFIG_BGSAVE_RETRY_DELAY: seconds between automatic attempts after a failure.
RETRY_DELAY = 5

ANOTHER_CHILD = ("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                 "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")


class SnapshotSaver:
    """SAVE/BGSAVE and the automatic save points of one broker."""

    def __init__(self, broker: Broker, children: ChildProcesses, can_fork: Callable[[], bool]) -> None:
        self.broker = broker
        self.children = children
        self.can_fork = can_fork
        self.last_save_time = int(time.time())
        self.saves = 0
        self.last_bgsave_ok = True
        self.last_bgsave_seconds = -1
        self.last_attempt = 0.0
        self.scheduled = False
        self._dirty_at_start = 0
        self.on_status: Callable[[], None] = lambda: None  # the save status changed (write denial)

    @property
    def path(self) -> Path:
        config = self.broker.config
        return Path(config["dir"]) / config["dbfilename"]

    # -- SAVE ----------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the snapshot now, in this thread; raises ``OSError`` if it could not be written."""
        dirty = self.broker.dirty
        try:
            keys = write_snapshot(self.broker, self.path)
        except OSError as exc:
            log.warning("Failed saving the DB: %s", exc)
            self._set_status(False)
            raise
        log.info("DB saved on disk (%d keys)", keys)
        self._saved(dirty)
        self._set_status(True)

    def _set_status(self, ok: bool) -> None:
        """Record the outcome of a save (SAVE too, as Redis's rdbSave does) and report changes."""
        if ok != self.last_bgsave_ok:
            self.last_bgsave_ok = ok
            self.on_status()

    def _saved(self, dirty_at_start: int) -> None:
        self.broker.dirty_at_save = dirty_at_start
        self.last_save_time = int(time.time())
        self.saves += 1

    # -- BGSAVE --------------------------------------------------------------------------------

    def bgsave(self, schedule: bool, in_exec: bool) -> str:
        """BGSAVE [SCHEDULE]: the status reply, or :class:`ReplyError` with Redis's text."""
        kind = self.children.kind()
        if kind == "rdb":
            raise ReplyError("ERR Background save already in progress")
        if kind is not None or in_exec:
            if not schedule and not in_exec:
                raise ReplyError(ANOTHER_CHILD)
            self.scheduled = True
            return "Background saving scheduled"
        try:
            self.start()
        except OSError as exc:
            raise ReplyError(f"ERR {exc.strerror or exc}")
        return "Background saving started"

    def start(self) -> None:
        """Start a background save (synchronous where forking is not allowed, see :mod:`.fork`)."""
        self.scheduled = False
        self.last_attempt = time.monotonic()
        self._dirty_at_start = self.broker.dirty
        if not self.can_fork():
            started = time.monotonic()
            try:
                self.save()
            except OSError:
                self._finished_bgsave(False, started)
                raise
            self._finished_bgsave(True, started, counted=True)
            return
        path = self.path
        broker = self.broker
        delay = broker.config["rdb-key-save-delay"]
        started = time.monotonic()
        pid = self.children.start("rdb", lambda: write_snapshot(broker, path, delay),
                                  lambda ok: self._child_exited(ok, started, path, pid))

    def _child_exited(self, ok: bool, started: float, path: Path, pid: int) -> None:
        if not ok:
            temp_path(path, pid).unlink(missing_ok=True)
        self._finished_bgsave(ok, started)

    def _finished_bgsave(self, ok: bool, started: float, counted: bool = False) -> None:
        self._set_status(ok)
        self.last_bgsave_seconds = int(time.monotonic() - started)
        if ok:
            log.info("Background saving terminated with success")
            if not counted:
                self._saved(self._dirty_at_start)
        else:
            log.warning("Background saving error")

    def cancel(self) -> None:
        """Stop a running BGSAVE without counting it as failed (FLUSHALL: its snapshot would bring
        the flushed data back; Redis kills that child with SIGUSR1 for the same reason)."""
        if self.children.kind() != "rdb":
            return
        status = self.last_bgsave_ok
        self.children.kill()
        self._set_status(status)

    # -- cron ----------------------------------------------------------------------------------

    def cron(self) -> None:
        """Start a scheduled BGSAVE, or one a save point calls for, when no child is running."""
        if self.children.active:
            return
        if self.scheduled:
            self._try_start()
            return
        dirty = self.broker.changes_since_save
        if not dirty:
            return
        now = int(time.time())
        retry_ok = self.last_bgsave_ok or time.monotonic() - self.last_attempt > RETRY_DELAY
        for seconds, changes in self.broker.config["save"]:
            if dirty >= changes and now - self.last_save_time > seconds and retry_ok:
                log.info("%d changes in %d seconds. Saving...", changes, seconds)
                self._try_start()
                return

    def _try_start(self) -> None:
        try:
            self.start()
        except OSError as exc:
            log.warning("Can't save in background: %s", exc)

    # -- INFO ----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        in_progress = self.children.kind() == "rdb"
        return {
            "rdb_changes_since_last_save": self.broker.changes_since_save,
            "rdb_bgsave_in_progress": int(in_progress),
            "rdb_last_save_time": self.last_save_time,
            "rdb_last_bgsave_status": "ok" if self.last_bgsave_ok else "err",
            "rdb_last_bgsave_time_sec": self.last_bgsave_seconds,
            "rdb_current_bgsave_time_sec": self.children.elapsed() if in_progress else -1,
            "rdb_saves": self.saves,
        }


__all__ = ["SnapshotSaver"]
