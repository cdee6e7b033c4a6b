"""Background work in a forked child: a copy-on-write view of the keyspace, reaped from the cron.

Like Redis, postroom runs at most one child at a time (BGSAVE or an AOF rewrite). The parent
forks, the child writes its file from its frozen copy of memory and exits with status 0 on
success; the parent never waits for it: the broker's cron polls ``waitpid(WNOHANG)`` and calls
the job's completion callback in the event loop.

The child lowers its priority (``nice 10``): on a machine short of cores, the serving parent
gets the CPU first and the save just takes longer.

Python's reference counting writes to every object the child reads, so pages get copied as the
child walks the keyspace; ``gc.freeze()`` before forking at least keeps the parent's collector
from touching (and copying) the headers of every old object while the child runs.

The child asks the kernel to kill it if the parent dies (``PR_SET_PDEATHSIG``), so a crashed
server does not leave a writer behind that a restarted one would race with. Forking is only
done by the network server, where one thread owns the data; embedded mode (callers' threads
hold arbitrary locks) runs the same jobs synchronously instead.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("postroom.persistence")

_PR_SET_PDEATHSIG = 1


@dataclass(slots=True)
class Child:
    """A running background job."""

    kind: str  # "rdb" (BGSAVE) or "aof" (rewrite)
    pid: int
    on_exit: Callable[[bool], None]
    started: float = field(default_factory=time.monotonic)


class ChildProcesses:
    """Starts, polls, and kills the single background child."""

    def __init__(self) -> None:
        self.child: Child | None = None
        self.last_fork_usec = 0  # Redis's latest_fork_usec: the parent's pause to fork
        self.total_forks = 0

    @property
    def active(self) -> bool:
        return self.child is not None

    def kind(self) -> str | None:
        return self.child.kind if self.child else None

    def elapsed(self) -> int:
        """Whole seconds the current child has run, -1 without one (``*_current_*_time_sec``)."""
        return int(time.monotonic() - self.child.started) if self.child else -1

    def start(self, kind: str, work: Callable[[], object], on_exit: Callable[[bool], None]) -> int:
        """Fork a child that runs ``work``; ``on_exit(ok)`` runs in the parent once it is reaped."""
        assert self.child is None, "one background child at a time"
        parent = os.getpid()
        started = time.perf_counter()
        gc.freeze()
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            raise
        if pid == 0:
            _run_child(work, parent)
        self.last_fork_usec = int((time.perf_counter() - started) * 1e6)
        self.total_forks += 1
        self.child = Child(kind, pid, on_exit)
        log.info("Background %s started by pid %d (fork: %d us)", "saving" if kind == "rdb" else "AOF rewrite", pid,
                 self.last_fork_usec)
        return pid

    def poll(self) -> None:
        """Reap the child if it exited (cron hook) and report how it ended."""
        child = self.child
        if child is None:
            return
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = child.pid, 1 << 8
        if pid == 0:
            return
        self.child = None
        gc.unfreeze()
        ok = os.waitstatus_to_exitcode(status) == 0
        if not ok:
            log.warning("Background %s child %d terminated with status %d", child.kind, child.pid,
                        os.waitstatus_to_exitcode(status))
        child.on_exit(ok)

    def kill(self) -> None:
        """Stop the child and wait for it (SHUTDOWN, FLUSHALL); its completion callback reports failure."""
        child = self.child
        if child is None:
            return
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass
        self.child = None
        gc.unfreeze()
        child.on_exit(False)


def _run_child(work: Callable[[], object], parent: int) -> None:
    """The child's whole life: detach from the parent's signal plumbing, run ``work``, exit."""
    status = 1
    try:
        gc.disable()
        try:
            signal.set_wakeup_fd(-1)  # signals to the child must not reach the parent's event loop
        except ValueError:
            pass
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        try:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:
            return  # the parent died before the death signal was armed
        os.nice(10)  # on a busy machine the serving parent gets the CPU first
        work()
        status = 0
    except BaseException:
        log.exception("Background child failed")
    finally:
        os._exit(status)


__all__ = ["Child", "ChildProcesses"]
