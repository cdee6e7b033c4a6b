"""AOF rewrite: compact the multi-part AOF into a new base while the server keeps serving.

Steps (Redis 7's ``rewriteAppendOnlyFileBackground`` and ``backgroundRewriteDoneHandler``), each
leaving a manifest that loads everything written so far:

1. Flush the buffer, open a new incremental file and persist the manifest *with it appended*
   (old base + old increments + new increment). From now on writes go to the new increment.
2. Fork. The child writes the dataset as it was at the fork, in the snapshot format, to a
   temporary file (fsync, rename to ``temp-rewriteaof.snapshot``) and exits.
3. The cron reaps the child. On success the parent renames the file to
   ``<appendfilename>.<seq>.base.snapshot``, fsyncs the directory, atomically replaces the
   manifest with new base + the increments opened since step 1, and only then deletes the old
   base and increments. On failure nothing changes: the step-1 manifest stays valid.

A crash before step 3's manifest replacement loads the step-1 manifest; after it, the new one.
Leftover temporary files are removed at startup. With ``appendonly no`` BGREWRITEAOF still
writes a base and a manifest listing only it, as Redis does.

Automatic rewrites start from the cron when the AOF has grown by ``auto-aof-rewrite-percentage``
since the last rewrite (or startup) and is at least ``auto-aof-rewrite-min-size`` bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .aof import AppendOnlyFile, Manifest, fsync_directory
from .fork import ChildProcesses
from .snapshot import temp_path, write_snapshot

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("postroom.aof")

BASE_SUFFIX = ".snapshot"
TEMP_NAME = "temp-rewriteaof.snapshot"


class AofRewriter:
    """BGREWRITEAOF, scheduled and automatic rewrites, and their INFO fields."""

    def __init__(self, broker: Broker, children: ChildProcesses, directory: Path, basename: str,
                 can_fork: Callable[[], bool], flush: Callable[[], bool]) -> None:
        self.broker = broker
        self.children = children
        self.directory = directory
        self.basename = basename
        self.can_fork = can_fork
        self.flush = flush  # writes and fsyncs the AOF buffer, releasing held replies
        self.aof: AppendOnlyFile | None = None  # set while the AOF is on
        self.scheduled = False
        self.rewrites = 0
        self.last_ok = True
        self.consecutive_failures = 0
        self.last_seconds = -1
        self.base_size = 0  # aof_rewrite_base_size: AOF size after the last rewrite or load

    @property
    def in_progress(self) -> bool:
        return self.children.kind() == "aof"

    def start(self) -> None:
        """Begin a rewrite (synchronous where forking is not allowed); raises ``OSError`` on failure."""
        self.scheduled = False
        started = time.monotonic()
        aof = self.aof
        if aof is not None:
            if not self.flush():
                raise OSError("the AOF buffer cannot be written")
            first_kept = aof.start_new_increment().seq
        else:
            first_kept = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / TEMP_NAME
        broker = self.broker
        if not self.can_fork():
            try:
                write_snapshot(broker, target)
            except OSError:
                self._finished(False, started, first_kept, None)
                raise
            self._finished(True, started, first_kept, None)
            return
        delay = broker.config["rdb-key-save-delay"]
        pid = self.children.start("aof", lambda: write_snapshot(broker, target, delay),
                                  lambda ok: self._finished(ok, started, first_kept, pid))

    def _finished(self, ok: bool, started: float, first_kept: int, pid: int | None) -> None:
        self.last_seconds = int(time.monotonic() - started)
        if ok:
            try:
                self._install(first_kept)
            except OSError as exc:
                log.warning("Error installing the rewritten AOF: %s", exc)
                ok = False
        if not ok:
            if pid is not None:
                temp_path(self.directory / TEMP_NAME, pid).unlink(missing_ok=True)
            (self.directory / TEMP_NAME).unlink(missing_ok=True)
            self.last_ok = False
            self.consecutive_failures += 1
            log.warning("Background AOF rewrite failed")
            return
        self.last_ok = True
        self.consecutive_failures = 0
        self.rewrites += 1
        log.info("Background AOF rewrite finished successfully")

    def _install(self, first_kept: int) -> None:
        """Step 3: the new base and manifest, then the old files go."""
        aof = self.aof
        manifest = aof.manifest if aof is not None else Manifest(self.directory, self.basename)
        if aof is None:
            manifest.load()
        base = manifest.next_base(BASE_SUFFIX)
        os.replace(self.directory / TEMP_NAME, self.directory / base.name)
        fsync_directory(self.directory)
        if aof is not None:
            dropped = aof.install_base(base, first_kept)
            self.base_size = aof.current_size
        else:
            dropped = [e.name for e in manifest.entries]
            manifest.entries = [base]
            manifest.save()
            self.base_size = (self.directory / base.name).stat().st_size
        for name in dropped:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()

    def cron(self) -> None:
        """Start a scheduled rewrite, or an automatic one when the AOF grew enough."""
        if self.children.active:
            return
        if self.scheduled:
            self._try_start()
            return
        aof = self.aof
        config = self.broker.config
        percentage = config["auto-aof-rewrite-percentage"]
        if aof is None or not percentage or aof.current_size < config["auto-aof-rewrite-min-size"]:
            return
        growth = aof.current_size * 100 // max(self.base_size, 1) - 100
        if growth >= percentage:
            log.info("Starting automatic rewriting of AOF on %d%% growth", growth)
            self._try_start()

    def _try_start(self) -> None:
        try:
            self.start()
        except OSError as exc:
            log.warning("Can't rewrite the append only file in background: %s", exc)

    def info(self) -> dict[str, Any]:
        return {
            "aof_rewrite_in_progress": int(self.in_progress),
            "aof_rewrite_scheduled": int(self.scheduled),
            "aof_last_rewrite_time_sec": self.last_seconds,
            "aof_current_rewrite_time_sec": self.children.elapsed() if self.in_progress else -1,
            "aof_last_bgrewrite_status": "ok" if self.last_ok else "err",
            "aof_rewrites": self.rewrites,
            "aof_rewrites_consecutive_failures": self.consecutive_failures,
        }


def remove_leftovers(directory: Path, manifest: Manifest) -> None:
    """Delete temporary rewrite files and AOF files no manifest lists (a crash mid-rewrite)."""
    if not directory.is_dir():
        return
    listed = {e.name for e in manifest.entries}
    for path in directory.iterdir():
        name = path.name
        ours = name.startswith(f"{manifest.basename}.") and (".base" in name or ".incr" in name)
        if name.startswith("temp-") or (ours and name not in listed and not name.endswith(".manifest")):
            log.info("Removing leftover file %s", path)
            path.unlink(missing_ok=True)


__all__ = ["AofRewriter", "remove_leftovers"]
