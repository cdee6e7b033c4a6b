"""CLIENT: connection introspection and control (ID, NAME, INFO, LIST, KILL, PAUSE, REPLY, UNBLOCK).

CLIENT PAUSE works as Redis's ``blockPostponeClient``: while a pause is active, the transport
asks :meth:`ClientPause.postpone` before running each request; a request the pause applies to
parks its client (through the blocking manager, with no keys and no timeout) so that neither it
nor anything pipelined after it runs. When the pause ends, each postponed request is executed in
the order it arrived and its client resumes reading.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..blocking import UNBLOCKED_ERROR, Block, Waiter
from ..monitor import peer_id
from ..protocol.replies import OK, OrderedSet, ReplyError, Verbatim
from ..tracking import TrackingState
from .args import SYNTAX_ERROR, parse_int, parse_int_at_least
from .connection import validate_client_name
from .registry import command, container, lookup
from .server import help_reply, subcommand_syntax_error

if TYPE_CHECKING:
    from ..broker import Broker
    from ..client import Client

CLIENT_TYPES = {b"normal": "normal", b"slave": "replica", b"replica": "replica", b"pubsub": "pubsub",
                b"master": "master"}

INVALID_CLIENT_ID = ReplyError("ERR Invalid client ID")
CLIENT_ID_NOT_POSITIVE = ReplyError("ERR client-id should be greater than 0")

container("client", group="connection", summary="A container for client connection commands.", since="2.4.0")


# -- describing clients ----------------------------------------------------------------------------


def client_type(client: Client) -> str:
    """Redis's ``getClientType``: pubsub when subscribed, else normal (no replication here)."""
    return "pubsub" if client.channels or client.patterns or client.shard_channels else "normal"


def local_id(client: Client) -> str:
    """CLIENT LIST's ``laddr``: the local address, or ``<socket path>:0`` on the unix socket as Redis."""
    if client.kind == "unix":
        return f"{client.broker.config['unixsocket']}:0"
    return client.laddr


def _flags(client: Client) -> str:
    """CLIENT LIST's ``flags`` letters, in Redis's order; ``N`` when none applies."""
    flags = ""
    if client.monitor:
        flags += "O"
    if client_type(client) == "pubsub":
        flags += "P"
    if client.multi is not None or client.in_exec:
        flags += "x"
    if client.waiter is not None:
        flags += "b"
    if client.watch_dirty:
        flags += "d"
    if client.close_after_reply:
        flags += "c"
    if client.kind == "unix":
        flags += "U"
    if client.no_evict:
        flags += "e"
    if client.no_touch:
        flags += "T"
    return flags or "N"


def describe(client: Client, caller: Client, current: str) -> str:
    """One CLIENT LIST line (Redis 7.2's fields, ``lib-name``/``lib-ver`` included).

    ``cmd`` is the last command a client ran, or for ``caller`` the one running now.

    Buffer sizes are what postroom knows: ``qbuf`` unread input, ``omem`` output not yet sent,
    ``multi-mem`` the bytes of queued MULTI arguments; allocator-level fields are 0.
    """
    now = int(time.time() * 1000)
    multi_mem = sum(len(arg) for _, argv in client.multi for arg in argv) if client.multi is not None else 0
    fields = (
        f"id={client.id} addr={peer_id(client)} laddr={local_id(client)} fd={client.fd} "
        f"name={client.name.decode('latin-1')} age={(now - client.created_ms) // 1000} "
        f"idle={(now - client.last_active_ms) // 1000} flags={_flags(client)} db={client.db.index} "
        f"sub={len(client.channels)} psub={len(client.patterns)} ssub={len(client.shard_channels)} "
        f"multi={len(client.multi) if client.multi is not None else -1} qbuf={client.pending_input} "
        f"qbuf-free=0 argv-mem=0 multi-mem={multi_mem} rbs=0 rbp=0 obl=0 oll={len(client.out)} "
        f"omem={client.out_bytes} tot-mem={client.pending_input + client.out_bytes + multi_mem} "
        f"events=r cmd={current if client is caller else client.last_command} user={client.user} redir=-1 resp={client.resp} "
        f"lib-name={client.lib_name.decode('latin-1')} lib-ver={client.lib_ver.decode('latin-1')}"
    )
    return fields + "\n"


