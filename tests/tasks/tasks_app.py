"""An application for worker subprocesses (CLI and crash tests), configured
by environment variables so each test points it at its own backend and prefix."""

from __future__ import annotations

import os
import time

from postroom.tasks import App

app = App(
    os.environ["POSTROOM_TASKS_URL"],
    prefix=os.environ["POSTROOM_TASKS_PREFIX"],
    lease=float(os.environ.get("POSTROOM_TASKS_LEASE", "2")),
)
RUNS = app.keys("default").tag + ":runs"


@app.task(name="record")
def record(i: int) -> int:
    """Count every execution, so a test can tell lost jobs from duplicates."""
    app.client.hincrby(RUNS, str(i), 1)
    return i


@app.task(name="nap")
def nap(seconds: float) -> float:
    app.client.hincrby(RUNS, "nap:started", 1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    app.client.hincrby(RUNS, "nap", 1)
    return seconds


@app.task(name="broken", retries=0)
def broken() -> None:
    raise RuntimeError("always broken")
