"""postroom's benchmarks: a registry of suites that ``python -m bench`` runs and reports together.

A suite measures postroom against redis-server in the same run on the same machine. Three kinds:

* :class:`RedisBenchmarkSuite`: the real ``redis-benchmark`` against both servers, one row per
  test and pipeline depth, with a target ratio (postroom ops/s / redis ops/s);
* :class:`PythonSuite`: any Python function given both servers' ports, returning :class:`Result`
  rows (ops/s for each server);
* :class:`ScriptSuite`: an external script (``bench/zset_scale.py``, ...) run as a subprocess.
  Its output is shown as is; a line ``BENCH-JSON [{"test": ..., "redis": ..., "postroom": ...,
  "target": ..., "minimum": ...}, ...]`` is parsed into rows of the table.  The ``python`` of a
  script suite may be taken from an environment variable, for scripts whose peers need an
  environment of their own (``make bench`` builds one for the task-queue frameworks).

A row's baseline (the field ``redis``) is what postroom is compared with in the same run:
redis-server for the server suites, fakeredis for the embedded one, another task-queue framework
for the tasks suite.

Add a suite by calling :func:`register` (see ``bench/redis_benchmark.py`` for the core one)::

    register(PythonSuite("my-suite", my_function, "what it measures"))
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
JSON_MARKER = "BENCH-JSON "


@dataclass
class Result:
    """One row of the report: postroom and its baseline measured in the same run."""

    suite: str
    test: str
    pipeline: int | None
    redis: float | None  # the baseline's ops/s (redis-server unless the suite says otherwise)
    postroom: float | None  # ops/s
    target: float | None = None  # minimum acceptable postroom/baseline ratio
    samples: dict[str, list[float]] = field(default_factory=dict)
    minimum: float | None = None  # minimum acceptable postroom ops/s, whatever the baseline

    @property
    def ratio(self) -> float | None:
        if not self.redis or self.postroom is None:
            return None
        return self.postroom / self.redis

    @property
    def passed(self) -> bool | None:
        checks = []
        if self.target is not None and self.ratio is not None:
            checks.append(self.ratio >= self.target)
        if self.minimum is not None and self.postroom is not None:
            checks.append(self.postroom >= self.minimum)
        return all(checks) if checks else None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["pass"] = self.passed
        return data


@dataclass
class Endpoints:
    """Where the servers under test listen; suites that need their own servers ignore it."""

    redis_port: int
    postroom_port: int


@dataclass
class Options:
    quick: bool = False
    rounds: int = 2


class Suite:
    """A named measurement; :meth:`run` returns report rows."""

    name: str
    description: str
    needs_servers: bool = True

    def run(self, endpoints: Endpoints | None, options: Options) -> list[Result]:
        raise NotImplementedError


@dataclass
class PythonSuite(Suite):
    """A measurement written in Python: ``function(endpoints, options) -> list[Result]``."""

    name: str
    function: Callable[[Endpoints, Options], list[Result]]
    description: str = ""

    def run(self, endpoints: Endpoints | None, options: Options) -> list[Result]:
        assert endpoints is not None
        return self.function(endpoints, options)


@dataclass
class ScriptSuite(Suite):
    """An external script that starts its own servers; ``quick_args`` replace ``args`` with --quick."""

    name: str
    script: str  # relative to bench/
    args: list[str] = field(default_factory=list)
    quick_args: list[str] | None = None
    description: str = ""
    needs_servers: bool = False
    python_from: str | None = None  # environment variable naming the interpreter, if set

    def run(self, endpoints: Endpoints | None, options: Options) -> list[Result]:
        path = BENCH_DIR / self.script
        if not path.exists():
            print(f"[{self.name}] {self.script} not found, skipped")
            return []
        args = self.quick_args if options.quick and self.quick_args is not None else self.args
        python = os.environ.get(self.python_from or "", "") or sys.executable
        proc = subprocess.run([python, str(path), *args], capture_output=True, text=True)
        rows: list[Result] = []
        for line in proc.stdout.splitlines():
            if line.startswith(JSON_MARKER):
                for item in json.loads(line[len(JSON_MARKER):]):
                    rows.append(Result(self.name, item["test"], item.get("pipeline"), item.get("redis"),
                                       item.get("postroom"), item.get("target"), minimum=item.get("minimum")))
            else:
                print(f"[{self.name}] {line}")
        if proc.returncode != 0 and not rows:  # with rows, exit 1 only says a target was missed
            print(f"[{self.name}] exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
            rows.append(Result(self.name, f"{self.script} failed (exit {proc.returncode})", None, None, None))
        return rows


SUITES: dict[str, Suite] = {}


def register(suite: Suite) -> Suite:
    """Add ``suite`` to the registry ``python -m bench`` runs (``--only NAME`` selects it)."""
    if suite.name in SUITES:
        raise ValueError(f"benchmark suite {suite.name!r} registered twice")
    SUITES[suite.name] = suite
    return suite


__all__ = ["SUITES", "Endpoints", "Options", "PythonSuite", "Result", "ScriptSuite", "Suite", "register"]