def _parse_type(arg: bytes) -> str:
    kind = CLIENT_TYPES.get(arg.lower())
    if kind is None:
        raise ReplyError(f"ERR Unknown client type '{arg.decode('utf-8', 'replace')}'")
    return kind


# -- simple subcommands ----------------------------------------------------------------------------


@command("client|id", arity=2, flags="noscript loading stale", group="connection",
         summary="Returns the unique client ID of the connection.", since="5.0.0")
def client_id(client: Client, argv: list[bytes]) -> int:
    """CLIENT ID"""
    return client.id


@command("client|setname", arity=3, flags="noscript loading stale", group="connection",
         summary="Sets the connection name.", since="2.6.9")
def client_setname(client: Client, argv: list[bytes]) -> str:
    """CLIENT SETNAME connection-name"""
    validate_client_name(argv[2])
    client.name = argv[2]
    return OK


@command("client|getname", arity=2, flags="noscript loading stale", group="connection",
         summary="Returns the name of the connection.", since="2.6.9")
def client_getname(client: Client, argv: list[bytes]) -> bytes | None:
    """CLIENT GETNAME"""
    return client.name or None


@command("client|setinfo", arity=4, flags="noscript loading stale", group="connection",
         summary="Sets information specific to the client or connection.", since="7.2.0")
