"""The append-only file: every write, once, in deterministic form, as RESP commands.

Layout (Redis 7's multi-part AOF): a directory ``<dir>/<appenddirname>/`` holding a manifest
(``<appendfilename>.manifest``) that lists, in order, an optional base file and the incremental
files. Only the last incremental file is ever appended to. The manifest is replaced atomically
(write a temporary file, fsync, rename, fsync the directory), so a crash at any moment leaves either
the old or the new manifest, both naming complete files.

Writing. The broker hands every top-level command's writes to :meth:`AppendOnlyFile.append`
(deterministic form: concrete stream IDs, absolute expiry times, scripts' effects, whole MULTI/EXEC
units). They collect in a buffer that is written once per event-loop turn, like Redis's
``beforeSleep`` flush:

* ``appendfsync always``: write and fsync before any reply to those commands is sent. Replies of
  every client served in the same loop turn wait for the same fsync (group commit).
* ``appendfsync everysec``: write each turn; a background thread fsyncs once a second, so a
  crash loses at most about two seconds of writes.
* ``appendfsync no``: write each turn and let the OS flush.

A failed write or fsync under ``always`` is never acknowledged: the broker refuses writes with
``MISCONF`` (and INFO says why) until a write succeeds again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("postroom.aof")

#: Longest a write waits for a running background fsync under ``everysec`` (Redis: 2 seconds).
POSTPONE_LIMIT = 2.0


@dataclass(slots=True)
class ManifestEntry:
    name: str
    seq: int
    kind: str  # "b" base, "i" incremental


class Manifest:
    """The ordered list of AOF files, persisted with an atomic rename."""

    def __init__(self, directory: Path, basename: str) -> None:
        self.directory = directory
        self.basename = basename
        self.path = directory / f"{basename}.manifest"
        self.entries: list[ManifestEntry] = []

    def load(self) -> bool:
        """Read the manifest; ``False`` if there is none yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or line.startswith("#"):
                continue
            fields = dict(zip(words[::2], words[1::2], strict=False))
            if "file" not in fields or "seq" not in fields or "type" not in fields:
                raise ValueError(f"Invalid AOF manifest file format: {self.path} line {number}")
            entries.append(ManifestEntry(fields["file"], int(fields["seq"]), fields["type"]))
        self.entries = entries
        return True

    def save(self) -> None:
        text = "".join(f"file {e.name} seq {e.seq} type {e.kind}\n" for e in self.entries)
        tmp = self.path.with_suffix(".manifest.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        fsync_directory(self.directory)

    @property
    def base(self) -> ManifestEntry | None:
        return next((e for e in self.entries if e.kind == "b"), None)

    @property
    def increments(self) -> list[ManifestEntry]:
        return [e for e in self.entries if e.kind == "i"]

    def files(self) -> list[Path]:
        """Files to load, base first."""
        ordered = ([self.base] if self.base else []) + self.increments
        return [self.directory / e.name for e in ordered]

    def next_base(self, suffix: str) -> ManifestEntry:
        """The entry a rewrite's new base file gets (not yet listed: the rewrite installs it)."""
        seq = self.base.seq + 1 if self.base else 1
        return ManifestEntry(f"{self.basename}.{seq}.base{suffix}", seq, "b")

    def next_increment(self) -> ManifestEntry:
        seq = max((e.seq for e in self.increments), default=0) + 1
        entry = ManifestEntry(f"{self.basename}.{seq}.incr.aof", seq, "i")
        self.entries.append(entry)
        return entry


def fsync_directory(directory: Path) -> None:
    """Make a rename or file creation in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_commands(db_index: int, argvs: list[list[bytes]], selected: int) -> tuple[bytes, int]:
    """RESP for ``argvs`` run in ``db_index``, preceded by SELECT when the file's db differs."""
    parts: list[bytes] = []
    if db_index != selected:
        digits = b"%d" % db_index
        parts.append(b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(digits), digits))
        selected = db_index
    for argv in argvs:
        parts.append(b"*%d\r\n" % len(argv))
        for arg in argv:
            parts.append(b"$%d\r\n" % len(arg))
            parts.append(arg)
            parts.append(b"\r\n")
        if argv[0].upper() == b"SELECT":  # units propagated across databases switch inside
            selected = int(argv[1])
    return b"".join(parts), selected


