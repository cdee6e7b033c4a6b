"""A small cron expression parser (5 fields, or 6 with leading seconds).

Written here rather than pulled in as a dependency because the subset that
periodic jobs need (numbers, ``*``, ranges, steps, lists and the ``@hourly``
style aliases) is short, and ticks are computed in UTC so every worker of a
cluster agrees on them whatever its local time zone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# (low, high) of: second, minute, hour, day of month, month, day of week.
_BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(spec)
            end = high if step_text else start
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"bad cron field {text!r} (allowed {low}-{high})")
        values.update(range(start, end + 1, step))
    return frozenset(values)


class Cron:
    """A parsed schedule; :meth:`next_after` gives the next tick."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        fields = _ALIASES.get(expr.strip(), expr).split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ValueError(f"cron expression needs 5 or 6 fields: {expr!r}")
        parsed = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True)]
        self.seconds, self.minutes, self.hours, self.days, self.months, dows = parsed
        self.dows = frozenset(d % 7 for d in dows)
        # Classic cron: when both day fields are restricted, either may match.
        self._any_day = fields[3] != "*" and fields[5] != "*"
        # A schedule that never fires ("0 0 30 2 *") is refused here, when the
        # task is registered, rather than in a worker's scheduler later.
        self.next_after(time.time())

    def _day_ok(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.weekday() + 1) % 7 in self.dows
        return (dom or dow) if self._any_day else (dom and dow)

    def next_after(self, ts: float) -> float:
        """The first tick strictly after epoch second *ts*."""
        t = datetime.fromtimestamp(int(ts), UTC) + timedelta(seconds=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_ok(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t.timestamp()
        raise ValueError(f"cron expression {self.expr!r} never fires")