def client_setinfo(client: Client, argv: list[bytes]) -> str:
    """CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>"""
    attribute = argv[2].lower()
    if attribute not in (b"lib-name", b"lib-ver"):
        raise ReplyError(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
    if any(c < 0x21 or c > 0x7E for c in argv[3]):
        raise ReplyError(
            f"ERR {argv[2].decode('utf-8', 'replace')} cannot contain spaces, newlines or special characters."
        )
    if attribute == b"lib-name":
        client.lib_name = argv[3]
    else:
        client.lib_ver = argv[3]
    return OK


@command("client|info", arity=2, flags="noscript loading stale", group="connection",
         tips="nondeterministic_output",
         summary="Returns information about the connection.", since="6.2.0")
def client_info(client: Client, argv: list[bytes]) -> Verbatim:
    """CLIENT INFO"""
    return Verbatim(describe(client, client, "client|info").encode("latin-1"))


@command("client|list", arity=-2, flags="admin noscript loading stale", group="connection",
         tips="nondeterministic_output",
         summary="Lists open connections.", since="2.4.0")
def client_list(client: Client, argv: list[bytes]) -> Verbatim:
    """CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]"""
    clients = list(client.broker.clients.values())
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = _parse_type(argv[3])
        clients = [c for c in clients if client_type(c) == kind]
    elif len(argv) > 3 and argv[2].lower() == b"id":
        wanted = [parse_int(arg, INVALID_CLIENT_ID) for arg in argv[3:]]
        by_id = client.broker.clients
        clients = [by_id[cid] for cid in wanted if cid in by_id]
    elif len(argv) != 2:
        raise SYNTAX_ERROR
    return Verbatim("".join(describe(c, client, "client|list") for c in clients).encode("latin-1"))


@command("client|reply", arity=3, flags="noscript loading stale", group="connection",
         summary="Instructs the server whether to reply to commands.", since="3.2.0")
def client_reply(client: Client, argv: list[bytes]) -> str:
    """CLIENT REPLY <ON | OFF | SKIP>"""
    mode = argv[2].lower()
    if mode == b"on":
        client.reply_mode = "on"
    elif mode == b"off":
        client.reply_mode = "off"
    elif mode == b"skip":
        if client.reply_mode == "on":
            client.reply_mode = "skip_next"
    else:
        raise SYNTAX_ERROR
    return OK


def _on_off(arg: bytes) -> bool:
    lowered = arg.lower()
    if lowered == b"on":
        return True
    if lowered == b"off":
        return False
    raise SYNTAX_ERROR


@command("client|no-evict", arity=3, flags="admin noscript loading stale", group="connection",
         summary="Sets the client eviction mode of the connection.", since="7.0.0")
def client_no_evict(client: Client, argv: list[bytes]) -> str:
    """CLIENT NO-EVICT <ON | OFF>"""
    client.no_evict = _on_off(argv[2])
    return OK


@command("client|no-touch", arity=3, flags="noscript loading stale", group="connection",
         summary="Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
         since="7.2.0")
def client_no_touch(client: Client, argv: list[bytes]) -> str:
    """CLIENT NO-TOUCH <ON | OFF>"""
    client.no_touch = _on_off(argv[2])
    return OK


# -- KILL ------------------------------------------------------------------------------------------


@command("client|kill", arity=-3, flags="admin noscript loading stale", group="connection",
         summary="Terminates open connections.", since="2.4.0")
def client_kill(client: Client, argv: list[bytes]) -> Any:
    """CLIENT KILL <ip:port | <[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] |
    [USER username] | [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>]> [...]>"""
    broker = client.broker
    if len(argv) == 3:
        wanted = argv[2].decode("utf-8", "replace")
        for target in list(broker.clients.values()):
            if peer_id(target) == wanted:
                _kill(client, target)
                return OK
        raise ReplyError("ERR No such client")
    if len(argv) % 2:
        raise SYNTAX_ERROR
    filters: list[tuple[str, Any]] = []
    skip_me = True
    for i in range(2, len(argv), 2):
        option, value = argv[i].lower(), argv[i + 1]
        if option == b"id":
            filters.append(("id", parse_int_at_least(value, 1, CLIENT_ID_NOT_POSITIVE)))
        elif option == b"type":
            filters.append(("type", _parse_type(value)))
        elif option == b"addr":
            filters.append(("addr", value.decode("utf-8", "replace")))
        elif option == b"laddr":
            filters.append(("laddr", value.decode("utf-8", "replace")))
        elif option == b"user":
            if value != b"default":
                raise ReplyError(f"ERR No such user '{value.decode('utf-8', 'replace')}'")
            filters.append(("user", "default"))
        elif option == b"skipme":
            lowered = value.lower()
            if lowered not in (b"yes", b"no"):
                raise SYNTAX_ERROR
            skip_me = lowered == b"yes"
        else:
            raise SYNTAX_ERROR
    killed = 0
    for target in list(broker.clients.values()):
        if (target is client and skip_me) or not all(_matches(target, f, v) for f, v in filters):
            continue
        _kill(client, target)
        killed += 1
    return killed


def _matches(client: Client, field: str, value: Any) -> bool:
    """Whether ``client`` passes one CLIENT KILL filter (filters combine with AND)."""
    if field == "id":
        return client.id == value
    if field == "type":
        return client_type(client) == value
    if field == "addr":
        return peer_id(client) == value
    if field == "laddr":
        return local_id(client) == value
    return client.user == value


def _kill(killer: Client, target: Client) -> None:
    """Close ``target``; a client killing itself still gets this command's reply first."""
    if target is killer:
        target.close_after_reply = True
    else:
        target.close_connection()


# -- PAUSE / UNPAUSE -------------------------------------------------------------------------------


class ClientPause:
    """An active CLIENT PAUSE (``broker.client_pause`` while it lasts)."""

    def __init__(self, broker: Broker, pause_all: bool, end_ms: int) -> None:
        self.broker = broker
        self.pause_all = pause_all
        self.end_ms = end_ms
        self.postponed: list[Waiter] = []
        self.cancel_timer: Callable[[], None] | None = None
        self._schedule()

    def _schedule(self) -> None:
        if self.cancel_timer is not None:
            self.cancel_timer()
        delay = max(0.0, (self.end_ms - time.time() * 1000) / 1000)
        self.cancel_timer = self.broker.call_later(delay, self._expire)

    def _expire(self) -> None:
        with self.broker.lock:  # timers run outside command execution (see Broker.call_later)
            self.end()

    def extend(self, pause_all: bool, end_ms: int) -> None:
        """A new CLIENT PAUSE while paused: ALL wins over WRITE and the later end wins, as Redis."""
        self.pause_all = self.pause_all or pause_all
        if end_ms > self.end_ms:
            self.end_ms = end_ms
            self._schedule()

    def postpone(self, client: Client, argv: list[bytes]) -> bool:
        """Called by the transport before each request while paused: park ``client`` if it must wait."""
        cmd = lookup(argv)
        if cmd is None or cmd.handler is None:
            return False  # unknown commands and bare containers are answered with their error
        if not cmd.accepts(len(argv)):
            return False
        if not self.pause_all and not _may_replicate(cmd) and not (
            cmd.name == "exec" and client.multi is not None and any(_may_replicate(c) for c, _ in client.multi)
        ):
            return False
        self.broker.blocking.park(client, cmd, argv, Block([], 0))
        assert client.waiter is not None
        self.postponed.append(client.waiter)
        return True

    def end(self) -> None:
        """Lift the pause and run the postponed requests in arrival order."""
        broker = self.broker
        if broker.client_pause is not self:
            return
        broker.client_pause = None
        if self.cancel_timer is not None:
            self.cancel_timer()
        broker.refresh_clock()
        for waiter in self.postponed:
            target = waiter.client
            if target.waiter is not waiter:
                continue  # disconnected meanwhile
            broker.blocking.drop(target)
            broker.execute(target, waiter.argv)
            broker.resume(target)


def _may_replicate(cmd: Any) -> bool:
    """What CLIENT PAUSE WRITE holds back: writes and commands that may propagate (PUBLISH, EVAL...)."""
    return cmd.is_write or "may_replicate" in cmd.flags


@command("client|pause", arity=-3, flags="admin noscript loading stale", group="connection",
         summary="Suspends commands processing.", since="3.0.0")
def client_pause(client: Client, argv: list[bytes]) -> str:
    """CLIENT PAUSE timeout [WRITE | ALL]"""
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    pause_all = True
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise ReplyError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        pause_all = mode == b"all"
    timeout = parse_int(argv[2], ReplyError("ERR timeout is not an integer or out of range"))
    if timeout < 0:
        raise ReplyError("ERR timeout is negative")
    broker = client.broker
    end_ms = int(time.time() * 1000) + timeout
    if broker.client_pause is None:
        broker.client_pause = ClientPause(broker, pause_all, end_ms)
    else:
        broker.client_pause.extend(pause_all, end_ms)
    return OK


@command("client|unpause", arity=2, flags="admin noscript loading stale", group="connection",
         summary="Resumes processing commands from paused clients.", since="6.2.0")
def client_unpause(client: Client, argv: list[bytes]) -> str:
    """CLIENT UNPAUSE"""
    pause = client.broker.client_pause
    if pause is not None:
        pause.end()
    return OK


# -- UNBLOCK ---------------------------------------------------------------------------------------


@command("client|unblock", arity=-3, flags="admin noscript loading stale", group="connection",
         summary="Unblocks a client blocked by a blocking command from a different connection.",
         since="5.0.0")
def client_unblock(client: Client, argv: list[bytes]) -> int:
    """CLIENT UNBLOCK client-id [TIMEOUT | ERROR]"""
    if len(argv) > 4:
        raise subcommand_syntax_error(argv)
    cid = parse_int(argv[2])
    with_error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in (b"timeout", b"error"):
            raise ReplyError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        with_error = reason == b"error"
    broker = client.broker
    target = broker.clients.get(cid)
    if target is None or target.waiter is None:
        return 0
    pause = broker.client_pause
    if pause is not None and target.waiter in pause.postponed:
        return 0  # a client held by CLIENT PAUSE is not blocked on anything it could give up
    if with_error:
        return int(broker.blocking.unblock(target, UNBLOCKED_ERROR))
    return int(broker.blocking.unblock_with_timeout(target))


@command("client|help", arity=2, flags="loading stale", group="connection",
         summary="Returns helpful text about the different subcommands.", since="5.0.0")
def client_help(client: Client, argv: list[bytes]) -> list[str]:
    """CLIENT HELP"""
    return help_reply("CLIENT", [
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "    * ID <client-id>",
        "      Kill connections by client id.",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are:",
        "    * LIB-NAME: the client lib name.",
        "    * LIB-VER: the client lib version.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "NO-TOUCH (ON|OFF)",
        "    Will not touch LRU/LFU stats when this mode is on.",
    ])


# -- TRACKING (client-side caching, postroom/tracking.py) -------------------------------------------


@command("client|tracking", arity=-3, flags="noscript loading stale", group="connection",
         summary="Controls server-assisted client-side caching for the connection.", since="6.0.0")
def client_tracking(client: Client, argv: list[bytes]) -> str:
    """CLIENT TRACKING <ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT]
    [NOLOOP]"""
    switch = argv[2].lower()
    if switch not in (b"on", b"off"):
        raise SYNTAX_ERROR
    state = TrackingState()
    i = 3
    while i < len(argv):
        option = argv[i].lower()
        more = i + 1 < len(argv)
        if option == b"redirect" and more:
            i += 1
            state.redirect = parse_int(argv[i])
            if state.redirect not in client.broker.clients:
                raise ReplyError("ERR The client ID you want redirect to does not exist")
        elif option == b"bcast":
            state.bcast = True
        elif option == b"optin":
            state.optin = True
        elif option == b"optout":
            state.optout = True
        elif option == b"noloop":
            state.noloop = True
        elif option == b"prefix" and more:
            i += 1
            state.prefixes.append(argv[i])
        else:
            raise SYNTAX_ERROR
        i += 1
    tracking = client.broker.tracking
    if switch == b"off":
        tracking.disable(client)
        return OK
    _check_tracking_options(client.tracking, state)
    if client.tracking is not None and state.bcast:
        state.prefixes[:0] = client.tracking.prefixes  # re-enabling BCAST adds prefixes, as in Redis
    tracking.enable(client, state)
    return OK


def _check_tracking_options(current: TrackingState | None, state: TrackingState) -> None:
    """Redis's checks, in its order, with its error texts."""
    if state.bcast is False and state.prefixes:
        raise ReplyError("ERR PREFIX option requires BCAST mode to be enabled")
    if current is not None and current.bcast != state.bcast:
        raise ReplyError("ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                         "and then re-enabling it with a different mode.")
    if state.optin and state.optout:
        raise ReplyError("ERR You can't specify both OPTIN mode and OPTOUT mode")
    if (state.optin or state.optout) and state.bcast:
        raise ReplyError("ERR OPTIN and OPTOUT are not compatible with BCAST")
    if current is not None and (current.optin != state.optin or current.optout != state.optout):
        raise ReplyError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                         "and then re-enabling it with a different mode.")
    existing = current.prefixes if current is not None else []
    for i, prefix in enumerate(state.prefixes):
        for other in existing:
            if prefix.startswith(other) or other.startswith(prefix):
                raise ReplyError(f"ERR Prefix '{_text(prefix)}' overlaps with an existing prefix "
                                 f"'{_text(other)}'. Prefixes for a single client must not overlap.")
        for other in state.prefixes[i + 1:]:
            if prefix.startswith(other) or other.startswith(prefix):
                raise ReplyError(f"ERR Prefix '{_text(prefix)}' overlaps with another provided prefix "
                                 f"'{_text(other)}'. Prefixes for a single client must not overlap.")


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "replace")


