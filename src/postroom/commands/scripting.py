"""Scripting commands (``eval.c``, ``functions.c``): EVAL, EVALSHA, their _RO forms, SCRIPT, FUNCTION, FCALL.

The Lua machinery lives in :mod:`postroom.scripting`; these handlers parse arguments, keep the
script cache (SHA1 → compiled chunk, so EVALSHA costs one dict lookup before Lua runs) and
dispatch to the broker's :class:`~postroom.scripting.runtime.LuaEngine`, created on first use.
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from ..glob import glob_match
from ..protocol.replies import OK, ReplyError
from ..scripting.functions import FUNCTION_FLAGS, Function, FunctionRegistry
from ..scripting.runtime import LuaEngine
from ..stats import human_bytes
from .args import NOT_INTEGER, parse_int
from .registry import command, container

if TYPE_CHECKING:
    from ..broker import Broker
    from ..client import Client


class Scripting:
    """Per-broker scripting state: the Lua engine, the script cache and the function libraries."""

    __slots__ = ("engine", "scripts", "functions")

    def __init__(self, broker: Broker) -> None:
        self.engine = LuaEngine(broker)
        #: sha1 hex -> (compiled chunk, WRITES/NO_WRITES/NO_SHEBANG, sha1 as text for error messages)
        self.scripts: dict[bytes, tuple[Any, int, str]] = {}
        self.functions = FunctionRegistry(self.engine)

    def script(self, body: bytes) -> tuple[bytes, tuple[Any, int, str]]:
        """Compile ``body`` (or find it in the cache); return its SHA1 and cache entry."""
        sha = hashlib.sha1(body).hexdigest().encode()
        entry = self.scripts.get(sha)
        if entry is None:
            kind = NO_SHEBANG
            if body.startswith(b"#!"):
                kind = NO_WRITES if _script_flags(body) else WRITES
            entry = (self.engine.compile(body), kind, sha.decode())
            self.scripts[sha] = entry
        return sha, entry


def memory_fields(broker: Broker) -> list[tuple[str, Any]]:
    """INFO memory's scripting fields, in Redis 7.0's order. Scripts and functions share one Lua
    VM here, so all of its memory shows as the eval VM's and ``used_memory_vm_functions`` is 0;
    the cache sizes are those of the Python dictionaries that hold them."""
    state = _STATE.get(broker)
    vm = state.engine.lua.get_memory_used() if state is not None else 0
    scripts = sys.getsizeof(state.scripts) if state is not None else 0
    functions = state.functions if state is not None else None
    library_bytes = sys.getsizeof(functions.libraries) + sys.getsizeof(functions.functions) if functions else 0
    return [
        ("used_memory_lua", vm),
        ("used_memory_vm_eval", vm),
        ("used_memory_lua_human", human_bytes(vm)),
        ("used_memory_scripts_eval", scripts),
        ("number_of_cached_scripts", len(state.scripts) if state is not None else 0),
        ("number_of_functions", len(functions.functions) if functions else 0),
        ("number_of_libraries", len(functions.libraries) if functions else 0),
        ("used_memory_vm_functions", 0),
        ("used_memory_vm_total", vm),
        ("used_memory_vm_total_human", human_bytes(vm)),
        ("used_memory_functions", library_bytes),
        ("used_memory_scripts", scripts + library_bytes),
        ("used_memory_scripts_human", human_bytes(scripts + library_bytes)),
    ]


BAD_NUMKEYS = ReplyError("ERR Bad number of keys provided")

#: What a script's shebang says about writes: none (``EVAL_RO`` checks each command), may write
#: (refused by ``EVAL_RO``), ``flags=no-writes`` (read-only even under ``EVAL``).
NO_SHEBANG, WRITES, NO_WRITES = 0, 1, 2

_STATE: WeakKeyDictionary[Broker, Scripting] = WeakKeyDictionary()


#: (broker, state) of the latest lookup, replaced as one tuple so that threads never see a torn pair.
_last: tuple[Any, Any] = (None, None)


def scripting_of(broker: Broker) -> Scripting:
    """The scripting state of ``broker``, created on first use."""
    global _last
    last = _last
    if last[0] is broker:
        return last[1]
    state = _STATE.get(broker)
    if state is None:
        state = _STATE[broker] = Scripting(broker)
    _last = (broker, state)
    return state


def _script_flags(body: bytes) -> bool:
    """An EVAL script's ``#!lua flags=...`` shebang; ``True`` if it declares ``no-writes``."""
    line = body.split(b"\n", 1)[0]
    parts = line.split()
    if parts[0] != b"#!lua":
        raise ReplyError(f"ERR Unexpected engine in script shebang: {line.decode('utf-8', 'replace')}")
    meta: dict[str, bytes] = {}
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise ReplyError(f"ERR Unknown lua shebang option: {part.decode('utf-8', 'replace')}")
        meta["flags"] = part[6:]
    flags = [flag for flag in meta.get("flags", b"").decode().split(",") if flag]
    for flag in flags:
        if flag not in FUNCTION_FLAGS:
            raise ReplyError(f"ERR Unexpected flag in script shebang: {flag}")
    return "no-writes" in flags