class AppendOnlyFile:
    """Appends propagated writes to the current incremental file under an fsync policy."""

    def __init__(self, directory: Path, basename: str, fsync: str) -> None:
        self.directory = directory
        self.manifest = Manifest(directory, basename)
        self.fsync_policy = fsync
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._selected = -1  # db the file's last SELECT chose; -1 forces one at the start
        self._handle: int | None = None
        self._file_size = 0  # bytes in the file being appended to: where a failed write is cut back to
        self.current_size = 0
        self.base_size = 0
        self.last_write_ok = True
        self.last_write_error = ""
        self.last_fsync_ms = 0
        self.delayed_fsync = 0
        self._sync_lock = threading.Lock()
        self._written_seq = 0  # writes done so far; see _fsync
        self._synced_seq = 0  # the last write the newest finished fsync covers
        self._fsync_started = 0.0  # monotonic start of the running background fsync, 0 when idle
        self._postponed_since = 0.0  # first postponed write while that fsync runs
        self._stop = threading.Event()
        self._fsync_thread: threading.Thread | None = None
        self.on_write_status: Callable[[bool], None] = lambda ok: None

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open (creating if needed) the incremental file to append to."""
        self.directory.mkdir(parents=True, exist_ok=True)
        created = not self.manifest.load() or not self.manifest.increments
        if created:
            self.manifest.next_increment()
        path = self.directory / self.manifest.increments[-1].name
        self._handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._file_size = os.fstat(self._handle).st_size
        if created:
            self.manifest.save()  # after the file exists: the manifest never names a missing file
        self.current_size = sum(p.stat().st_size for p in self.manifest.files() if p.exists())
        base = self.manifest.base
        self.base_size = (self.directory / base.name).stat().st_size if base else 0
        self.set_policy(self.fsync_policy)

    def set_policy(self, policy: str) -> None:
        self.fsync_policy = policy
        if policy == "everysec" and self._fsync_thread is None:
            self._stop.clear()
            self._fsync_thread = threading.Thread(target=self._fsync_every_second, name="postroom-aof-fsync",
                                                  daemon=True)
            self._fsync_thread.start()

    def close(self) -> None:
        self.flush(force=True)
        self._stop.set()
        if self._fsync_thread is not None:
            self._fsync_thread.join(5)
            self._fsync_thread = None
        if self._handle is not None:
            self._fsync()
            os.close(self._handle)
            self._handle = None

    def start_new_increment(self) -> ManifestEntry:
        """Append to a new incremental file from now on (an AOF rewrite starts).

        The buffer must be flushed first. The manifest lists the new file (after the old ones)
        before anything is written to it, so a crash from here on loads old base + old
        increments + new increment: everything.
        """
        assert not self._buffer, "flush before switching files"
        entry = self.manifest.next_increment()
        handle = os.open(self.directory / entry.name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.manifest.save()  # after the file exists: the manifest never names a missing file
        with self._sync_lock:
            old, self._handle = self._handle, handle
            self._file_size = 0
            if old is not None:
                os.fsync(old)
                os.close(old)
            self._synced_seq = self._written_seq
        self._selected = -1  # each file starts with its own SELECT: it may be loaded after a base
        return entry

    def install_base(self, base: ManifestEntry, first_kept_seq: int) -> list[str]:
        """Make ``base`` the base, drop increments older than ``first_kept_seq``; returns dropped names."""
        kept = [e for e in self.manifest.increments if e.seq >= first_kept_seq]
        dropped = [e.name for e in self.manifest.entries if e not in kept]
        self.manifest.entries = [base, *kept]
        self.manifest.save()
        self.current_size = sum(p.stat().st_size for p in self.manifest.files() if p.exists())
        return dropped

    # -- writing -------------------------------------------------------------------------------

    def append(self, db_index: int, argvs: list[list[bytes]]) -> None:
        """Queue one command's writes (a propagation sink); written by :meth:`flush`."""
        data, self._selected = encode_commands(db_index, argvs, self._selected)
        self._buffer.append(data)
        self._buffered += len(data)

    @property
    def has_pending(self) -> bool:
        return bool(self._buffer)

    @property
    def fsync_in_progress(self) -> bool:
        """A background (everysec) fsync is running: writes are being postponed."""
        return bool(self._fsync_started)

    def flush(self, force: bool = False) -> bool:
        """Write what is buffered, and fsync it under ``always``; ``False`` if that failed."""
        if not self.write(force):
            return False
        if self.fsync_policy == "always":
            if self.unsynced:
                try:
                    self._fsync()
                except OSError as exc:
                    self.fail(exc)
                    return False
            self.recovered()
        return True

    def write(self, force: bool = False) -> bool:
        """Write what is buffered without fsyncing it; ``False`` if that failed.

        Under ``everysec``, while the background fsync runs, the write is postponed (up to
        ``POSTPONE_LIMIT`` seconds, unless ``force``): on a slow disk a ``write`` to a file being
        fsynced blocks until the fsync ends, which would stall the event loop (Redis does the same).
        """
        if not self._buffer or self._handle is None:
            return True  # a failed write keeps its buffer: an empty one means nothing failed here
        if self.fsync_policy == "everysec" and not force and self.fsync_in_progress:
            now = time.monotonic()
            if not self._postponed_since:
                self._postponed_since = now
            if now - self._postponed_since < POSTPONE_LIMIT:
                return True
            self.delayed_fsync += 1
            log.warning("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without "
                        "waiting for fsync to complete, this may slow down the server.")
        self._postponed_since = 0.0
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        written = 0
        try:
            view = memoryview(data)
            while written < len(data):
                written += os.write(self._handle, view[written:])
        except OSError as exc:
            if written:
                self._take_back(data, written)
            self.fail(exc)
            return False
        self._file_size += len(data)
        self._written_seq += 1
        self._buffer.clear()
        self._buffered = 0
        self.current_size += len(data)
        if self.fsync_policy != "always":
            self.recovered()  # under always only a finished fsync clears a failure
        return True

    def _take_back(self, data: bytes, written: int) -> None:
        """A write stopped after ``written`` bytes (a full disk): cut the file back to before it, as
        Redis does, so that the retry writes the buffer once. If the file cannot be cut, keep only
        the unwritten rest in the buffer: the retry then completes the command on disk."""
        assert self._handle is not None
        try:
            os.ftruncate(self._handle, self._file_size)
            log.warning("Short write to the AOF (%d of %d bytes): the partial data was removed", written, len(data))
        except OSError as exc:
            log.warning("Short write to the AOF and it could not be cut back (%s): the rest follows later", exc)
            self._buffer[:] = [data[written:]]
            self._buffered = len(data) - written
            self._file_size += written
            self.current_size += written

    def recovered(self) -> None:
        """A write (or, under ``always``, an fsync) succeeded: clear a recorded failure."""
        if not self.last_write_ok:
            self.last_write_ok = True
            self.last_write_error = ""
            log.warning("AOF write error looks solved, the broker accepts writes again.")
            self.on_write_status(True)

    @property
    def unsynced(self) -> bool:
        """Something was written that no finished fsync covers yet."""
        return self._synced_seq < self._written_seq

    def fail(self, exc: OSError) -> None:
        """Record a failed write or fsync: writes are refused with MISCONF until one succeeds."""
        self.last_write_error = exc.strerror or str(exc)
        if self.last_write_ok:
            log.warning("Error writing to the AOF file: %s", self.last_write_error)
        self.last_write_ok = False
        self.on_write_status(False)

    def sync(self) -> None:
        """fsync what was written, whatever the policy (WAITAOF)."""
        self._fsync()

    def _fsync(self) -> None:
        """fsync the file; safe from any thread (the loop, the everysec thread, a group-commit worker).

        Writes are counted rather than flagged: a write that lands while an fsync runs in another
        thread stays "unsynced" after it, because that fsync may have started before the write.
        """
        with self._sync_lock:
            if self._handle is not None:
                covered = self._written_seq
                os.fsync(self._handle)
                self._synced_seq = max(self._synced_seq, covered)
                self.last_fsync_ms = int(time.time() * 1000)

    def _fsync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            if self.fsync_policy != "everysec":
                continue
            if self.unsynced:
                self._fsync_started = time.monotonic()
                try:
                    self._fsync()
                except OSError as exc:
                    log.warning("Error fsyncing the AOF file: %s", exc)
                    self.delayed_fsync += 1
                finally:
                    self._fsync_started = 0.0
