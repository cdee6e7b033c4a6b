"""Serialisation of task arguments, results and job envelopes.

msgpack is used because it is fast, compact and cannot execute code on
decode (unlike pickle): a worker must be able to read a job sent by any
client without trusting it.  Tuples come back as lists, which is the usual
price of a language-neutral format.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack


class CodecError(TypeError):
    """Raised when a value cannot be encoded (e.g. an arbitrary object).

    ``enqueued`` lists the ids of the jobs a ``map()`` of more than one batch
    (1,000 calls) had already enqueued before reaching the call it refused.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.enqueued: list[str] = []


# A Packer per thread: ``msgpack.packb`` builds a new one per call, which is
# two thirds of the cost of encoding a small envelope.  Not shared between
# threads because packing a dict subclass calls back into Python, where
# another thread could interleave its own bytes into the buffer.
_local = threading.local()


def dumps(value: Any) -> bytes:
    """Encode *value*; raise CodecError with the offending type on failure."""
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    try:
        return packer.pack(value)  # a failed pack leaves the buffer empty again
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode {type(value).__name__} for a job: {exc}") from exc


def loads(data: bytes | None) -> Any:
    """Decode bytes produced by :func:`dumps`; ``None`` decodes to ``None``."""
    if data is None:
        return None
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
