"""Persistence: wiring the append-only file and snapshots into the broker and the server's lifecycle.

:class:`Persistence` loads the data at startup (before the server accepts connections): the AOF
(base + increments) when ``appendonly`` is on, otherwise the snapshot ``<dir>/<dbfilename>``, as
Redis does. It registers the AOF as the broker's propagation sink, writes the buffer once per
event-loop turn, holds replies until their writes are fsynced under ``appendfsync always`` (group
commit), refuses writes with ``MISCONF`` after a failed write, runs snapshots
(:mod:`.saving`) and AOF rewrites (:mod:`.rewrite`) in a forked child (:mod:`.fork`), reports the
INFO persistence fields, and on shutdown stops any child, saves if asked and closes the AOF.

Forking is reserved for the network server, where one thread owns the data (``broker.lock`` is
the no-op context). In embedded mode the callers' threads may hold any lock at fork time, so
BGSAVE and BGREWRITEAOF run synchronously there (they still reply "started").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol.replies import ReplyError
from .aof import AppendOnlyFile
from .fork import ChildProcesses
from .loader import AofLoadError, load_files
from .rewrite import AofRewriter, remove_leftovers
from .saving import SnapshotSaver
from .snapshot import SnapshotError, load_snapshot

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("postroom.aof")

RDB_MISCONF = ("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
               "Commands that may modify the data set are disabled, because this instance is configured to report "
               "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
               "the Redis logs for details about the RDB error.")


class Persistence:
    """The broker's durability: startup loading, the AOF (appending, fsync policy, write failures),
    snapshots and rewrites (through :attr:`saver`, :attr:`rewriter` and their one :attr:`children`
    slot), shutdown, and the INFO persistence fields."""

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
        self.loaded_keys = 0
        self.loaded_expired = 0
        self.children = ChildProcesses()
        self.saver = SnapshotSaver(broker, self.children, self.can_fork)
        self.saver.on_status = self._update_write_denial
        self.rewriter = AofRewriter(broker, self.children, self.directory, config["appendfilename"], self.can_fork,
                                    lambda: self.commit(force=True))

    def can_fork(self) -> bool:
        """Only the network server forks (see the module docstring)."""
        return isinstance(self.broker.lock, contextlib.nullcontext)

    # -- startup and shutdown ------------------------------------------------------------------

    def start(self) -> None:
        """Load what is on disk, then start appending. Call before accepting clients."""
        broker = self.broker
        broker.persistence_info = self.info  # type: ignore[attr-defined]
        broker.persistence = self  # type: ignore[attr-defined]
        broker.cron_hooks.append(self._cron)
        for name in ("save", "stop-writes-on-bgsave-error"):
            broker.config.on_change(name, lambda _value: self._update_write_denial())
        if not self.enabled:
            self._load_snapshot()
            broker.dirty = 0
            return
        aof = AppendOnlyFile(self.directory, broker.config["appendfilename"], broker.config["appendfsync"])
        if aof.manifest.load():
            remove_leftovers(self.directory, aof.manifest)
            self.loading = True
            try:
                self.loaded_commands = load_files(broker, aof.manifest.files(), broker.config["aof-load-truncated"])
            finally:
                self.loading = False
        aof.open()
        aof.on_write_status = self._write_status_changed
        self.aof = aof
        self.rewriter.aof = aof
        self.rewriter.base_size = aof.current_size
        broker.propagation_sinks.append(self._append)
        broker.durability = self  # type: ignore[attr-defined]
        broker.config.on_change("appendfsync", aof.set_policy)
        broker.cron_hooks.append(self._retry_failed_write)
        broker.dirty = 0

    def _load_snapshot(self) -> None:
        path = self.saver.path
        for leftover in path.parent.glob(f"temp-*-{path.name}"):
            leftover.unlink(missing_ok=True)
        if not path.exists():
            return
        started = time.monotonic()
        self.loading = True
        try:
            self.loaded_keys, self.loaded_expired = load_snapshot(self.broker, path)
        except SnapshotError as exc:
            raise AofLoadError(f"Fatal error loading the snapshot: {exc}") from exc
        finally:
            self.loading = False
        log.info("DB loaded from disk: %.3f seconds (%d keys, %d expired)", time.monotonic() - started,
                 self.loaded_keys, self.loaded_expired)

    def _cron(self) -> None:
        self.children.poll()
        self.rewriter.cron()
        self.saver.cron()

    def prepare_shutdown(self, save: bool, force: bool = False) -> None:
        """Before the server stops: kill a running child, then save if asked (Redis's prepareForShutdown).

        A failed save keeps the server running, as in Redis: SHUTDOWN answers an error; with
        FORCE it is logged and the server stops anyway.
        """
        self.children.kill()
        if not save:
            return
        try:
            self.saver.save()
        except OSError as exc:
            if force:
                log.warning("Error trying to save the DB (%s): exiting anyway (SHUTDOWN FORCE).", exc)
                return
            log.warning("Error trying to save the DB, can't exit: %s", exc)
            raise ReplyError("ERR Errors trying to SHUTDOWN. Check logs.")

    def flushed_all(self) -> None:
        """After FLUSHALL (Redis's ``flushAllDataAndResetRDB``): cancel a running BGSAVE and, with
        save points configured, save the empty dataset at once, so that a restart cannot bring
        the flushed data back. A failed save is logged (by the saver) and does not fail FLUSHALL."""
        self.saver.cancel()
        if self.broker.config["save"]:
            with contextlib.suppress(OSError):
                self.saver.save()

    def reload(self, save: bool, flush: bool) -> None:
        """DEBUG RELOAD: save the snapshot (unless NOSAVE), empty the databases (unless NOFLUSH),
        load the snapshot back; loaded keys replace existing ones (MERGE).

        Raises ``ReplyError`` with Redis's texts: a bare ``ERR`` when the save fails, "Error
        trying to load the RDB dump" when loading does.
        """
        broker = self.broker
        if save:
            try:
                self.saver.save()
            except OSError:
                raise ReplyError("ERR")
        if flush:
            for db in broker.dbs:
                if db.data:
                    db.clear()
        try:
            loaded, _expired = load_snapshot(broker, self.saver.path)
        except (OSError, SnapshotError) as exc:
            log.warning("DEBUG RELOAD could not load %s: %s", self.saver.path, exc)
            raise ReplyError("ERR Error trying to load the RDB dump, check server logs.")
        log.warning("DB reloaded by DEBUG RELOAD (%d keys)", loaded)

    def stop(self) -> None:
        """Flush, fsync and close the AOF (SHUTDOWN, SIGTERM, Embedded.close)."""
        self.children.kill()
        if self.aof is not None:
            self.commit(force=True)
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
        """Writes whose replies must wait for the end-of-turn commit, as in Redis's ``beforeSleep``.

        Under ``always`` replies wait for the fsync. Under ``everysec`` and ``no`` they wait only
        for the ``write`` (so a killed process loses nothing acknowledged), except while a slow
        background fsync makes the write wait: then, as in Redis, replies go out and up to about
        two seconds of acknowledged writes are at risk. After a failed write nothing waits:
        writes are refused with MISCONF meanwhile and the cron retries the buffer.
        """
        aof = self.aof
        if aof is None or not aof.has_pending or not aof.last_write_ok:
            return False
        return aof.fsync_policy == "always" or not aof.fsync_in_progress

    def _retry_failed_write(self) -> None:
        """Cron: retry a failed write, or write what waited for a background fsync to finish."""
        if self.aof is not None and (not self.aof.last_write_ok or self.aof.has_pending):
            self.commit()

    def hold_reply(self, send: Callable[[], None], abandon: Callable[[], None]) -> None:
        """Call ``send`` once the pending writes are written (fsynced under ``always``: group
        commit), or ``abandon`` if that failed; held replies go out in the order they were held."""
        self._waiting.append((send, abandon))

    def commit(self, force: bool = False) -> bool:
        """Write (and, under ``always``, fsync) the buffer now; ``False`` if that failed.

        ``force`` writes even while a background fsync runs (see :meth:`AppendOnlyFile.write`).
        """
        self._turn_scheduled = False
        ok = self.aof.flush(force) if self.aof is not None else True
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
        self._update_write_denial()

    def _update_write_denial(self) -> None:
        """Refuse writes while the disk refuses them (Redis's ``writeCommandsDeniedByDiskError``).

        A failed background save counts when save points are configured and
        ``stop-writes-on-bgsave-error`` is on; then a failed AOF write. Both clear on the next success.
        """
        broker = self.broker
        config = broker.config
        aof = self.aof
        denial = None
        if config["stop-writes-on-bgsave-error"] and config["save"] and not self.saver.last_bgsave_ok:
            denial = RDB_MISCONF
        elif aof is not None and not aof.last_write_ok:
            denial = f"MISCONF Errors writing to the AOF file: {aof.last_write_error}"
        if denial != broker.deny_writes:
            broker.deny_writes = denial  # type: ignore[attr-defined]
            broker.reset_dispatch_cache()

    # -- INFO ----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """INFO persistence, in Redis 7.0's order (the AOF size fields only while the AOF is on)."""
        aof = self.aof
        fields: dict[str, Any] = {"loading": int(self.loading), "async_loading": 0}
        fields.update(self.saver.info())
        fields["rdb_last_load_keys_expired"] = self.loaded_expired
        fields["rdb_last_load_keys_loaded"] = self.loaded_keys
        fields["aof_enabled"] = int(aof is not None)
        fields.update(self.rewriter.info())
        fields["aof_last_write_status"] = "ok" if aof is None or aof.last_write_ok else "err"
        if aof is not None:
            fields.update({
                "aof_current_size": aof.current_size,
                "aof_base_size": self.rewriter.base_size,
                "aof_pending_rewrite": int(self.rewriter.scheduled),
                "aof_buffer_length": aof._buffered,
                "aof_pending_bio_fsync": 0,
                "aof_delayed_fsync": aof.delayed_fsync,
                "aof_fsync_policy": aof.fsync_policy,
            })
        fields["aof_loaded_commands"] = self.loaded_commands
        fields["latest_fork_usec"] = self.children.last_fork_usec  # INFO shows these two under Stats
        fields["total_forks"] = self.children.total_forks
        return fields

    def flush_and_sync(self) -> bool:
        """Write and fsync everything appended so far (WAITAOF); ``False`` if the disk refused."""
        aof = self.aof
        if aof is None:
            return True
        if not self.commit(force=True):
            return False
        try:
            aof.sync()
        except OSError:
            return False
        return True


__all__ = ["Persistence"]
