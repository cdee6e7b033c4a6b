"""The command table: every command declared once, as data, next to its handler.

A handler is declared with :func:`command`::

    @command("lpush", arity=-3, flags="write denyoom fast", keys=(1, 1, 1), group="list",
             summary="Prepends one or more elements to a list.", since="1.0.0")
    def lpush(client: Client, argv: list[bytes]) -> int: ...

The dispatcher (arity, NOAUTH, MULTI queueing, pub/sub context, write propagation), COMMAND,
ACL categories, WATCH and scripting (``noscript``) all read the same :class:`Command` record, so a
command's behaviour around its handler can never disagree with what COMMAND reports.

Arity follows Redis: a positive number is the exact argument count including the name, a
negative one is a minimum. Container commands (CLIENT, CONFIG, XGROUP, ...) are declared with
:func:`container` and their subcommands as ``"client|list"``.

Flags (Redis's ``CMD_*``, see ``server.h``): ``write`` may modify data; ``readonly`` only reads;
``denyoom`` may grow memory; ``admin``; ``pubsub``; ``noscript`` refused inside scripts;
``blocking`` may block the client; ``loading`` and ``stale`` allowed while loading; ``fast`` is O(1)
or O(log n) and never triggers a DEL as a side effect; ``no_auth`` runs before AUTH;
``no_multi`` refused inside MULTI; ``allow_busy`` runs while a script is busy;
``movablekeys`` has a ``key_finder`` because its keys are not a simple range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Client

Handler = Callable[["Client", list[bytes]], Any]
KeyFinder = Callable[[list[bytes]], list[int]]

#: Flags as COMMAND prints them, in Redis's order.
FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading",
    "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "may_replicate",
    "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys", "allow_busy",
)


@dataclass(slots=True, eq=False)
class Command:
    """Metadata and handler of one command or subcommand."""

    name: str  # lowercase; "parent|sub" for subcommands
    handler: Handler | None
    arity: int
    flags: frozenset[str]
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    key_finder: KeyFinder | None = None
    group: str = "generic"
    acl: frozenset[str] = frozenset()
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = ""
    tips: tuple[str, ...] = ()  # COMMAND INFO's command tips ("nondeterministic_output", ...)
    subcommands: dict[bytes, Command] = field(default_factory=dict)
    parent: Command | None = None
    # Statistics (INFO commandstats): kept on the record to avoid a dict lookup per call.
    calls: int = 0
    usec: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0
    # Hot-path booleans derived from ``flags`` once.
    min_args: int = 0  # arity as a range, so the dispatcher checks it with one comparison
    max_args: int = 0
    is_write: bool = False
    is_readonly: bool = False  # its key lookups count as keyspace hits and misses (INFO stats)
    is_blocking: bool = False
    is_fast: bool = False
    no_auth: bool = False

    @property
    def full_name(self) -> str:
        return self.name

    def accepts(self, argc: int) -> bool:
        """Whether ``argc`` arguments (name included) satisfy the arity."""
        return self.min_args <= argc <= self.max_args

    def key_positions(self, argv: list[bytes]) -> list[int]:
        """Indexes of the key arguments of ``argv`` (GETKEYS, WATCH, ACL, scripting, cluster)."""
        if self.key_finder is not None:
            return self.key_finder(argv)
        if self.first_key <= 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, min(last, len(argv) - 1) + 1, self.key_step or 1))

    def acl_categories(self) -> list[str]:
        """ACL categories as Redis derives them from flags, plus the command's own group."""
        cats = set(self.acl)
        if "write" in self.flags:
            cats.add("write")
        if "readonly" in self.flags and "scripting" not in self.acl:
            cats.add("read")
        if "admin" in self.flags:
            cats.update(("admin", "dangerous"))
        if "pubsub" in self.flags:
            cats.add("pubsub")
        if "fast" in self.flags:
            cats.add("fast")
        if "blocking" in self.flags:
            cats.add("blocking")
        if "fast" not in self.flags:
            cats.add("slow")
        return sorted(cats)


