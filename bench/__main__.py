"""``python -m bench``: run the registered suites, print one table, write bench/results/latest.json.

    python -m bench                      # every suite
    python -m bench --only core          # one suite (repeatable)
    python -m bench --quick              # shorter runs, one round: a smoke test of the numbers
    python -m bench --list               # what is registered
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from . import BENCH_DIR, SUITES, Options, Result
from .redis_benchmark import Servers

RESULTS = BENCH_DIR / "results" / "latest.json"


def _target(r: Result) -> str:
    """The ratio target, or the floor in ops/s when the row has one ("≥ 10,000/s")."""
    parts = [] if r.target is None else [f"{r.target:.2f}"]
    if r.minimum is not None:
        parts.append(f">= {r.minimum:,.0f}/s")
    return ", ".join(parts) or "-"


def format_table(results: list[Result]) -> str:
    header = ("suite", "test", "pipeline", "baseline ops/s", "postroom ops/s", "ratio", "target", "result")
    rows = [header]
    for r in results:
        rows.append((
            r.suite,
            r.test,
            "" if r.pipeline is None else str(r.pipeline),
            "-" if r.redis is None else f"{r.redis:,.0f}",
            "-" if r.postroom is None else f"{r.postroom:,.0f}",
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            _target(r),
            {True: "pass", False: "FAIL", None: "-"}[r.passed],
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(cells)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(results: list[Result], options: Options, path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "options": {"quick": options.quick, "rounds": options.rounds},
        "results": [r.as_dict() for r in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="SUITE", help="run only this suite (repeatable)")
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per test, alternating servers (default 2)")
    parser.add_argument("--list", action="store_true", help="list the registered suites and exit")
    args = parser.parse_args(argv)
    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name:<12} {suite.description}")
        return 0
    names = args.only or list(SUITES)
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; registered: {', '.join(SUITES)}")
    options = Options(quick=args.quick, rounds=args.rounds)
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) * 0.5:
        print(f"warning: load average {load:.1f} on {os.cpu_count()} CPUs; ratios will be noisy", flush=True)
    results: list[Result] = []
    with_servers = [SUITES[n] for n in names if SUITES[n].needs_servers]
    standalone = [SUITES[n] for n in names if not SUITES[n].needs_servers]
    if with_servers:
        with Servers() as endpoints:
            for suite in with_servers:
                print(f"== {suite.name}: {suite.description}", flush=True)
                results.extend(suite.run(endpoints, options))
    for suite in standalone:
        print(f"== {suite.name}: {suite.description}", flush=True)
        results.extend(suite.run(None, options))
    print()
    print(format_table(results))
    write_json(results, options)
    print(f"\nresults written to {RESULTS}")
    return 1 if any(r.passed is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
