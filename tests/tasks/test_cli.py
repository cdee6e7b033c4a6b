"""The command line: worker processes and dead-letter management."""

from __future__ import annotations

import json
import signal

import pytest
from tasks_helpers import wait_for

from postroom.tasks import JobFailed
from postroom.tasks.cli import tasks_main


def test_dead_letter_commands(cli_env, capsys):
    import tasks_app

    from postroom.tasks import Worker

    w = Worker(tasks_app.app, block=0.5).start()
    job = tasks_app.broken.delay()
    with pytest.raises(JobFailed):
        job.result(timeout=10)
    w.stop()
    assert tasks_main(["tasks_app:app", "dead", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in listed] == [job.id]
    assert "always broken" in listed[0]["error"]
    tasks_main(["tasks_app:app", "stats"])
    assert json.loads(capsys.readouterr().out)["default"]["dead"] == 1
    tasks_main(["tasks_app:app", "dead", "requeue"])
    assert json.loads(capsys.readouterr().out) == {"requeued": 1}
    assert job.status() == "queued"
    tasks_main(["tasks_app:app", "dead", "purge"])
    assert json.loads(capsys.readouterr().out) == {"purged": 0}


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_worker_command_runs_jobs_and_stops_on_sigterm(worker_process, pool):
    import tasks_app

    proc = worker_process("-c", "2", "--pool", pool, "--grace", "10")
    jobs = tasks_app.record.map([(i,) for i in range(50)])
    assert sorted(j.result(timeout=20) for j in jobs) == list(range(50))
    running = tasks_app.nap.delay(1.0)
    wait_for(lambda: tasks_app.app.client.hget(tasks_app.RUNS, "nap:started"), what="the job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    # SIGTERM let the running job finish instead of dropping it.
    assert running.status() == "finished"


def test_process_pool_children_stop_when_the_supervisor_is_killed(worker_process):
    import tasks_app

    proc = worker_process("-c", "2", "--pool", "processes")
    assert tasks_app.record.delay(1).result(timeout=20) == 1
    workers = wait_for(lambda: [w for w in tasks_app.app.workers() if w["pid"] != proc.pid], what="children")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    pids = {w["pid"] for w in workers}
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=15, what="orphaned children to exit")


def test_process_pool_hard_limit_stops_code_stuck_in_a_c_call(worker_process):
    import tasks_app

    worker_process("-c", "1", "--pool", "processes")
    job = tasks_app.stuck.delay(60)
    with pytest.raises(JobFailed, match="HardTimeLimit"):
        job.result(timeout=20)
    pid = int(tasks_app.app.client.hget(tasks_app.RUNS, "stuck:pid"))
    wait_for(lambda: not _alive(pid), timeout=10, what="the process running the stuck job to end")
    # The pool serves on, with a new child in place of the stopped one.
    assert tasks_app.record.delay(7).result(timeout=20) == 7


def test_process_pool_children_take_one_job_at_a_time(worker_process):
    import tasks_app

    tasks_app.nap.delay(3.0)
    quick = tasks_app.record.map([(i,) for i in range(6)])
    worker_process("-c", "2", "--pool", "processes")
    # One child naps; the other serves every short job meanwhile, none of them
    # stuck in the napping child's buffer.
    assert sorted(j.result(timeout=20) for j in quick) == list(range(6))
    assert tasks_app.app.client.hget(tasks_app.RUNS, "nap") is None


def _alive(pid: int) -> bool:
    """True while *pid* runs (a zombie, exited but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
