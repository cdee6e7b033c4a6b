"""Delayed jobs start on time under a steady stream of them."""

from __future__ import annotations

import statistics
import time

import pytest


@pytest.mark.slow
def test_delayed_jobs_start_within_100ms_at_1000_per_second(app, start_worker):
    lateness: list[float] = []

    @app.task(name="due")
    def due(at: float) -> None:
        lateness.append(time.time() - at)

    start_worker(app, concurrency=2)  # few threads: the producer shares this process's GIL
    total, rate, ahead, batch = 2000, 1000.0, 0.3, 10
    begin = time.time()
    for i in range(0, total, batch):
        send = begin + i / rate
        pause = send - time.time()
        if pause > 0:
            time.sleep(pause)  # pacing the producer: 10 jobs every 10 ms
        at = time.time() + ahead  # from the actual send: a producer running late must not count
        due.enqueue([((at,), {})] * batch, due=at)
    deadline = time.monotonic() + 30
    while len(lateness) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(lateness) == total
    ordered = sorted(lateness)
    p95, p99 = ordered[int(total * 0.95)], ordered[int(total * 0.99)]
    print(f"\nlateness of {total} delayed jobs at {rate:.0f}/s: median {statistics.median(ordered) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms")
    assert ordered[0] > -0.005  # never started early
    # The bound, on every backend (postroom included).  p99 rather than
    # the maximum: on a shared machine one OS scheduling stall of a few hundred
    # ms can hit a single batch; on an idle one the maximum is under 30 ms.
    assert p99 < 0.1
