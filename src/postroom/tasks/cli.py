"""Command line: ``postroom worker`` and ``postroom tasks`` (dead letters, workers).

Both take the application as ``module:attribute`` (like ``myapp.tasks:app``),
imported from the current directory as well as from sys.path.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any

from .app import App
from .worker import Worker, run_processes


def load_app(spec: str) -> App:
    """Import ``module:attribute`` and check it is an App."""
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module_name), attr or "app")
    if not isinstance(app, App):
        raise SystemExit(f"{spec} is a {type(app).__name__}, not a postroom.tasks.App")
    return app


def worker_main(argv: list[str] | None = None) -> int:
    """``postroom worker APP [-q high,default] [-c 8] [--pool threads|asyncio|processes]``."""
    p = argparse.ArgumentParser(prog="postroom worker", description="Run postroom.tasks workers.")
    p.add_argument("app", help="module:attribute of the App, e.g. myapp.tasks:app")
    p.add_argument("-q", "--queues", help="comma-separated queues, most important first (default: all of the app's)")
    p.add_argument("-c", "--concurrency", type=int, default=8, help="threads, coroutines or processes (default 8)")
    p.add_argument("--pool", choices=["threads", "asyncio", "processes"], default="threads")
    p.add_argument("--name", help="worker id in the registry (default host:pid:random)")
    p.add_argument("--prefetch", type=int, help="jobs held ahead of execution (default max(4*c, 64); 1 per process with --pool processes)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds running jobs get to finish on SIGTERM")
    p.add_argument("--consumers", help="comma-separated consumers to run (default all, 'none' for none)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = load_app(args.app)
    queues = args.queues.split(",") if args.queues else None
    consumers = None if args.consumers is None else [c for c in args.consumers.split(",") if c and c != "none"]
    if args.pool == "processes":
        run_processes(app, queues, args.concurrency, args.grace, prefetch=args.prefetch, consumers=consumers)
    else:
        Worker(app, queues, concurrency=args.concurrency, pool=args.pool, name=args.name,
               prefetch=args.prefetch, consumers=consumers).run(args.grace)
    return 0


def tasks_main(argv: list[str] | None = None) -> int:
    """``postroom tasks APP dead list|requeue|purge``, ``workers``, ``stats``, ``replay``."""
    p = argparse.ArgumentParser(prog="postroom tasks", description="Inspect and repair postroom.tasks queues.")
    p.add_argument("app", help="module:attribute of the App")
    sub = p.add_subparsers(dest="command", required=True)
    dead = sub.add_parser("dead", help="buried jobs (dead-letter stream)")
    dead.add_argument("action", choices=["list", "requeue", "purge"])
    dead.add_argument("entries", nargs="*", help="dead entry ids to requeue (default: all)")
    dead.add_argument("-q", "--queue", default="default")
    sub.add_parser("workers", help="live workers and their running jobs")
    stats = sub.add_parser("stats", help="backlog of each queue")
    stats.add_argument("-q", "--queues", help="comma-separated (default: the app's)")
    replay = sub.add_parser("replay", help="make a consumer group re-read a stream from an id")
    replay.add_argument("stream")
    replay.add_argument("group")
    replay.add_argument("from_id")
    args = p.parse_args(argv)
    app = load_app(args.app)
    out: Any
    if args.command == "dead":
        if args.action == "list":
            out = app.dead(args.queue)
        elif args.action == "requeue":
            out = {"requeued": app.requeue_dead(args.queue, args.entries or None)}
        else:
            out = {"purged": app.purge_dead(args.queue)}
    elif args.command == "workers":
        out = app.workers()
    elif args.command == "stats":
        out = {q: app.stats(q) for q in (args.queues.split(",") if args.queues else app.queues)}
    else:
        app.replay(args.stream, args.group, args.from_id)
        out = {"replayed": args.from_id}
    print(json.dumps(out, indent=2, default=str))
    return 0
