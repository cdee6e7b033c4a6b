"""Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from .. import REDIS_VERSION
from ..protocol.replies import OK, PONG, ReplyError
from .args import parse_int
from .registry import command

if TYPE_CHECKING:
    from ..client import Client

WRONGPASS = ReplyError("WRONGPASS invalid username-password pair or user is disabled.")


@command("ping", arity=-1, flags="fast", group="connection", summary="Returns the server's liveliness response.")
def ping(client: Client, argv: list[bytes]) -> Any:
    """PING [message]"""
    if len(argv) > 2:
        raise ReplyError("ERR wrong number of arguments for 'ping' command")
    if client.resp == 2 and client.in_pubsub_context:
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo", arity=2, flags="loading stale fast", group="connection", summary="Returns the given string.")
def echo(client: Client, argv: list[bytes]) -> bytes:
    """ECHO message"""
    return argv[1]


@command("quit", arity=-1, flags="noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Closes the connection.")
def quit_(client: Client, argv: list[bytes]) -> str:
    """QUIT"""
    client.close_after_reply = True
    return OK


@command("select", arity=2, flags="loading stale fast", group="connection",
         summary="Changes the selected database.")
def select(client: Client, argv: list[bytes]) -> str:
    """SELECT index"""
    index = parse_int(argv[1])
    if not 0 <= index < len(client.broker.dbs):
        raise ReplyError("ERR DB index is out of range")
    client.db = client.broker.dbs[index]
    return OK


def validate_client_name(name: bytes) -> None:
    """Client names are printable ASCII without spaces (CLIENT SETNAME, HELLO SETNAME)."""
    if any(c < 0x21 or c > 0x7E for c in name):
        raise ReplyError("ERR Client names cannot contain spaces, newlines or special characters.")


def _check_password(client: Client, username: bytes, password: bytes) -> None:
    required = client.broker.config["requirepass"]
    if username != b"default" or not hmac.compare_digest(password, required.encode()):
        raise WRONGPASS


@command("auth", arity=-2, flags="noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Authenticates the connection.")
def auth(client: Client, argv: list[bytes]) -> str:
    """AUTH [username] password"""
    if len(argv) > 3:
        raise ReplyError("ERR syntax error")
    if len(argv) == 2 and not client.broker.config["requirepass"]:
        raise ReplyError(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        )
    username, password = (b"default", argv[1]) if len(argv) == 2 else (argv[1], argv[2])
    if not client.broker.config["requirepass"]:
        if username != b"default":
            raise WRONGPASS
    else:
        _check_password(client, username, password)
    client.authenticated = True
    client.user = username.decode()
    return OK


@command("hello", arity=-1, flags="noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Handshakes with the Redis server.", since="6.0.0")
def hello(client: Client, argv: list[bytes]) -> dict:
    """HELLO [protover [AUTH username password] [SETNAME clientname]]"""
    version = client.resp
    i = 1
    if len(argv) > 1:
        try:
            version = parse_int(argv[1])
        except ReplyError:
            raise ReplyError("ERR Protocol version is not an integer or out of range")
        if version not in (2, 3):
            raise ReplyError("NOPROTO unsupported protocol version")
        i = 2
    name = None
    credentials = None
    while i < len(argv):
        option = argv[i].upper()
        remaining = len(argv) - i - 1
        if option == b"AUTH" and remaining >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif option == b"SETNAME" and remaining >= 1:
            name = argv[i + 1]
            i += 2
        else:
            raise ReplyError(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if credentials is not None:
        if client.broker.config["requirepass"]:
            _check_password(client, *credentials)
        elif credentials[0] != b"default":
            raise WRONGPASS
        client.authenticated = True
    if not client.authenticated:
        raise ReplyError("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                         "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                         "select the RESP protocol version at the same time")
    if name is not None:
        validate_client_name(name)
        client.name = name
    client.set_protocol(version)
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": version,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }


@command("reset", arity=1, flags="noscript loading stale fast no_auth allow_busy", group="connection",
         summary="Resets the connection.", since="6.2.0")
def reset(client: Client, argv: list[bytes]) -> str:
    """RESET

    Back to a fresh connection's state (db 0, RESP2, no MULTI/WATCH/subscriptions).
    """
    broker = client.broker
    client.multi = None
    client.multi_error = False
    broker.unwatch_all(client)
    broker.pubsub.drop(client)
    client.db = broker.dbs[0]
    client.set_protocol(2)
    client.name = b""
    client.reply_mode = "on"
    client.monitor = False
    client.no_evict = False
    client.no_touch = False
    client.authenticated = not broker.config["requirepass"]
    client.user = "default"
    return "RESET"

