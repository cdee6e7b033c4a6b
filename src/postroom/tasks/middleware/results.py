"""Encodes task results for storage (they expire with the job record)."""

from __future__ import annotations

from ..codec import CodecError, dumps
from .base import Middleware, Outcome


class Results(Middleware):
    """Encodes an ``ok`` result; an unencodable one fails the job instead of
    losing it silently."""

    def after_process(self, worker, msg, task, outcome: Outcome) -> None:
        if outcome.kind != "ok":
            return
        try:
            outcome.encoded = dumps(outcome.result)
        except CodecError as exc:
            outcome.kind, outcome.error, outcome.traceback = "error", exc, f"{exc}\n"
