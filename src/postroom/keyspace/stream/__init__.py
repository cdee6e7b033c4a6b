"""Streams (``t_stream.c``): packed entry nodes, an ID index, consumer groups."""

from .groups import INVALID_ENTRIES_READ, Consumer, Group, Nack, Pending
from .idmp import Producers, auto_iid
from .ids import MAX_ID, SEQ_MASK, U64_MAX, format_id, make_id, next_id
from .node import Node
from .stream import Entry, Stream

__all__ = [
    "INVALID_ENTRIES_READ", "MAX_ID", "SEQ_MASK", "U64_MAX", "Consumer", "Entry", "Group", "Nack", "Node",
    "Pending", "Producers", "Stream", "auto_iid", "format_id", "make_id", "next_id",
]