@command("client|caching", arity=3, flags="noscript loading stale", group="connection",
         summary="Instructs the server whether to track the keys in the next request.", since="6.0.0")
def client_caching(client: Client, argv: list[bytes]) -> str:
    """CLIENT CACHING <YES | NO>"""
    state = client.tracking
    if state is None or not (state.optin or state.optout):
        raise ReplyError("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN "
                         "or OPTOUT mode enabled")
    answer = argv[2].lower()
    if answer == b"yes":
        if not state.optin:
            raise ReplyError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
        state.caching = True
    elif answer == b"no":
        if not state.optout:
            raise ReplyError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
        state.caching = False
    else:
        raise SYNTAX_ERROR
    return OK


@command("client|getredir", arity=2, flags="noscript loading stale", group="connection",
         summary="Returns the client ID to which the connection's tracking notifications are redirected.",
         since="6.0.0")
def client_getredir(client: Client, argv: list[bytes]) -> int:
    """CLIENT GETREDIR"""
    return -1 if client.tracking is None else client.tracking.redirect


@command("client|trackinginfo", arity=2, flags="noscript loading stale", group="connection",
         summary="Returns information about server-assisted client-side caching for the connection.",
         since="6.2.0")
def client_trackinginfo(client: Client, argv: list[bytes]) -> dict[bytes, Any]:
    """CLIENT TRACKINGINFO"""
    state = client.tracking
    if state is None:
        return {b"flags": OrderedSet([b"off"]), b"redirect": -1, b"prefixes": []}
    flags = [b"on"]
    for name, enabled in ((b"bcast", state.bcast), (b"optin", state.optin), (b"optout", state.optout),
                          (b"caching-yes", state.caching is True), (b"caching-no", state.caching is False),
                          (b"noloop", state.noloop)):
        if enabled:
            flags.append(name)
    if state.redirect and state.redirect not in client.broker.clients:
        flags.append(b"broken_redirect")
    return {b"flags": OrderedSet(flags), b"redirect": state.redirect, b"prefixes": list(state.prefixes)}