def _numkeys(argv: list[bytes], error: ReplyError = NOT_INTEGER) -> int:
    arg = argv[2]
    # The usual single digit needs none of parse_int's strictness checks.
    numkeys = arg[0] - 48 if len(arg) == 1 and 48 <= arg[0] <= 57 else parse_int(arg, error)
    if numkeys > len(argv) - 3:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise ReplyError("ERR Number of keys can't be negative")
    return numkeys


def _script_keys(argv: list[bytes]) -> list[int]:
    try:
        numkeys = int(argv[2])
    except (ValueError, IndexError):
        return []
    return list(range(3, 3 + numkeys)) if 0 < numkeys <= len(argv) - 3 else []


def _run_script(client: Client, argv: list[bytes], numkeys: int, state: Scripting,
                entry: tuple[Any, int, str], readonly: bool) -> Any:
    chunk, kind, name = entry
    if readonly and kind == WRITES:
        raise ReplyError("ERR Can not execute a script with write flag using *_ro command.")
    return state.engine.run(client, chunk, name, numkeys, argv, True, readonly or kind == NO_WRITES)


def _eval(client: Client, argv: list[bytes], readonly: bool) -> Any:
    numkeys = _numkeys(argv)
    state = scripting_of(client.broker)
    _, entry = state.script(argv[1])
    return _run_script(client, argv, numkeys, state, entry, readonly)


def _evalsha(client: Client, argv: list[bytes], readonly: bool) -> Any:
    numkeys = _numkeys(argv)
    state = scripting_of(client.broker)
    sha = argv[1].lower()
    entry = state.scripts.get(sha)
    if entry is None:
        raise ReplyError("NOSCRIPT No matching script. Please use EVAL.")
    return _run_script(client, argv, numkeys, state, entry, readonly)


_EVAL_FLAGS = "noscript skip_monitor may_replicate no_mandatory_keys stale"
_EVAL_RO_FLAGS = "readonly noscript skip_monitor no_mandatory_keys stale"


@command("eval", arity=-3, flags=_EVAL_FLAGS, key_finder=_script_keys, group="scripting",
         summary="Executes a server-side Lua script.", since="2.6.0", complexity="Depends on the script that is executed.")
def eval_(client: Client, argv: list[bytes]) -> Any:
    """EVAL script numkeys [key [key ...]] [arg [arg ...]]"""
    return _eval(client, argv, False)


@command("eval_ro", arity=-3, flags=_EVAL_RO_FLAGS, key_finder=_script_keys, group="scripting",
         summary="Executes a read-only server-side Lua script.", since="7.0.0",
         complexity="Depends on the script that is executed.")
def eval_ro(client: Client, argv: list[bytes]) -> Any:
    """EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]"""
    return _eval(client, argv, True)


@command("evalsha", arity=-3, flags=_EVAL_FLAGS, key_finder=_script_keys, group="scripting",
         summary="Executes a server-side Lua script by SHA1 digest.", since="2.6.0",
         complexity="Depends on the script that is executed.")
def evalsha(client: Client, argv: list[bytes]) -> Any:
    """EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]"""
    return _evalsha(client, argv, False)


@command("evalsha_ro", arity=-3, flags=_EVAL_RO_FLAGS, key_finder=_script_keys, group="scripting",
         summary="Executes a read-only server-side Lua script by SHA1 digest.", since="7.0.0",
         complexity="Depends on the script that is executed.")
def evalsha_ro(client: Client, argv: list[bytes]) -> Any:
    """EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]"""
    return _evalsha(client, argv, True)


# -- SCRIPT ----------------------------------------------------------------------------------------

