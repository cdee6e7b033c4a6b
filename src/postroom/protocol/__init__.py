"""The sans-IO protocol layer: RESP requests in, reply values out. No sockets, no event loop."""

from .encoder import ENCODERS, RESP2, RESP3, Encoder, format_double
from .reader import ProtocolError, QueryBufferLimit, RequestReader, split_inline_args
from .replies import NULL_ARRAY, OK, PONG, QUEUED, BigNumber, Push, ReplyError, Verbatim

__all__ = [
    "ENCODERS", "RESP2", "RESP3", "Encoder", "format_double",
    "ProtocolError", "QueryBufferLimit", "RequestReader", "split_inline_args",
    "NULL_ARRAY", "OK", "PONG", "QUEUED", "BigNumber", "Push", "ReplyError", "Verbatim",
]
