"""Embedded mode: the whole broker inside the user's process.

::

    with postroom.Embedded() as broker:          # or Embedded(dir="state/") to persist
        r = broker.client()                       # a real redis.Redis
        r.lpush("jobs", "1")
        ar = broker.async_client()                # a real redis.asyncio.Redis
        broker.listen(6400)                       # optional: let redis-cli look in over TCP

**Transport.** Clients reach the engine through :class:`EmbeddedConnection`, a redis-py
connection class whose "socket" runs each request synchronously in the calling thread: no
socket, no thread hop, no serialisation other than the RESP redis-py already produces. This was
measured against a socketpair and a unix socket into the broker's loop thread (see
``bench/embedded_bench.py``): both pay a context switch and two syscalls per round trip and are
several times slower.

**Threads.** A background thread runs the broker's event loop for what happens on its own:
blocking-command timeouts, active expiry, and TCP clients after :meth:`Embedded.listen`. Every
entry into the engine, from any thread, holds :attr:`Broker.lock`, so commands stay atomic and run
one at a time exactly as in the server. A client blocked in BLPOP waits on its own condition
variable, outside the lock, and is woken by whichever thread pushes.

**Shutdown.** :meth:`Embedded.close` stops the loop thread and closes every embedded connection;
clients blocked at that moment get a ``ConnectionError``, as they would if a server went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection

from .broker import Broker
from .client import Client
from .config import Config
from .protocol.reader import QueryBufferLimit, RequestReader
from .server import Server, install_event_loop_policy
from .serving import serve_requests

__all__ = ["Embedded", "EmbeddedConnection", "AsyncEmbeddedConnection"]


class _Channel(ABC):
    """One in-process connection: the broker-side client and the reply bytes not yet read.

    ``feed`` runs requests in the caller's thread under the broker lock. Replies produced later,
    on behalf of another thread (a push that serves this client's BLPOP, a pub/sub message), are
    handed over through :meth:`_wake`, which never runs this client's commands itself: running
    them inside another client's command would break atomicity, so the reading side does it.
    """

    def __init__(self, embedded: Embedded) -> None:
        self.embedded = embedded
        self.broker = broker = embedded.broker
        config = broker.config
        with broker.lock:
            self.client: Client = broker.connect("embedded", addr=f"embedded:{threading.get_ident()}")
        self.client.flush_soon = self._wake
        self.client.close_connection = self._close_from_broker
        self.reader = RequestReader(
            max_bulk_len=config["proto-max-bulk-len"],
            max_query_buffer=config["client-query-buffer-limit"],
            authenticated=self.client.authenticated,
        )
        self.closed = False
        embedded._channels.add(self)

    def feed(self, data: bytes) -> None:
        """Run the requests in ``data`` (and any that waited) as far as the client is not blocked."""
        if self.closed:
            raise ConnectionError("connection closed by the embedded broker")
        with self.broker.lock:
            try:
                self.reader.feed(data)
            except QueryBufferLimit:
                self._close()
                return
            self._run()

    def _run(self) -> None:
        """Execute waiting requests; caller holds the broker lock."""
        try:
            serve_requests(self.broker, self.client, self.reader)
        except QueryBufferLimit:
            self._close()
            return
        self._publish()

    def _pending_input(self) -> bool:
        return self.client.waiter is None and self.reader.buffered > 0

    def _publish(self) -> None:
        """Move the client's reply fragments to the reading side; caller holds the broker lock."""
        out = self.client.out
        durability = self.broker.durability
        if out and durability is not None and durability.pending and not durability.commit():
            out.clear()  # never acknowledge writes that did not reach the disk
            self._close()
            return
        if out:
            data = b"".join(out)
            out.clear()
            self._deliver(data)
        if self.client.close_after_reply:
            self._close()

    def _wake(self) -> None:
        """``client.flush_soon``: output or an unblocking happened on behalf of another thread."""
        self._publish()
        self._notify_input()

    def _close_from_broker(self) -> None:
        self.client.close_after_reply = True
        self._publish()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.broker.disconnect(self.client)
            self.embedded._channels.discard(self)
            self._deliver_eof()

    def close(self) -> None:
        with self.broker.lock:
            self._close()

    @abstractmethod
    def _deliver(self, data: bytes) -> None:
        """Hand reply bytes to the reading side."""

    @abstractmethod
    def _deliver_eof(self) -> None:
        """Tell the reading side the connection is closed."""

    @abstractmethod
    def _notify_input(self) -> None:
        """The client was unblocked: its waiting requests may run now."""


class _SyncChannel(_Channel):
    """The socket-like object redis-py's sync connection reads from and writes to."""

    def __init__(self, embedded: Embedded) -> None:
        self._buffer = bytearray()
        # ``_lock`` guards the buffer, the EOF flag and the eventfd; ``_cond`` (on the same lock) is
        # only waited on when no reply is there yet, and only notified when someone waits: on the
        # common path (the reply was produced by the caller's own sendall) a read takes the lock once.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sleepers = 0
        self._eof = False
        self._timeout: float | None = None
        self._event_fd: int | None = None  # created on first fileno(): only pollers need it
        super().__init__(embedded)

    # -- the socket API redis-py uses ----------------------------------------------------------

    def sendall(self, data: bytes) -> None:
        self.feed(bytes(data))

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        while True:
            with self._lock:
                pending = self._buffer
                if pending:
                    n = min(len(pending), nbytes or len(buffer))
                    if n == len(pending):
                        buffer[:n] = pending
                        pending.clear()
                    else:
                        buffer[:n] = pending[:n]
                        del pending[:n]
                    if not pending:
                        self._clear_event()
                    return n
                if self._eof:
                    return 0  # end of file
            if not self.wait_readable(self._timeout):
                raise TimeoutError("timed out")

    def wait_readable(self, timeout: float | None) -> bool:
        """Whether reply bytes (or EOF) can be read within ``timeout`` seconds (``None``: forever)."""
        if self._buffer or self._eof:
            return True  # a glance without the lock (the GIL makes it atomic); the read itself locks
        if timeout is not None and timeout <= 0 and not self._pending_input():
            return False  # redis-py asks this at every pool checkout: answer it without a lock
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._buffer or self._eof:
                    return True
                if not self._pending_input():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._sleepers += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._sleepers -= 1
                    continue
            with self.broker.lock:
                if not self.closed:
                    self._run()

    def recv(self, size: int, flags: int = 0) -> bytes:
        """``recv``; with ``MSG_PEEK`` (redis-py's closed-connection check) nothing is consumed."""
        if flags & socket.MSG_PEEK:
            with self._lock:
                return bytes(self._buffer[:size])
        buffer = bytearray(size)
        n = self.recv_into(buffer, size)
        return bytes(buffer[:n])

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setsockopt(self, *args: Any) -> None:
        pass

    def getsockname(self) -> str:
        return "postroom-embedded"

    def fileno(self) -> int:
        """An eventfd readable while replies are waiting, so ``select``/``poll`` work (pub/sub)."""
        with self._lock:
            if self._event_fd is None:
                self._event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                if self._buffer or self._eof:
                    os.eventfd_write(self._event_fd, 1)
            return self._event_fd

    def shutdown(self, how: int) -> None:
        self.close()

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._event_fd is not None:
                os.close(self._event_fd)
                self._event_fd = None

    # -- delivery ------------------------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        with self._lock:
            was_empty = not self._buffer
            self._buffer += data
            if was_empty and self._event_fd is not None:
                os.eventfd_write(self._event_fd, 1)
            if self._sleepers:
                self._cond.notify_all()

    def _deliver_eof(self) -> None:
        with self._lock:
            self._eof = True
            if self._event_fd is not None:
                os.eventfd_write(self._event_fd, 1)
            if self._sleepers:
                self._cond.notify_all()

    def _notify_input(self) -> None:
        with self._lock:
            if self._sleepers:
                self._cond.notify_all()

    def _clear_event(self) -> None:
        if self._event_fd is not None and not self._eof:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._event_fd)


