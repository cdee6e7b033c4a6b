"""Stream entry IDs as single integers: ``ms << 64 | seq``.

One Python int per ID compares, sorts, bisects and hashes in C, which is what the hot paths
(XADD, range seeks, PEL lookups) need; the ``<ms>-<seq>`` text form only exists at the edges.
"""

from __future__ import annotations

SEQ_MASK = (1 << 64) - 1
U64_MAX = SEQ_MASK
MAX_ID = (1 << 128) - 1


def make_id(ms: int, seq: int) -> int:
    return ms << 64 | seq


def format_id(stream_id: int) -> bytes:
    """The ``<ms>-<seq>`` form Redis replies with."""
    return b"%d-%d" % (stream_id >> 64, stream_id & SEQ_MASK)


def next_id(last: int, now_ms: int) -> int:
    """The ID ``*`` generates: the current time, or the last ID plus one in the same millisecond."""
    if now_ms > last >> 64:
        return now_ms << 64
    return last + 1  # seq overflow carries into ms, as streamIncrID does


__all__ = ["MAX_ID", "SEQ_MASK", "U64_MAX", "format_id", "make_id", "next_id"]
