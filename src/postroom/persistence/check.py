"""``postroom check-aof [--fix] FILE``: inspect an AOF (or a whole manifest) and repair its tail.

Reports, per file, how many commands parse and where the first problem is. With ``--fix`` a
file whose tail is damaged (cut short, or garbage after the last complete command, or an
unfinished MULTI) is truncated to its last complete command, as ``redis-check-aof --fix`` does.
A copy of the original is kept next to it as ``FILE.bak``. A snapshot base (written by a
rewrite) is checked against its checksum; it cannot be repaired.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from .aof import Manifest
from .loader import AofFormatError, AofTruncated, encoded_length, read_commands
from .snapshot import SnapshotError, is_snapshot, read_records


def check_snapshot(path: Path) -> str:
    """The problem of a snapshot base file, ``""`` if its header, checksum and records are sound."""
    try:
        for _record in read_records(path):
            pass
    except SnapshotError as exc:
        return str(exc)
    return ""


def check_file(path: Path) -> tuple[int, int | None, str]:
    """``(commands, bad_offset or None, problem)`` for one AOF file."""
    commands = 0
    multi_start: int | None = None
    try:
        for argv, end in read_commands(path):
            commands += 1
            name = argv[0].upper()
            if name == b"MULTI":
                multi_start = end - encoded_length(argv)
            elif name in (b"EXEC", b"DISCARD"):
                multi_start = None
    except AofTruncated as exc:
        return commands, multi_start if multi_start is not None else exc.offset, "truncated command at the end"
    except AofFormatError as exc:
        return commands, multi_start if multi_start is not None else exc.offset, str(exc)
    if multi_start is not None:
        return commands, multi_start, "unfinished MULTI block at the end"
    return commands, None, ""


def _files(target: Path) -> list[Path]:
    if target.name.endswith(".manifest"):
        manifest = Manifest(target.parent, target.name[: -len(".manifest")])
        manifest.load()
        return manifest.files()
    return [target]


def check_aof_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="postroom check-aof", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="an AOF file or its .manifest")
    parser.add_argument("--fix", action="store_true", help="truncate a damaged tail to the last good command")
    args = parser.parse_args(argv)
    status = 0
    for path in _files(args.file):
        if is_snapshot(path):  # a rewritten base: checksummed, so it is either sound or not repairable
            problem = check_snapshot(path)
            print(f"{path}: {problem or 'OK (snapshot base)'}")
            status = status or int(bool(problem))
            continue
        commands, bad, problem = check_file(path)
        if bad is None:
            print(f"{path}: OK ({commands} commands, {path.stat().st_size} bytes)")
            continue
        size = path.stat().st_size
        print(f"{path}: {problem}; valid up to offset {bad} of {size} ({size - bad} bytes would be discarded)")
        if args.fix:
            shutil.copy2(path, path.with_name(path.name + ".bak"))
            with open(path, "r+b") as handle:
                handle.truncate(bad)
            print(f"{path}: fixed (original kept as {path.name}.bak)")
        else:
            status = 1
    return status