class _AsyncChannel(_Channel):
    """Reader/writer pair for redis.asyncio, living in the user's event loop."""

    def __init__(self, embedded: Embedded, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stream = asyncio.StreamReader(loop=loop)
        super().__init__(embedded)

    def _in_user_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _call_in_user_loop(self, callback: Any, *args: Any) -> None:
        if self._in_user_loop():
            callback(*args)
        elif not self.loop.is_closed():  # a loop that is gone has nobody left to read
            self.loop.call_soon_threadsafe(callback, *args)

    def _deliver(self, data: bytes) -> None:
        self._call_in_user_loop(self.stream.feed_data, data)

    def _deliver_eof(self) -> None:
        self._call_in_user_loop(self.stream.feed_eof)

    def _notify_input(self) -> None:
        if self._pending_input():
            self._call_in_user_loop(self._run_waiting)

    def _run_waiting(self) -> None:
        with self.broker.lock:
            if not self.closed:
                self._run()


class _AsyncWriter:
    """The subset of ``asyncio.StreamWriter`` redis.asyncio uses."""

    def __init__(self, channel: _AsyncChannel) -> None:
        self.channel = channel

    def write(self, data: bytes) -> None:
        self.channel.feed(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        self.channel.feed(b"".join(chunks))

    async def drain(self) -> None:
        if self.channel.closed:
            raise ConnectionError("connection closed by the embedded broker")

    def close(self) -> None:
        self.channel.close()

    def is_closing(self) -> bool:
        return self.channel.closed

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": "postroom-embedded"}.get(name, default)


class _EmbeddedParser(redis.connection.DefaultParser):  # type: ignore[misc,valid-type]
    """redis-py's (hiredis) parser, asking the channel whether replies wait instead of polling a socket.

    redis-py checks readiness with ``poll()`` on every pool checkout and in pub/sub
    ``get_message(timeout)``; answering from the channel's buffer spares two syscalls per command.
    """

    def can_read(self, timeout: float = 0) -> bool:
        if self._reader is not None and self._reader.has_data():
            return True
        sock = self._sock
        if sock is None:
            raise ConnectionError("connection closed by the embedded broker")
        return sock.wait_readable(timeout)


class EmbeddedConnection(redis.connection.AbstractConnection):
    """redis-py connection class that talks to an :class:`Embedded` broker in-process."""

    def __init__(self, embedded: Embedded | None = None, **kwargs: Any) -> None:
        if embedded is None:
            raise ValueError("EmbeddedConnection needs embedded=<postroom.Embedded>")
        self.embedded = embedded
        kwargs.setdefault("parser_class", _EmbeddedParser)
        super().__init__(**kwargs)

    def repr_pieces(self) -> list[tuple[str, Any]]:
        return [("embedded", id(self.embedded)), ("db", self.db)]

    def _connect(self) -> _SyncChannel:
        return self.embedded.open_socket()

    def _host_error(self) -> str:
        return "postroom-embedded"


class AsyncEmbeddedConnection(redis.asyncio.connection.AbstractConnection):
    """redis.asyncio connection class that talks to an :class:`Embedded` broker in-process."""

    def __init__(self, embedded: Embedded | None = None, **kwargs: Any) -> None:
        if embedded is None:
            raise ValueError("AsyncEmbeddedConnection needs embedded=<postroom.Embedded>")
        self.embedded = embedded
        super().__init__(**kwargs)

    def repr_pieces(self) -> list[tuple[str, Any]]:
        return [("embedded", id(self.embedded)), ("db", self.db)]

    async def _connect(self) -> None:
        channel = self.embedded._open_async_channel(asyncio.get_running_loop())
        self._reader = channel.stream
        self._writer = _AsyncWriter(channel)  # type: ignore[assignment]

    def _host_error(self) -> str:
        return "postroom-embedded"


class Embedded:
    """A postroom broker running inside this process.

    ``dir=None`` keeps everything in memory (a temporary directory holds nothing); a path keeps
    the data directory there, with the persistence settings of ``**settings`` (any config
    parameter, e.g. ``appendfsync="always"``).
    """

    def __init__(self, dir: str | os.PathLike[str] | None = None, **settings: Any) -> None:
        config = Config()
        self._tmp = None
        if dir is None:
            self._tmp = tempfile.mkdtemp(prefix="postroom-embedded-")
            config.set("dir", self._tmp, startup=True)
            config.set("appendonly", "no", startup=True)
            config.set("save", "", startup=True)
        else:
            Path(dir).mkdir(parents=True, exist_ok=True)
            config.set("dir", str(dir), startup=True)
        config.set("bind", "", startup=True)  # no TCP unless listen() asks for it
        for name, value in settings.items():
            config.set(name.replace("_", "-"), str(value), startup=True)
        self.broker = Broker(config)
        self.broker.lock = threading.RLock()
        self.server = Server(broker=self.broker)
        self._channels: set[_Channel] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run_loop, name="postroom-embedded", daemon=True)
        self._closed = False
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    # -- lifecycle -----------------------------------------------------------------------------

    def _run_loop(self) -> None:
        install_event_loop_policy()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            try:
                with self.broker.lock:
                    await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self.server.wait_stopped()
            await self.server.close()

        asyncio.run(main())

    def close(self) -> None:
        """Stop the broker: blocked and future calls on its clients raise ``ConnectionError``."""
        if self._closed:
            return
        self._closed = True
        for channel in list(self._channels):
            channel.close()
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.server.request_shutdown, bool(self.broker.config["save"]))
            self._thread.join(10)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Embedded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clients -------------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> redis.Redis:
        """A ``redis.Redis`` talking to this broker in-process (kwargs go to redis-py)."""
        self._check_open()
        pool = redis.ConnectionPool(connection_class=EmbeddedConnection, embedded=self, **kwargs)
        return redis.Redis(connection_pool=pool)

    def async_client(self, **kwargs: Any) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` talking to this broker in-process, from any event loop."""
        self._check_open()
        pool = redis.asyncio.ConnectionPool(connection_class=AsyncEmbeddedConnection, embedded=self, **kwargs)
        return redis.asyncio.Redis(connection_pool=pool)

    def listen(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Also serve TCP on ``host:port`` (0 picks a free port); returns the port."""
        self._check_open()
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._listen(host, port), self._loop)
        return future.result(10)

    async def _listen(self, host: str, port: int) -> int:
        config = self.broker.config
        with self.broker.lock:
            config.set("bind", host, startup=True)
            config.set("port", str(port), startup=True)
        before = len(self.server.ports)
        await self.server.bind_tcp()
        return self.server.ports[before]

    def _check_open(self) -> None:
        if self._closed:
            raise redis.ConnectionError("the embedded broker is closed")

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in the broker's loop thread, holding the broker lock; return its result.

        For inspecting or adjusting broker state from tests and tools without racing the loop.
        """
        self._check_open()
        assert self._loop is not None

        async def run() -> Any:
            with self.broker.lock:
                return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def open_socket(self) -> _SyncChannel:
        """A new in-process connection with a socket's API (``sendall``, ``recv``, ``recv_into``,
        ``settimeout``, ``close``), for clients that speak raw RESP."""
        self._check_open()
        return _SyncChannel(self)

    def _open_async_channel(self, loop: asyncio.AbstractEventLoop) -> _AsyncChannel:
        self._check_open()
        return _AsyncChannel(self, loop)