#: Top-level commands by lowercase name (bytes, as the dispatcher sees them).
COMMANDS: dict[bytes, Command] = {}

# Data-type groups imply Redis's ACL category of the same name (@pubsub comes from the flag:
# PUBSUB HELP, without it, is only @slow).
_GROUP_CATEGORIES = {
    "string": "string", "list": "list", "hash": "hash", "set": "set", "sorted_set": "sortedset",
    "stream": "stream", "pubsub": "", "generic": "keyspace", "transactions": "transaction",
    "scripting": "scripting", "connection": "connection", "server": "", "geo": "geo",
    "hyperloglog": "hyperloglog", "bitmap": "bitmap", "cluster": "",
}


def _make(
    name: str,
    handler: Handler | None,
    arity: int,
    flags: str,
    keys: tuple[int, int, int],
    key_finder: KeyFinder | None,
    group: str,
    acl: str,
    summary: str,
    since: str,
    complexity: str,
) -> Command:
    flag_set = frozenset(flags.split())
    unknown = flag_set.difference(FLAG_ORDER)
    if unknown:
        raise ValueError(f"{name}: unknown flags {sorted(unknown)}")
    if key_finder is not None:
        flag_set |= {"movablekeys"}
    categories = set(acl.split())
    implied = _GROUP_CATEGORIES.get(group, "")
    if implied and (group != "generic" or keys[0] > 0 or key_finder is not None):
        categories.add(implied)
    return Command(
        name=name,
        handler=handler,
        arity=arity,
        flags=flag_set,
        first_key=keys[0],
        last_key=keys[1],
        key_step=keys[2],
        key_finder=key_finder,
        group=group,
        acl=frozenset(categories),
        summary=summary,
        since=since,
        complexity=complexity,
        min_args=abs(arity),
        max_args=arity if arity > 0 else 2**31,
        is_write="write" in flag_set,
        is_readonly="readonly" in flag_set,
        is_blocking="blocking" in flag_set,
        is_fast="fast" in flag_set,
        no_auth="no_auth" in flag_set,
    )


def command(
    name: str,
    *,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    key_finder: KeyFinder | None = None,
    group: str = "generic",
    acl: str = "",
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "",
    tips: str = "",
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``name`` (``"parent|sub"`` for subcommands)."""

    def register(handler: Handler) -> Handler:
        record = _make(name, handler, arity, flags, keys, key_finder, group, acl, summary, since, complexity)
        record.tips = tuple(tips.split())
        parent_name, _, sub = name.partition("|")
        if sub:
            parent = COMMANDS[parent_name.encode()]
            record.parent = parent
            if parent.subcommands.get(sub.encode()) is not None:
                raise ValueError(f"command {name} declared twice")
            parent.subcommands[sub.encode()] = record
        else:
            if name.encode() in COMMANDS:
                raise ValueError(f"command {name} declared twice")
            COMMANDS[name.encode()] = record
        return handler

    return register


def container(
    name: str, *, arity: int = -2, flags: str = "", group: str = "generic", summary: str = "", since: str = "1.0.0"
) -> Command:
    """Declare a command whose real work is done by subcommands (CLIENT, CONFIG, XINFO, ...)."""
    if name.encode() in COMMANDS:
        raise ValueError(f"command {name} declared twice")
    record = _make(name, None, arity, flags, (0, 0, 0), None, group, "", summary, since, "")
    COMMANDS[name.encode()] = record
    return record


def lookup(argv: list[bytes]) -> Command | None:
    """The command record ``argv`` names, resolving subcommands; ``None`` if unknown."""
    record = COMMANDS.get(argv[0].lower())
    if record is not None and record.subcommands and len(argv) > 1:
        return record.subcommands.get(argv[1].lower(), record)
    return record


def all_commands() -> list[Command]:
    """Every top-level command record."""
    return list(COMMANDS.values())
