"""The Lua engine: one sandboxed Lua 5.1 runtime per broker, and the ``redis`` library's Python half.

Scripts and functions share the runtime (compiled chunks are cached by the callers: the script
cache by SHA1, the function registry by name). A run is bracketed by :meth:`LuaEngine.run`, which
records the :class:`ScriptRun` the callbacks consult: which client called, whether writes are
allowed, the protocol chosen with ``redis.setresp``, whether the script wrote (UNKILLABLE), and
whether SCRIPT KILL asked it to stop.

Commands called with ``redis.call`` run through :meth:`Broker.call` on a dedicated client (Redis's
"lua client") after the checks Redis applies inside scripts: argument types, existence, arity,
``noscript``, and no writes from read-only scripts. Their writes accumulate in the broker's
propagation list and reach the AOF as one MULTI/EXEC unit when the EVAL/FCALL returns (effects
replication).
"""

from __future__ import annotations

import hashlib
import logging
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import lupa.lua51 as lua51

from .. import REDIS_VERSION
from ..client import Client
from ..commands.registry import COMMANDS
from ..protocol.replies import Encoded, ReplyError
from .busy import BusyResponder
from .conversions import LuaConverter, lua_argument
from .libraries import install_libraries

if TYPE_CHECKING:
    from ..broker import Broker

log = logging.getLogger("postroom.scripting")

#: Instructions between two calls of the count hook (Redis uses the same period).
HOOK_EVERY = 100_000
#: Memory the Lua runtime may allocate (scripts, cached chunks, their data).
MAX_MEMORY = 512 * 1024 * 1024

_VERSION_NUM = sum(int(part) << shift for part, shift in zip(REDIS_VERSION.split("."), (16, 8, 0), strict=True))
_LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.INFO, logging.WARNING)

NO_ARGS = ReplyError("ERR Please specify at least one argument for this redis lib call")
BAD_ARGS = ReplyError("ERR Lua redis lib command arguments must be strings or integers")
UNKNOWN = ReplyError("ERR Unknown Redis command called from script")
WRONG_ARITY = ReplyError("ERR Wrong number of args calling Redis command from script")
NOT_ALLOWED = ReplyError("ERR This Redis command is not allowed from script")
READ_ONLY = ReplyError("ERR Write commands are not allowed from read-only scripts.")
KILLED = "ERR Script killed by user with SCRIPT KILL..."


class ScriptRun:
    """What the callbacks need to know about the script that is running."""

    __slots__ = ("caller", "argv", "name", "is_eval", "readonly", "resp", "repl", "wrote", "killed", "start", "busy")

    def __init__(self, caller: Client, argv: list[bytes], name: str, is_eval: bool, readonly: bool) -> None:
        self.caller = caller
        self.argv = argv  # the EVAL/FCALL command (FUNCTION STATS shows it)
        self.name = name  # the SHA1 of a script, the name of a function
        self.is_eval = is_eval
        self.readonly = readonly
        self.resp = 2
        self.repl = 3  # redis.set_repl flags: REPL_ALL
        self.wrote = False
        self.killed = False
        self.start = 0.0  # set by the first hook call (after 100 000 instructions): no clock read per run
        self.busy = False


class ScriptError(Exception):
    """Raised by a Python callback to raise ``table`` as the Lua error (``redis.call`` failures)."""

    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = table


def lua_error_text(error: ReplyError) -> bytes:
    """The ``err`` field Redis builds from an error reply: ``CODE message``, CR/LF trimmed."""
    code, sep, message = error.message.partition(" ")
    if not sep:
        code, message = "ERR", error.message
    return f"{code} {message.strip(chr(13) + chr(10))}".encode()


def strip_shebang(code: bytes) -> bytes:
    """Blank a ``#!lua`` first line (Lua cannot parse it) but keep line numbers as Redis reports them."""
    if code.startswith(b"#!"):
        end = code.find(b"\n")
        return b"" if end < 0 else code[end:]
    return code


