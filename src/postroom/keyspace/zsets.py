"""The sorted set type: a dict member -> score plus a SortedList of ``(score, member)``.

The dict answers ZSCORE and membership in O(1); the SortedList (``sortedcontainers``, a B-tree
like list of sorted sublists with a positional index) keeps Redis's order, score then member
bytes, and gives O(log n) insert, remove, rank (``bisect``) and access by rank, which is what
Redis's skiplist gives. Both structures share the member ``bytes`` and score ``float`` objects,
so a member costs one tuple and one dict slot beyond its own bytes.

Range lookups are bisections with tuple keys: ``(score,)`` sorts before every member of that
score and ``(score, ABOVE)`` after all of them, so inclusive and exclusive score bounds are both
one ``bisect_left``.

Redis 7.0 encodes small sets as a listpack and converts to a skiplist once an insertion makes the
set longer than ``zset-max-listpack-entries`` or adds a member longer than
``zset-max-listpack-value``; it never converts back. Only OBJECT ENCODING and ZSCAN's score text
can observe that, so the value only remembers whether the conversion has happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedList

from .database import register_type
from .scan import ScanOrder


class _Above:
    """Sorts after every ``bytes``: ``(score, ABOVE)`` is past all members with that score."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return True


ABOVE = _Above()


class ZSet:
    """A Redis sorted set. Never empty while stored: commands delete the key when it empties."""

    __slots__ = ("scores", "order", "scan_order", "skiplist")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order = SortedList()
        self.scan_order = ScanOrder()
        self.skiplist = False  # Redis's encoding: False while it would still be a listpack

    def __len__(self) -> int:
        return len(self.scores)

    def copy(self) -> ZSet:
        """An independent set with the same members and encoding (COPY duplicates as zsetDup)."""
        clone = ZSet()
        clone.scores = self.scores.copy()
        clone.order = SortedList(self.order)
        clone.skiplist = self.skiplist
        return clone

    def object_encoding(self, config: Any) -> str:
        """OBJECT ENCODING: decided when members were added, as in Redis, not from today's config."""
        return "skiplist" if self.skiplist else "listpack"

    # -- writes --------------------------------------------------------------------------------

    def insert(self, member: bytes, score: float) -> None:
        """Add a member that is not in the set."""
        if score == 0 and not self.skiplist:
            score = 0.0  # a listpack stores scores as text, and Redis 7.0 writes -0.0 as "0"
        self.scores[member] = score
        self.order.add((score, member))
        self.scan_order.added(member)

    def update(self, member: bytes, old: float, new: float) -> None:
        """Move an existing member from score ``old`` to ``new``."""
        if new == 0 and not self.skiplist:
            new = 0.0
        order = self.order
        order.remove((old, member))
        order.add((new, member))
        self.scores[member] = new

    def remove(self, member: bytes) -> bool:
        """Delete ``member``; ``False`` if it was not in the set."""
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.order.remove((score, member))
        self.scan_order.removed(member)
        return True

    def pop(self, index: int) -> tuple[float, bytes]:
        """Remove and return the ``(score, member)`` at rank ``index`` (0 lowest, -1 highest)."""
        entry = self.order.pop(index)
        del self.scores[entry[1]]
        self.scan_order.removed(entry[1])
        return entry

    def delete_ranks(self, start: int, stop: int) -> int:
        """Remove ranks ``start`` to ``stop - 1``; returns how many."""
        order = self.order
        entries = order[start:stop]
        del order[start:stop]
        scores = self.scores
        removed = self.scan_order.removed
        for _, member in entries:
            del scores[member]
            removed(member)
        return len(entries)

    def before_insert(self, member: bytes, config: Any) -> None:
        """Before inserting ``member`` into a listpack: convert to skiplist when Redis 7.0's zsetAdd would."""
        if len(self.scores) >= config["zset-max-listpack-entries"] or len(member) > config["zset-max-listpack-value"]:
            self.skiplist = True

    # -- lookups -------------------------------------------------------------------------------

    def rank(self, member: bytes) -> int | None:
        """0-based rank by (score, member), or ``None`` if absent."""
        score = self.scores.get(member)
        if score is None:
            return None
        return self.order.bisect_left((score, member))

    def score_span(self, low: float, low_ex: bool, high: float, high_ex: bool) -> tuple[int, int]:
        """Ranks ``[start, stop)`` of the members whose score is within the bounds."""
        bisect = self.order.bisect_left
        start = bisect((low, ABOVE) if low_ex else (low,))
        stop = bisect((high,) if high_ex else (high, ABOVE))
        return start, max(start, stop)

    def uniform_score(self) -> float | None:
        """The single score of every member, or ``None`` if scores differ (lex ranges need one)."""
        order = self.order
        first = order[0][0]
        return first if order[-1][0] == first else None

    @classmethod
    def build(cls, items: Iterable[tuple[bytes, float]], config: Any, one_by_one: bool) -> ZSet:
        """A new set from distinct ``(member, score)`` pairs, encoded as Redis would encode it.

        ZUNIONSTORE and friends build a skiplist and make it a listpack if it fits; ZRANGESTORE
        (``one_by_one``) adds to a listpack that converts once it outgrows the limits. Either
        way the members stored while it is a listpack lose the sign of a -0 score.
        """
        max_entries = config["zset-max-listpack-entries"]
        max_value = config["zset-max-listpack-value"]
        zset = cls()
        if one_by_one:
            scores: dict[bytes, float] = {}
            skiplist = False
            for member, score in items:
                if not skiplist and (len(scores) >= max_entries or len(member) > max_value):
                    skiplist = True
                scores[member] = score if skiplist or score != 0 else 0.0
        else:
            scores = dict(items)
            skiplist = len(scores) > max_entries or max(map(len, scores), default=0) > max_value
            if not skiplist:
                for member, score in scores.items():
                    if score == 0:
                        scores[member] = 0.0
        zset.scores = scores
        zset.skiplist = skiplist
        zset.order = SortedList((score, member) for member, score in scores.items())
        return zset


