"""postroom: a message broker in Python that speaks the Redis protocol."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
#: The Redis version whose semantics postroom follows (INFO ``redis_version``).
REDIS_VERSION = "7.0.15"

__all__ = ["Embedded", "REDIS_VERSION", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use: ``import postroom`` stays cheap for the CLI and for postroom.tasks.
    if name == "Embedded":
        from .embedded import Embedded

        return Embedded
    raise AttributeError(f"module 'postroom' has no attribute {name!r}")
