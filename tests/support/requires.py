"""Skip a test whose commands another part of postroom does not provide yet (parallel development)."""

from __future__ import annotations

import pytest


def require(diff, *command: str) -> None:
    """Skip unless the postroom side of a ``diff`` knows ``command``."""
    kind, payload = diff.ours.call(*command)
    if kind == "-" and payload.startswith(b"ERR unknown command"):
        pytest.skip(f"postroom does not implement {command[0]} yet")
