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
#: One entry per execution, "<job>:<pid>": which process ran each delivery.
RUN_LOG = app.keys("default").tag + ":runlog"


def log_run(name: str) -> None:
    pipe = app.client.pipeline(transaction=False)
    pipe.hincrby(RUNS, name, 1)
    pipe.rpush(RUN_LOG, f"{name}:{os.getpid()}")
    pipe.execute()


@app.task(name="record")
def record(i: int) -> int:
    """Count every execution, so a test can tell lost jobs from duplicates."""
    log_run(str(i))
    return i


@app.task(name="hold", queue="long")
def hold(i: int, seconds: float) -> None:
    """A job longer than the lease: logged when it starts, counted when it ends."""
    log_run(f"hold{i}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    app.client.hincrby(RUNS, f"hold{i}:done", 1)


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


@app.task(name="stuck", timeout=0.5, retries=0)
def stuck(seconds: float) -> None:
    """Past its hard limit inside one C call, where no exception can reach it."""
    app.client.hset(RUNS, "stuck:pid", os.getpid())
    time.sleep(seconds)