register_type(ZSet, "zset")


class _LexEnd:
    """``-`` and ``+`` in a lex range: below and above every member."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


LEX_MIN = _LexEnd("-")
LEX_MAX = _LexEnd("+")


@dataclass(slots=True)
class LexRange:
    """A ZRANGEBYLEX range: each end is ``bytes`` (``[`` inclusive, ``(`` exclusive) or LEX_MIN/LEX_MAX."""

    low: bytes | _LexEnd
    low_ex: bool
    high: bytes | _LexEnd
    high_ex: bool

    def empty(self) -> bool:
        """Redis's zslIsInLexRange first test: min above max, or equal with an exclusive end."""
        low, high = self.low, self.high
        if low is high:
            order = 0
        elif low is LEX_MIN or high is LEX_MAX:
            order = -1
        elif low is LEX_MAX or high is LEX_MIN:
            order = 1
        else:
            order = (low > high) - (low < high)  # type: ignore[operator]
        return order > 0 or (order == 0 and (self.low_ex or self.high_ex))

    def above_low(self, member: bytes) -> bool:
        low = self.low
        if low is LEX_MIN:
            return True
        if low is LEX_MAX:
            return False
        return member > low if self.low_ex else member >= low  # type: ignore[operator]

    def below_high(self, member: bytes) -> bool:
        high = self.high
        if high is LEX_MAX:
            return True
        if high is LEX_MIN:
            return False
        return member < high if self.high_ex else member <= high  # type: ignore[operator]


def lex_span(zset: ZSet, spec: LexRange, reverse: bool) -> tuple[int, int]:
    """Ranks ``[start, stop)`` of the members within ``spec``, found as Redis finds them.

    Lex ranges assume one score for all members; then the span is two bisections. When scores
    differ Redis leaves the result undefined; we walk the order as its listpack encoding does
    (first match from the head, or from the tail when ``reverse``), which is what small sets give.
    """
    order = zset.order
    if spec.empty() or not spec.above_low(order[-1][1]) or not spec.below_high(order[0][1]):
        return 0, 0
    score = zset.uniform_score()
    if score is not None:
        low, high = spec.low, spec.high
        if low is LEX_MIN:
            start = 0
        else:
            start = order.bisect_right((score, low)) if spec.low_ex else order.bisect_left((score, low))
        if high is LEX_MAX:
            stop = len(order)
        else:
            stop = order.bisect_left((score, high)) if spec.high_ex else order.bisect_right((score, high))
        return start, max(start, stop)
    members = [member for _, member in order]
    if reverse:
        stop = len(members)
        while stop and not spec.below_high(members[stop - 1]):
            stop -= 1
        start = stop
        while start and spec.above_low(members[start - 1]):
            start -= 1
        return start, stop
    start = 0
    while start < len(members) and not spec.above_low(members[start]):
        start += 1
    stop = start
    while stop < len(members) and spec.below_high(members[stop]):
        stop += 1
    return start, stop
