"""SCAN-family cursors: stateless integer cursors with Redis's guarantee, at O(log n + COUNT) a step.

Guarantee (as Redis documents for SCAN, SSCAN, HSCAN, ZSCAN): a full iteration (from cursor 0
until the server answers cursor 0) returns every element that was present for the whole
iteration at least once, whatever is added or removed between steps. Elements added or removed
during the iteration may or may not be returned. The cursor is a plain integer that the server
does not remember: any number of iterations can run at once and abandoning one costs nothing.

How: every element has a fixed position, the bit-reversed 64-bit hash of its bytes (like
Redis's reverse-binary cursor over hash buckets). The hash is Python's ``hash(bytes)``: stable
for the life of the process, which is as long as a cursor is meaningful. Because the position of
an element depends on nothing but the element, inserting or deleting others never moves it. A
cursor is the position at which the next step starts; each step returns the next COUNT elements
in position order (plus any sharing the last one's position, so a cursor never splits them) and
the position of the first element it did not return. An element present throughout lies between
two consecutive cursors of the iteration, so the step that covers that interval returns it.

Cost: containers of at most :data:`SMALL_CONTAINER` elements (Redis's listpack-sized ones) are
returned whole in one step, cursor 0, with no index at all. Larger ones get a sorted index of
(position, element), built on their first SCAN in O(n log n) and from then on kept current by the
container's :meth:`ScanOrder.added` / :meth:`ScanOrder.removed` calls in O(log n) each; before
the first SCAN those calls cost one attribute test. A step then costs O(log n + COUNT).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from itertools import islice

from sortedcontainers import SortedList

from ..commands.args import SYNTAX_ERROR, parse_int
from ..glob import glob_match
from ..protocol.replies import ReplyError

#: Containers this small are returned whole in one SCAN step (Redis: listpack/intset encodings).
SMALL_CONTAINER = 128

INVALID_CURSOR = ReplyError("ERR invalid cursor")

_MASK64 = (1 << 64) - 1
_REVERSED_BYTE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def position(element: bytes) -> int:
    """The element's place in SCAN order: its 64-bit hash with the bit order reversed."""
    # Little-endian bytes read back big-endian reverse the byte order; the table reverses each byte.
    return int.from_bytes((hash(element) & _MASK64).to_bytes(8, "little").translate(_REVERSED_BYTE), "big")


class ScanOrder:
    """The SCAN order of one container (a database's keys, a hash's fields, a set's or a sorted
    set's members); see the module docstring for the guarantee and its cost."""

    __slots__ = ("index",)

    def __init__(self) -> None:
        #: ``(position, element)`` pairs in SCAN order; ``None`` until a SCAN needs it.
        self.index: SortedList | None = None

    def added(self, key: bytes) -> None:
        """The container inserted ``key`` (a new element)."""
        index = self.index
        if index is not None:
            index.add((position(key), key))

    def removed(self, key: bytes) -> None:
        """The container deleted ``key``."""
        index = self.index
        if index is not None:
            index.discard((position(key), key))

    def cleared(self) -> None:
        """The container dropped every element."""
        self.index = None

    def scan(self, keys: Collection[bytes], cursor: int, count: int) -> tuple[int, list[bytes]]:
        """One step from ``cursor`` over the container's current ``keys``: (next cursor or 0, elements)."""
        if len(keys) <= SMALL_CONTAINER:
            self.index = None  # stop maintaining an index the container no longer needs
            return 0, list(keys)
        index = self._built(keys)
        start = index.bisect_left((cursor,))
        stop = start + count
        total = len(index)
        if stop >= total:
            return 0, [key for _, key in index.islice(start, total)]
        last = index[stop - 1][0]
        # Never split elements sharing a position: the next cursor would skip or repeat them.
        while stop < total and index[stop][0] == last:
            stop += 1
        batch = [key for _, key in index.islice(start, stop)]
        return (index[stop][0] if stop < total else 0), batch

    def nth(self, keys: Collection[bytes], n: int) -> bytes:
        """The element at rank ``n`` (0 <= n < len(keys)) in SCAN order: a uniform random pick
        (RANDOMKEY) costs O(log n) once the index exists, instead of walking a dict."""
        if len(keys) <= SMALL_CONTAINER:
            return next(islice(keys, n, None))
        return self._built(keys)[n][1]

    def _built(self, keys: Collection[bytes]) -> SortedList:
        """The index, built from ``keys`` on first use; ``added``/``removed`` keep it current after."""
        index = self.index
        if index is None:
            index = self.index = SortedList((position(key), key) for key in keys)
        return index


@dataclass(slots=True)
class ScanOptions:
    """A SCAN-family request: cursor, MATCH pattern, COUNT, TYPE (SCAN only)."""

    cursor: int
    pattern: bytes | None = None  # None when absent or "*" (matches everything)
    count: int = 10
    type_name: bytes | None = None

    def matching(self, elements: Iterable[bytes]) -> list[bytes]:
        """The elements that pass MATCH, in order."""
        pattern = self.pattern
        if pattern is None:
            return list(elements)
        return [element for element in elements if glob_match(pattern, element)]


def parse_cursor(arg: bytes) -> int:
    """A cursor as Redis reads it (``strtoul`` base 10): ``-1`` wraps, ``+5`` and ``007`` pass, ``""`` is 0."""
    if not arg:
        return 0
    if arg[0] in b" \t\n\r\x0b\x0c":
        raise INVALID_CURSOR
    negative = arg[0] == 0x2D  # '-'
    digits = arg[1:] if arg[0] in b"+-" else arg
    if not digits.isdigit():
        raise INVALID_CURSOR
    value = int(digits)
    if value > _MASK64:
        raise INVALID_CURSOR
    return (-value) & _MASK64 if negative else value


def parse_scan_options(argv: list[bytes], start: int, allow_type: bool) -> ScanOptions:
    """Parse ``cursor [MATCH pattern] [COUNT count] [TYPE type]`` from ``argv[start]`` on, with Redis's errors."""
    options = ScanOptions(parse_cursor(argv[start]))
    i = start + 1
    n = len(argv)
    while i < n:
        if n - i < 2:
            raise SYNTAX_ERROR
        option = argv[i].lower()
        if option == b"count":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise SYNTAX_ERROR
            options.count = count
        elif option == b"match":
            pattern = argv[i + 1]
            options.pattern = None if pattern == b"*" else pattern
        elif option == b"type" and allow_type:
            options.type_name = argv[i + 1]
        else:
            raise SYNTAX_ERROR
        i += 2
    return options
