"""The ``postroom`` command line: ``serve`` and the operational subcommands.

Every configuration parameter is accepted on the command line as ``--name value`` (the same
names as the config file and CONFIG SET), so ``postroom serve --port 7000 --appendfsync always``
needs no option list of its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import __version__
from .config import Config, ConfigError


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="postroom serve",
        description="Run the broker. Any config parameter may be given as --name value.",
    )
    parser.add_argument("--config", help="a config file in redis.conf syntax")
    known, rest = parser.parse_known_args(argv)
    config = Config()
    try:
        if known.config:
            config.load_file(known.config)
            config.file = os.path.abspath(known.config)
        _apply_overrides(config, rest)
    except ConfigError as exc:
        print(f"postroom: {exc}", file=sys.stderr)
        return 2
    level = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
             "warning": logging.WARNING, "nothing": logging.CRITICAL}[config["loglevel"]]
    logging.basicConfig(
        level=level,
        format="%(process)d:M %(asctime)s %(levelname).1s %(message)s",
        filename=config["logfile"] or None,
    )
    from .server import run

    run(config)
    return 0


def _apply_overrides(config: Config, args: list[str]) -> None:
    """``--name v1 [v2 ...]`` pairs (values until the next ``--``), applied in order."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument '{arg}'")
        name = arg[2:]
        values = []
        i += 1
        while i < len(args) and not args[i].startswith("--"):
            values.append(args[i])
            i += 1
        if "=" in name and not values:
            name, value = name.split("=", 1)
            values = [value]
        config.set(name, " ".join(values), startup=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"serve": _serve}
    for name, target in _optional_commands().items():
        commands[name] = target
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: postroom {{{','.join(commands)}}} ...\n\npostroom {__version__}: a Redis-protocol message broker")
        return 0
    if argv[0] in ("-v", "--version"):
        print(f"postroom {__version__}")
        return 0
    handler = commands.get(argv[0])
    if handler is None:
        print(f"postroom: unknown command '{argv[0]}' (try: {', '.join(commands)})", file=sys.stderr)
        return 2
    return handler(argv[1:]) or 0


def _optional_commands() -> dict:
    """Subcommands contributed by other packages of postroom (tasks, persistence tools)."""
    found: dict = {}
    try:
        from .tasks.cli import tasks_main, worker_main
    except ImportError:
        pass
    else:
        found["worker"] = worker_main
        found["tasks"] = tasks_main
    try:
        from .persistence.check import check_aof_main
    except ImportError:
        pass
    else:
        found["check-aof"] = check_aof_main
    return found
