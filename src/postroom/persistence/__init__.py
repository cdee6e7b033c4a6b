"""Persistence: wiring the append-only file into the broker and the server's lifecycle.

:class:`Persistence` loads the AOF at startup (before the server accepts connections), registers
the AOF as the broker's propagation sink, writes the buffer once per event-loop turn, holds replies
until their writes are fsynced under ``appendfsync always`` (group commit), refuses writes with
``MISCONF`` after a failed write, reports the INFO persistence fields, and closes the file cleanly
on shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .aof import AppendOnlyFile
from .loader import load_files

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("postroom.aof")


class Persistence:
    """The broker's durability: AOF loading, appending, fsync policy, write-failure handling."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        config = broker.config
        self.enabled = bool(config["appendonly"])
        self.directory = Path(config["dir"]) / config["appenddirname"]
        self.aof: AppendOnlyFile | None = None
        self._turn_scheduled = False
        self._waiting: list[tuple[Callable[[], None], Callable[[], None]]] = []
        self.loading = False
        self.loaded_commands = 0

    # -- startup and shutdown ------------------------------------------------------------------

    def start(self) -> None:
        """Load what is on disk, then start appending. Call before accepting clients."""
        broker = self.broker
        broker.persistence_info = self.info  # type: ignore[attr-defined]
        if not self.enabled:
            return
        aof = AppendOnlyFile(self.directory, broker.config["appendfilename"], broker.config["appendfsync"])
        if aof.manifest.load():
            self.loading = True
            try:
                self.loaded_commands = load_files(broker, aof.manifest.files(), broker.config["aof-load-truncated"])
            finally:
                self.loading = False
        aof.open()
        aof.on_write_status = self._write_status_changed
        self.aof = aof
        broker.propagation_sinks.append(self._append)
        broker.durability = self  # type: ignore[attr-defined]
        broker.config.on_change("appendfsync", aof.set_policy)
        broker.cron_hooks.append(self._retry_failed_write)
        broker.dirty = 0

    def stop(self) -> None:
        """Flush, fsync and close the AOF (SHUTDOWN, SIGTERM, Embedded.close)."""
        if self.aof is not None:
            self.commit()
            self.aof.close()
            self.aof = None
            if self._append in self.broker.propagation_sinks:
                self.broker.propagation_sinks.remove(self._append)

    # -- appending -----------------------------------------------------------------------------

    def _append(self, db_index: int, argvs: list[list[bytes]]) -> None:
        assert self.aof is not None
        self.aof.append(db_index, argvs)
        if not self._turn_scheduled:
            self._turn_scheduled = True
            loop = self.broker.loop
            if loop is None:
                return  # not serving yet: the next commit() writes it
            if threading.get_ident() == self.broker.loop_thread:
                loop.call_soon(self._end_of_turn)
            else:
                loop.call_soon_threadsafe(self._end_of_turn)

    @property
    def pending(self) -> bool:
        """Writes not yet durable whose replies must wait (only under ``appendfsync always``).

        After a failed write nothing waits: writes are refused with MISCONF meanwhile, and the
        buffered ones are retried by the cron until the disk accepts them.
        """
        aof = self.aof
        return aof is not None and aof.has_pending and aof.fsync_policy == "always" and aof.last_write_ok

    def _retry_failed_write(self) -> None:
        if self.aof is not None and not self.aof.last_write_ok:
            self.commit()

    def hold_reply(self, send: Callable[[], None], abandon: Callable[[], None]) -> None:
        """Send a connection's replies after the pending writes are fsynced (group commit)."""
        self._waiting.append((send, abandon))

    def commit(self) -> bool:
        """Write (and, under ``always``, fsync) the buffer now; ``False`` if that failed."""
        self._turn_scheduled = False
        ok = self.aof.flush() if self.aof is not None else True
        waiting, self._waiting = self._waiting, []
        for send, abandon in waiting:
            # Replies to writes that did not reach the disk are never sent: the clients see the
            # connection drop, as after a crash, rather than an acknowledgement that is false.
            (send if ok else abandon)()
        return ok

    def _end_of_turn(self) -> None:
        with self.broker.lock:
            if self._turn_scheduled:
                self.commit()

    def _write_status_changed(self, ok: bool) -> None:
        broker = self.broker
        if ok:
            broker.deny_writes = None  # type: ignore[attr-defined]
        else:
            assert self.aof is not None
            broker.deny_writes = f"MISCONF Errors writing to the AOF file: {self.aof.last_write_error}"  # type: ignore[attr-defined]
        broker.reset_dispatch_cache()

    # -- INFO ----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        aof = self.aof
        return {
            "loading": int(self.loading),
            "aof_enabled": int(aof is not None),
            "aof_rewrite_in_progress": 0,
            "aof_rewrite_scheduled": 0,
            "aof_last_write_status": "ok" if aof is None or aof.last_write_ok else "err",
            "aof_current_size": aof.current_size if aof else 0,
            "aof_base_size": aof.base_size if aof else 0,
            "aof_buffer_length": aof._buffered if aof else 0,
            "aof_delayed_fsync": aof.delayed_fsync if aof else 0,
            "aof_fsync_policy": aof.fsync_policy if aof else "",
            "aof_loaded_commands": self.loaded_commands,
        }


__all__ = ["Persistence"]
