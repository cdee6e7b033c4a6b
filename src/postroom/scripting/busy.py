"""Serving other clients while a script is busy (Redis's ``processEventsWhileBlocked``).

Lua runs on the event-loop thread, so while a script runs the loop cannot. The sandbox installs
a count hook that calls :meth:`LuaEngine._hook` every 100 000 Lua instructions. Once the script has
run longer than ``busy-reply-threshold`` milliseconds, each hook call runs
:meth:`BusyResponder.serve`: a restricted responder that polls, with a non-blocking
``selectors`` poll, the sockets the loop would otherwise watch:

- the listening sockets: new connections are accepted and served here (the loop adopts them,
  with any unparsed bytes, once the script ends);
- every connected client except the one running the script and blocked ones: bytes read are fed
  to the connection's own request reader, so no request is lost or split.

Each complete request is answered exactly as Redis answers during a busy script: commands flagged
``allow_busy`` (SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE, AUTH, HELLO, MULTI, ...) run through the
normal dispatcher; everything else gets the BUSY error (and flags an open transaction). SCRIPT
KILL marks the run killed and the hook raises the kill error inside Lua on its next call (every
call from then on, so ``pcall`` cannot swallow it); SHUTDOWN also kills the script so that the
loop regains control and stops.

The responder reaches the transports through the connection owning each client
(``client.flush_soon`` is bound to it) and the listeners through that connection's server.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import socket
import threading
from typing import TYPE_CHECKING, Any

from ..commands.registry import lookup
from ..protocol.reader import ProtocolError, QueryBufferLimit
from ..protocol.replies import ReplyError

if TYPE_CHECKING:
    from ..client import Client
    from .runtime import LuaEngine, ScriptRun

BUSY_EVAL = ReplyError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
BUSY_FUNCTION = ReplyError(
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
)


def connection_of(client: Client) -> Any:
    """The network connection serving ``client`` (``None`` for embedded clients)."""
    owner = getattr(client.flush_soon, "__self__", None)
    return owner if owner is not None and getattr(owner, "transport", None) is not None else None


class _Accepted:
    """A connection accepted while busy: served here, adopted by the loop afterwards."""

    __slots__ = ("sock", "client", "buffer")

    def __init__(self, sock: socket.socket, client: Client) -> None:
        self.sock = sock
        self.client = client
        self.buffer = b""


class BusyResponder:
    """Answers other clients from inside the Lua hook while a script is busy."""

    def __init__(self, engine: LuaEngine) -> None:
        self.engine = engine
        self.selector: selectors.DefaultSelector | None = None
        self.duplicates: list[socket.socket] = []
        self.accepted: list[_Accepted] = []
        self.server: Any = None
        self.original_shutdown: Any = None
        self.watched: set[int] = set()

    def serve(self, run: ScriptRun) -> None:
        """Answer every complete request that arrived since the last call.

        Only on the event-loop thread: an embedded caller runs scripts in its own thread, where the
        loop's transports must not be touched (the loop waits for the broker lock meanwhile).
        """
        loop_thread = self.engine.broker.loop_thread
        if loop_thread is not None and threading.get_ident() != loop_thread:
            return
        if self.selector is None:
            self._start(run)
        assert self.selector is not None
        self._watch_clients(run)
        for key, _ in self.selector.select(0):
            kind, target = key.data
            if kind == "listener":
                self._accept(key.fileobj)  # type: ignore[arg-type]
            elif kind == "client":
                self._read_client(key.fileobj, target, run)  # type: ignore[arg-type]
            else:
                self._read_accepted(target, run)

    def _start(self, run: ScriptRun) -> None:
        broker = self.engine.broker
        self.selector = selectors.DefaultSelector()
        connection = connection_of(run.caller)
        self.server = connection.server if connection is not None else None
        for listener in getattr(self.server, "_servers", ()):
            for sock in listener.sockets:
                dup = socket.socket(fileno=os.dup(sock.fileno()))
                dup.setblocking(False)
                self.duplicates.append(dup)
                self.selector.register(dup, selectors.EVENT_READ, ("listener", None))
        self.original_shutdown = broker.shutdown_requested

        def shutdown(save: bool, force: bool) -> None:
            run.killed = True  # SHUTDOWN NOSAVE must stop even a script that wrote
            if self.original_shutdown is not None:
                self.original_shutdown(save, force)

        broker.shutdown_requested = shutdown

    def _watch_clients(self, run: ScriptRun) -> None:
        assert self.selector is not None
        for client in list(self.engine.broker.clients.values()):
            if client is run.caller or client.id in self.watched or client.fd < 0:
                continue
            connection = connection_of(client)
            if connection is None:
                continue
            self.watched.add(client.id)
            dup = socket.socket(fileno=os.dup(client.fd))
            dup.setblocking(False)
            self.duplicates.append(dup)
            self.selector.register(dup, selectors.EVENT_READ, ("client", connection))

    def _accept(self, listener: socket.socket) -> None:
        assert self.selector is not None
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        client = self.engine.broker.connect("tcp", addr, "", sock.fileno())
        accepted = _Accepted(sock, client)
        self.accepted.append(accepted)
        self.selector.register(sock, selectors.EVENT_READ, ("accepted", accepted))

    def _read_client(self, sock: socket.socket, connection: Any, run: ScriptRun) -> None:
        client = connection.client
        if client is None or client.waiter is not None or client.closed:
            return
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(sock)  # type: ignore[union-attr]
            return  # the loop notices the closed connection once the script ends
        reader = connection.reader
        try:
            reader.feed(data)
            while True:  # the whole buffer, as Redis does: after SCRIPT KILL the script still runs until the hook
                request = reader.next_request()
                if request is None:
                    break
                self._answer(client, request, run)
        except (ProtocolError, QueryBufferLimit):
            client.close_after_reply = True
        self._write(client, connection.transport.write)

    def _read_accepted(self, accepted: _Accepted, run: ScriptRun) -> None:
        try:
            data = accepted.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(accepted.sock)  # type: ignore[union-attr]
            self.accepted.remove(accepted)
            self.engine.broker.disconnect(accepted.client)
            accepted.sock.close()
            return
        accepted.buffer += data
        while True:
            try:
                parsed = split_request(accepted.buffer)
            except ValueError:  # not RESP: answer what Redis would once the loop adopts it
                break
            if parsed is None:
                break
            request, used = parsed
            accepted.buffer = accepted.buffer[used:]
            if request:
                self._answer(accepted.client, request, run)
        self._write(accepted.client, accepted.sock.sendall)

    def _answer(self, client: Client, request: list[bytes], run: ScriptRun) -> None:
        cmd = lookup(request)
        if cmd is not None and "allow_busy" in cmd.flags:
            self.engine.broker.execute(client, request)
            return
        if cmd is None:
            self.engine.broker.execute(client, request)  # unknown command: its usual error
            return
        if client.multi is not None:
            client.multi_error = True
        client.encoder.write(BUSY_EVAL if run.is_eval else BUSY_FUNCTION, client.out)

    @staticmethod
    def _write(client: Client, write: Any) -> None:
        if client.out:
            data = b"".join(client.out)
            client.out.clear()
            try:
                write(data)
            except OSError:
                client.close_after_reply = True

    def finish(self, run: ScriptRun) -> None:
        """The script ended: stop polling and hand connections accepted meanwhile to the loop."""
        broker = self.engine.broker
        if self.selector is not None:
            self.selector.close()
            self.selector = None
        for dup in self.duplicates:
            dup.close()
        self.duplicates.clear()
        self.watched.clear()
        broker.shutdown_requested = self.original_shutdown
        accepted, self.accepted = self.accepted, []
        loop = broker.loop
        if accepted and self.server is not None and loop is not None:
            for item in accepted:
                broker.disconnect(item.client)
                loop.create_task(self._adopt(loop, item))

    async def _adopt(self, loop: asyncio.AbstractEventLoop, item: _Accepted) -> None:
        from ..server.connection import Connection

        server = self.server
        _, protocol = await loop.connect_accepted_socket(lambda: Connection(server.broker, server), item.sock)
        if item.buffer:
            protocol.data_received(item.buffer)


def split_request(buffer: bytes) -> tuple[list[bytes], int] | None:
    """One request (multibulk or inline) from the start of ``buffer`` and its length; ``None`` if partial."""
    if not buffer:
        return None
    if buffer[0] != 0x2A:  # inline command
        end = buffer.find(b"\n")
        if end < 0:
            return None
        return buffer[:end].strip().split(), end + 1
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    count = int(buffer[1:end])
    pos = end + 2
    args: list[bytes] = []
    for _ in range(max(count, 0)):
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return None
        length = int(buffer[pos + 1:end])
        start = end + 2
        if len(buffer) < start + length + 2:
            return None
        args.append(buffer[start:start + length])
        pos = start + length + 2
    return args, pos
