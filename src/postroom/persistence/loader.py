"""Replaying AOF files into the broker at startup, with Redis's handling of damaged files.

A base file written by a rewrite is a snapshot (:mod:`.snapshot`, recognised by its header) and
loads as one. Any other file is a sequence of RESP multibulk commands written by :mod:`.aof`.
Three outcomes:

* it parses to the end: every command is applied;
* its last command is cut short (a crash during a write): with ``aof-load-truncated yes`` the
  broker truncates the file to the last complete command, warns, and starts; otherwise it stops;
* something that is not a command appears before the end (corruption): startup stops with a
  message naming the file and the byte offset, and ``postroom check-aof --fix`` can repair it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import hiredis

from .snapshot import SnapshotError, is_snapshot, load_snapshot

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("postroom.aof")

_CHUNK = 1 << 20


class AofLoadError(Exception):
    """The AOF cannot be loaded as it is; the message says which file, where, and what to do."""


class AofFormatError(AofLoadError):
    """Corruption inside an AOF file; ``offset`` is where the bad command starts."""

    def __init__(self, path: Path, offset: int, detail: str) -> None:
        self.path = path
        self.offset = offset
        super().__init__(
            f"Bad file format reading the append only file {path} at offset {offset}: {detail}. "
            f"Make a backup of the file, then run 'postroom check-aof --fix {path}'"
        )


class AofTruncated(AofLoadError):
    """The file ends in the middle of a command; ``offset`` is the end of the last complete one."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.offset = offset
        super().__init__(f"Unexpected end of file {path}: the last command is incomplete (valid up to {offset})")


def encoded_length(argv: list[bytes]) -> int:
    """Bytes of the canonical RESP encoding of ``argv`` (how the AOF writer encodes it)."""
    total = len(b"*%d\r\n" % len(argv))
    for arg in argv:
        total += len(b"$%d\r\n" % len(arg)) + len(arg) + 2
    return total


def read_commands(path: Path) -> Iterator[tuple[list[bytes], int]]:
    """Yield ``(argv, end_offset)`` for each command of ``path``.

    Raises :class:`AofTruncated` at an incomplete tail and :class:`AofFormatError` on corruption.
    """
    reader = hiredis.Reader()
    offset = 0
    size = path.stat().st_size
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if chunk:
                reader.feed(chunk)
            while True:
                try:
                    item = reader.gets()
                except hiredis.ProtocolError as exc:
                    raise AofFormatError(path, offset, str(exc))
                if item is False:
                    break
                if type(item) is not list or not item or any(type(a) is not bytes for a in item):
                    raise AofFormatError(path, offset, "not a command")
                offset += encoded_length(item)
                yield item, offset
            if not chunk:
                break
    if offset < size:
        raise AofTruncated(path, offset)


def load_files(broker: Broker, files: list[Path], truncated_ok: bool) -> int:
    """Apply every command of ``files`` in order; returns how many commands were applied."""
    client = broker.connect("aof", addr="aof-loader")
    applied = 0
    started = time.monotonic()
    last_report = started
    try:
        for index, path in enumerate(files):
            if not path.exists():
                raise FileNotFoundError(f"The AOF file {path} listed in the manifest does not exist")
            if is_snapshot(path):  # a rewritten base (see rewrite.py)
                try:
                    keys, _ = load_snapshot(broker, path)
                except SnapshotError as exc:
                    raise AofLoadError(str(exc)) from exc
                applied += keys
                continue
            size = path.stat().st_size
            multi_start: int | None = None  # offset of an open MULTI: a crash may cut a unit short
            try:
                for argv, end in read_commands(path):
                    name = argv[0].upper()
                    if name == b"MULTI":
                        multi_start = end - encoded_length(argv)
                    elif name in (b"EXEC", b"DISCARD"):
                        multi_start = None
                    broker.refresh_clock()
                    broker.execute(client, argv)
                    client.out.clear()
                    applied += 1
                    now = time.monotonic()
                    if now - last_report > 1.0:
                        last_report = now
                        log.info("Loading %s: %.0f%% (%d commands)", path.name, 100 * end / max(size, 1), applied)
            except AofTruncated as exc:
                if index != len(files) - 1 or not truncated_ok:
                    raise
                log.warning("!!! Warning: short read while loading the AOF file %s !!! The last command was "
                            "incomplete; truncating the file because aof-load-truncated is enabled", path)
                _truncate(path, exc.offset if multi_start is None else multi_start)
                multi_start = None
            if multi_start is not None:
                if index != len(files) - 1 or not truncated_ok:
                    raise AofTruncated(path, multi_start)
                log.warning("The AOF file %s ends inside a MULTI block: reverting the incomplete transaction", path)
                _truncate(path, multi_start)
    finally:
        broker.disconnect(client)
    log.info("DB loaded from append only file: %.3f seconds (%d commands)", time.monotonic() - started, applied)
    return applied


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())