class LuaEngine:
    """The Lua runtime of one broker and the state of the script it runs."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.lua = lua51.LuaRuntime(
            encoding=None, register_eval=False, register_builtins=False, unpack_returned_tuples=True,
            max_memory=MAX_MEMORY, attribute_filter=_deny_attribute,
        )
        self.converter = LuaConverter(self.lua)
        self.client = Client(broker, kind="lua")
        self.current: ScriptRun | None = None
        self._names: dict[bytes, Any] = {}  # command names as scripts spell them -> records
        self.busy = BusyResponder(self)
        table = self.lua.table_from
        callbacks = table({
            b"call": self._call, b"pcall": self._pcall, b"sha1hex": self._sha1hex, b"log": self._log,
            b"setresp": self._setresp, b"set_repl": self._set_repl, b"acl_check_cmd": self._acl_check_cmd,
            b"hook": self._hook, b"hook_every": HOOK_EVERY, b"version": REDIS_VERSION.encode(),
            b"version_num": _VERSION_NUM, b"error_value": _error_value,
        })
        libs = table({})
        install_libraries(self.lua, libs)
        source = resources.files(__package__).joinpath("sandbox.lua").read_bytes()
        (self._encode_reply, self._compile, self._run_script, self._run_function,
         self._load_library) = self.lua.execute(source, callbacks, libs, name=b"=postroom")

    # -- compiling and running ---------------------------------------------------------------

    def compile(self, body: bytes) -> Any:
        """Compile a script body into a Lua function; a syntax error is Redis's compile error."""
        result = self._compile(strip_shebang(body), b"@user_script")
        if type(result) is tuple:
            raise ReplyError(f"ERR Error compiling script (new function): {_text(result[1])}")
        return result

    def run(self, caller: Client, function: Any, name: str, numkeys: int, argv: list[bytes],
            is_eval: bool, readonly: bool) -> Any:
        """Run a compiled script (``is_eval``) or a registered function for the command ``argv``."""
        run = ScriptRun(caller, argv, name, is_eval, readonly)
        script_client = self.client
        script_client.db = caller.db
        if script_client.resp != 2:
            script_client.set_protocol(2)
        self.current = run
        runner = self._run_script if is_eval else self._run_function
        try:
            result = runner(function, numkeys, *argv[3:])
        except lua51.LuaMemoryError:  # out of memory inside the error handler itself
            result = (False, b"not enough memory")
        finally:
            self.current = None
            if run.busy:
                self.busy.finish(run)
        if result is True:
            return None
        ok, value = result[0], result[1]
        if not ok:
            raise self._script_error(value, run)
        if type(value) is not self.converter.table_type:
            return self.converter.to_reply(value, run.resp)
        is_error, encoded = self._encode_reply(value, caller.resp, run.resp)
        if is_error:
            raise ReplyError(encoded.decode("utf-8", "replace"))
        return Encoded(encoded)

    def _script_error(self, error: Any, run: ScriptRun) -> ReplyError:
        if type(error) is bytes:  # out of memory: Lua skips the error handler
            self.lua.gccollect()
            return ReplyError(f"ERR Error running script {run.name}, {_text(error)[:100]}")
        message = _text(error[b"err"]) if error[b"err"] is not None else ""
        source, line = error[b"source"], error[b"line"]
        if source is not None and line is not None:
            message += f" script: {run.name}, on {_text(source)}:{line}."
        return ReplyError(message)

    def load_library(self, code: bytes, register: Any) -> tuple[bool, Any]:
        """Run a library's code with ``redis.register_function`` bound to ``register``."""
        result = self._load_library(strip_shebang(code), b"@user_function", register)
        return (True, None) if result is True else (result[0], result[1])

    # -- callbacks from the redis library ----------------------------------------------------

    def _call(self, *args: Any) -> Any:
        reply = self._command(args)
        kind = reply.__class__
        if kind is int or kind is bytes:
            return reply
        if isinstance(reply, ReplyError):
            raise ScriptError(self.converter.table({b"err": lua_error_text(reply)}))
        return self.converter.to_lua(reply, self.current.resp)  # type: ignore[union-attr]

    def _pcall(self, *args: Any) -> Any:
        reply = self._command(args)
        if isinstance(reply, ReplyError):
            return self.converter.table({b"err": lua_error_text(reply)})
        return self.converter.to_lua(reply, self.current.resp)  # type: ignore[union-attr]

    def _command(self, args: tuple) -> Any:
        run = self.current
        if run is None or not args:
            return NO_ARGS
        argv = list(args)
        for arg in argv:
            if arg.__class__ is not bytes:
                converted = [lua_argument(a) for a in argv]
                if None in converted:
                    return BAD_ARGS
                argv = converted  # type: ignore[assignment]
                break
        cmd = self._names.get(argv[0])
        if cmd is None:
            cmd = COMMANDS.get(argv[0].lower())
            if cmd is None:
                return UNKNOWN
            if len(self._names) < 1024:
                self._names[argv[0]] = cmd  # the spellings scripts use ('INCR', 'incr')
        if cmd.subcommands:
            if len(argv) < 2:
                return WRONG_ARITY
            cmd = cmd.subcommands.get(argv[1].lower())
            if cmd is None:
                return UNKNOWN
        arity = cmd.arity
        if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
            return WRONG_ARITY
        if "noscript" in cmd.flags:
            return NOT_ALLOWED
        if cmd.is_write or "may_replicate" in cmd.flags:
            if run.readonly:
                return READ_ONLY
            run.wrote = True
        broker = self.broker
        if run.repl & 1:
            return broker.call(self.client, cmd, argv)
        pending = broker._propagating  # redis.set_repl without REPL_AOF: keep these writes out of the AOF
        mark = len(pending)
        reply = broker.call(self.client, cmd, argv)
        del broker._propagating[mark:]
        return reply

    def _raise(self, message: str) -> None:
        raise ScriptError(self.converter.table({b"err": message.encode()}))

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            self._raise("ERR redis.setresp() requires one argument.")
        if args[0] not in (2, 3) or type(args[0]) is bool:
            self._raise("ERR RESP version must be 2 or 3.")
        if self.current is not None:
            self.current.resp = int(args[0])
            self.client.set_protocol(int(args[0]))

    def _set_repl(self, *args: Any) -> None:
        if len(args) != 1:
            self._raise("ERR redis.set_repl() requires two arguments.")
        flags = args[0]
        if type(flags) not in (int, float) or flags not in (0, 1, 2, 3):
            self._raise("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
        if self.current is not None:
            self.current.repl = int(flags)

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            self._raise("ERR wrong number of arguments")
        return hashlib.sha1(lua_tostring(args[0])).hexdigest().encode()

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            self._raise("ERR redis.log() requires two arguments or more.")
        level = args[0]
        if type(level) not in (int, float):
            self._raise("ERR First argument must be a number (log level).")
        if level not in (0, 1, 2, 3):
            self._raise("ERR Invalid debug level.")
        message = b" ".join(lua_tostring(arg) for arg in args[1:] if type(arg) in (bytes, int, float))
        log.log(_LOG_LEVELS[int(level)], "%s", message.decode("utf-8", "replace"))

    def _acl_check_cmd(self, *args: Any) -> Any:
        if not args:
            self._raise(NO_ARGS.message)
        name = lua_argument(args[0])
        if name is None or COMMANDS.get(name.lower()) is None:
            self._raise("ERR Invalid command passed to redis.acl_check_cmd()")
        return True

    def _hook(self) -> bytes | None:
        """Every HOOK_EVERY instructions: answer other clients once busy; stop a killed script."""
        run = self.current
        if run is None:
            return None
        if not run.busy:
            if not run.start:
                run.start = time.monotonic()
                return None
            threshold = self.broker.config["busy-reply-threshold"]
            if (time.monotonic() - run.start) * 1000 < threshold:
                return None
            run.busy = True
            log.warning("Slow script detected: still in execution after %d milliseconds.", threshold)
        if not run.killed:
            self.busy.serve(run)
        return KILLED.encode() if run.killed else None


def _deny_attribute(obj: Any, name: Any, is_setting: bool) -> None:
    """Scripts reach Python callables (redis.call, the libraries): no attribute of them, ever.

    Without this filter ``redis.call.__class__`` would lead a script out of the sandbox into Python.
    """
    raise AttributeError("attempt to index a function value")


def _error_value(error: Any) -> tuple[Any, bytes]:
    """The Lua error for a Python exception raised in a callback: its table, or a message."""
    if isinstance(error, ScriptError):
        return error.table, b""
    return None, str(error).encode()


def lua_tostring(value: Any) -> bytes:
    """``tostring`` of a string or number as Lua 5.1 prints it (``%.14g``)."""
    if type(value) is bytes:
        return value
    if type(value) is int and abs(value) < 10**15:
        return b"%d" % value
    if type(value) in (int, float):
        return b"%.14g" % value
    return str(value).encode()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
