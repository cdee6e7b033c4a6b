"""COMMAND and its subcommands, generated from the command table (``registry.COMMANDS``).

Everything COMMAND reports is read from the same :class:`~postroom.commands.registry.Command`
records the dispatcher uses, so what a client learns here is what the server enforces.
Key specs are derived from the legacy ``first/last/step`` triple (and an "unknown" spec for
commands with a key finder); their access flags are derived from ``readonly``/``write``, which is
coarser than Redis's per-key flags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..glob import glob_match
from ..protocol.replies import OrderedSet, ReplyError
from ..stats import iter_commands
from .args import SYNTAX_ERROR
from .registry import COMMANDS, FLAG_ORDER, Command, command
from .server import help_reply
from .syntax import arguments

if TYPE_CHECKING:
    from ..client import Client

#: ACL categories in the order Redis prints them (its ACLCommandCategories table).
CATEGORY_ORDER = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
    "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
    "transaction", "scripting",
)
#: Flags Redis keeps out of COMMAND's reply ("hidden on purpose" in its flag table).
HIDDEN_FLAGS = frozenset(("may_replicate",))
_CATEGORY_RANK = {name: i for i, name in enumerate(CATEGORY_ORDER)}


def categories(record: Command) -> list[str]:
    """ACL categories of ``record``; a bare container (no handler) only has its flags' ones, as Redis."""
    if record.handler is None and record.subcommands:
        names = ["slow"] if "fast" not in record.flags else ["fast"]
    else:
        names = record.acl_categories()
    return sorted(names, key=lambda name: _CATEGORY_RANK.get(name, len(CATEGORY_ORDER)))


def key_access_flags(record: Command) -> list[str]:
    """Key-spec flags: the table only knows read vs write, so writes get Redis's broadest RW/update."""
    if "pubsub" in record.flags:
        return ["not_key"]  # shard channels are declared like keys (cluster slots) but are not keys
    if "write" in record.flags:
        return ["RW", "update"]
    return ["RO", "access"]


def key_specs(record: Command) -> list[dict[bytes, Any]]:
    """Redis 7 key specs for ``record``: a range from first/last/step, "unknown" for key finders."""
    specs: list[dict[bytes, Any]] = []
    if record.first_key > 0:
        last = record.last_key - record.first_key if record.last_key >= 0 else record.last_key
        specs.append({
            b"flags": OrderedSet(key_access_flags(record)),
            b"begin_search": {b"type": b"index", b"spec": {b"index": record.first_key}},
            b"find_keys": {b"type": b"range",
                           b"spec": {b"lastkey": last, b"keystep": record.key_step or 1, b"limit": 0}},
        })
    if record.key_finder is not None:
        specs.append({
            b"flags": OrderedSet(key_access_flags(record)),
            b"begin_search": {b"type": b"unknown", b"spec": {}},
            b"find_keys": {b"type": b"unknown", b"spec": {}},
        })
    return specs


def command_info(record: Command) -> list[Any]:
    """One COMMAND INFO entry: name, arity, flags, first, last, step, categories, tips, specs, subs."""
    flags = [flag for flag in FLAG_ORDER if flag in record.flags and flag not in HIDDEN_FLAGS]
    subcommands: Any = (
        [command_info(sub) for sub in record.subcommands.values()] if record.subcommands else OrderedSet([])
    )
    return [
        record.name.encode(),
        record.arity,
        OrderedSet(flags),
        record.first_key,
        record.last_key,
        record.key_step,
        OrderedSet([f"@{name}" for name in categories(record)]),
        OrderedSet([tip.encode() for tip in record.tips]),
        OrderedSet(key_specs(record)),
        subcommands,
    ]


def command_docs(record: Command) -> dict[bytes, Any]:
    """One COMMAND DOCS entry (summary, since, group, complexity, subcommands) from the table."""
    docs: dict[bytes, Any] = {
        b"summary": record.summary.encode(),
        b"since": record.since.encode(),
        b"group": record.group.replace("_", "-").encode(),  # the table says sorted_set, Redis sorted-set
    }
    if record.subcommands and record.handler is None:
        docs[b"complexity"] = b"Depends on subcommand."
    elif record.complexity:
        docs[b"complexity"] = record.complexity.encode()
    if record.handler is not None and (args := _arguments(record)):
        docs[b"arguments"] = args
    if record.subcommands:
        docs[b"subcommands"] = {sub.name.encode(): command_docs(sub) for sub in record.subcommands.values()}
    return docs


_ARGUMENTS: dict[str, list[Any]] = {}


def _arguments(record: Command) -> list[Any]:
    """COMMAND DOCS ``arguments``, from the syntax paragraph that opens the handler's docstring."""
    args = _ARGUMENTS.get(record.name)
    if args is None:
        syntax = " ".join((record.handler.__doc__ or "").strip().split("\n\n")[0].split())
        args = _ARGUMENTS[record.name] = arguments(syntax, name_words=record.name.count("|") + 1)
    return args


