"""Configuration: one table of parameters read by the command line, the config file and CONFIG.

Each :class:`Param` knows its type, default and how to parse and print a value, so
``postroom serve --port 7000``, a ``port 7000`` line in ``postroom.conf`` (redis.conf syntax) and
``CONFIG SET port 7000`` go through the same code and CONFIG GET prints what Redis would.
Modules that need to react to a change register a listener with :meth:`Config.on_change`.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import notifications

_UNITS = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


class ConfigError(ValueError):
    """A parameter value that cannot be accepted; the text is what CONFIG SET replies."""


def parse_memory(text: str) -> int:
    """Redis's memtoull: ``512mb``, ``1gb``, ``100`` (bytes), case-insensitive."""
    lowered = text.strip().lower()
    for suffix in ("kb", "mb", "gb", "k", "m", "g"):
        if lowered.endswith(suffix):
            number = lowered[: -len(suffix)]
            if not number.isdigit():
                raise ConfigError("argument must be a memory value")
            return int(number) * _UNITS[suffix]
    if not lowered.lstrip("-").isdigit():
        raise ConfigError("argument must be a memory value")
    return int(lowered)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered == "yes":
        return True
    if lowered == "no":
        return False
    raise ConfigError("argument must be 'yes' or 'no'")


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError("argument couldn't be parsed into an integer")
        if not lo <= value <= hi:
            raise ConfigError(f"argument must be between {lo} and {hi} inclusive")
        return value

    return parse


def _memory_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_memory(text)
        if not lo <= value <= hi:
            raise ConfigError(f"argument must be between {lo} and {hi} inclusive")
        return value

    return parse


def _enum(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        lowered = text.lower()
        if lowered not in choices:
            raise ConfigError("argument(s) must be one of the following: " + ", ".join(choices))
        return lowered

    return parse


def _string(text: str) -> str:
    return text


def _save_points(text: str) -> list[tuple[int, int]]:
    parts = text.split()
    if len(parts) % 2:
        raise ConfigError("Invalid save parameters")
    try:
        return [(int(parts[i]), int(parts[i + 1])) for i in range(0, len(parts), 2)]
    except ValueError:
        raise ConfigError("Invalid save parameters")


#: Output buffer limits per client class: (hard bytes, soft bytes, soft seconds); 0 disables.
OutputLimits = dict[str, tuple[int, int, int]]
_LIMIT_CLASSES = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}


def _output_buffer_limits(text: str) -> OutputLimits:
    """``class hard soft seconds ...`` groups; CONFIG SET merges them into the current limits."""
    words = text.split()
    if len(words) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    limits: OutputLimits = {}
    for i in range(0, len(words), 4):
        kind = _LIMIT_CLASSES.get(words[i].lower())
        if kind is None:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        try:
            hard, soft = parse_memory(words[i + 1]), parse_memory(words[i + 2])
            seconds = int(words[i + 3])
        except (ConfigError, ValueError):
            hard = soft = seconds = -1
        if min(hard, soft, seconds) < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        limits[kind] = (hard, soft, seconds)
    return limits


def _format_output_buffer_limits(limits: OutputLimits) -> str:
    return " ".join(f"{kind} {hard} {soft} {seconds}" for kind, (hard, soft, seconds) in limits.items())


def _keyspace_events(text: str) -> int:
    """The class flags; CONFIG GET prints them canonically, where ``A`` hides ``n`` but keeps it."""
    flags = notifications.parse_flags(text)
    if flags is None:
        raise ConfigError(notifications.INVALID_CLASS)
    return flags


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(f"{a} {b}" for a, b in value)
    return str(value)


@dataclass(slots=True)
class Param:
    """One configuration parameter."""

    name: str
    default: str
    parse: Callable[[str], Any]
    mutable: bool = True
    aliases: tuple[str, ...] = ()
    format: Callable[[Any], str] = _format
    #: Combines the current value with a parsed one (settings that update only what they name).
    merge: Callable[[Any, Any], Any] | None = None


INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1

PARAMS: list[Param] = [
    Param("port", "6379", _int_range(0, 65535)),
    Param("bind", "127.0.0.1 -::1", _string),
    Param("unixsocket", "", _string, mutable=False),
    Param("unixsocketperm", "0", _string, mutable=False),
    Param("dir", "./data", _string),
    Param("databases", "16", _int_range(1, INT_MAX), mutable=False),
    Param("maxclients", "10000", _int_range(1, INT_MAX)),
    Param("requirepass", "", _string),
    Param("timeout", "0", _int_range(0, INT_MAX)),
    Param("tcp-keepalive", "300", _int_range(0, INT_MAX)),
    Param("tcp-backlog", "511", _int_range(0, INT_MAX), mutable=False),
    Param("hz", "10", _int_range(0, INT_MAX)),
    Param("proto-max-bulk-len", "536870912", _memory_range(1024 * 1024, LLONG_MAX)),
    Param("client-query-buffer-limit", "1073741824", _memory_range(1024 * 1024, LLONG_MAX)),
    Param("client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
          _output_buffer_limits, format=_format_output_buffer_limits, merge=lambda old, new: {**old, **new}),
    Param("maxmemory", "0", _memory_range(0, LLONG_MAX)),
    Param("maxmemory-policy", "noeviction", _enum("volatile-lru", "volatile-lfu", "volatile-random",
                                                     "volatile-ttl", "allkeys-lru", "allkeys-lfu",
                                                     "allkeys-random", "noeviction")),
    Param("notify-keyspace-events", "", _keyspace_events, format=notifications.format_flags),
    Param("slowlog-log-slower-than", "10000", _int_range(-1, LLONG_MAX)),
    Param("slowlog-max-len", "128", _int_range(0, LLONG_MAX)),
    Param("latency-monitor-threshold", "0", _int_range(0, LLONG_MAX)),
    Param("busy-reply-threshold", "5000", _int_range(0, LLONG_MAX), aliases=("lua-time-limit",)),
    # Switching the AOF on at run time needs a rewrite to capture the dataset first: start-up only.
    Param("appendonly", "yes", _bool, mutable=False),
    Param("appendfsync", "everysec", _enum("always", "everysec", "no")),
    Param("appendfilename", "appendonly.aof", _string, mutable=False),
    Param("appenddirname", "appendonlydir", _string, mutable=False),
    Param("auto-aof-rewrite-percentage", "100", _int_range(0, INT_MAX)),
    Param("auto-aof-rewrite-min-size", "67108864", _memory_range(0, LLONG_MAX)),
    Param("aof-load-truncated", "yes", _bool),
    Param("save", "3600 1 300 100 60 10000", _save_points),
    Param("dbfilename", "dump.postroom", _string),
    Param("rdb-key-save-delay", "0", _int_range(0, INT_MAX)),  # microseconds per key (tests of slow saves)
    Param("stop-writes-on-bgsave-error", "yes", _bool),
    Param("loglevel", "notice", _enum("debug", "verbose", "notice", "warning", "nothing")),
    Param("logfile", "", _string, mutable=False),
    Param("pidfile", "", _string),
    Param("daemonize", "no", _bool, mutable=False),
    Param("protected-mode", "no", _bool),
    Param("lazyfree-lazy-expire", "no", _bool),
    Param("lazyfree-lazy-user-del", "no", _bool),
    Param("lazyfree-lazy-user-flush", "no", _bool),
    Param("list-max-listpack-size", "-2", _int_range(-5, INT_MAX), aliases=("list-max-ziplist-size",)),
    Param("list-compress-depth", "0", _int_range(0, INT_MAX)),
    Param("hash-max-listpack-entries", "512", _int_range(0, LLONG_MAX), aliases=("hash-max-ziplist-entries",)),
    Param("hash-max-listpack-value", "64", _int_range(0, LLONG_MAX), aliases=("hash-max-ziplist-value",)),
    Param("set-max-intset-entries", "512", _int_range(0, LLONG_MAX)),
    Param("zset-max-listpack-entries", "128", _int_range(0, LLONG_MAX), aliases=("zset-max-ziplist-entries",)),
    Param("zset-max-listpack-value", "64", _int_range(0, LLONG_MAX), aliases=("zset-max-ziplist-value",)),
    Param("stream-node-max-bytes", "4096", _memory_range(0, LLONG_MAX)),
    Param("stream-node-max-entries", "100", _int_range(0, LLONG_MAX)),
    Param("lfu-log-factor", "10", _int_range(0, INT_MAX)),
    Param("lfu-decay-time", "1", _int_range(0, INT_MAX)),
    Param("active-expire-effort", "1", _int_range(1, 10)),
]

