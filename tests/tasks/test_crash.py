"""Workers killed with SIGKILL at random lose no job."""

from __future__ import annotations

import random
import signal
import time

import pytest

JOBS = 10_000


@pytest.mark.slow
def test_sigkilled_workers_lose_no_job(worker_process, record_property):
    import tasks_app

    rng = random.Random(9)
    app = tasks_app.app
    for start in range(0, JOBS, 2000):
        tasks_app.record.map([(i,) for i in range(start, start + 2000)])
    procs = [worker_process("-c", "4") for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + 50
    try:
        while app.client.hlen(tasks_app.RUNS) < JOBS:
            assert time.monotonic() < deadline, f"only {app.client.hlen(tasks_app.RUNS)} jobs ran"
            time.sleep(rng.uniform(0.2, 0.6))
            if kills < 8:
                victim = rng.randrange(len(procs))
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                procs[victim] = worker_process("-c", "4")
                kills += 1
        stats = app.stats()
        assert stats["waiting"] == 0 and stats["dead"] == 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(20)
    runs = {int(k): int(v) for k, v in app.client.hgetall(tasks_app.RUNS).items()}
    assert sorted(runs) == list(range(JOBS))
    duplicates = sum(runs.values()) - JOBS
    record_property("duplicates", duplicates)
    print(f"\n{JOBS} jobs, {kills} SIGKILLs: every job ran, {duplicates} ran twice or more")
    assert kills >= 3