def _find(name: bytes) -> Command | None:
    """A command or ``parent|sub`` subcommand by name, case-insensitively."""
    parent, _, sub = name.lower().partition(b"|")
    record = COMMANDS.get(parent)
    if record is not None and sub:
        return record.subcommands.get(sub)
    return record


@command("command", arity=-1, flags="loading stale", group="server", acl="connection",
         tips="nondeterministic_output_order",
         summary="Returns detailed information about all commands.", since="2.8.13")
def command_(client: Client, argv: list[bytes]) -> list[Any]:
    """COMMAND"""
    return [command_info(record) for record in COMMANDS.values()]


@command("command|count", arity=2, flags="loading stale", group="server", acl="connection",
         summary="Returns a count of commands.", since="2.8.13")
def command_count(client: Client, argv: list[bytes]) -> int:
    """COMMAND COUNT"""
    return len(COMMANDS)


@command("command|info", arity=-2, flags="loading stale", group="server", acl="connection",
         tips="nondeterministic_output_order",
         summary="Returns information about one, multiple or all commands.", since="2.8.13")
def command_info_(client: Client, argv: list[bytes]) -> list[Any]:
    """COMMAND INFO [command-name [command-name ...]]"""
    if len(argv) == 2:
        return [command_info(record) for record in COMMANDS.values()]
    return [None if (record := _find(name)) is None else command_info(record) for name in argv[2:]]


@command("command|docs", arity=-2, flags="loading stale", group="server", acl="connection",
         tips="nondeterministic_output_order",
         summary="Returns documentary information about one, multiple or all commands.", since="7.0.0")
def command_docs_(client: Client, argv: list[bytes]) -> dict[bytes, Any]:
    """COMMAND DOCS [command-name [command-name ...]]"""
    if len(argv) == 2:
        return {record.name.encode(): command_docs(record) for record in COMMANDS.values()}
    docs: dict[bytes, Any] = {}
    for name in argv[2:]:
        record = _find(name)
        if record is not None:
            docs[record.name.encode()] = command_docs(record)
    return docs


@command("command|list", arity=-2, flags="loading stale", group="server", acl="connection",
         tips="nondeterministic_output_order",
         summary="Returns a list of command names.", since="7.0.0")
def command_list(client: Client, argv: list[bytes]) -> list[bytes]:
    """COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]"""
    records = iter_commands()
    if len(argv) == 2:
        return [record.name.encode() for record in records]
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise SYNTAX_ERROR
    kind, value = argv[3].lower(), argv[4]
    if kind == b"module":
        return []  # postroom has no modules
    if kind == b"aclcat":
        category = value.decode("utf-8", "replace").lower()
        return [record.name.encode() for record in records if category in categories(record)]
    if kind == b"pattern":
        return [record.name.encode() for record in records if glob_match(value, record.name.encode(), nocase=True)]
    raise SYNTAX_ERROR


def _keys_of(argv: list[bytes]) -> tuple[Command, list[int]]:
    """COMMAND GETKEYS' checks and key positions for the command line ``argv``."""
    parent = COMMANDS.get(argv[0].lower())
    record = parent
    if parent is not None and parent.subcommands and len(argv) > 1:
        record = parent.subcommands.get(argv[1].lower())
    if record is None:
        raise ReplyError("ERR Invalid command specified")
    if (record.first_key <= 0 and record.key_finder is None) or "pubsub" in record.flags:
        raise ReplyError("ERR The command has no key arguments")
    if not record.accepts(len(argv)):
        raise ReplyError("ERR Invalid number of arguments specified for command")
    try:
        positions = record.key_positions(argv)
    except (ReplyError, ValueError, IndexError):
        positions = []
    if not positions and "no_mandatory_keys" not in record.flags:
        raise ReplyError("ERR Invalid arguments specified for command")
    return record, positions


@command("command|getkeys", arity=-4, flags="loading stale", group="server", acl="connection",
         summary="Extracts the key names from an arbitrary command.", since="2.8.13")
def command_getkeys(client: Client, argv: list[bytes]) -> list[bytes]:
    """COMMAND GETKEYS command [arg [arg ...]]"""
    line = argv[2:]
    _, positions = _keys_of(line)
    return [line[i] for i in positions]


@command("command|getkeysandflags", arity=-4, flags="loading stale", group="server", acl="connection",
         summary="Extracts the key names and access flags for an arbitrary command.", since="7.0.0")
def command_getkeysandflags(client: Client, argv: list[bytes]) -> list[list[Any]]:
    """COMMAND GETKEYSANDFLAGS command [arg [arg ...]]"""
    line = argv[2:]
    record, positions = _keys_of(line)
    flags = key_access_flags(record)
    return [[line[i], OrderedSet(flags)] for i in positions]


@command("command|help", arity=2, flags="loading stale", group="server", acl="connection",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def command_help(client: Client, argv: list[bytes]) -> list[str]:
    """COMMAND HELP"""
    return help_reply("COMMAND", [
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
    ])