container("script", group="scripting", summary="A container for Lua scripts management commands.", since="2.6.0")


@command("script|load", arity=3, flags="noscript stale", group="scripting",
         summary="Loads a server-side Lua script to the script cache.", since="2.6.0")
def script_load(client: Client, argv: list[bytes]) -> bytes:
    """SCRIPT LOAD script"""
    sha, _ = scripting_of(client.broker).script(argv[2])
    return sha


@command("script|exists", arity=-3, flags="noscript", group="scripting",
         summary="Determines whether server-side Lua scripts exist in the script cache.", since="2.6.0")
def script_exists(client: Client, argv: list[bytes]) -> list[int]:
    """SCRIPT EXISTS sha1 [sha1 ...]"""
    scripts = scripting_of(client.broker).scripts
    return [1 if sha.lower() in scripts else 0 for sha in argv[2:]]


def _flush_mode(argv: list[bytes], error: str) -> None:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].upper() not in (b"SYNC", b"ASYNC")):
        raise ReplyError(error)


@command("script|flush", arity=-2, flags="noscript", group="scripting",
         summary="Removes all server-side Lua scripts from the script cache.", since="2.6.0")
def script_flush(client: Client, argv: list[bytes]) -> str:
    """SCRIPT FLUSH [ASYNC | SYNC]"""
    _flush_mode(argv, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    scripting_of(client.broker).scripts.clear()
    return OK


def _kill(client: Client, is_eval: bool) -> str:
    run = scripting_of(client.broker).engine.current
    if run is None:
        raise ReplyError("NOTBUSY No scripts in execution right now.")
    if run.wrote:
        raise ReplyError(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
            "wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
        )
    if is_eval and not run.is_eval:
        raise ReplyError("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
    if not is_eval and run.is_eval:
        raise ReplyError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    run.killed = True
    return OK


@command("script|kill", arity=2, flags="noscript allow_busy", group="scripting",
         summary="Terminates a server-side Lua script during execution.", since="2.6.0")
def script_kill(client: Client, argv: list[bytes]) -> str:
    """SCRIPT KILL"""
    return _kill(client, True)


_SCRIPT_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]


@command("script|help", arity=2, flags="loading stale", group="scripting",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def script_help(client: Client, argv: list[bytes]) -> list[str]:
    """SCRIPT HELP"""
    return _SCRIPT_HELP


# -- FUNCTION and FCALL ----------------------------------------------------------------------------

container("function", group="scripting", summary="A container for function commands.", since="7.0.0")


def _changed(client: Client) -> None:
    """Library changes count as writes so that the command itself reaches the AOF."""
    client.broker.dirty += 1


@command("function|load", arity=-3, flags="write denyoom noscript", group="scripting",
         summary="Creates a library.", since="7.0.0")
def function_load(client: Client, argv: list[bytes]) -> bytes:
    """FUNCTION LOAD [REPLACE] function-code"""
    replace = False
    for option in argv[2:-1]:
        if option.upper() != b"REPLACE":
            raise ReplyError(f"ERR Unknown option given: {option.decode('utf-8', 'replace')}")
        replace = True
    name = scripting_of(client.broker).functions.load(argv[-1], replace)
    _changed(client)
    return name


@command("function|delete", arity=3, flags="write noscript", group="scripting",
         summary="Deletes a library and its functions.", since="7.0.0")
def function_delete(client: Client, argv: list[bytes]) -> str:
    """FUNCTION DELETE library-name"""
    scripting_of(client.broker).functions.delete(argv[2])
    _changed(client)
    return OK


@command("function|flush", arity=-2, flags="write noscript", group="scripting",
         summary="Deletes all libraries and functions.", since="7.0.0")
def function_flush(client: Client, argv: list[bytes]) -> str:
    """FUNCTION FLUSH [ASYNC | SYNC]"""
    _flush_mode(argv, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    scripting_of(client.broker).functions.flush()
    _changed(client)
    return OK


@command("function|list", arity=-2, flags="noscript", group="scripting",
         summary="Returns information about all libraries.", since="7.0.0")
def function_list(client: Client, argv: list[bytes]) -> list[dict]:
    """FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]"""
    with_code = False
    pattern: bytes | None = None
    i = 2
    while i < len(argv):
        option = argv[i].upper()
        if option == b"WITHCODE" and not with_code:
            with_code = True
            i += 1
        elif option == b"LIBRARYNAME" and pattern is None:
            if i + 1 >= len(argv):
                raise ReplyError("ERR library name argument was not given")
            pattern = argv[i + 1]
            i += 2
        else:
            raise ReplyError(f"ERR Unknown argument {argv[i].decode('utf-8', 'replace')}")
    result = []
    for library in scripting_of(client.broker).functions.libraries.values():
        if pattern is not None and not glob_match(pattern, library.name):
            continue
        entry: dict[bytes, Any] = {
            b"library_name": library.name,
            b"engine": b"LUA",
            b"functions": [_describe(f) for f in library.functions.values()],
        }
        if with_code:
            entry[b"library_code"] = library.code
        result.append(entry)
    return result


def _describe(function: Function) -> dict[bytes, Any]:
    return {b"name": function.name, b"description": function.description, b"flags": set(function.flags)}


@command("function|dump", arity=2, flags="noscript", group="scripting",
         summary="Dumps all libraries into a serialized binary payload.", since="7.0.0")
def function_dump(client: Client, argv: list[bytes]) -> bytes:
    """FUNCTION DUMP"""
    return scripting_of(client.broker).functions.dump()


@command("function|restore", arity=-3, flags="write denyoom noscript", group="scripting",
         summary="Restores all libraries from a payload.", since="7.0.0")
def function_restore(client: Client, argv: list[bytes]) -> str:
    """FUNCTION RESTORE serialized-value [FLUSH | APPEND | REPLACE]"""
    if len(argv) > 4:
        raise ReplyError("ERR syntax error")
    policy = argv[3].upper() if len(argv) == 4 else b"APPEND"
    if policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
        raise ReplyError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    scripting_of(client.broker).functions.restore(argv[2], policy)
    _changed(client)
    return OK


@command("function|stats", arity=2, flags="noscript allow_busy", group="scripting",
         summary="Returns information about a function during execution.", since="7.0.0")
def function_stats(client: Client, argv: list[bytes]) -> dict:
    """FUNCTION STATS"""
    state = scripting_of(client.broker)
    run = state.engine.current
    running = None
    if run is not None and not run.is_eval:
        running = {
            b"name": run.name.encode(),
            b"command": run.argv,
            b"duration_ms": int((time.monotonic() - run.start) * 1000) if run.start else 0,
        }
    registry = state.functions
    return {
        b"running_script": running,
        b"engines": {b"LUA": {b"libraries_count": len(registry.libraries), b"functions_count": len(registry.functions)}},
    }


@command("function|kill", arity=2, flags="noscript allow_busy", group="scripting",
         summary="Terminates a function during execution.", since="7.0.0")
def function_kill(client: Client, argv: list[bytes]) -> str:
    """FUNCTION KILL"""
    return _kill(client, False)


_FUNCTION_HELP = [
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
]


@command("function|help", arity=2, flags="loading stale", group="scripting",
         summary="Returns helpful text about the different subcommands.", since="7.0.0")
def function_help(client: Client, argv: list[bytes]) -> list[str]:
    """FUNCTION HELP"""
    return _FUNCTION_HELP


def _fcall(client: Client, argv: list[bytes], readonly: bool) -> Any:
    state = scripting_of(client.broker)
    function = state.functions.functions.get(argv[1])
    if function is None:
        raise ReplyError("ERR Function not found")
    numkeys = _numkeys(argv, BAD_NUMKEYS)
    no_writes = "no-writes" in function.flags
    if readonly and not no_writes:
        raise ReplyError("ERR Can not execute a script with write flag using *_ro command.")
    return state.engine.run(client, function.callback, argv[1].decode("utf-8", "replace"), numkeys, argv,
                            False, readonly or no_writes)


@command("fcall", arity=-3, flags=_EVAL_FLAGS, key_finder=_script_keys, group="scripting",
         summary="Invokes a function.", since="7.0.0", complexity="Depends on the function that is executed.")
def fcall(client: Client, argv: list[bytes]) -> Any:
    """FCALL function numkeys [key [key ...]] [arg [arg ...]]"""
    return _fcall(client, argv, False)


@command("fcall_ro", arity=-3, flags=_EVAL_RO_FLAGS, key_finder=_script_keys, group="scripting",
         summary="Invokes a read-only function.", since="7.0.0", complexity="Depends on the function that is executed.")
def fcall_ro(client: Client, argv: list[bytes]) -> Any:
    """FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]"""
    return _fcall(client, argv, True)