_BY_NAME: dict[str, Param] = {}
for _param in PARAMS:
    _BY_NAME[_param.name] = _param
    for _alias in _param.aliases:
        _BY_NAME[_alias] = _param


class Config:
    """Current parameter values, typed, with change listeners."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {p.name: p.parse(p.default) for p in PARAMS}
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        self.file: str | None = None  # the config file the server started with (CONFIG REWRITE)

    def __getitem__(self, name: str) -> Any:
        return self._values[_BY_NAME[name].name]

    def param(self, name: str) -> Param | None:
        return _BY_NAME.get(name.lower())

    def set(self, name: str, text: str, *, startup: bool = False) -> None:
        """Parse and store ``text`` for ``name``; raises :class:`ConfigError` with Redis's text."""
        param = self.param(name)
        if param is None:
            raise ConfigError(f"Unknown option or number of arguments for CONFIG SET - '{name}'")
        if not param.mutable and not startup:
            raise ConfigError(f"can't set immutable config '{param.name}'")
        value = param.parse(text)
        if param.merge is not None:
            value = param.merge(self._values[param.name], value)
        self._values[param.name] = value
        for listener in self._listeners.get(param.name, ()):
            listener(value)

    def on_change(self, name: str, listener: Callable[[Any], None]) -> None:
        self._listeners.setdefault(_BY_NAME[name].name, []).append(listener)

    def get_matching(self, pattern: str) -> dict[str, str]:
        """CONFIG GET: every parameter (and alias) whose name matches the glob ``pattern``."""
        result: dict[str, str] = {}
        lowered = pattern.lower()
        for name, param in _BY_NAME.items():
            if fnmatch.fnmatchcase(name, lowered):
                result[name] = param.format(self._values[param.name])
        return result

    def load_file(self, path: str) -> None:
        """Read a redis.conf-style file: ``name value ...`` per line, ``#`` comments."""
        with open(path, encoding="utf-8") as handle:
            for number, raw in enumerate(handle, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    words = shlex.split(line)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{number}: {exc}")
                name, args = words[0].lower(), words[1:]
                if name == "include":
                    for included in args:
                        self.load_file(included)
                    continue
                try:
                    self.set(name, " ".join(args), startup=True)
                except ConfigError as exc:
                    raise ConfigError(f"{path}:{number}: '{line}': {exc}")

    def rewrite(self, path: str) -> None:
        """CONFIG REWRITE: write every non-default value to ``path``, keeping the file's other lines."""
        lines: list[str] = []
        seen: set[str] = set()
        try:
            with open(path, encoding="utf-8") as handle:
                existing = handle.read().splitlines()
        except FileNotFoundError:
            existing = []
        for line in existing:
            words = line.split(None, 1)
            param = self.param(words[0]) if words and not line.lstrip().startswith("#") else None
            if param is None:
                lines.append(line)
            elif param.name not in seen:
                seen.add(param.name)
                lines.append(f"{param.name} {param.format(self._values[param.name])}")
        for param in PARAMS:
            if param.name not in seen and param.format(self._values[param.name]) != param.format(
                param.parse(param.default)
            ):
                lines.append(f"{param.name} {param.format(self._values[param.name])}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
